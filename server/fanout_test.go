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
)

// A delivered queue is kept for reuse emptied and cleared, so that the
// next client's queue neither shows nor pins the messages it held.
func TestSpareQueueIsClearedForReuse(t *testing.T) {
	s := &Server{}
	if q := s.takeQueueLocked(); q != nil {
		t.Fatalf("with nothing kept: got a queue of cap %d, want nil", cap(q))
	}
	q := make([]chatapi.Message, 2, 8)
	q[0] = chatapi.Message{Room: "lobby", Text: "one"}
	q[1] = chatapi.Message{Room: "lobby", Text: "two"}
	s.spareQueueLocked(q)
	got := s.takeQueueLocked()
	if len(got) != 0 || cap(got) != 8 {
		t.Fatalf("got len %d cap %d, want the kept queue, empty (len 0, cap 8)", len(got), cap(got))
	}
	for i, m := range got[:cap(got)] {
		if m != (chatapi.Message{}) {
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
	s.spareQueueLocked(make([]chatapi.Message, 1, spareQueueCap+1))
	if n := len(s.spareQueues); n != 0 {
		t.Fatalf("kept %d queues of nil and of a queue above spareQueueCap, want 0", n)
	}
	for range spareQueues + 5 {
		s.spareQueueLocked(make([]chatapi.Message, 1, spareQueueCap))
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

func (r *rejecting) Deliver(_ context.Context, a chatapi.DeliverArgs) error {
	if !r.rejected && slices.ContainsFunc(a.Events, func(e chatapi.Event) bool { return e.Kind == chatapi.EventResync }) {
		r.rejected = true
		return &rmi.RemoteError{Code: "client.failed", Message: "could not take the batch"}
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
	a.enqueueLocked(s, []chatapi.Message{msg("A", 1)}, nil)
	a.enqueueLocked(s, []chatapi.Message{msg("B", 2)}, nil) // past the bound: dropped
	s.mu.Unlock()
	s.pump(a) // A/1 and the resync of B: refused; then the resync again
	s.mu.Lock()
	a.sending = true
	a.enqueueSettledLocked(s, "B", 100)
	s.mu.Unlock()
	s.pump(a)

	var resynced, settledFirst bool
	for _, b := range cb.batches {
		if _, ok := b.Settled["B"]; ok && !resynced {
			settledFirst = true
		}
		if slices.Contains(b.Events, chatapi.Event{Kind: chatapi.EventResync, Room: "B"}) {
			resynced = true
		}
	}
	if !resynced || settledFirst {
		t.Fatalf("after a refused batch: told to resync B %v, a settled notice for B before that %v (batches %+v)", resynced, settledFirst, cb.batches)
	}
}
