package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/tinylib/msgp/msgp"
)

// Fan-out: a durable message goes out to every member, in two halves.
//
// Between servers: the sending side hands a room's durable own
// messages to the forwarder of every server its members are on, and each
// forwarder drains its destination's share of the outbox (outbox.go) into
// Forward calls, one at a time. The receiving side's Forward stores what
// arrives through the committer, which hands it to local delivery.

// forwarder is the connection to one other server; what it is owed and
// when it sends is the outbox's to decide.
type forwarder struct {
	name string
	addr string
	inv  rmi.Invoker
}

// forwarder returns the forwarder of a server, creating it or following an
// address change. Callers hold s.mu.
func (s *Server) forwarder(name, addr string) *forwarder {
	f := s.peers[name]
	if f == nil {
		f = &forwarder{name: name}
		s.peers[name] = f
	}
	if addr != "" && addr != f.addr {
		f.addr = addr
		f.inv = s.cfg.Connect(addr)
	}
	return f
}

// stubLocked returns the stub for f's server. Callers hold s.mu.
func (f *forwarder) stubLocked() chatapi.PeerStub { return chatapi.PeerStub{Inv: f.inv} }

// dispatchLocked hands r's unacknowledged own messages to the forwarder of
// every server its members are on. Membership must be current: after an
// invalidation it is refreshed first. Callers hold s.mu.
func (s *Server) dispatchLocked(r *room) {
	if !r.members.fresh(s.clk.Now()) {
		s.refreshSoonLocked(r) // calls back here via membersChangedLocked
		if !r.members.valid {
			return
		}
	}
	for _, sv := range r.members.destinations(s.name) {
		f := s.forwarder(sv.Name, sv.Addr)
		if f.inv != nil && s.out.owe(f.name, r.name) {
			s.kickLocked(f)
		}
	}
}

// kickLocked starts f's forwarding task unless it runs or waits to retry.
// Callers hold s.mu.
func (s *Server) kickLocked(f *forwarder) {
	if s.out.kick(f.name) {
		s.after(0, func() { s.runForwarder(f) })
	}
}

// runForwarder sends what the outbox has for f in batches (several rooms
// per Forward call) until nothing remains, advancing the cursors on each
// acknowledgement. On failure it backs off and tries again later.
func (s *Server) runForwarder(f *forwarder) {
	for {
		s.mu.Lock()
		spans, wm, ok := s.out.next(f.name)
		if !ok {
			s.mu.Unlock()
			return
		}
		stub := f.stubLocked()
		limit := s.out.batch
		s.mu.Unlock()

		var msgs []chatapi.Message
		var err error
		for _, sp := range spans {
			var ms []chatapi.Message
			if ms, err = s.st.ownRange(sp.room, s.name, sp.from, sp.to, limit); err != nil {
				break
			}
			msgs = append(msgs, ms...)
		}
		if err == nil && (len(msgs) > 0 || len(wm) > 0) {
			ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
			_, err = stub.Forward(ctx, chatapi.ForwardArgs{From: s.name, Messages: msgs, Watermarks: wm})
			cancel()
		}
		if err != nil {
			s.mu.Lock()
			wait := s.out.failed(f.name, wm)
			s.after(wait, func() {
				s.mu.Lock()
				s.out.retry(f.name)
				s.kickLocked(f)
				s.mu.Unlock()
			})
			s.mu.Unlock()
			s.log.Debug("forward failed; will retry", "peer", f.name, "in", wait, "err", err)
			return
		}
		s.mu.Lock()
		if s.out.sent(f.name, spans, msgs) {
			// Cursors ride along with the next group commit, or with this
			// flush a second later when nothing else is written.
			s.after(time.Second, s.flushCursors)
		}
		s.mu.Unlock()
	}
}

// flushCursors writes the forwarding cursors (takeDirtyCursors) in a
// commit of their own, unless the commits since it was scheduled took
// them all along.
func (s *Server) flushCursors() {
	s.mu.Lock()
	due := s.out.flushDue()
	s.mu.Unlock()
	if !due {
		return
	}
	if err := s.commit.submit(&commitReq{}); err != nil {
		s.log.Warn("store forwarding cursors", "err", err)
	}
}

// Forward implements Peer: the receiving side of fan-out. The messages go
// to local members at once, and are stored (group commit) before Forward
// returns: the sender keeps them in its outbox until it is acknowledged,
// so a crash before the write loses nothing. The watermarks they carried
// apply once they are durable.
func (p *peerAPI) Forward(ctx context.Context, args chatapi.ForwardArgs) (chatapi.ForwardReply, error) {
	n, err := p.s.storeForeign(args.Messages)
	if err == nil {
		p.s.applyWatermarks(args.From, args.Watermarks)
	}
	return chatapi.ForwardReply{Stored: n}, err
}

// storeForeign hands messages that came from elsewhere (Forward or a
// catch-up) to local members, each once, then stores them durably and
// reports how many were new. A gap in an origin's stream starts a
// catch-up of that room.
func (s *Server) storeForeign(ms []chatapi.Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	if err := validForwarded(ms); err != nil {
		return 0, err
	}
	req := &commitReq{msgs: ms, later: s.deliverForeign(ms)}
	if err := s.commit.submit(req); err != nil {
		return 0, fmt.Errorf("%w: %w", chatapi.ErrStorage, err)
	}
	n := 0
	for _, ok := range req.isNew {
		if ok {
			n++
		}
	}
	s.mu.Lock()
	for _, m := range ms {
		if r := s.rooms[m.Room]; r != nil && m.Stamp.Seq > r.heads[m.Stamp.Server] {
			s.catchUpSoonLocked(r)
			break
		}
	}
	s.mu.Unlock()
	return n, nil
}

// deliverForeign queues for local members the messages of ms not seen
// here before, room by room, before they are stored; their stamps move the
// stamper's clock. A room whose membership is not known (a RoomChanged
// just came, or none ever did) has its membership read again, and its
// messages wait for both their write and that read, so that the members
// the read makes local get them too. later marks those.
func (s *Server) deliverForeign(ms []chatapi.Message) (later []bool) {
	later = make([]bool, len(ms))
	var now []chatapi.Message
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range ms {
		if r := s.room(m.Room); !r.members.valid {
			s.refreshSoonLocked(r)
			later[i] = true
			continue
		}
		now = append(now, m)
	}
	byRoom := map[string][]chatapi.Message{}
	var order []string
	for i, fresh := range s.st.accept(now) {
		if !fresh {
			continue
		}
		m := now[i]
		if _, ok := byRoom[m.Room]; !ok {
			order = append(order, m.Room)
		}
		byRoom[m.Room] = append(byRoom[m.Room], m)
		s.stamper.observe(m.Stamp.Time)
	}
	for _, room := range order {
		s.deliverLocked(room, byRoom[room])
	}
	return later
}

// validForwarded checks messages arriving from another server.
func validForwarded(ms []chatapi.Message) error {
	if len(ms) > 4*chatapi.MaxSyncLimit {
		return fmt.Errorf("%d messages in one batch: %w", len(ms), rmi.ErrTooLarge)
	}
	for _, m := range ms {
		if !validRoomName(m.Room) || m.Stamp.Seq == 0 || !validServerName(m.Stamp.Server) || len(m.Text) > chatapi.MaxText ||
			!validID(m.ID) || len(m.From) > 64 {
			return fmt.Errorf("malformed message %q in room %q from %q: %w", m.ID, m.Room, m.Stamp.Server, rmi.ErrBadArgs)
		}
	}
	return nil
}

// Local delivery: each attached client has a bounded queue, drained by one
// delivery task (pump) into one Deliver callback per batch.
//
// Pacing. A Deliver costs both ends a price of its own, whatever it
// carries: a write, a read that wakes a goroutine, a response, at each
// end. With one Deliver in flight per client, a busy room's members each
// get a Deliver per round trip, so the busier the machine, the more of
// its time goes into those prices, and the round trips grow longer
// still. So a client's next Deliver leaves no sooner than deliverPace of
// its recent round trips (smoothed) after the last one left, and at most
// maxDeliverPause: the link to a client is busy at most a quarter of the
// time, and what queues meanwhile goes in one Deliver. An idle client,
// whose last Deliver left long ago, is not held back at all, and on an
// idle machine a round trip is a fraction of a millisecond; a queue that
// is long already goes at once. Paced at 1,000 posts a second in a
// room of 100 (distchat bench --clients 100 --rate 10), where a Deliver
// carried about 7 messages and their prices took most of both cores,
// pacing cut post→delivery p50 by up to half and the acknowledgements'
// p50 by half or more (README, Benchmarks);
// TestPacingHoldsABusyClientsNextDeliver shows it at work.

// deliverLocked queues newly stored messages of room for every local
// member. Each message is encoded once, here, and every member's queue
// holds the same bytes. Callers hold s.mu.
func (s *Server) deliverLocked(room string, msgs []chatapi.Message) {
	members := s.localMembersLocked(room)
	if len(members) == 0 || len(msgs) == 0 {
		return
	}
	enc := chatapi.EncodeMessages(msgs)
	for _, a := range members {
		a.enqueueLocked(s, room, enc)
	}
}

// enqueueLocked queues messages of room, encoded (chatapi.EncodeMessages),
// for the client and starts its delivery task. Messages that would take
// the queue past its bound are
// dropped, and so is every message after them until the queue has been
// delivered; then the client is told to resync the rooms it missed
// messages of (see pump). A slow client so never holds up anyone else, and
// loses nothing: what it was sent arrives in order, and Sync brings back
// the rest. (Dropping the queue itself instead, as before, made a client
// that fell behind fetch the whole backlog by Sync while new deliveries
// kept coming, each of them then a duplicate to sort out: more work for
// the client least able to do it.)
func (a *attachment) enqueueLocked(s *Server, room string, msgs []msgp.Raw) {
	if a.gone || len(msgs) == 0 {
		return
	}
	if a.lagging != nil || len(a.queue)+len(msgs) > s.maxQueue {
		if a.lagging == nil {
			a.lagging = map[string]bool{}
			s.log.Warn("client too slow; dropping its deliveries until it has caught up, then asking it to resync", "user", a.user, "queued", len(a.queue))
		}
		a.lagging[room] = true
	} else {
		if a.queue == nil {
			a.queue = s.takeQueueLocked()
		}
		a.queue = append(a.queue, msgs...)
	}
	a.startLocked(s)
}

// enqueueEventsLocked queues events for the client, behind the messages
// queued so far, and starts its delivery task.
func (a *attachment) enqueueEventsLocked(s *Server, events []chatapi.Event) {
	if a.gone || len(events) == 0 {
		return
	}
	a.events = append(a.events, events...)
	a.startLocked(s)
}

// startLocked starts the client's delivery task unless it runs, once
// pacing allows; a task waiting out a pause goes at once if the queue has
// grown long meanwhile.
func (a *attachment) startLocked(s *Server) {
	switch {
	case !a.sending:
		a.sending = true
		if pause := a.paceLocked(s); pause > 0 {
			a.waitLocked(s, pause)
		} else {
			s.after(0, func() { s.pump(a, false) })
		}
	case a.waiting && a.longQueueLocked(s):
		a.waiting = false
		a.waits++ // the pause's timer finds it over
		s.after(0, func() { s.pump(a, true) })
	}
}

// waitLocked runs the client's delivery task after pause, unless
// startLocked ends the wait first. Callers hold s.mu.
func (a *attachment) waitLocked(s *Server, pause time.Duration) {
	a.waiting = true
	a.waits++
	w := a.waits
	s.after(pause, func() {
		s.mu.Lock()
		current := a.waiting && a.waits == w
		if current {
			a.waiting = false
		}
		s.mu.Unlock()
		if current {
			s.pump(a, true)
		}
	})
}

// Pacing's bounds. maxDeliverPause bounds the pause between a client's
// Delivers, whatever its round trips: a client that is slow to answer
// still gets what queued within the pause, long before its queue's
// bound. A queue of paceBelow messages or more goes at once: a Deliver's
// own price (some 70 µs of CPU at the two ends here) is then a small part
// of what it costs, and waiting would only add latency.
const (
	maxDeliverPause = 20 * time.Millisecond
	paceBelow       = 64
)

// paceLocked returns how long the client's next Deliver is to wait (see
// Pacing above). Callers hold s.mu.
func (a *attachment) paceLocked(s *Server) time.Duration {
	if s.deliverPace == 0 || a.rtt == 0 || a.longQueueLocked(s) {
		return 0
	}
	pause := min(time.Duration(s.deliverPace)*a.rtt, maxDeliverPause)
	// Never longer than the pause itself, even if the clock was set back.
	return min(max(0, a.sentAt.Add(pause).Sub(s.clk.Now())), pause)
}

// longQueueLocked reports whether the client's queue is long enough to
// go without pacing. Callers hold s.mu.
func (a *attachment) longQueueLocked(s *Server) bool {
	return len(a.queue) >= min(paceBelow, s.deliverBatch)
}

// sampleRTTLocked adds a Deliver's round trip to the client's smoothed
// one (an exponentially weighted mean, 1/8 per sample, as TCP's).
// Callers hold s.mu.
func (a *attachment) sampleRTTLocked(rtt time.Duration) {
	if a.rtt == 0 {
		a.rtt = max(rtt, 1)
		return
	}
	a.rtt = max((7*a.rtt+rtt)/8, 1)
}

// pump delivers the attachment's queue in batches until it is empty. One
// pump runs per attachment, so a slow client slows only itself. Paced
// says it already waited for pacing (paceLocked): it sends at once. A
// batch the client refuses is followed by its events and resyncs
// (refusedAgain); maxRefusedDelivers refusals in a row, or a failed call,
// detach the client.
func (s *Server) pump(a *attachment, paced bool) {
	var sent []msgp.Raw   // the last batch, whole queue, once delivered
	var rtt time.Duration // its round trip, once delivered
	var delivered bool    // the last batch was delivered
	for {
		s.mu.Lock()
		s.spareQueueLocked(sent)
		sent = nil
		if delivered {
			a.refused = 0
			delivered = false
		}
		if rtt > 0 {
			a.sampleRTTLocked(rtt)
			rtt = 0
		}
		if a.gone || (len(a.queue) == 0 && len(a.events) == 0 && len(a.settled) == 0 && a.lagging == nil) {
			a.sending = false
			s.mu.Unlock()
			return
		}
		if pause := a.paceLocked(s); pause > 0 && !paced {
			// The task runs again after the pause, with whatever queued
			// meanwhile (a.sending stays set), and sends then whatever
			// the clock says (a clock that drifts, or was set back, could
			// otherwise keep it waiting).
			a.waitLocked(s, pause)
			s.mu.Unlock()
			return
		}
		paced = false
		q := a.queue
		n := min(len(q), s.deliverBatch)
		batch := chatapi.DeliverBatch{Messages: q[:n:n], Events: a.events}
		if n == len(q) && a.lagging != nil {
			// The last of what the client was sent before it fell behind:
			// after it, the client syncs the rooms it missed messages of,
			// and deliveries resume.
			for _, r := range slices.Sorted(maps.Keys(a.lagging)) {
				batch.Events = append(batch.Events, chatapi.Event{Kind: chatapi.EventResync, Room: r})
			}
			a.lagging = nil
		}
		if a.settled != nil {
			if n >= a.settledMark {
				batch.Settled, a.settled, a.settledMark = a.settled, nil, 0
			} else {
				a.settledMark -= n
			}
		}
		a.queue = a.queue[n:]
		if len(a.queue) == 0 {
			a.queue = nil
		}
		whole := a.queue == nil
		a.events = nil
		start := s.clk.Now()
		a.sentAt = start
		s.mu.Unlock()
		ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
		err := a.cb.DeliverBatch(ctx, batch)
		cancel()
		if err == nil {
			rtt, delivered = s.clk.Since(start), true
		}
		if err == nil && whole {
			// Deliver encoded the batch before it returned: the slice
			// is free to hold another client's queue.
			sent = q
		}
		if err != nil {
			var re *rmi.RemoteError
			if !errors.As(err, &re) {
				s.detach(a, fmt.Sprintf("delivery failed: %v", err))
				return
			}
			s.mu.Lock()
			a.refused++
			n := a.refused
			if n < maxRefusedDelivers {
				a.events = refusedAgain(batch, a.events)
			}
			s.mu.Unlock()
			if n >= maxRefusedDelivers {
				s.detach(a, fmt.Sprintf("refused %d deliveries in a row, the last with: %v", n, err))
				return
			}
			s.log.Warn("client rejected delivery", "user", a.user, "err", err)
		}
	}
}

// maxRefusedDelivers is how many Delivers in a row a client may refuse
// before its session is ended. After a refusal the next Deliver carries
// only events (refusedAgain), which a working client takes; one that
// refuses every Deliver would otherwise be called again and again.
const maxRefusedDelivers = 3

// refusedAgain returns the events to send after the client ran and
// refused batch (a remote error): first the batch's own events but its
// resyncs, so that none is lost (a join, a session's end); then a resync
// of every room of its messages (Sync brings them back) and of every room
// it told the client to resync; then the events queued since, queued.
func refusedAgain(batch chatapi.DeliverBatch, queued []chatapi.Event) []chatapi.Event {
	rooms := map[string]bool{}
	for _, enc := range batch.Messages {
		var m chatapi.Message
		if _, err := m.UnmarshalMsg(enc); err == nil { // it was encoded here
			rooms[m.Room] = true
		}
	}
	var events []chatapi.Event
	for _, e := range batch.Events {
		if e.Kind == chatapi.EventResync {
			rooms[e.Room] = true
		} else {
			events = append(events, e)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(rooms)) {
		events = append(events, chatapi.Event{Kind: chatapi.EventResync, Room: r})
	}
	return append(events, queued...)
}

// Emptied delivery queues are kept for reuse, a few small ones: a busy
// room would otherwise grow a new queue, one append at a time, for every
// member and every message. Nothing here waits for them to be returned.
const (
	spareQueues   = 64  // queues kept at most
	spareQueueCap = 256 // messages a kept queue holds at most
)

// takeQueueLocked returns an empty queue, one kept for reuse if any.
// Callers hold s.mu.
func (s *Server) takeQueueLocked() []msgp.Raw {
	n := len(s.spareQueues)
	if n == 0 {
		return nil
	}
	q := s.spareQueues[n-1]
	s.spareQueues[n-1] = nil
	s.spareQueues = s.spareQueues[:n-1]
	return q
}

// spareQueueLocked keeps q, a delivered batch nothing refers to any more,
// for reuse, unless it is too big or enough are kept. Callers hold s.mu.
func (s *Server) spareQueueLocked(q []msgp.Raw) {
	if q == nil || cap(q) > spareQueueCap || len(s.spareQueues) >= spareQueues {
		return
	}
	clear(q[:cap(q)]) // let its messages' bytes go
	s.spareQueues = append(s.spareQueues, q[:0])
}

// enqueueSettledLocked queues a settled notice behind every message queued
// so far.
func (a *attachment) enqueueSettledLocked(s *Server, room string, t int64) {
	if a.gone || a.lagging[room] {
		return // it does not hold the room's prefix until it has resynced
	}
	if a.settled == nil {
		a.settled = map[string]int64{}
	}
	a.settled[room] = max(a.settled[room], t)
	a.settledMark = len(a.queue)
	a.startLocked(s)
}
