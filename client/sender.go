package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// ErrPipelineBroken fails the posts queued behind one whose call failed
// (see Sender): they were not sent, so that nothing is stamped out of the
// order they were given.
var ErrPipelineBroken = errors.New("not sent: an earlier post of the sender failed")

// A Sender posts messages with many in flight, and they are stamped in
// the order they were given to Send: what a bot, a paste of many lines or
// a fast browser needs, where Say posts one message and waits for the
// disk. Messages queue while a batch is on its way; the next batch takes
// all that queued (as many as one ChatServer.PostBatch carries), so one
// round trip and one durable commit serve many messages, and only one
// batch is ever in flight, which keeps the order.
//
// A message the server refuses (not a member, too long, ...) fails alone.
// If a whole batch fails (the server is unreachable and failing over
// did not help, or the client closed), its messages fail with that error
// and every message queued behind them with ErrPipelineBroken; the caller
// sends them again, with the same ids, in the same order (a message that
// was stored after all then returns its first stamp). A Sender is safe for
// concurrent use; the order is that of the Send calls.
type Sender struct {
	c *Client

	mu      sync.Mutex
	queue   []*Pending
	sending bool // a goroutine is sending the queue's batches
}

// Pending is a message given to Send, until its outcome is known.
type Pending struct {
	post chatapi.BatchPost
	done chan struct{}
	msg  chatapi.Message
	err  error
}

// NewSender returns a Sender posting as c's user.
func (c *Client) NewSender() *Sender { return &Sender{c: c} }

// Send queues text for room with message id id (unique among the user's
// posts; see Post) and returns at once; Wait tells the outcome.
func (s *Sender) Send(room, id, text string) *Pending {
	p := &Pending{post: chatapi.BatchPost{Room: room, ID: id, Text: text}, done: make(chan struct{})}
	switch {
	case text == "":
		p.finish(chatapi.Message{}, fmt.Errorf("post in %s: %w", room, chatapi.ErrEmpty))
		return p
	case len(text) > chatapi.MaxText:
		p.finish(chatapi.Message{}, fmt.Errorf("post in %s: %d bytes: %w", room, len(text), chatapi.ErrTooLarge))
		return p
	}
	s.mu.Lock()
	s.queue = append(s.queue, p)
	start := !s.sending
	s.sending = true
	s.mu.Unlock()
	if start {
		go s.run()
	}
	return p
}

// Wait returns the message as stored (with its stamp) once it is durable
// at the chat server, or why it was not posted. It returns early with
// ctx's error if ctx ends first; the message may still be posted.
func (p *Pending) Wait(ctx context.Context) (chatapi.Message, error) {
	select {
	case <-p.done:
		return p.msg, p.err
	case <-ctx.Done():
		return chatapi.Message{}, ctx.Err()
	}
}

// Done is closed once the outcome is known.
func (p *Pending) Done() <-chan struct{} { return p.done }

func (p *Pending) finish(m chatapi.Message, err error) {
	p.msg, p.err = m, err
	close(p.done)
}

// run sends the queue batch by batch until it is empty.
func (s *Sender) run() {
	for {
		batch := s.next()
		if batch == nil {
			return
		}
		if err := s.send(batch); err != nil {
			s.mu.Lock()
			rest := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, p := range rest {
				p.finish(chatapi.Message{}, fmt.Errorf("post in %s: %w (%w)", p.post.Room, ErrPipelineBroken, err))
			}
		}
	}
}

// next takes the longest prefix of the queue that fits one PostBatch, or
// returns nil (and ends the sending) when the queue is empty.
func (s *Sender) next() []*Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		s.sending = false
		return nil
	}
	posts := make([]chatapi.BatchPost, 0, min(len(s.queue), chatapi.MaxPostBatch))
	n := 0
	for n < len(s.queue) {
		posts = append(posts, s.queue[n].post)
		if n > 0 && !chatapi.FitsPostBatch(posts) {
			break
		}
		n++
	}
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	return batch
}

// send posts batch in one PostBatch (retried once after a failover, as
// every call is) and finishes each of its messages; it returns the call's
// error, if the call failed.
func (s *Sender) send(batch []*Pending) error {
	c := s.c
	args := chatapi.PostBatchArgs{Posts: make([]chatapi.BatchPost, len(batch)), Seen: c.seen()}
	for i, p := range batch {
		args.Posts[i] = p.post
	}
	var reply chatapi.PostBatchReply
	err := c.withServer(c.bg, func(st chatapi.Stub, token string) (err error) {
		args.Token = token
		reply, err = st.PostBatch(c.bg, args)
		return err
	})
	if err == nil && len(reply.Results) != len(batch) {
		err = fmt.Errorf("client: %d results for %d posts: %w", len(reply.Results), len(batch), rmi.ErrMarshal)
	}
	if err != nil {
		for _, p := range batch {
			p.finish(chatapi.Message{}, fmt.Errorf("post in %s: %w", p.post.Room, err))
		}
		return err
	}
	user := c.User()
	byRoom := map[string][]chatapi.Message{}
	var rooms []string
	for i, p := range batch {
		r := reply.Results[i]
		if r.ErrCode != "" || r.ErrMsg != "" {
			p.finish(chatapi.Message{}, fmt.Errorf("post in %s: %w", p.post.Room,
				&rmi.RemoteError{Code: r.ErrCode, Message: r.ErrMsg, Object: chatapi.ObjectName, Method: "PostBatch"}))
			continue
		}
		m := chatapi.Message{Room: p.post.Room, ID: p.post.ID, From: user, Text: p.post.Text, Stamp: r.Stamp}
		if byRoom[m.Room] == nil {
			rooms = append(rooms, m.Room)
		}
		byRoom[m.Room] = append(byRoom[m.Room], m)
		p.msg = m
	}
	for _, room := range rooms {
		c.insert(c.joined(room), byRoom[room])
	}
	for i, p := range batch {
		if r := reply.Results[i]; r.ErrCode == "" && r.ErrMsg == "" {
			p.finish(p.msg, nil)
		}
	}
	return nil
}
