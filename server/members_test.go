package server

import (
	"reflect"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// roomOf is a RoomInfo for room "r" with these members.
func roomOf(users ...string) centralapi.RoomInfo {
	info := centralapi.RoomInfo{Name: "r"}
	for _, u := range users {
		info.Members = append(info.Members, centralapi.Member{User: u})
	}
	return info
}

func TestMembersFresh(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name       string
		install    bool
		invalidate bool
		age        time.Duration
		want       bool
	}{
		{"never fetched", false, false, 0, false},
		{"just fetched", true, false, 0, true},
		{"younger than the TTL", true, false, roomInfoTTL - time.Nanosecond, true},
		{"as old as the TTL", true, false, roomInfoTTL, false},
		{"invalidated (RoomChanged)", true, true, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := roomMembers{room: "r"}
			if tc.install {
				if _, ok := m.install(m.gen, roomOf("alice"), t0); !ok {
					t.Fatal("install refused")
				}
			}
			if tc.invalidate {
				m.invalidate()
			}
			if got := m.fresh(t0.Add(tc.age)); got != tc.want {
				t.Fatalf("fresh after %v = %v, want %v", tc.age, got, tc.want)
			}
		})
	}
}

func TestMembersInstallAfterInvalidation(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := roomMembers{room: "r"}
	m.install(m.gen, roomOf("alice"), t0)
	// A fetch starts, then a RoomChanged invalidates: its answer may
	// predate the change and must not be installed.
	gen := m.gen
	m.invalidate()
	if _, ok := m.install(gen, roomOf("alice", "bob"), t0); ok {
		t.Fatal("installed a fetch that started before an invalidation")
	}
	if m.valid || m.fresh(t0) {
		t.Fatal("refused install made the cache valid")
	}
	if !reflect.DeepEqual(m.info, roomOf("alice")) {
		t.Fatalf("refused install changed the cached info to %+v", m.info)
	}
	// A fetch started after the invalidation is installed.
	if _, ok := m.install(m.gen, roomOf("alice", "bob"), t0); !ok || !m.fresh(t0) {
		t.Fatal("current fetch not installed")
	}
}

func TestMembersInstallChanges(t *testing.T) {
	joined := func(u string) chatapi.Event { return chatapi.Event{Kind: chatapi.EventJoined, Room: "r", User: u} }
	left := func(u string) chatapi.Event { return chatapi.Event{Kind: chatapi.EventLeft, Room: "r", User: u} }
	cases := []struct {
		name       string
		before     *centralapi.RoomInfo // installed first, if not nil
		invalidate bool                 // then invalidated
		after      centralapi.RoomInfo
		events     []chatapi.Event
		left       []string
	}{
		{name: "first fetch reports nobody", after: roomOf("alice", "bob")},
		{name: "a join", before: new(roomOf("alice")), after: roomOf("alice", "bob"), events: []chatapi.Event{joined("bob")}},
		{name: "a leave", before: new(roomOf("alice", "bob")), after: roomOf("alice"), events: []chatapi.Event{left("bob")}, left: []string{"bob"}},
		{
			name: "joins and leaves ordered by user", before: new(roomOf("bob", "dave")), after: roomOf("alice", "carol", "dave"),
			events: []chatapi.Event{joined("alice"), left("bob"), joined("carol")}, left: []string{"bob"},
		},
		{name: "no joins against an empty room", before: new(roomOf()), after: roomOf("alice")},
		// A join or leave invalidates the room before the fetch that
		// reflects it: that fetch still tells the change.
		{
			name: "a leave after invalidation", before: new(roomOf("alice", "bob")), invalidate: true, after: roomOf("alice"),
			events: []chatapi.Event{left("bob")}, left: []string{"bob"},
		},
		{
			name: "a join after invalidation", before: new(roomOf("alice")), invalidate: true, after: roomOf("alice", "bob"),
			events: []chatapi.Event{joined("bob")},
		},
		{name: "no change", before: new(roomOf("alice")), after: roomOf("alice")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(1000, 0)
			m := roomMembers{room: "r"}
			if tc.before != nil {
				m.install(m.gen, *tc.before, t0)
			}
			if tc.invalidate {
				m.invalidate()
			}
			ch, ok := m.install(m.gen, tc.after, t0)
			if !ok {
				t.Fatal("install refused")
			}
			if !reflect.DeepEqual(ch.events, tc.events) {
				t.Fatalf("events %+v, want %+v", ch.events, tc.events)
			}
			wantLeft := map[string]bool{}
			for _, u := range tc.left {
				wantLeft[u] = true
			}
			if !reflect.DeepEqual(ch.left, wantLeft) {
				t.Fatalf("left %v, want %v", ch.left, wantLeft)
			}
		})
	}
}

func TestMembersDestinations(t *testing.T) {
	m := roomMembers{room: "r"}
	m.install(m.gen, centralapi.RoomInfo{Name: "r", Servers: []centralapi.ServerInfo{{Name: "a", Addr: "a:1"}, {Name: "b", Addr: "b:1"}, {Name: "c", Addr: "c:1"}}}, time.Unix(0, 0))
	want := []centralapi.ServerInfo{{Name: "a", Addr: "a:1"}, {Name: "c", Addr: "c:1"}}
	if got := m.destinations("b"); !reflect.DeepEqual(got, want) {
		t.Fatalf("destinations from b: %v, want %v", got, want)
	}
}
