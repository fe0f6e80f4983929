package server

import (
	"testing"

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
