package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
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
	s.pump(a, false) // A/1 and the resync of B: refused; then the resync again
	s.mu.Lock()
	a.sending = true
	a.enqueueSettledLocked(s, "B", 100)
	s.mu.Unlock()
	s.pump(a, false)

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

// refuser is a client callback that refuses, as a client that ran and
// failed would, its first refuse batches (every batch if refuse < 0) and
// records every batch it is sent, refused or not. Past 50 it fails as a
// lost connection would, so that a server that keeps calling stops.
type refuser struct {
	refuse  int
	batches []chatapi.DeliverBatch
}

func (r *refuser) DeliverBatch(_ context.Context, b chatapi.DeliverBatch) error {
	b.Events = slices.Clone(b.Events)
	r.batches = append(r.batches, b)
	if len(r.batches) > 50 {
		return errors.New("called 50 times")
	}
	if r.refuse < 0 || len(r.batches) <= r.refuse {
		return &rmi.RemoteError{Code: "client.failed", Message: "could not take the batch"}
	}
	return nil
}

func (r *refuser) Voice(context.Context, chatapi.VoiceDeliverArgs) error { return nil }

// newRefusalServer returns a server with what pump and detach use, and an
// attachment of bob's on cb whose delivery task is run by hand.
func newRefusalServer(cb callback) (*Server, *attachment) {
	clk := clocktest.New()
	s := &Server{
		clk: clk, log: slog.New(slog.DiscardHandler), maxQueue: 8, deliverBatch: 512,
		timers: map[*clock.Timer]bool{}, leases: rmi.NewLeases(clk, func(string) {}),
		atts: map[string]*attachment{},
	}
	a := &attachment{user: "bob", token: "t-bob", cb: cb, rooms: map[string]bool{}, sending: true}
	s.atts[a.token] = a
	return s, a
}

// A batch the client refuses loses none of its events: the next one
// carries them again, in their order, before the resync of the refused
// messages' room and before the events queued since.
func TestRefusedBatchKeepsItsEvents(t *testing.T) {
	cb := &refuser{refuse: 1}
	s, a := newRefusalServer(cb)
	joined := chatapi.Event{Kind: chatapi.EventJoined, Room: "C", User: "bob"}
	ring := chatapi.Event{Kind: chatapi.EventRing, Room: "C", User: "ann"}
	left := chatapi.Event{Kind: chatapi.EventLeft, Room: "C", User: "cat"}
	s.mu.Lock()
	a.events = []chatapi.Event{joined, ring}
	a.enqueueLocked(s, "A", chatapi.EncodeMessages([]chatapi.Message{{Room: "A", ID: "1", Stamp: chatapi.Stamp{Server: "s1", Seq: 1}}}))
	s.mu.Unlock()
	// The refused batch is sent with joined, ring and A/1; left is
	// queued while it is out, as if during its round trip.
	a.cb = callbackFunc(func(ctx context.Context, b chatapi.DeliverBatch) error {
		if len(cb.batches) == 0 {
			s.mu.Lock()
			a.events = append(a.events, left)
			s.mu.Unlock()
		}
		return cb.DeliverBatch(ctx, b)
	})
	s.pump(a, false)
	if len(cb.batches) != 2 {
		t.Fatalf("sent %d batches, want 2 (the refused one, then its events): %+v", len(cb.batches), cb.batches)
	}
	want := []chatapi.Event{joined, ring, {Kind: chatapi.EventResync, Room: "A"}, left}
	if got := cb.batches[1].Events; !slices.Equal(got, want) || len(cb.batches[1].Messages) != 0 {
		t.Fatalf("after the refusal, sent events %+v and %d messages; want %+v and none", got, len(cb.batches[1].Messages), want)
	}
	if a.gone || a.refused != 0 {
		t.Fatalf("after one refusal and a delivery: gone %v, refusals in a row %d; want attached, 0", a.gone, a.refused)
	}
}

// callbackFunc is a callback whose DeliverBatch is the function.
type callbackFunc func(context.Context, chatapi.DeliverBatch) error

func (f callbackFunc) DeliverBatch(ctx context.Context, b chatapi.DeliverBatch) error {
	return f(ctx, b)
}

func (f callbackFunc) Voice(context.Context, chatapi.VoiceDeliverArgs) error { return nil }

// A client that refuses every Deliver is called maxRefusedDelivers times
// and then detached, rather than called again for ever; one that refuses
// fewer in a row, with deliveries between, stays.
func TestClientRefusingEveryDeliverIsDetached(t *testing.T) {
	cb := &refuser{refuse: -1}
	s, a := newRefusalServer(cb)
	s.mu.Lock()
	a.enqueueLocked(s, "A", chatapi.EncodeMessages([]chatapi.Message{{Room: "A", ID: "1", Stamp: chatapi.Stamp{Server: "s1", Seq: 1}}}))
	s.mu.Unlock()
	s.pump(a, false)
	if len(cb.batches) != maxRefusedDelivers || !a.gone || s.atts[a.token] != nil {
		t.Fatalf("refusing everything: called %d times, detached %v; want %d calls, then detached", len(cb.batches), a.gone, maxRefusedDelivers)
	}

	cb = &refuser{refuse: maxRefusedDelivers - 1}
	s, a = newRefusalServer(cb)
	for round := range 3 {
		cb.refuse = len(cb.batches) + maxRefusedDelivers - 1 // then one is taken
		s.mu.Lock()
		a.sending = true
		a.enqueueLocked(s, "A", chatapi.EncodeMessages([]chatapi.Message{{Room: "A", ID: fmt.Sprint(round), Stamp: chatapi.Stamp{Server: "s1", Seq: uint64(round + 1)}}}))
		s.mu.Unlock()
		s.pump(a, false)
		if a.gone {
			t.Fatalf("round %d: detached after %d refusals in a row, each run ended by a delivery", round, maxRefusedDelivers-1)
		}
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

// A client's next Deliver waits until deliverPace of its smoothed round
// trips have passed since the last one left, at most maxDeliverPause;
// not at all for a client not yet timed, a queue that fills a batch, or
// with pacing off.
func TestPaceLocked(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name        string
		pace, batch int
		rtt, since  time.Duration // smoothed round trip; time since the last Deliver left
		queued      int
		want        time.Duration
	}{
		{"busy client waits the rest of 3 round trips", 3, 512, ms, ms, 1, 2 * ms},
		{"the pause is over", 3, 512, ms, 3 * ms, 1, 0},
		{"idle client goes at once", 3, 512, ms, time.Second, 1, 0},
		{"slow client waits no more than maxDeliverPause", 3, 512, 10 * ms, 10 * ms, 1, maxDeliverPause - 10*ms},
		{"a whole batch goes at once", 3, 2, ms, ms, 2, 0},
		{"a long queue goes at once", 3, 512, ms, ms, paceBelow, 0},
		{"a queue just short of long waits", 3, 512, ms, ms, paceBelow - 1, 2 * ms},
		{"a client not yet timed goes at once", 3, 512, 0, 0, 1, 0},
		{"pacing off", 0, 512, ms, ms, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := clocktest.New()
			s := &Server{clk: clk, deliverPace: c.pace, deliverBatch: c.batch}
			a := &attachment{rtt: c.rtt, sentAt: clk.Now(), queue: make([]msgp.Raw, c.queued)}
			clk.Add(c.since)
			if got := a.paceLocked(s); got != c.want {
				t.Fatalf("pause %v, want %v", got, c.want)
			}
		})
	}
}

// pacedClient is a client callback that records when each Deliver
// arrived and what it carried, and answers once the test releases it.
type pacedClient struct {
	clk     *clocktest.Mock
	release chan struct{}

	mu  sync.Mutex
	at  []time.Time
	ids [][]string
}

func (p *pacedClient) DeliverBatch(_ context.Context, b chatapi.DeliverBatch) error {
	var ids []string
	for _, enc := range b.Messages {
		var m chatapi.Message
		if _, err := m.UnmarshalMsg(enc); err != nil {
			return err
		}
		ids = append(ids, m.ID)
	}
	p.mu.Lock()
	p.at = append(p.at, p.clk.Now())
	p.ids = append(p.ids, ids)
	p.mu.Unlock()
	<-p.release
	return nil
}

func (p *pacedClient) Voice(context.Context, chatapi.VoiceDeliverArgs) error { return nil }

func (p *pacedClient) delivered() ([]time.Time, [][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.at), slices.Clone(p.ids)
}

// Through the delivery task: what is queued for a client within three of
// its round trips after a Deliver left goes in one Deliver when they are
// over, a client idle since goes at once, and so does a queue that grows
// long during a pause.
func TestPacingHoldsABusyClientsNextDeliver(t *testing.T) {
	clk := clocktest.New()
	s := &Server{clk: clk, log: slog.New(slog.DiscardHandler), maxQueue: 100, deliverBatch: 512,
		deliverPace: 3, timers: map[*clock.Timer]bool{}}
	cb := &pacedClient{clk: clk, release: make(chan struct{})}
	a := &attachment{user: "bob", cb: cb}
	enqueue := func(id string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a.enqueueLocked(s, "A", chatapi.EncodeMessages([]chatapi.Message{{Room: "A", ID: id}}))
	}
	// arrived waits for the n-th Deliver to arrive; answer lets it return
	// rtt later and waits for the delivery task to end.
	arrived := func(n int) ([]time.Time, [][]string) {
		t.Helper()
		rmitest.WaitFor(t, fmt.Sprintf("Deliver %d", n), func() bool {
			at, _ := cb.delivered()
			return len(at) == n
		})
		return cb.delivered()
	}
	answer := func(rtt time.Duration) {
		t.Helper()
		clk.Add(rtt)
		cb.release <- struct{}{}
		rmitest.WaitFor(t, "the delivery task to end", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return !a.sending
		})
	}

	t0 := clk.Now()
	enqueue("1")
	clk.Add(0) // the delivery task's start
	arrived(1)
	answer(time.Millisecond) // at t0+1ms: the next may leave at t0+3ms
	enqueue("2")
	clk.Add(time.Millisecond)
	enqueue("3")
	clk.Add(time.Millisecond)
	at, ids := arrived(2)
	if want := t0.Add(3 * time.Millisecond); !at[1].Equal(want) || !slices.Equal(ids[1], []string{"2", "3"}) {
		t.Fatalf("second Deliver at %v with %v, want at %v with [2 3]", at[1].Sub(t0), ids[1], want.Sub(t0))
	}
	answer(time.Millisecond)
	// Idle for a second: the next goes at once.
	clk.Add(time.Second)
	sent := clk.Now()
	enqueue("4")
	clk.Add(0)
	at, _ = arrived(3)
	if !at[2].Equal(sent) {
		t.Fatalf("an idle client's Deliver waited %v", at[2].Sub(sent))
	}
	answer(0)
	// A queue that grows long during a pause ends it.
	for i := range paceBelow {
		enqueue(fmt.Sprint(5 + i))
	}
	clk.Add(0)
	at, ids = arrived(4)
	if !at[3].Equal(sent) || len(ids[3]) != paceBelow {
		t.Fatalf("a long queue's Deliver waited %v, with %d messages (want %d at once)", at[3].Sub(sent), len(ids[3]), paceBelow)
	}
	answer(0)
}
