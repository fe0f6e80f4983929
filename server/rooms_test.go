package server_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
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

// TestRoomChangesSurviveALostCentralReply: when central makes a
// membership change but its reply is lost (it died; the outcome is
// unknown to the chat server), the chat server makes the call again (at
// the next central server) and answers the client as if nothing had
// happened: a repeated create or leave that finds its change made counts
// as done, and reads are simply made again. Only a second lost reply
// reaches the client.
func TestRoomChangesSurviveALostCentralReply(t *testing.T) {
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 1})
	c.AddUser("ann")
	c.AddUser("bob")
	ann := c.Login("ann", "server-1")
	bob := c.Login("bob", "server-1")
	isMember := func(user string) bool {
		info, err := c.Central().Room(ctx, centralapi.RoomQuery{Room: "lobby"})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(info.Members, func(m centralapi.Member) bool { return m.User == user })
	}

	c.LoseCentralReplies("server-1", "CreateRoom", 1)
	if _, err := ann.Chat.CreateRoom(ctx, chatapi.RoomArgs{Token: ann.Token, Room: "lobby"}); err != nil {
		t.Fatalf("create with its reply lost once: %v", err)
	}
	c.LoseCentralReplies("server-1", "JoinRoom", 1)
	if _, err := bob.Chat.JoinRoom(ctx, chatapi.RoomArgs{Token: bob.Token, Room: "lobby"}); err != nil {
		t.Fatalf("join with its reply lost once: %v", err)
	}
	if !isMember("ann") || !isMember("bob") {
		t.Fatal("ann and bob are not both in lobby")
	}
	// Reads too: bob's room list and lobby's members.
	c.LoseCentralReplies("server-1", "ListRooms", 1)
	if _, err := bob.Chat.ListRooms(ctx, chatapi.TokenArgs{Token: bob.Token}); err != nil {
		t.Fatalf("list rooms with the reply lost once: %v", err)
	}
	c.LoseCentralReplies("server-1", "Room", 1)
	if info, err := bob.Chat.Who(ctx, chatapi.RoomArgs{Token: bob.Token, Room: "lobby"}); err != nil || len(info.Members) != 2 {
		t.Fatalf("who with the reply lost once: %+v, %v", info, err)
	}
	c.LoseCentralReplies("server-1", "LeaveRoom", 1)
	if err := bob.Chat.LeaveRoom(ctx, chatapi.RoomArgs{Token: bob.Token, Room: "lobby"}); err != nil {
		t.Fatalf("leave with its reply lost once: %v", err)
	}
	if isMember("bob") {
		t.Fatal("bob is still in lobby")
	}
	// Someone else's room: a create that finds it is still refused.
	c.LoseCentralReplies("server-1", "CreateRoom", 1)
	if _, err := bob.Chat.CreateRoom(ctx, chatapi.RoomArgs{Token: bob.Token, Room: "lobby"}); !errors.Is(err, centralapi.ErrRoomExists) {
		t.Fatalf("bob creating ann's room, its reply lost: %v, want ErrRoomExists", err)
	}
	// Two lost replies in a row: the client hears of it.
	c.LoseCentralReplies("server-1", "JoinRoom", 2)
	var re *rmi.RemoteError
	if _, err := bob.Chat.JoinRoom(ctx, chatapi.RoomArgs{Token: bob.Token, Room: "lobby"}); !errors.As(err, &re) || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("join with both replies lost: %v, want the chat server's error that its call to central was lost", err)
	}
}
