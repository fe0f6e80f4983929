package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// TestDirectRoomProbeAnswersAlike: a third user probing a direct room gets
// the same answer whether the room exists or not.
func TestDirectRoomProbeAnswersAlike(t *testing.T) {
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 2})
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		c.AddUser(u)
	}
	alice, carol := attachUser(t, c, "alice", "server-1"), attachUser(t, c, "carol", "server-2")
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
		if code(e1) == "" || code(e1) != code(e2) {
			t.Errorf("%s: the existing direct room answers %v, the missing one %v", name, e1, e2)
		}
	}
}

// code is the error code of a remote error, or "" if err is not one.
func code(err error) string {
	var re *rmi.RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}
