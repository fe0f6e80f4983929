package server

import (
	"context"
	"fmt"
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

// Post implements ChatServer: validate, stamp at first contact (the
// stamper, stamp.go), hand to the committer (commit.go) and acknowledge
// once durable. The committer hands the message on to fan-out and local
// delivery as soon as the group commit lands.
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
		return chatapi.PostReply{}, fmt.Errorf("%w: %w", chatapi.ErrStorage, err)
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
	if a.gone {
		// The session ended (or detached) while the post was checked:
		// nothing it sends afterwards is stored.
		err := s.goneErrLocked(a.token)
		s.mu.Unlock()
		release()
		return chatapi.PostReply{}, err
	}
	if s.storageErr != nil { // not stamped: storage.go
		s.mu.Unlock()
		release()
		return chatapi.PostReply{}, chatapi.ErrStorage
	}
	r := s.room(args.Room)
	r.stampSeq++
	m := chatapi.Message{
		Room: args.Room, ID: args.ID, From: a.user, Text: args.Text,
		Stamp: chatapi.Stamp{Time: s.stamper.next(s.clk.Now().UnixNano(), args.Seen.Time), Server: s.name, Seq: r.stampSeq},
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
		return chatapi.PostReply{}, fmt.Errorf("%w: %w", chatapi.ErrStorage, err)
	}
	return chatapi.PostReply{Stamp: m.Stamp}, nil
}
