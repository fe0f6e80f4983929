package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// Local delivery: each attached client has a bounded queue, drained by one
// delivery task (pump) into one Deliver callback per batch.

// deliverLocked queues newly stored messages of room for every local
// member. Callers hold s.mu.
func (s *Server) deliverLocked(room string, msgs []chatapi.Message) {
	for _, a := range slices.SortedFunc(maps.Keys(s.local[room]), byUser) {
		a.enqueueLocked(s, msgs, nil)
	}
}

// enqueueLocked queues messages and events for the client and starts its
// delivery task. A client whose queue would pass the bound loses the queue
// and is told to resync those rooms instead: it never holds up anyone else,
// and it loses nothing, since Sync brings back whatever it missed.
func (a *attachment) enqueueLocked(s *Server, msgs []chatapi.Message, events []chatapi.Event) {
	if a.gone || (len(msgs) == 0 && len(events) == 0) {
		return
	}
	if len(a.queue)+len(msgs) > s.maxQueue {
		rooms := map[string]bool{}
		for _, m := range a.queue {
			rooms[m.Room] = true
		}
		for _, m := range msgs {
			rooms[m.Room] = true
		}
		a.queue = nil
		a.settled, a.settledMark = nil, 0 // they covered what was dropped
		for _, r := range slices.Sorted(maps.Keys(rooms)) {
			a.events = append(a.events, chatapi.Event{Kind: chatapi.EventResync, Room: r})
		}
		s.log.Warn("client too slow; dropped its queue and asked it to resync", "user", a.user, "rooms", len(rooms))
	} else {
		a.queue = append(a.queue, msgs...)
	}
	a.events = append(a.events, events...)
	if !a.sending {
		a.sending = true
		s.after(0, func() { s.pump(a) })
	}
}

// pump delivers the attachment's queue in batches until it is empty. One
// pump runs per attachment, so a slow client slows only itself.
func (s *Server) pump(a *attachment) {
	for {
		s.mu.Lock()
		if a.gone || (len(a.queue) == 0 && len(a.events) == 0 && len(a.settled) == 0) {
			a.sending = false
			s.mu.Unlock()
			return
		}
		n := min(len(a.queue), s.deliverBatch)
		batch := chatapi.DeliverArgs{Messages: a.queue[:n:n], Events: a.events}
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
		a.events = nil
		s.mu.Unlock()
		ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
		err := a.cb.Deliver(ctx, batch)
		cancel()
		if err != nil {
			var re *rmi.RemoteError
			if errors.As(err, &re) {
				// The client ran and refused the batch: tell it to resync
				// those rooms (Sync brings the messages back), and go on.
				s.log.Warn("client rejected delivery", "user", a.user, "err", err)
				rooms := map[string]bool{}
				for _, m := range batch.Messages {
					rooms[m.Room] = true
				}
				s.mu.Lock()
				for _, r := range slices.Sorted(maps.Keys(rooms)) {
					a.events = append(a.events, chatapi.Event{Kind: chatapi.EventResync, Room: r})
				}
				s.mu.Unlock()
				continue
			}
			s.detach(a, fmt.Sprintf("delivery failed: %v", err))
			return
		}
	}
}

// enqueueSettledLocked queues a settled notice behind every message queued
// so far.
func (a *attachment) enqueueSettledLocked(s *Server, room string, t int64) {
	if a.gone {
		return
	}
	if a.settled == nil {
		a.settled = map[string]int64{}
	}
	a.settled[room] = max(a.settled[room], t)
	a.settledMark = len(a.queue)
	if !a.sending {
		a.sending = true
		s.after(0, func() { s.pump(a) })
	}
}
