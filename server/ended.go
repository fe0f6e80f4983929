package server

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// Sessions that end at central (logout, password reset, expiry) end here
// too: central pushes their ids through EndSessions as soon as they end,
// and every lease renewal asks central which of the sessions attached here
// are still valid, so a lost push costs at most one renewal period. An
// ended session is detached at once (its queued deliveries dropped, its
// client told by a last EventSessionEnded), and its id is remembered for
// endedMemory, so that its token is answered with ErrSessionEnded rather
// than a plain "not attached" that would invite the client to attach again.

// endedMemory is how long a server remembers an ended session's id.
const endedMemory = 10 * time.Minute

// EndSessions implements Peer: central says these sessions ended.
func (p *peerAPI) EndSessions(ctx context.Context, args chatapi.EndSessionsArgs) error {
	p.s.endSessions(args.Sessions, "session ended at central")
	return nil
}

// endSessions ends the attachments of the sessions ids (as
// centralapi.SessionID) and remembers the ids, so that an Attach of one of
// them still in progress is refused too.
func (s *Server) endSessions(ids []string, why string) {
	s.mu.Lock()
	want := map[string]bool{}
	now := s.clk.Now()
	for _, id := range ids {
		want[id] = true
		s.ended[id] = now
	}
	for id, at := range s.ended {
		if now.Sub(at) >= endedMemory {
			delete(s.ended, id)
		}
	}
	var victims []*attachment
	for _, a := range s.sortedAttachments() {
		if want[a.id] {
			victims = append(victims, a)
		}
	}
	s.mu.Unlock()
	for _, a := range victims {
		s.endAttachment(a, why)
	}
}

// endAttachment detaches a whose session ended and tells its client so, in
// a final callback. Central already forgot the session: it is not told.
func (s *Server) endAttachment(a *attachment, why string) {
	s.mu.Lock()
	if a.gone || s.closed {
		s.mu.Unlock()
		return
	}
	s.dropLocked(a)
	s.after(0, func() {
		ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		last := chatapi.DeliverBatch{Events: []chatapi.Event{{Kind: chatapi.EventSessionEnded}}}
		if err := a.cb.DeliverBatch(ctx, last); err != nil {
			s.log.Debug("tell client its session ended", "user", a.user, "err", err)
		}
	})
	s.mu.Unlock()
	s.leases.Revoke(a.token)
	s.log.Info("session ended; detached", "user", a.user, "why", why)
}

// endedLocked reports whether the session of token ended (and is still
// remembered). Callers hold s.mu.
func (s *Server) endedLocked(token string) bool {
	_, ok := s.ended[centralapi.SessionID(token)]
	return ok
}

// goneErrLocked is the error for a call on an attachment that is gone:
// ErrSessionEnded if its session ended, else ErrNotAttached. Callers hold
// s.mu.
func (s *Server) goneErrLocked(token string) error {
	if s.endedLocked(token) {
		return chatapi.ErrSessionEnded
	}
	return chatapi.ErrNotAttached
}

// attachedIDs lists the session ids of the attachments, sorted.
func (s *Server) attachedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]bool{}
	for _, a := range s.atts {
		ids[a.id] = true
	}
	return slices.Sorted(maps.Keys(ids))
}
