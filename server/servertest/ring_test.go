package servertest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// directCall starts two chat servers with ann on server-1 and bob on
// server-2, and their direct room. A caller rings again only every
// ringEvery.
func directCall(t *testing.T, ringEvery time.Duration) (ann, bob *servertest.RawClient, room string) {
	c := servertest.New(t, servertest.Options{Servers: 2, VoiceRing: ringEvery})
	c.AddUser("ann")
	c.AddUser("bob")
	ann = c.Login("ann", "server-1")
	bob = c.Login("bob", "server-2")
	info, err := ann.Chat.Direct(context.Background(), chatapi.DirectArgs{Token: ann.Token, Peer: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	return ann, bob, info.Name
}

// rings returns the ring events delivered to rc.
func rings(rc *servertest.RawClient) []chatapi.Event {
	var out []chatapi.Event
	for _, e := range rc.Events() {
		if e.Kind == chatapi.EventRing {
			out = append(out, e)
		}
	}
	return out
}

func voiceJoin(t *testing.T, rc *servertest.RawClient, room string) {
	t.Helper()
	if err := rc.Chat.VoiceJoin(context.Background(), chatapi.VoiceArgs{Token: rc.Token, Room: room}); err != nil {
		t.Fatalf("%s joins the voice of %s: %v", rc.User, room, err)
	}
}

// barrier posts a message from ann to the direct room and waits for bob
// to receive it: whatever server-2 queued to bob before it, bob has too.
func barrier(t *testing.T, ann, bob *servertest.RawClient, room, id string) {
	t.Helper()
	post(t, ann, room, id, "barrier "+id)
	rmitest.WaitFor(t, "bob to receive "+id, func() bool { return slices.Contains(texts(bob), "barrier "+id) })
}

// TestRingReachesCalleeOnAnotherServer: ann, on server-1, joins the voice
// channel of her direct room with bob, who is on server-2 and not in it:
// bob's client gets exactly one ring (the next is an hour away) naming
// ann.
func TestRingReachesCalleeOnAnotherServer(t *testing.T) {
	ann, bob, room := directCall(t, time.Hour)
	voiceJoin(t, ann, room)
	rmitest.WaitFor(t, "bob to be rung", func() bool { return len(rings(bob)) > 0 })
	barrier(t, ann, bob, room, "1")
	want := []chatapi.Event{{Kind: chatapi.EventRing, Room: room, User: "ann"}}
	if got := rings(bob); !slices.Equal(got, want) {
		t.Fatalf("bob's rings = %+v, want %+v", got, want)
	}
	if got := rings(ann); len(got) != 0 {
		t.Fatalf("the caller was rung: %+v", got)
	}
}

// TestNoRingWhenCalleeIsInTheChannel: bob is already in the channel (he
// rang ann when he joined); ann joining does not ring him.
func TestNoRingWhenCalleeIsInTheChannel(t *testing.T) {
	ann, bob, room := directCall(t, time.Hour)
	voiceJoin(t, bob, room)
	rmitest.WaitFor(t, "ann to be rung by bob", func() bool { return len(rings(ann)) > 0 })
	voiceJoin(t, ann, room)
	barrier(t, ann, bob, room, "1")
	if got := rings(bob); len(got) != 0 {
		t.Fatalf("bob, already in the channel, was rung: %+v", got)
	}
}

// TestRingRepeatsWhileCallerWaits: a caller alone rings again every
// VoiceRing.
func TestRingRepeatsWhileCallerWaits(t *testing.T) {
	ann, bob, room := directCall(t, 20*time.Millisecond)
	voiceJoin(t, ann, room)
	rmitest.WaitFor(t, "bob to be rung three times", func() bool { return len(rings(bob)) >= 3 })
}

// TestNoRingInAPublicRoom: a room of more than two has no ring.
func TestNoRingInAPublicRoom(t *testing.T) {
	_, ann, bob := twoRooms(t, servertest.Options{Servers: 2, VoiceRing: time.Hour})
	voiceJoin(t, ann, "r")
	post(t, ann, "r", "1", "barrier")
	rmitest.WaitFor(t, "bob to receive the barrier", func() bool { return slices.Contains(texts(bob), "barrier") })
	if got := rings(bob); len(got) != 0 {
		t.Fatalf("bob was rung in a public room: %+v", got)
	}
}
