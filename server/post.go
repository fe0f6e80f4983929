package server

import (
	"context"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/distchat/distchat/server/chatapi"
)

// validID reports whether a client-chosen message id is acceptable.
func validID(id string) bool {
	if len(id) == 0 || len(id) > chatapi.MaxID || !utf8.ValidString(id) {
		return false
	}
	for _, c := range id {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// Post implements ChatServer: stamp at first contact, make durable,
// acknowledge; fan-out starts as soon as the group commit lands.
func (s *Server) Post(ctx context.Context, args chatapi.PostArgs) (chatapi.PostReply, error) {
	a, err := s.attached(args.Token)
	if err != nil {
		return chatapi.PostReply{}, err
	}
	switch {
	case len(args.Text) > chatapi.MaxText:
		return chatapi.PostReply{}, fmt.Errorf("%d bytes: %w", len(args.Text), chatapi.ErrTooLarge)
	case args.Text == "":
		return chatapi.PostReply{}, chatapi.ErrEmpty
	case !utf8.ValidString(args.Text):
		return chatapi.PostReply{}, chatapi.ErrBadText
	case !validID(args.ID):
		return chatapi.PostReply{}, chatapi.ErrBadID
	}
	if _, err := s.checkMember(ctx, args.Room, a.user); err != nil {
		return chatapi.PostReply{}, err
	}
	// Reserve the id, then look for an earlier post with it: a retry is
	// answered with its first stamp. (Looking before reserving would let
	// a retry slip in between the first post's commit and its release of
	// the reservation, and be stamped twice.)
	key := a.user + "\x00" + args.ID
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return chatapi.PostReply{}, chatapi.ErrShuttingDown
	}
	if s.posting[key] {
		s.mu.Unlock()
		return chatapi.PostReply{}, chatapi.ErrInProgress
	}
	s.posting[key] = true
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		delete(s.posting, key)
		s.mu.Unlock()
	}
	if rec, ok, err := s.st.lookupDedupe(a.user, args.ID); err != nil {
		release()
		return chatapi.PostReply{}, fmt.Errorf("%w: %v", chatapi.ErrStorage, err)
	} else if ok {
		release()
		return chatapi.PostReply{Stamp: rec.Stamp, Duplicate: true}, nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		release()
		return chatapi.PostReply{}, chatapi.ErrShuttingDown
	}
	now := s.clk.Now()
	seen := args.Seen.Time
	if limit := now.Add(maxFuture).UnixNano(); seen > limit {
		seen = limit
	}
	r := s.room(args.Room)
	r.stampSeq++
	m := chatapi.Message{
		Room: args.Room, ID: args.ID, From: a.user, Text: args.Text,
		Stamp: chatapi.Stamp{Time: s.stamper.next(now.UnixNano(), seen), Server: s.name, Seq: r.stampSeq},
	}
	s.inflight++
	req := &commitReq{msgs: []chatapi.Message{m}, own: true}
	// Queue for commit while still holding the lock, so seqs enter the
	// commit queue in order.
	s.commit.mu.Lock()
	s.mu.Unlock()
	err = s.commit.submitLocked(req)
	s.mu.Lock()
	delete(s.posting, key)
	s.inflight--
	s.mu.Unlock()
	if err != nil {
		return chatapi.PostReply{}, fmt.Errorf("%w: %v", chatapi.ErrStorage, err)
	}
	return chatapi.PostReply{Stamp: m.Stamp}, nil
}

// afterCommit runs in the committing leader once a batch is durable:
// newly stored messages go to local members and to the forwarders.
func (s *Server) afterCommit(batch []*commitReq) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byRoom := map[string][]chatapi.Message{}
	var order []string
	ownRooms := map[string]bool{}
	for _, q := range batch {
		for i, m := range q.msgs {
			if !q.isNew[i] {
				continue
			}
			if _, ok := byRoom[m.Room]; !ok {
				order = append(order, m.Room)
			}
			byRoom[m.Room] = append(byRoom[m.Room], m)
			if r := s.room(m.Room); !q.own && !r.infoValid {
				// Messages of a room whose members we do not know (a
				// RoomChanged that never came): learn them, so local
				// members get them.
				s.refreshSoonLocked(r)
			}
			if q.own {
				ownRooms[m.Room] = true
				if r := s.room(m.Room); m.Stamp.Seq > r.ownSeq {
					r.ownSeq = m.Stamp.Seq // durable now: the forwarders may send it
				}
			} else {
				s.stamper.observe(m.Stamp.Time)
			}
		}
		for room, hs := range q.heads {
			r := s.room(room)
			for origin, h := range hs {
				if h > r.heads[origin] {
					r.heads[origin] = h
				}
			}
		}
	}
	for _, room := range order {
		msgs := byRoom[room]
		for _, a := range sortedAtts(s.local[room]) {
			a.enqueueLocked(s, msgs, nil)
		}
		if ownRooms[room] {
			s.dispatchLocked(s.room(room))
		}
	}
}

// retryWait is the back-off before retry number n (from 1).
func (s *Server) retryWait(n int) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < n && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}
