package central

import (
	"reflect"
	"strings"
	"testing"
)

// memberNames lists a RoomInfo's member names.
func memberNames(r RoomInfo) []string {
	var out []string
	for _, m := range r.Members {
		out = append(out, m.User)
	}
	return out
}

func TestCreateRoom(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob")
	if _, err := e.c.DirectRoom(ctx, DirectArgs{User: "alice", Peer: "bob"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, room string
		want             error
	}{
		{"ok", "alice", "lobby", nil},
		{"case differs", "alice", "Lobby", nil},
		{"longest name", "alice", strings.Repeat("r", 64), nil},
		{"exists", "bob", "lobby", ErrRoomExists},
		{"unknown user", "zed", "zroom", ErrNoSuchUser},
		{"bad user", "Zed", "zroom", ErrBadName},
		{"empty room", "alice", "", ErrBadName},
		{"too long", "alice", strings.Repeat("r", 65), ErrBadName},
		{"colon", "alice", "a:b", ErrBadName},
		{"leading dash", "alice", "-a", ErrBadName},
		{"direct prefix", "alice", "dm:alice:carol", ErrDirectRoom},
		{"existing direct", "alice", "dm:alice:bob", ErrDirectRoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.CreateRoom(ctx, RoomArgs{User: tt.user, Room: tt.room})
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
		{"no such room", "bob", "nowhere", ErrNoSuchRoom, nil},
		{"unknown user", "zed", "lobby", ErrNoSuchUser, nil},
		{"bad user", "", "lobby", ErrBadName, nil},
		{"bad room", "bob", "no way", ErrBadName, nil},
		{"direct room", "carol", dm, ErrDirectRoom, nil},
		{"direct member", "alice", dm, ErrDirectRoom, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.JoinRoom(ctx, RoomArgs{User: tt.user, Room: tt.room})
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
	if _, err := e.c.JoinRoom(ctx, RoomArgs{User: "bob", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	dm := mustDirect(t, e, "alice", "bob")
	tests := []struct {
		name, user, room string
		want             error
		members          []string
	}{
		{"ok", "bob", "lobby", nil, []string{"alice"}},
		{"twice", "bob", "lobby", ErrNotMember, nil},
		{"never joined", "carol", "lobby", ErrNotMember, nil},
		{"last member", "alice", "lobby", nil, []string{}},
		{"no such room", "alice", "nowhere", ErrNoSuchRoom, nil},
		{"unknown user", "zed", "lobby", ErrNoSuchUser, nil},
		{"bad user", "a b", "lobby", ErrBadName, nil},
		{"bad room", "alice", ".x", ErrBadName, nil},
		{"direct room", "alice", dm, ErrDirectRoom, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.LeaveRoom(ctx, RoomArgs{User: tt.user, Room: tt.room})
			wantErr(t, "LeaveRoom", err, tt.want)
			if err == nil && !reflect.DeepEqual(append([]string{}, memberNames(r)...), tt.members) {
				t.Fatalf("members %v, want %v", memberNames(r), tt.members)
			}
		})
	}
	// An emptied room still exists and can be joined again.
	if _, err := e.c.JoinRoom(ctx, RoomArgs{User: "carol", Room: "lobby"}); err != nil {
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
		{"self", "alice", "alice", ErrBadName, ""},
		{"unknown peer", "alice", "zed", ErrNoSuchUser, ""},
		{"unknown user", "zed", "alice", ErrNoSuchUser, ""},
		{"bad peer", "alice", "Bob", ErrBadName, ""},
		{"bad user", "", "bob", ErrBadName, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.DirectRoom(ctx, DirectArgs{User: tt.user, Peer: tt.peer})
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
	if got := DirectRoomName("b", "a"); got != "dm:a:b" {
		t.Fatalf("DirectRoomName = %q", got)
	}
	for _, bad := range []string{"dm:", "dm:a", "dm:b:a", "dm:a:a", "dm:A:b", "dm:a:b:c", "x:a:b"} {
		if _, _, ok := ParseDirectRoomName(bad); ok {
			t.Errorf("ParseDirectRoomName(%q) accepted", bad)
		}
	}
	// A normal room can never collide with a direct one.
	_, err := e.c.CreateRoom(ctx, RoomArgs{User: "alice", Room: "dm:alice:bob"})
	wantErr(t, "CreateRoom of a direct name", err, ErrDirectRoom)
}

func TestRoom(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob", "carol")
	e.register("s1", "s2")
	mustCreate(t, e, "carol", "lobby")
	for _, u := range []string{"alice", "bob"} {
		if _, err := e.c.JoinRoom(ctx, RoomArgs{User: u, Room: "lobby"}); err != nil {
			t.Fatal(err)
		}
	}
	mustDirect(t, e, "bob", "alice")
	a1 := e.connect("alice") // s1
	e.connect("bob")         // s2
	a2 := e.login("alice")   // placed on s1 (tie, pending counted)
	if _, err := e.c.CheckSession(ctx, SessionArgs{Token: a2.Token, Server: "s2"}); err != nil {
		t.Fatal(err)
	}
	if a1.Server.Name != "s1" {
		t.Fatalf("alice on %s", a1.Server.Name)
	}
	s1 := ServerInfo{Name: "s1", Addr: "127.0.0.1:7000", HTTP: "127.0.0.1:8000", Sessions: 1}
	s2 := ServerInfo{Name: "s2", Addr: "127.0.0.1:7000", HTTP: "127.0.0.1:8000", Sessions: 2}
	tests := []struct {
		name string
		room string
		want RoomInfo
		err  error
	}{
		{"public", "lobby", RoomInfo{Name: "lobby", Members: []Member{
			{"alice", []string{"s1", "s2"}}, {"bob", []string{"s2"}}, {"carol", nil}},
			Servers: []ServerInfo{s1, s2}}, nil},
		{"direct", "dm:alice:bob", RoomInfo{Name: "dm:alice:bob", Direct: true, Members: []Member{
			{"alice", []string{"s1", "s2"}}, {"bob", []string{"s2"}}},
			Servers: []ServerInfo{s1, s2}}, nil},
		{"no such room", "nowhere", RoomInfo{}, ErrNoSuchRoom},
		{"no such direct room", "dm:alice:carol", RoomInfo{}, ErrNoSuchRoom},
		{"non-canonical direct", "dm:bob:alice", RoomInfo{}, ErrBadName},
		{"bad name", "", RoomInfo{}, ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.c.Room(ctx, RoomQuery{Room: tt.room})
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
	if _, err := e.c.JoinRoom(ctx, RoomArgs{User: "carol", Room: "a-room"}); err != nil {
		t.Fatal(err)
	}
	mustDirect(t, e, "alice", "bob")
	mustDirect(t, e, "carol", "bob")
	tests := []struct {
		user string
		want []RoomSummary
		err  error
	}{
		{"alice", []RoomSummary{
			{Name: "a-room", Members: 2, Joined: true},
			{Name: "b-room", Members: 1},
			{Name: "dm:alice:bob", Direct: true, Members: 2, Joined: true},
		}, nil},
		{"bob", []RoomSummary{
			{Name: "a-room", Members: 2},
			{Name: "b-room", Members: 1, Joined: true},
			{Name: "dm:alice:bob", Direct: true, Members: 2, Joined: true},
			{Name: "dm:bob:carol", Direct: true, Members: 2, Joined: true},
		}, nil},
		{"carol", []RoomSummary{
			{Name: "a-room", Members: 2, Joined: true},
			{Name: "b-room", Members: 1},
			{Name: "dm:bob:carol", Direct: true, Members: 2, Joined: true},
		}, nil},
		{"zed", nil, ErrNoSuchUser},
		{"Zed", nil, ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := e.c.ListRooms(ctx, UserArgs{User: tt.user})
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
		{"zed", nil, ErrNoSuchUser},
		{"", nil, ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := e.c.UserRooms(ctx, UserArgs{User: tt.user})
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
	if _, err := e.c.JoinRoom(ctx, RoomArgs{User: "bob", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	dm := mustDirect(t, e, "alice", "bob")
	wantList, err := e.c.ListRooms(ctx, UserArgs{User: "bob"})
	if err != nil {
		t.Fatal(err)
	}

	e.reopen()

	// Servers are not persisted: they must register again.
	_, err = e.c.RenewServer(ctx, RenewArgs{Name: "s1"})
	wantErr(t, "RenewServer after restart", err, ErrUnknownServer)
	_, err = e.c.Login(ctx, LoginArgs{User: "alice", Password: pw})
	wantErr(t, "Login with no servers after restart", err, ErrNoServers)
	e.register("s1")
	e.login("bob")
	if _, err := e.c.CheckSession(ctx, SessionArgs{Token: tok, Server: "s1"}); err != nil {
		t.Fatalf("session lost across restart: %v", err)
	}
	_, err = e.c.SignUp(ctx, SignUpArgs{User: "alice", Password: pw})
	wantErr(t, "SignUp of existing user after restart", err, ErrUserExists)
	gotList, err := e.c.ListRooms(ctx, UserArgs{User: "bob"})
	if err != nil || !reflect.DeepEqual(gotList, wantList) {
		t.Fatalf("ListRooms after restart = %+v, %v; want %+v", gotList, err, wantList)
	}
	if got := memberNames(e.room("lobby")); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatalf("lobby members after restart %v", got)
	}
	if got := memberNames(e.room(dm)); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Fatalf("direct room members after restart %v", got)
	}
	_, err = e.c.CreateRoom(ctx, RoomArgs{User: "bob", Room: "lobby"})
	wantErr(t, "CreateRoom of existing room after restart", err, ErrRoomExists)
	if _, err := e.c.ResetPassword(ctx, ResetArgs{User: "bob", RecoveryCode: codes[1], NewPassword: "brand new pw"}); err != nil {
		t.Fatalf("recovery code lost across restart: %v", err)
	}
	e.reopen()
	e.register("s1")
	if _, err := e.c.Login(ctx, LoginArgs{User: "bob", Password: "brand new pw"}); err != nil {
		t.Fatalf("reset password lost across restart: %v", err)
	}
}

func mustCreate(t *testing.T, e *env, user, room string) {
	t.Helper()
	if _, err := e.c.CreateRoom(ctx, RoomArgs{User: user, Room: room}); err != nil {
		t.Fatalf("CreateRoom(%s, %s): %v", user, room, err)
	}
}
