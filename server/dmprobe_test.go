package server

import (
	"context"
	"errors"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// TestDirectRoomProbeAnswersAlike: a third user probing a direct room gets
// the same answer whether the room exists or not.
func TestDirectRoomProbeAnswersAlike(t *testing.T) {
	c, alice, _ := twoServers(t, ClockHLC)
	c.signup("carol")
	c.signup("dave")
	carol := c.login("carol")
	ctx := context.Background()
	if _, err := alice.chat.Direct(ctx, chatapi.DirectArgs{Token: alice.token, Peer: "bob"}); err != nil {
		t.Fatal(err)
	}
	exists, missing := centralapi.DirectRoomName("alice", "bob"), centralapi.DirectRoomName("alice", "dave")
	probes := map[string]func(room string) error{
		"who": func(room string) error {
			_, err := carol.chat.Who(ctx, chatapi.RoomArgs{Token: carol.token, Room: room})
			return err
		},
		"sync": func(room string) error {
			_, err := carol.chat.Sync(ctx, chatapi.SyncArgs{Token: carol.token, Room: room})
			return err
		},
		"post": func(room string) error {
			_, err := carol.chat.Post(ctx, chatapi.PostArgs{Token: carol.token, Room: room, ID: "x", Text: "hi"})
			return err
		},
		"join": func(room string) error {
			_, err := carol.chat.JoinRoom(ctx, chatapi.RoomArgs{Token: carol.token, Room: room})
			return err
		},
	}
	for name, probe := range probes {
		e1, e2 := probe(exists), probe(missing)
		if e1 == nil || e2 == nil || rmiCode(e1) != rmiCode(e2) {
			t.Errorf("%s: existing dm answers %v, missing dm answers %v", name, e1, e2)
		}
	}
}

// rmiCode is the stable code of a remote error, or its text.
func rmiCode(err error) string {
	for _, e := range []error{centralapi.ErrNotMember, centralapi.ErrNoSuchRoom, centralapi.ErrDirectRoom, centralapi.ErrBadName} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}
