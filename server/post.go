package server

import (
	"context"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/distchat/distchat/rmi"
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

// checkText reports why a post's text or id is refused, or nil.
func checkText(text, id string) error {
	switch {
	case len(text) > chatapi.MaxText:
		return fmt.Errorf("%d bytes: %w", len(text), chatapi.ErrTooLarge)
	case text == "":
		return chatapi.ErrEmpty
	case !utf8.ValidString(text):
		return chatapi.ErrBadText
	case !validID(id):
		return chatapi.ErrBadID
	}
	return nil
}

// Post implements ChatServer: one message, as a batch of one.
func (s *Server) Post(ctx context.Context, args chatapi.PostArgs) (chatapi.PostReply, error) {
	a, err := s.attached(args.Token)
	if err != nil {
		return chatapi.PostReply{}, err
	}
	p := post{BatchPost: chatapi.BatchPost{Room: args.Room, ID: args.ID, Text: args.Text}}
	s.postAll(ctx, a, args.Seen, []*post{&p})
	return p.reply, p.err
}

// PostBatch implements ChatServer: the messages are stamped in the order
// given, in one critical section, and committed together.
func (s *Server) PostBatch(ctx context.Context, args chatapi.PostBatchArgs) (chatapi.PostBatchReply, error) {
	a, err := s.attached(args.Token)
	if err != nil {
		return chatapi.PostBatchReply{}, err
	}
	posts := make([]*post, len(args.Posts))
	for i, bp := range args.Posts {
		posts[i] = &post{BatchPost: bp}
	}
	s.postAll(ctx, a, args.Seen, posts)
	reply := chatapi.PostBatchReply{Results: make([]chatapi.PostResult, len(posts))}
	for i, p := range posts {
		r := &reply.Results[i]
		r.Stamp, r.Duplicate = p.reply.Stamp, p.reply.Duplicate
		if p.err != nil {
			r.ErrCode, r.ErrMsg = rmi.ErrorCode(p.err)
		}
	}
	return reply, nil
}

// post is one message on its way through postAll, and its outcome.
type post struct {
	chatapi.BatchPost
	key   postKey // the reservation of the user's message id, once taken
	reply chatapi.PostReply
	err   error
}

// postAll posts the messages of user a's attachment, in order: validate
// each, stamp at first contact (the stamper, stamp.go) in one critical
// section, hand them to the committer (commit.go) as one request, and
// return once they are durable. The committer hands them on to fan-out and
// local delivery as soon as the group commit lands. Each post's outcome is
// left in it.
func (s *Server) postAll(ctx context.Context, a *attachment, seen chatapi.Stamp, posts []*post) {
	var ok []*post
	for _, p := range posts {
		if p.err = s.admit(ctx, a, p); p.err == nil && !p.reply.Duplicate {
			ok = append(ok, p)
		}
	}
	if len(ok) == 0 {
		return
	}
	msgs, err := s.stamp(a, seen, ok)
	if err == nil {
		err = s.commit.submitLocked(&commitReq{msgs: msgs, own: true}) // s.stamp locked s.commit.mu
		if err != nil {
			err = fmt.Errorf("%w: %w", chatapi.ErrStorage, err)
		}
	}
	s.mu.Lock()
	for i, p := range ok {
		delete(s.posting, p.key)
		if err != nil {
			p.err = err
		} else {
			p.reply.Stamp = msgs[i].Stamp
		}
	}
	if msgs != nil {
		s.inflight--
	}
	s.mu.Unlock()
}

// admit checks p and reserves its id; for a retry of a stored post it
// sets p's reply to the first stamp (Duplicate) and releases the id.
func (s *Server) admit(ctx context.Context, a *attachment, p *post) error {
	if err := checkText(p.Text, p.ID); err != nil {
		return err
	}
	if _, err := s.checkMember(ctx, p.Room, a.user); err != nil {
		return err
	}
	// Reserve the id, then look for an earlier post with it: a retry is
	// answered with its first stamp. (Looking before reserving would let
	// a retry slip in between the first post's commit and its release of
	// the reservation, and be stamped twice.)
	key := postKey{a.user, p.ID}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return chatapi.ErrShuttingDown
	case s.posting[key]:
		s.mu.Unlock()
		return chatapi.ErrInProgress
	}
	s.posting[key] = true
	s.mu.Unlock()
	rec, found, err := s.st.lookupDedupe(a.user, p.ID)
	if err != nil || found {
		s.mu.Lock()
		delete(s.posting, key)
		s.mu.Unlock()
	}
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", chatapi.ErrStorage, err)
	case found:
		p.reply = chatapi.PostReply{Stamp: rec.Stamp, Duplicate: true}
		return nil
	}
	p.key = key
	return nil
}

// stamp stamps the admitted posts, in order, and returns their messages
// with s.commit.mu held, so that they enter the commit queue in stamp
// order. If the server cannot take them now (closing, storage failing,
// the session ended meanwhile), it returns why, holding no lock.
func (s *Server) stamp(a *attachment, seen chatapi.Stamp, posts []*post) ([]chatapi.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, chatapi.ErrShuttingDown
	case a.gone:
		// The session ended (or detached) while the posts were checked:
		// nothing it sends afterwards is stored.
		return nil, s.goneErrLocked(a.token)
	case s.storageErr != nil: // not stamped: storage.go
		return nil, chatapi.ErrStorage
	}
	msgs := make([]chatapi.Message, len(posts))
	now := s.clk.Now().UnixNano()
	for i, p := range posts {
		r := s.room(p.Room)
		r.stampSeq++
		msgs[i] = chatapi.Message{
			Room: p.Room, ID: p.ID, From: a.user, Text: p.Text,
			Stamp: chatapi.Stamp{Time: s.stamper.next(now, seen.Time), Server: s.name, Seq: r.stampSeq},
		}
	}
	s.inflight++
	s.commit.mu.Lock()
	return msgs, nil
}
