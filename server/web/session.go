package web

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/server/chatapi"
)

// attachTimeout bounds attaching a session (central's check, and the
// first sync of every room).
const attachTimeout = 30 * time.Second

// session is one browser session (a token) attached to this chat server
// through a client.Client, shared by all the session's WebSockets (its
// tabs): the chat server holds one attachment per session, so a second
// Client would push the first one out.
//
// The Client calls back (onMessage, onEvent, onStatus) with its own lock
// held; they only hand pushes to the WebSockets' queues.
type session struct {
	h     *Handler
	token string
	ready chan struct{} // closed once attach has finished
	err   error         // why attach failed; set before ready closes
	c     *client.Client

	mu    sync.Mutex
	conns map[*conn]bool           // the WebSockets, live once sent their hello
	reads map[string]chatapi.Stamp // per room, the latest stamp the user has read
	ended bool                     // the session ended at central
	voice map[string]*conn         // per room, the WebSocket in its voice channel (voice.go)
}

// join adds cn to the session of token, attaching the session first if
// no other WebSocket has, and waits until it is attached.
func (h *Handler) join(ctx context.Context, tok string, cn *conn) (*session, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, chatapi.ErrShuttingDown
	}
	s := h.sessions[tok]
	fresh := s == nil
	if fresh {
		s = &session{h: h, token: tok, ready: make(chan struct{}), conns: map[*conn]bool{}, reads: map[string]chatapi.Stamp{}, voice: map[string]*conn{}}
		h.sessions[tok] = s
	}
	s.mu.Lock()
	s.conns[cn] = true
	s.mu.Unlock()
	h.mu.Unlock()
	if fresh {
		s.attach()
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		s.leave(cn)
		return nil, ctx.Err()
	}
	if s.err != nil {
		s.leave(cn)
		return nil, s.err
	}
	return s, nil
}

// attach attaches the session with a new Client, and closes ready.
func (s *session) attach() {
	defer close(s.ready)
	cfg := s.h.cfg.Client
	cfg.OnMessage = s.onMessage
	cfg.OnEvent = s.onEvent
	cfg.OnStatus = s.onStatus
	cfg.OnVoice = s.onVoice
	// Not the WebSocket's context: the session outlives the one that
	// happened to attach it.
	ctx, cancel := s.h.cfg.Client.Clock.WithTimeout(context.Background(), attachTimeout)
	defer cancel()
	c, err := client.Attach(ctx, cfg, client.Session{Token: s.token, Server: s.h.cfg.Server})
	if err != nil {
		s.err = fmt.Errorf("attach session: %w", err)
		s.h.forget(s)
		return
	}
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
}

// client returns the session's Client, nil until attached.
func (s *session) client() *client.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// forget removes s from the handler's sessions, if it is still there.
func (h *Handler) forget(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.token] == s {
		delete(h.sessions, s.token)
	}
}

// leave removes cn from the session; the last WebSocket to leave closes
// the Client (detaching the session here; it stays valid at central).
func (s *session) leave(cn *conn) {
	s.h.mu.Lock()
	s.mu.Lock()
	delete(s.conns, cn)
	last := len(s.conns) == 0
	s.mu.Unlock()
	if last && s.h.sessions[s.token] == s {
		delete(s.h.sessions, s.token)
	}
	s.h.mu.Unlock()
	if last {
		go s.closeClient()
	}
}

// closeClient closes the Client once attach has finished.
func (s *session) closeClient() {
	<-s.ready
	if c := s.client(); c != nil {
		_ = c.Close()
	}
}

// shut closes the session's WebSockets and its Client (Handler.Close).
func (s *session) shut() {
	for _, cn := range s.liveConns(false) {
		cn.close()
	}
	go s.closeClient()
}

// liveConns returns the WebSockets that were sent their hello, or all of
// them.
func (s *session) liveConns(liveOnly bool) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for cn := range s.conns {
		if !liveOnly || cn.isLive() {
			out = append(out, cn)
		}
	}
	return out
}

// push sends v to every live WebSocket of the session.
func (s *session) push(v any) {
	for _, cn := range s.liveConns(true) {
		cn.send(v)
	}
}

// onMessage is the Client's OnMessage: a message newly shown in a room's
// view goes to the pages with the id of the message it goes before.
func (s *session) onMessage(m chatapi.Message) {
	c := s.client()
	if c == nil {
		return // attaching: the pages ask for history once attached
	}
	s.push(s.messagePush(c, m))
}

// messagePush is the push of message m.
func (s *session) messagePush(c *client.Client, m chatapi.Message) map[string]any {
	before := ""
	if next, ok := c.Next(m.Room, m.Stamp); ok {
		before = next.ID
	}
	settled := c.Settled(m.Room)
	return map[string]any{
		"type": "message", "room": m.Room, "msg": toWire(m, settled), "before": before,
		"settled": fmt.Sprint(settled),
	}
}

// onEvent is the Client's OnEvent: members joining and leaving go to the
// pages; when the user is the one, so does the new list of rooms. A ring
// (someone calls the user in a direct room) goes to the pages as a
// "ring" push.
func (s *session) onEvent(e chatapi.Event) {
	if e.Kind == chatapi.EventRing {
		s.push(map[string]any{"type": "ring", "room": e.Room, "user": e.User})
		return
	}
	if e.Kind != chatapi.EventJoined && e.Kind != chatapi.EventLeft {
		return
	}
	s.push(map[string]any{"type": "event", "kind": e.Kind, "room": e.Room, "user": e.User})
	if c := s.client(); c != nil && e.User == c.User() {
		s.push(s.roomsPush(c))
	}
}

// onStatus is the Client's OnStatus.
func (s *session) onStatus(st client.Status) {
	switch st.Kind {
	case client.Lost:
		s.push(map[string]any{"type": "status", "state": "reconnecting"})
	case client.Back:
		s.push(map[string]any{"type": "status", "state": "connected"})
	case client.Ended:
		s.end()
	}
}

// end tells every WebSocket of the session that it ended, closes them
// and the Client. A page told so goes to central's login page.
func (s *session) end() {
	s.h.forget(s)
	s.mu.Lock()
	s.ended = true
	conns := make([]*conn, 0, len(s.conns))
	for cn := range s.conns {
		conns = append(conns, cn)
	}
	s.mu.Unlock()
	for _, cn := range conns {
		cn.send(map[string]any{"type": "ended"})
		cn.closeAfterFlush()
	}
	go s.closeClient()
}

// isEnded reports whether the session's end was reported.
func (s *session) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// sessionGone reports whether err means the session is no longer valid:
// the page must log in again.
func sessionGone(err error) bool {
	return errors.Is(err, chatapi.ErrSessionEnded) || errors.Is(err, centralapi.ErrBadSession)
}

// read records that the user has read room up to stamp st.
func (s *session) read(room string, st chatapi.Stamp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reads[room].Less(st) {
		s.reads[room] = st
	}
}

// roomEntry is one of the user's rooms as the page lists it.
type roomEntry struct {
	Name   string `json:"name"`
	Direct bool   `json:"direct"`
	Peer   string `json:"peer,omitempty"` // the other user of a direct room
	Unread int    `json:"unread"`         // messages of others after the read stamp
	Last   string `json:"last"`           // stamp of the latest message, "" if none
}

// rooms lists the user's rooms with their unread counts.
func (s *session) rooms(c *client.Client) []roomEntry {
	me := c.User()
	names := c.Rooms()
	out := make([]roomEntry, 0, len(names))
	for _, name := range names {
		e := roomEntry{Name: name}
		if rest, ok := strings.CutPrefix(name, centralapi.DirectPrefix); ok {
			e.Direct = true
			a, b, _ := strings.Cut(rest, ":")
			e.Peer = a
			if a == me {
				e.Peer = b
			}
		}
		s.mu.Lock()
		read := s.reads[name]
		s.mu.Unlock()
		msgs := c.View(name)
		if len(msgs) > 0 {
			e.Last = formatStamp(msgs[len(msgs)-1].Stamp)
		}
		for i := len(msgs) - 1; i >= 0 && read.Less(msgs[i].Stamp); i-- {
			if msgs[i].From != me {
				e.Unread++
			}
		}
		out = append(out, e)
	}
	return out
}

// roomsPush is the push of the user's rooms.
func (s *session) roomsPush(c *client.Client) map[string]any {
	return map[string]any{"type": "rooms", "rooms": s.rooms(c)}
}
