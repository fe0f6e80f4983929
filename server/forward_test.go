package server_test

import (
	"context"
	"slices"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// A destination server hands a forwarded message to its clients as soon
// as the Forward arrives, while the message's write is still being
// flushed, and acknowledges the Forward only once the write is durable:
// until then the sender keeps the message in its outbox.
func TestForwardDeliversBeforeTheWriteAndAcknowledgesAfter(t *testing.T) {
	c := servertest.New(t, servertest.Options{Servers: 2})
	_, bob := inLobby(t, c)
	if bob.Server != "server-2" {
		t.Fatalf("bob on %s, want server-2", bob.Server)
	}
	c.HoldWrites("server-2", true)
	released := false
	defer func() {
		if !released {
			c.HoldWrites("server-2", false)
		}
	}()
	m := chatapi.Message{Room: "lobby", ID: "m1", From: "carol", Text: "from afar",
		Stamp: chatapi.Stamp{Time: 1, Server: "server-3", Seq: 1}}
	type result struct {
		rep chatapi.ForwardReply
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := c.Server("server-2").PeerAPI().Forward(context.Background(),
			chatapi.ForwardArgs{From: "server-3", Messages: []chatapi.Message{m}})
		done <- result{rep, err}
	}()
	rmitest.WaitFor(t, "bob to get the message while its write is held", func() bool {
		return slices.ContainsFunc(bob.Messages(), func(got chatapi.Message) bool { return got.Stamp == m.Stamp })
	})
	select {
	case r := <-done:
		t.Fatalf("Forward acknowledged (%+v, %v) before its write was durable", r.rep, r.err)
	default:
	}
	c.HoldWrites("server-2", false)
	released = true
	var r result
	rmitest.WaitFor(t, "the Forward to be acknowledged once the write is durable", func() bool {
		select {
		case r = <-done:
			return true
		default:
			return false
		}
	})
	if r.err != nil || r.rep.Stored != 1 {
		t.Fatalf("Forward = %+v, %v; want 1 stored", r.rep, r.err)
	}
	if got := history(t, bob, "lobby"); len(got) != 1 || got[0].Stamp != m.Stamp {
		t.Fatalf("server-2's history %v, want the forwarded message", got)
	}
	// Sent again (the sender never heard the acknowledgement), it is
	// neither stored nor delivered twice.
	rep, err := c.Server("server-2").PeerAPI().Forward(context.Background(),
		chatapi.ForwardArgs{From: "server-3", Messages: []chatapi.Message{m}})
	if err != nil || rep.Stored != 0 {
		t.Fatalf("Forward again = %+v, %v; want 0 stored", rep, err)
	}
	n := 0
	for _, got := range bob.Messages() {
		if got.Stamp == m.Stamp {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("bob got the message %d times, want once", n)
	}
}

// A forwarded message of a room this server has not yet read the
// membership of is written at once, but its new members here are known
// only once that read comes back from central. They receive it live then,
// with the news that they joined, rather than only by syncing.
func TestForwardWaitsForTheMembershipRead(t *testing.T) {
	c := servertest.New(t, servertest.Options{Servers: 2})
	alice, bob := inLobby(t, c)
	if bob.Server != "server-2" {
		t.Fatalf("bob on %s, want server-2", bob.Server)
	}
	ctx := context.Background()
	c.HoldCentral("server-2", true)
	held := true
	defer func() {
		if held {
			c.HoldCentral("server-2", false)
		}
	}()
	info, err := alice.Chat.Direct(ctx, chatapi.DirectArgs{Token: alice.Token, Peer: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	m := chatapi.Message{Room: info.Name, ID: "d1", From: "alice", Text: "psst",
		Stamp: chatapi.Stamp{Time: 1, Server: "server-3", Seq: 1}}
	rep, err := c.Server("server-2").PeerAPI().Forward(ctx, chatapi.ForwardArgs{From: "server-3", Messages: []chatapi.Message{m}})
	if err != nil || rep.Stored != 1 {
		t.Fatalf("Forward = %+v, %v; want 1 stored", rep, err)
	}
	// Written, but server-2 cannot yet know that bob is a member.
	if got := delivered(bob, info.Name); len(got) != 0 {
		t.Fatalf("bob got %v before server-2 knew he was a member", got)
	}
	c.HoldCentral("server-2", false)
	held = false
	rmitest.WaitFor(t, "bob to get the message once server-2 reads the membership", func() bool {
		return slices.Equal(delivered(bob, info.Name), []string{"psst"})
	})
	joined := chatapi.Event{Kind: chatapi.EventJoined, Room: info.Name, User: "bob"}
	if !slices.Contains(bob.Events(), joined) {
		t.Fatalf("bob's events %v lack %v", bob.Events(), joined)
	}
}
