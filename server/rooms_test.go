package server_test

import (
	"context"
	"slices"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// count returns how many of events are e.
func count(events []chatapi.Event, e chatapi.Event) int {
	n := 0
	for _, x := range events {
		if x == e {
			n++
		}
	}
	return n
}

// TestMembersHearWhoJoinedAndLeft checks that a room's members are told
// when someone joins or leaves it, on the joiner's chat server and on
// another, and that the joiner is told once.
func TestMembersHearWhoJoinedAndLeft(t *testing.T) {
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 2})
	for _, u := range []string{"ann", "bob", "carol"} {
		c.AddUser(u)
	}
	ann := c.Login("ann", "server-1")     // on bob's server
	carol := c.Login("carol", "server-2") // on the other one
	bob := c.Login("bob", "server-1")
	if _, err := ann.Chat.CreateRoom(ctx, chatapi.RoomArgs{Token: ann.Token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Chat.JoinRoom(ctx, chatapi.RoomArgs{Token: carol.Token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}

	if _, err := bob.Chat.JoinRoom(ctx, chatapi.RoomArgs{Token: bob.Token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	joined := chatapi.Event{Kind: chatapi.EventJoined, Room: "lobby", User: "bob"}
	for _, rc := range []*servertest.RawClient{ann, carol} {
		rmitest.WaitFor(t, rc.User+" to hear that bob joined", func() bool { return slices.Contains(rc.Events(), joined) })
	}
	// A post after the join reaches bob after whatever his join queued
	// for him.
	say(t, ann, "lobby", "welcome", "welcome, bob")
	rmitest.WaitFor(t, "bob to receive the post", func() bool { return slices.Contains(delivered(bob, "lobby"), "welcome, bob") })
	if n := count(bob.Events(), joined); n != 1 {
		t.Fatalf("bob was told %d times that he joined, want once; his events: %+v", n, bob.Events())
	}

	if err := bob.Chat.LeaveRoom(ctx, chatapi.RoomArgs{Token: bob.Token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	left := chatapi.Event{Kind: chatapi.EventLeft, Room: "lobby", User: "bob"}
	for _, rc := range []*servertest.RawClient{ann, carol} {
		rmitest.WaitFor(t, rc.User+" to hear that bob left", func() bool { return slices.Contains(rc.Events(), left) })
	}
	if n := count(bob.Events(), joined); n != 1 {
		t.Fatalf("bob was told %d times that he joined, want once; his events: %+v", n, bob.Events())
	}
}
