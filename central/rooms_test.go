package central

import (
	"reflect"
	"strings"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
)

// memberNames lists a RoomInfo's member names.
func memberNames(r centralapi.RoomInfo) []string {
	var out []string
	for _, m := range r.Members {
		out = append(out, m.User)
	}
	return out
}

func TestCreateRoom(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob")
	if _, err := e.c.DirectRoom(ctx, centralapi.DirectArgs{User: "alice", Peer: "bob"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, room string
		want             error
	}{
		{"ok", "alice", "lobby", nil},
		{"case differs", "alice", "Lobby", nil},
		{"longest name", "alice", strings.Repeat("r", 64), nil},
		{"exists", "bob", "lobby", centralapi.ErrRoomExists},
		{"unknown user", "zed", "zroom", centralapi.ErrNoSuchUser},
		{"bad user", "Zed", "zroom", centralapi.ErrBadName},
		{"empty room", "alice", "", centralapi.ErrBadName},
		{"too long", "alice", strings.Repeat("r", 65), centralapi.ErrBadName},
		{"colon", "alice", "a:b", centralapi.ErrBadName},
		{"leading dash", "alice", "-a", centralapi.ErrBadName},
		{"direct prefix", "alice", "dm:alice:carol", centralapi.ErrDirectRoom},
		{"existing direct", "alice", "dm:alice:bob", centralapi.ErrDirectRoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.CreateRoom(ctx, centralapi.RoomArgs{User: tt.user, Room: tt.room})
			wantErr(t, "CreateRoom", err, tt.want)
			if err == nil && (r.Name != tt.room || r.Direct || !reflect.DeepEqual(memberNames(r), []string{tt.user})) {
				t.Fatalf("CreateRoom = %+v", r)
			}
		})
	}
}

func TestJoinRoom(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob", "carol")
	mustCreate(t, e, "alice", "lobby")
	dm := mustDirect(t, e, "alice", "bob")
	tests := []struct {
		name, user, room string
		want             error
		members          []string
	}{
		{"ok", "bob", "lobby", nil, []string{"alice", "bob"}},
		{"twice", "bob", "lobby", nil, []string{"alice", "bob"}},
		{"creator", "alice", "lobby", nil, []string{"alice", "bob"}},
		{"no such room", "bob", "nowhere", centralapi.ErrNoSuchRoom, nil},
		{"unknown user", "zed", "lobby", centralapi.ErrNoSuchUser, nil},
		{"bad user", "", "lobby", centralapi.ErrBadName, nil},
		{"bad room", "bob", "no way", centralapi.ErrBadName, nil},
		{"direct room", "carol", dm, centralapi.ErrDirectRoom, nil},
		{"direct member", "alice", dm, centralapi.ErrDirectRoom, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: tt.user, Room: tt.room})
			wantErr(t, "JoinRoom", err, tt.want)
			if err == nil && !reflect.DeepEqual(memberNames(r), tt.members) {
				t.Fatalf("members %v, want %v", memberNames(r), tt.members)
			}
		})
	}
	if got := memberNames(e.room(dm)); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatalf("direct room members %v", got)
	}
}

func TestLeaveRoom(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob", "carol")
	mustCreate(t, e, "alice", "lobby")
	if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: "bob", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	dm := mustDirect(t, e, "alice", "bob")
	tests := []struct {
		name, user, room string
		want             error
		members          []string
	}{
		{"ok", "bob", "lobby", nil, []string{"alice"}},
		{"twice", "bob", "lobby", centralapi.ErrNotMember, nil},
		{"never joined", "carol", "lobby", centralapi.ErrNotMember, nil},
		{"last member", "alice", "lobby", nil, []string{}},
		{"no such room", "alice", "nowhere", centralapi.ErrNoSuchRoom, nil},
		{"unknown user", "zed", "lobby", centralapi.ErrNoSuchUser, nil},
		{"bad user", "a b", "lobby", centralapi.ErrBadName, nil},
		{"bad room", "alice", ".x", centralapi.ErrBadName, nil},
		{"direct room", "alice", dm, centralapi.ErrDirectRoom, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.LeaveRoom(ctx, centralapi.RoomArgs{User: tt.user, Room: tt.room})
			wantErr(t, "LeaveRoom", err, tt.want)
			if err == nil && !reflect.DeepEqual(append([]string{}, memberNames(r)...), tt.members) {
				t.Fatalf("members %v, want %v", memberNames(r), tt.members)
			}
		})
	}
	// An emptied room still exists and can be joined again.
	if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: "carol", Room: "lobby"}); err != nil {
		t.Fatalf("join emptied room: %v", err)
	}
}

func TestDirectRoom(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob", "carol")
	tests := []struct {
		name, user, peer string
		want             error
		room             string
	}{
		{"ok", "bob", "alice", nil, "dm:alice:bob"},
		{"reversed is the same room", "alice", "bob", nil, "dm:alice:bob"},
		{"again", "bob", "alice", nil, "dm:alice:bob"},
		{"another", "carol", "alice", nil, "dm:alice:carol"},
		{"self", "alice", "alice", centralapi.ErrBadName, ""},
		{"unknown peer", "alice", "zed", centralapi.ErrNoSuchUser, ""},
		{"unknown user", "zed", "alice", centralapi.ErrNoSuchUser, ""},
		{"bad peer", "alice", "Bob", centralapi.ErrBadName, ""},
		{"bad user", "", "bob", centralapi.ErrBadName, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.DirectRoom(ctx, centralapi.DirectArgs{User: tt.user, Peer: tt.peer})
			wantErr(t, "DirectRoom", err, tt.want)
			if err != nil {
				return
			}
			a, b, ok := ParseDirectRoomName(r.Name)
			if r.Name != tt.room || !r.Direct || !ok || !reflect.DeepEqual(memberNames(r), []string{a, b}) {
				t.Fatalf("DirectRoom = %+v, want %s", r, tt.room)
			}
		})
	}
	if got := centralapi.DirectRoomName("b", "a"); got != "dm:a:b" {
		t.Fatalf("DirectRoomName = %q", got)
	}
	for _, bad := range []string{"dm:", "dm:a", "dm:b:a", "dm:a:a", "dm:A:b", "dm:a:b:c", "x:a:b"} {
		if _, _, ok := ParseDirectRoomName(bad); ok {
			t.Errorf("ParseDirectRoomName(%q) accepted", bad)
		}
	}
	// A normal room can never collide with a direct one.
	_, err := e.c.CreateRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "dm:alice:bob"})
	wantErr(t, "CreateRoom of a direct name", err, centralapi.ErrDirectRoom)
}

func TestRoom(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob", "carol")
	e.register("s1", "s2")
	mustCreate(t, e, "carol", "lobby")
	for _, u := range []string{"alice", "bob"} {
		if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: u, Room: "lobby"}); err != nil {
			t.Fatal(err)
		}
	}
	mustDirect(t, e, "bob", "alice")
	a1 := e.connect("alice") // s1
	e.connect("bob")         // s2
	a2 := e.login("alice")   // placed on s1 (tie, pending counted)
	if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: a2.Token, Server: "s2"}); err != nil {
		t.Fatal(err)
	}
	if a1.Server.Name != "s1" {
		t.Fatalf("alice on %s", a1.Server.Name)
	}
	s1 := centralapi.ServerInfo{Name: "s1", Addr: "127.0.0.1:7000", HTTP: "127.0.0.1:8000", Sessions: 1}
	s2 := centralapi.ServerInfo{Name: "s2", Addr: "127.0.0.1:7000", HTTP: "127.0.0.1:8000", Sessions: 2}
	tests := []struct {
		name string
		room string
		want centralapi.RoomInfo
		err  error
	}{
		{"public", "lobby", centralapi.RoomInfo{Name: "lobby", Members: []centralapi.Member{
			{User: "alice", Servers: []string{"s1", "s2"}}, {User: "bob", Servers: []string{"s2"}}, {User: "carol", Servers: nil}},
			Servers: []centralapi.ServerInfo{s1, s2}}, nil},
		{"direct", "dm:alice:bob", centralapi.RoomInfo{Name: "dm:alice:bob", Direct: true, Members: []centralapi.Member{
			{User: "alice", Servers: []string{"s1", "s2"}}, {User: "bob", Servers: []string{"s2"}}},
			Servers: []centralapi.ServerInfo{s1, s2}}, nil},
		{"no such room", "nowhere", centralapi.RoomInfo{}, centralapi.ErrNoSuchRoom},
		{"no such direct room", "dm:alice:carol", centralapi.RoomInfo{}, centralapi.ErrNoSuchRoom},
		{"non-canonical direct", "dm:bob:alice", centralapi.RoomInfo{}, centralapi.ErrBadName},
		{"bad name", "", centralapi.RoomInfo{}, centralapi.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.c.Room(ctx, centralapi.RoomQuery{Room: tt.room})
			wantErr(t, "Room", err, tt.err)
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Room = %+v\nwant   %+v", got, tt.want)
			}
		})
	}
	// Offline room: no servers.
	mustCreate(t, e, "carol", "quiet")
	if got := e.room("quiet"); len(got.Servers) != 0 || len(got.Members[0].Servers) != 0 {
		t.Fatalf("offline room %+v", got)
	}
}

func TestListRooms(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob", "carol")
	mustCreate(t, e, "bob", "b-room")
	mustCreate(t, e, "alice", "a-room")
	if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: "carol", Room: "a-room"}); err != nil {
		t.Fatal(err)
	}
	mustDirect(t, e, "alice", "bob")
	mustDirect(t, e, "carol", "bob")
	tests := []struct {
		user string
		want []centralapi.RoomSummary
		err  error
	}{
		{"alice", []centralapi.RoomSummary{
			{Name: "a-room", Members: 2, Joined: true},
			{Name: "b-room", Members: 1},
			{Name: "dm:alice:bob", Direct: true, Members: 2, Joined: true},
		}, nil},
		{"bob", []centralapi.RoomSummary{
			{Name: "a-room", Members: 2},
			{Name: "b-room", Members: 1, Joined: true},
			{Name: "dm:alice:bob", Direct: true, Members: 2, Joined: true},
			{Name: "dm:bob:carol", Direct: true, Members: 2, Joined: true},
		}, nil},
		{"carol", []centralapi.RoomSummary{
			{Name: "a-room", Members: 2, Joined: true},
			{Name: "b-room", Members: 1},
			{Name: "dm:bob:carol", Direct: true, Members: 2, Joined: true},
		}, nil},
		{"zed", nil, centralapi.ErrNoSuchUser},
		{"Zed", nil, centralapi.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := e.c.ListRooms(ctx, centralapi.UserArgs{User: tt.user})
			wantErr(t, "ListRooms", err, tt.err)
			if err == nil && !reflect.DeepEqual(got.Rooms, tt.want) {
				t.Fatalf("ListRooms = %+v\nwant %+v", got.Rooms, tt.want)
			}
		})
	}
}

func TestUserRooms(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob", "dave")
	mustCreate(t, e, "bob", "zoo")
	mustCreate(t, e, "bob", "Attic")
	mustCreate(t, e, "alice", "mid")
	mustDirect(t, e, "bob", "alice")
	tests := []struct {
		user string
		want []string
		err  error
	}{
		{"bob", []string{"Attic", "dm:alice:bob", "zoo"}, nil},
		{"alice", []string{"dm:alice:bob", "mid"}, nil},
		{"dave", []string{}, nil},
		{"zed", nil, centralapi.ErrNoSuchUser},
		{"", nil, centralapi.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := e.c.UserRooms(ctx, centralapi.UserArgs{User: tt.user})
			wantErr(t, "UserRooms", err, tt.err)
			if err == nil && !reflect.DeepEqual(got.Rooms, tt.want) {
				t.Fatalf("UserRooms = %q, want %q", got.Rooms, tt.want)
			}
		})
	}
}

func TestPersistence(t *testing.T) {
	e := newEnv(t)
	codes := e.signUp("alice", "bob")
	e.register("s1")
	tok := e.connect("alice").Token
	mustCreate(t, e, "alice", "lobby")
	if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: "bob", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	dm := mustDirect(t, e, "alice", "bob")
	wantList, err := e.c.ListRooms(ctx, centralapi.UserArgs{User: "bob"})
	if err != nil {
		t.Fatal(err)
	}

	e.reopen()

	// Servers are not persisted: they must register again.
	_, err = e.c.RenewServer(ctx, centralapi.RenewArgs{Name: "s1"})
	wantErr(t, "RenewServer after restart", err, centralapi.ErrUnknownServer)
	_, err = e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "Login with no servers after restart", err, centralapi.ErrNoServers)
	e.register("s1")
	e.login("bob")
	if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: tok, Server: "s1"}); err != nil {
		t.Fatalf("session lost across restart: %v", err)
	}
	_, err = e.c.SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: pw})
	wantErr(t, "SignUp of existing user after restart", err, centralapi.ErrUserExists)
	gotList, err := e.c.ListRooms(ctx, centralapi.UserArgs{User: "bob"})
	if err != nil || !reflect.DeepEqual(gotList, wantList) {
		t.Fatalf("ListRooms after restart = %+v, %v; want %+v", gotList, err, wantList)
	}
	if got := memberNames(e.room("lobby")); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatalf("lobby members after restart %v", got)
	}
	if got := memberNames(e.room(dm)); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatalf("direct room members after restart %v", got)
	}
	_, err = e.c.CreateRoom(ctx, centralapi.RoomArgs{User: "bob", Room: "lobby"})
	wantErr(t, "CreateRoom of existing room after restart", err, centralapi.ErrRoomExists)
	if _, err := e.c.ResetPassword(ctx, centralapi.ResetArgs{User: "bob", RecoveryCode: codes[1], NewPassword: "brand new pw"}); err != nil {
		t.Fatalf("recovery code lost across restart: %v", err)
	}
	e.reopen()
	e.register("s1")
	if _, err := e.c.Login(ctx, centralapi.LoginArgs{User: "bob", Password: "brand new pw"}); err != nil {
		t.Fatalf("reset password lost across restart: %v", err)
	}
}

func mustCreate(t *testing.T, e *env, user, room string) {
	t.Helper()
	if _, err := e.c.CreateRoom(ctx, centralapi.RoomArgs{User: user, Room: room}); err != nil {
		t.Fatalf("CreateRoom(%s, %s): %v", user, room, err)
	}
}
