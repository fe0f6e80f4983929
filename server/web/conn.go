package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/distchat/distchat/server/chatapi"
)

// WebSocket limits.
const (
	// readLimit caps one frame from the page: a post of chatapi.MaxText
	// bytes, even with every character escaped, and its other fields.
	readLimit = 6*chatapi.MaxText + 4096
	// outQueue is how many frames may wait for a slow page; one more
	// closes its WebSocket (the page reconnects and reloads).
	outQueue = 1024
	// parallelOps is how many commands of one WebSocket run at once.
	parallelOps = 4
	// writeTimeout bounds writing one frame.
	writeTimeout = 10 * time.Second
)

// conn is one WebSocket: a reader that runs the page's commands and a
// writer that sends their replies and the session's pushes, in the order
// they were queued.
type conn struct {
	h      *Handler
	ws     *websocket.Conn
	out    chan []byte
	ctx    context.Context // ends when the WebSocket is done
	cancel context.CancelFunc
	done   chan struct{} // closed when the writer has finished

	mu     sync.Mutex
	live   bool // hello sent: pushes go out
	closed bool // out is closed
	flush  bool // close once the queue is written
}

// serveWS upgrades to a WebSocket for a page of this web port with a
// session cookie, attaches the session and serves it.
func (h *Handler) serveWS(w http.ResponseWriter, r *http.Request) {
	if !h.sameOrigin(r) {
		http.Error(w, "Forbidden: WebSocket from another origin.", http.StatusForbidden)
		return
	}
	// The Origin was checked above against this web port's own origin,
	// which is stricter than the library's check against the Host header.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered
	}
	ws.SetReadLimit(readLimit)
	ctx, cancel := context.WithCancel(context.Background())
	cn := &conn{h: h, ws: ws, out: make(chan []byte, outQueue), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go func() {
		cn.writeLoop()
		close(cn.done)
	}()
	defer func() {
		cancel()
		<-cn.done
		_ = ws.CloseNow()
	}()
	tok := token(r)
	if tok == "" {
		cn.last(map[string]any{"type": "ended"})
		return
	}
	s, err := h.join(ctx, tok, cn)
	if err != nil {
		if sessionGone(err) {
			cn.last(map[string]any{"type": "ended"})
		} else {
			h.log.Info("web: attach failed", "err", err)
			cn.last(map[string]any{"type": "error", "error": errorOf(err)})
		}
		return
	}
	defer s.leave(cn)
	defer s.voiceHangUp(cn)
	c := s.client()
	cn.send(map[string]any{
		"type": "hello", "user": c.User(), "server": h.cfg.Server.Name,
		"central": h.cfg.CentralWeb(), "csrf": csrfToken(tok),
	})
	cn.mu.Lock()
	cn.live = true
	cn.mu.Unlock()
	if s.isEnded() {
		cn.last(map[string]any{"type": "ended"})
		return
	}
	cn.readLoop(s)
}

// readLoop reads commands until the WebSocket ends, running up to
// parallelOps of them at once, except the voice commands that must keep
// their order, which one goroutine runs in turn (voiceLoop).
func (cn *conn) readLoop(s *session) {
	sem := make(chan struct{}, parallelOps)
	var wg sync.WaitGroup
	defer wg.Wait()
	voiceQ := make(chan request, voiceQueue)
	wg.Go(func() { cn.voiceLoop(s, voiceQ) })
	for {
		typ, data, err := cn.ws.Read(cn.ctx)
		if err != nil {
			cn.cancel()
			return
		}
		var req request
		if typ != websocket.MessageText || json.Unmarshal(data, &req) != nil {
			cn.reply(req.Req, nil, ErrBadRequest)
			continue
		}
		if isOrderedVoiceOp(req.Op) {
			select {
			case voiceQ <- req:
			default:
				cn.reply(req.Req, nil, ErrRateLimited)
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-cn.ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			result, err := cn.h.run(cn.ctx, s, req)
			cn.reply(req.Req, result, err)
		}()
	}
}

// reply queues the reply to request req.
func (cn *conn) reply(req int64, result map[string]any, err error) {
	if result == nil {
		result = map[string]any{}
	}
	result["type"] = "reply"
	result["req"] = req
	if err != nil {
		result["error"] = errorOf(err)
	}
	cn.send(result)
}

// isLive reports whether the hello was sent.
func (cn *conn) isLive() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.live
}

// send queues v, as JSON, for the page. It never blocks: a page too slow
// to take its frames is disconnected.
func (cn *conn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		cn.h.log.Error("web: encode frame", "err", err)
		return
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.closed || cn.flush {
		return
	}
	select {
	case cn.out <- b:
	default:
		cn.h.log.Info("web: page too slow; disconnecting it")
		cn.closed = true
		close(cn.out)
		cn.cancel()
	}
}

// closeAfterFlush closes the WebSocket once what is queued is written.
func (cn *conn) closeAfterFlush() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.closed || cn.flush {
		return
	}
	cn.flush = true
	close(cn.out)
}

// last sends v as the last frame, and waits until it is written and the
// WebSocket closed.
func (cn *conn) last(v any) {
	cn.send(v)
	cn.closeAfterFlush()
	<-cn.done
}

// close closes the WebSocket at once.
func (cn *conn) close() {
	cn.cancel()
}

// writeLoop writes the queued frames until the queue is closed or the
// WebSocket ends, then closes the WebSocket.
func (cn *conn) writeLoop() {
	for {
		select {
		case b, ok := <-cn.out:
			if !ok {
				cn.finish(websocket.StatusNormalClosure, "")
				return
			}
			ctx, cancel := context.WithTimeout(cn.ctx, writeTimeout)
			err := cn.ws.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				cn.cancel()
				return
			}
		case <-cn.ctx.Done():
			cn.finish(websocket.StatusGoingAway, "")
			return
		}
	}
}

// finish closes the WebSocket with a status, and ends the connection.
func (cn *conn) finish(code websocket.StatusCode, why string) {
	err := cn.ws.Close(code, why)
	if err != nil && !errors.Is(err, context.Canceled) {
		cn.h.log.Debug("web: close WebSocket", "err", err)
	}
	cn.cancel()
}
