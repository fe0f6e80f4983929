package server

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/tinylib/msgp/msgp"
)

// attachment is a session attached to this server, with its callback and
// its bounded delivery queue.
type attachment struct {
	token string
	id    string // centralapi.SessionID(token)
	user  string
	cb    callback
	peer  *rmi.Peer
	rooms map[string]bool

	// The delivery queue (fanout.go), guarded by Server.mu: messages
	// encoded once for all the members they go to (deliverLocked).
	queue   []msgp.Raw
	events  []chatapi.Event
	sending bool // a delivery task is running, or is waiting to (pacing)
	gone    bool
	// Pacing (fanout.go): when the last Deliver left; the smoothed round
	// trip of the recent ones (0 before the first); whether the delivery
	// task waits out a pause; and the pauses so far, so that the timer of
	// one ended early does nothing.
	sentAt  time.Time
	rtt     time.Duration
	waiting bool
	waits   uint64
	// settled notices wait until the first settledMark queued messages
	// (all those queued before the latest notice) have been delivered.
	settled     map[string]int64
	settledMark int
	// lagging holds the rooms whose messages were dropped since the
	// queue reached its bound; nil when none were (fanout.go).
	lagging map[string]bool
	// refused counts the Delivers the client refused in a row (pump).
	refused int
}

// callback is how the server reaches an attached client: in production a
// chatapi.CallbackStub over the client's own connection.
type callback interface {
	DeliverBatch(ctx context.Context, a chatapi.DeliverBatch) error
	Voice(ctx context.Context, a chatapi.VoiceDeliverArgs) error
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
		return nil, s.goneErrLocked(token)
	}
	return a, nil
}

// Attach implements ChatServer.
func (s *Server) Attach(ctx context.Context, args chatapi.AttachArgs) (chatapi.AttachReply, error) {
	p := rmi.PeerFromContext(ctx)
	if p == nil || p.Back == nil {
		return chatapi.AttachReply{}, chatapi.ErrNoCallback
	}
	if err := s.storageCheck(); err != nil { // clients are to go elsewhere
		return chatapi.AttachReply{}, err
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
	a := &attachment{token: args.Token, id: centralapi.SessionID(args.Token), user: sess.User,
		cb: chatapi.CallbackStub{Inv: p.Back}, peer: p, rooms: map[string]bool{}}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return chatapi.AttachReply{}, chatapi.ErrShuttingDown
	}
	if s.endedLocked(args.Token) {
		// The session ended while central's answer was on its way.
		s.mu.Unlock()
		return chatapi.AttachReply{}, fmt.Errorf("attach: %w", chatapi.ErrSessionEnded)
	}
	if old := s.atts[args.Token]; old != nil {
		s.dropLocked(old)
	}
	s.atts[args.Token] = a
	for _, name := range ur.Rooms {
		r := s.room(name)
		s.addLocalLocked(a, r)
		r.members.invalidate() // the user is now reachable here
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

// Ping implements ChatServer. While storage fails it answers
// chatapi.ErrStorage, so that the client moves (storage.go).
func (s *Server) Ping(ctx context.Context, args chatapi.TokenArgs) error {
	if _, err := s.attached(args.Token); err != nil {
		return err
	}
	if err := s.storageCheck(); err != nil {
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
	s.dropVoiceLocked(a)
}

// byUser orders attachments by user then token, so background work
// starts in a deterministic order.
func byUser(a, b *attachment) int {
	return cmp.Or(cmp.Compare(a.user, b.user), cmp.Compare(a.token, b.token))
}

// sortedAttachments lists every attachment in deterministic order.
// Callers hold s.mu.
func (s *Server) sortedAttachments() []*attachment {
	return slices.SortedFunc(maps.Values(s.atts), byUser)
}
