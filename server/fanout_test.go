package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/tinylib/msgp/msgp"
)

// A delivered queue is kept for reuse emptied and cleared, so that the
// next client's queue neither shows nor pins the messages it held.
func TestSpareQueueIsClearedForReuse(t *testing.T) {
	s := &Server{}
	if q := s.takeQueueLocked(); q != nil {
		t.Fatalf("with nothing kept: got a queue of cap %d, want nil", cap(q))
	}
	q := make([]msgp.Raw, 2, 8)
	copy(q, chatapi.EncodeMessages([]chatapi.Message{{Room: "lobby", Text: "one"}, {Room: "lobby", Text: "two"}}))
	s.spareQueueLocked(q)
	got := s.takeQueueLocked()
	if len(got) != 0 || cap(got) != 8 {
		t.Fatalf("got len %d cap %d, want the kept queue, empty (len 0, cap 8)", len(got), cap(got))
	}
	for i, m := range got[:cap(got)] {
		if m != nil {
			t.Fatalf("kept queue still holds message %d: %+v", i, m)
		}
	}
	if q := s.takeQueueLocked(); q != nil {
		t.Fatalf("one queue kept, taken twice: second got cap %d, want nil", cap(q))
	}
}

// Only small queues are kept, and only so many: what is kept stays
// small whatever the load was.
func TestSpareQueuesAreBounded(t *testing.T) {
	s := &Server{}
	s.spareQueueLocked(nil)
	s.spareQueueLocked(make([]msgp.Raw, 1, spareQueueCap+1))
	if n := len(s.spareQueues); n != 0 {
		t.Fatalf("kept %d queues of nil and of a queue above spareQueueCap, want 0", n)
	}
	for range spareQueues + 5 {
		s.spareQueueLocked(make([]msgp.Raw, 1, spareQueueCap))
	}
	if n := len(s.spareQueues); n != spareQueues {
		t.Fatalf("kept %d queues, want at most %d", n, spareQueues)
	}
}

// rejecting is a client callback that records what it is delivered and
// refuses, as a client that ran and failed would, the first batch that
// tells it to resync a room.
type rejecting struct {
	batches  []chatapi.DeliverArgs
	rejected bool
}

func (r *rejecting) DeliverBatch(_ context.Context, b chatapi.DeliverBatch) error {
	if !r.rejected && slices.ContainsFunc(b.Events, func(e chatapi.Event) bool { return e.Kind == chatapi.EventResync }) {
		r.rejected = true
		return &rmi.RemoteError{Code: "client.failed", Message: "could not take the batch"}
	}
	// Decoded as the client does.
	enc, err := rmi.Marshal(b)
	if err != nil {
		return err
	}
	var a chatapi.DeliverArgs
	if err := rmi.Unmarshal(enc, &a); err != nil {
		return err
	}
	r.batches = append(r.batches, a)
	return nil
}

func (r *rejecting) Voice(context.Context, chatapi.VoiceDeliverArgs) error { return nil }

// A client whose messages of a room were dropped past its queue's bound is
// told to resync that room even if it refuses the batch that first says so,
// and no settled notice for the room reaches it before that.
func TestResyncSurvivesARejectedBatch(t *testing.T) {
	cb := &rejecting{}
	s := &Server{clk: clocktest.New(), log: slog.New(slog.DiscardHandler), maxQueue: 1, deliverBatch: 512}
	a := &attachment{user: "bob", cb: cb, sending: true} // pump is run by hand
	msg := func(room string, seq uint64) chatapi.Message {
		return chatapi.Message{Room: room, ID: fmt.Sprint(seq), Stamp: chatapi.Stamp{Server: "s1", Seq: seq}}
	}
	s.mu.Lock()
	a.enqueueLocked(s, "A", chatapi.EncodeMessages([]chatapi.Message{msg("A", 1)}))
	a.enqueueLocked(s, "B", chatapi.EncodeMessages([]chatapi.Message{msg("B", 2)})) // past the bound: dropped
	s.mu.Unlock()
	s.pump(a) // A/1 and the resync of B: refused; then the resync again
	s.mu.Lock()
	a.sending = true
	a.enqueueSettledLocked(s, "B", 100)
	s.mu.Unlock()
	s.pump(a)

	var resynced, resyncedA, settledFirst bool
	for _, b := range cb.batches {
		if _, ok := b.Settled["B"]; ok && !resynced {
			settledFirst = true
		}
		if slices.Contains(b.Events, chatapi.Event{Kind: chatapi.EventResync, Room: "B"}) {
			resynced = true
		}
		// The refused batch held A's message: A is resynced too.
		if slices.Contains(b.Events, chatapi.Event{Kind: chatapi.EventResync, Room: "A"}) {
			resyncedA = true
		}
	}
	if !resynced || settledFirst || !resyncedA {
		t.Fatalf("after a refused batch: told to resync B %v and A %v, a settled notice for B before that %v (batches %+v)", resynced, resyncedA, settledFirst, cb.batches)
	}
}

// The sorted list of a room's local members follows every change of
// them: one who leaves gets no more of the room's messages, one who
// joins gets them.
func TestLocalMembersFollowChanges(t *testing.T) {
	s := &Server{local: map[string]map[*attachment]bool{}, localSorted: map[string][]*attachment{}}
	r := &room{name: "lobby"}
	ann := &attachment{user: "ann", token: "t1", rooms: map[string]bool{}}
	bob := &attachment{user: "bob", token: "t2", rooms: map[string]bool{}}
	users := func() (names []string) {
		for _, a := range s.localMembersLocked("lobby") {
			names = append(names, a.user)
		}
		return names
	}
	s.addLocalLocked(bob, r)
	if got := users(); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("after bob joined: %v", got)
	}
	s.addLocalLocked(ann, r)
	if got := users(); !slices.Equal(got, []string{"ann", "bob"}) {
		t.Fatalf("after ann joined: %v, want [ann bob]", got)
	}
	s.removeLocalLocked(bob, "lobby")
	if got := users(); !slices.Equal(got, []string{"ann"}) {
		t.Fatalf("after bob left: %v, want [ann]", got)
	}
	s.removeLocalLocked(ann, "lobby")
	if got := users(); len(got) != 0 {
		t.Fatalf("after both left: %v, want none", got)
	}
}
