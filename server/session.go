package server

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// attachment is a session attached to this server, with its callback and
// its bounded delivery queue.
type attachment struct {
	token string
	user  string
	cb    chatapi.Callback
	peer  *rmi.Peer
	rooms map[string]bool

	// Guarded by Server.mu.
	queue   []chatapi.Message
	events  []chatapi.Event
	sending bool // a delivery task is running
	gone    bool
	// settled notices wait until the first settledMark queued messages
	// (all those queued before the latest notice) have been delivered.
	settled     map[string]int64
	settledMark int
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
		for _, r := range sortedKeys(rooms) {
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
				for _, r := range sortedKeys(rooms) {
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

// attached returns the attachment of a session token.
func (s *Server) attached(token string) (*attachment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, chatapi.ErrShuttingDown
	}
	a := s.atts[token]
	if a == nil || a.gone {
		return nil, chatapi.ErrNotAttached
	}
	return a, nil
}

// Attach implements ChatServer.
func (s *Server) Attach(ctx context.Context, args chatapi.AttachArgs) (chatapi.AttachReply, error) {
	p := rmi.PeerFromContext(ctx)
	if p == nil || p.Back == nil {
		return chatapi.AttachReply{}, chatapi.ErrNoCallback
	}
	// Attach makes several calls of its own; each gets a short bound, so
	// one lost message does not use up the client's whole deadline.
	cctx, cancel := s.clk.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	sess, err := s.central.CheckSession(cctx, centralapi.SessionArgs{Token: args.Token, Server: s.name})
	if err != nil {
		return chatapi.AttachReply{}, fmt.Errorf("attach: %w", err)
	}
	uctx, ucancel := s.clk.WithTimeout(ctx, fetchTimeout)
	defer ucancel()
	ur, err := s.central.UserRooms(uctx, centralapi.UserArgs{User: sess.User})
	if err != nil {
		return chatapi.AttachReply{}, fmt.Errorf("attach: %w", err)
	}
	a := &attachment{token: args.Token, user: sess.User, cb: chatapi.CallbackStub{Inv: p.Back}, peer: p, rooms: map[string]bool{}}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return chatapi.AttachReply{}, chatapi.ErrShuttingDown
	}
	if old := s.atts[args.Token]; old != nil {
		s.dropLocked(old)
	}
	s.atts[args.Token] = a
	for _, name := range ur.Rooms {
		r := s.room(name)
		s.addLocalLocked(a, r)
		s.invalidateLocked(r) // the user is now reachable here
	}
	s.mu.Unlock()
	s.leases.Grant(args.Token, attachTTL)
	p.OnClose(func() { s.detach(a, "connection closed") })

	// Tell the servers of the user's rooms, before the client syncs, that
	// this server now needs the rooms' messages.
	infos := make([]centralapi.RoomInfo, 0, len(ur.Rooms))
	for _, name := range ur.Rooms {
		rctx, rcancel := s.clk.WithTimeout(ctx, fetchTimeout)
		info, err := s.roomInfo(rctx, name, true)
		rcancel()
		if err != nil {
			s.log.Warn("attach: room membership", "room", name, "err", err)
			continue
		}
		infos = append(infos, info)
	}
	s.notifyServers(ctx, infos...)
	s.log.Info("attached", "user", a.user)
	return chatapi.AttachReply{User: a.user, Server: s.name, Rooms: ur.Rooms, LeaseTTL: attachTTL}, nil
}

// Ping implements ChatServer.
func (s *Server) Ping(ctx context.Context, args chatapi.TokenArgs) error {
	if _, err := s.attached(args.Token); err != nil {
		return err
	}
	if err := s.leases.Renew(args.Token, attachTTL); err != nil {
		return chatapi.ErrNotAttached
	}
	return nil
}

// Detach implements ChatServer.
func (s *Server) Detach(ctx context.Context, args chatapi.TokenArgs) error {
	a, err := s.attached(args.Token)
	if err != nil {
		return err
	}
	s.detach(a, "client detached")
	return nil
}

// attachmentExpired is the lease expiry callback.
func (s *Server) attachmentExpired(token string) {
	s.mu.Lock()
	a := s.atts[token]
	s.mu.Unlock()
	if a != nil {
		s.detach(a, "lease expired")
	}
}

// detach ends an attachment and tells central the session left.
func (s *Server) detach(a *attachment, why string) {
	s.mu.Lock()
	if a.gone || s.closed {
		s.mu.Unlock()
		return
	}
	s.dropLocked(a)
	s.after(0, func() {
		ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if err := s.central.EndSession(ctx, centralapi.SessionArgs{Token: a.token, Server: s.name}); err != nil {
			s.log.Debug("end session at central", "user", a.user, "err", err)
		}
	})
	s.mu.Unlock()
	s.leases.Revoke(a.token)
	s.log.Info("detached", "user", a.user, "why", why)
}

// dropLocked removes an attachment from every index.
func (s *Server) dropLocked(a *attachment) {
	a.gone = true
	a.queue, a.events = nil, nil
	if s.atts[a.token] == a {
		delete(s.atts, a.token)
	}
	for room := range a.rooms {
		s.removeLocalLocked(a, room)
	}
}

// sortedAtts orders a set of attachments by user then token, so background
// work starts in a deterministic order.
func sortedAtts(set map[*attachment]bool) []*attachment {
	out := make([]*attachment, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sortAtts(out)
	return out
}

func sortAtts(as []*attachment) {
	sort.Slice(as, func(i, j int) bool {
		if as[i].user != as[j].user {
			return as[i].user < as[j].user
		}
		return as[i].token < as[j].token
	})
}

// sortedAttachments lists every attachment in deterministic order.
// Callers hold s.mu.
func (s *Server) sortedAttachments() []*attachment {
	out := make([]*attachment, 0, len(s.atts))
	for _, a := range s.atts {
		out = append(out, a)
	}
	sortAtts(out)
	return out
}
