package rmi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/yamux"
)

// DialConfig configures a Client. Zero fields take the defaults noted.
type DialConfig struct {
	// Clock drives every timer (connect, handshake and call timeouts).
	// Context deadlines passed to Invoke are read on this clock. Default:
	// the real clock.
	Clock clock.Clock
	// Logger receives connection events. Default: slog.Default().
	Logger *slog.Logger
	// ClusterSecret, if set, is proved to the server (making this client a
	// Cluster peer there), and the server must prove it back or Dial fails.
	ClusterSecret []byte
	// Callbacks, if set, holds objects the server may call back over this
	// connection (the server sees them as Peer.Back).
	Callbacks *Table
	// ConnectTimeout bounds the TCP dial. Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// CallTimeout bounds a call whose context has no deadline. Default
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// HandshakeTimeout bounds the protocol handshake after the TCP
	// connection is made. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

func (c DialConfig) withDefaults() DialConfig {
	if c.Clock == nil {
		c.Clock = clock.New()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return c
}

// Client is a connection to an rmi Server. It implements Invoker and is
// safe for concurrent use; concurrent calls share the connection. A Client
// does not reconnect: once its connection is lost, calls fail with
// ErrConnect (see Redialer for a reconnecting Invoker).
type Client struct {
	sess     *yamux.Session
	caller   *caller
	peer     *Peer // the server, as the callbacks see it
	cbCancel context.CancelFunc
}

// Dial connects to the rmi server at addr ("host:port"), runs the
// handshake and returns a Client. Failures wrap ErrConnect; handshake
// failures (wrong protocol, cluster secret mismatch) also wrap
// ErrHandshake.
func Dial(ctx context.Context, addr string, cfg DialConfig) (*Client, error) {
	cfg = cfg.withDefaults()
	dctx, dialTimedOut, cancel := clockContext(ctx, cfg.Clock, cfg.ConnectTimeout)
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		if dialTimedOut() {
			err = fmt.Errorf("timed out after %v", cfg.ConnectTimeout)
		}
		return nil, fmt.Errorf("rmi: dial %s: %w: %v", addr, ErrConnect, err)
	}

	hctx, hsTimedOut, cancel := clockContext(ctx, cfg.Clock, cfg.HandshakeTimeout)
	stop := context.AfterFunc(hctx, func() { _ = raw.Close() })
	hs, err := clientHandshake(raw, cfg.ClusterSecret, cfg.Callbacks != nil)
	if !stop() && err == nil {
		err = fmt.Errorf("%w: interrupted", ErrHandshake)
	}
	cancel()
	if err != nil {
		_ = raw.Close()
		switch {
		case hsTimedOut():
			err = fmt.Errorf("%w: timed out after %v", ErrHandshake, cfg.HandshakeTimeout)
		case ctx.Err() != nil:
			err = fmt.Errorf("%w: %w", ErrHandshake, ctx.Err())
		}
		return nil, fmt.Errorf("rmi: dial %s: %w: %w", addr, ErrConnect, err)
	}

	log := cfg.Logger.With("remote", addr)
	sess, err := yamux.Client(newIdleConn(raw, cfg.Clock, DefaultIdleTimeout), yamuxConfig(log, keepAliveInterval))
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("rmi: dial %s: %w: %v", addr, ErrConnect, err)
	}
	c := &Client{
		sess:   sess,
		caller: newCaller(sess, cfg.Clock, cfg.CallTimeout, addr),
	}
	c.peer = NewPeer(newPeerID(), raw.RemoteAddr().String(), hs.cluster, c)
	cbctx, cbCancel := context.WithCancel(WithPeer(context.Background(), c.peer))
	c.cbCancel = cbCancel

	var rs *rpc.Server
	if cfg.Callbacks != nil {
		rs = newRPCServer(cbctx, cfg.Callbacks, cfg.Clock)
	}
	lim := streamLimits{clk: cfg.Clock, idle: DefaultIdleTimeout, maxBytes: DefaultMaxRequestBytes}
	go serveStreams(sess, rs, lim, log)
	go func() {
		<-sess.CloseChan()
		log.Debug("rmi: connection closed")
		c.caller.close()
		c.cbCancel()
		c.peer.Close()
	}()
	log.Debug("rmi: connected", "cluster", hs.cluster)
	return c, nil
}

// Invoke implements Invoker.
func (c *Client) Invoke(ctx context.Context, object, method string, args, reply any) error {
	return c.caller.Invoke(ctx, object, method, args, reply)
}

// OnClose registers f to run (once) when the connection ends, whether by
// Close or because it was lost; if it has ended already, f runs at once.
func (c *Client) OnClose(f func()) { c.peer.OnClose(f) }

// Close closes the connection. Later calls fail with ErrClosed; calls in
// flight fail with ErrConnLost (wrapping ErrClosed too).
func (c *Client) Close() error {
	c.caller.shut()
	_ = c.sess.Close()
	c.cbCancel()
	c.peer.Close()
	return nil
}

// lost reports whether the connection has ended.
func (c *Client) lost() bool { return c.sess.IsClosed() }

// caller makes calls over one yamux session (the client's connection, or
// the server's side of it for Peer.Back) on a stream it opens lazily and
// replaces if the stream dies while the session lives. It implements
// Invoker.
type caller struct {
	sess        *yamux.Session
	clk         clock.Clock
	callTimeout time.Duration
	remote      string

	mu     sync.Mutex
	cur    *callStream
	closed error // set once no call may start: ErrClosed, or ErrConnect when the connection ended
}

// callStream is one net/rpc client on one stream.
type callStream struct {
	rc   *rpc.Client
	dead atomic.Bool
}

func newCaller(sess *yamux.Session, clk clock.Clock, callTimeout time.Duration, remote string) *caller {
	return &caller{sess: sess, clk: clk, callTimeout: callTimeout, remote: remote}
}

// shut makes later calls fail with ErrClosed (the owner closed it).
func (c *caller) shut() { c.stop(ErrClosed) }

// close makes later calls fail with ErrConnect (the connection ended).
func (c *caller) close() {
	c.stop(fmt.Errorf("%w: connection to %s has ended", ErrConnect, c.remote))
}

func (c *caller) stop(err error) {
	c.mu.Lock()
	if c.closed == nil {
		c.closed = err
	}
	cur := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cur != nil {
		_ = cur.rc.Close()
	}
}

// stream returns the live call stream, opening one if needed.
func (c *caller) stream() (*callStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return nil, c.closed
	}
	if c.cur != nil && !c.cur.dead.Load() {
		return c.cur, nil
	}
	if c.cur != nil {
		_ = c.cur.rc.Close()
		c.cur = nil
	}
	if c.sess.IsClosed() {
		return nil, fmt.Errorf("%w: connection to %s has ended", ErrConnect, c.remote)
	}
	st, err := c.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("%w: opening a stream to %s: %v", ErrConnect, c.remote, err)
	}
	cs := &callStream{}
	cs.rc = rpc.NewClientWithCodec(clientCodec{ClientCodec: codec.GoRpc.ClientCodec(closingStream{st}, newHandle()), dead: &cs.dead})
	c.cur = cs
	return cs, nil
}

// discard retires cs so that the next call opens a fresh stream.
func (c *caller) discard(cs *callStream) {
	cs.dead.Store(true)
	c.mu.Lock()
	if c.cur == cs {
		c.cur = nil
	}
	c.mu.Unlock()
	_ = cs.rc.Close()
}

// Invoke implements Invoker.
func (c *caller) Invoke(ctx context.Context, object, method string, args, reply any) error {
	where := func() string { return fmt.Sprintf("rmi: %s.%s on %s", object, method, c.remote) }
	if err := ctx.Err(); err != nil {
		return c.ctxErr(where(), err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = c.clk.WithTimeout(ctx, c.callTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	remaining := c.clk.Until(dl)
	if remaining <= 0 {
		return fmt.Errorf("%s: %w (%w)", where(), ErrTimeout, context.DeadlineExceeded)
	}
	b, err := Marshal(args)
	if err != nil {
		return fmt.Errorf("%s: encoding arguments: %w", where(), err)
	}
	cs, err := c.stream()
	if err != nil {
		return fmt.Errorf("%s: %w", where(), err)
	}
	req := &Request{Object: object, Method: method, Timeout: int64(remaining), Args: b}
	resp := new(Response)
	done := make(chan *rpc.Call, 1)
	// Send from another goroutine: a write may block on flow control (the
	// server stopped reading), and the deadline must still hold.
	go cs.rc.Go(serviceMethod, req, resp, done)
	select {
	case call := <-done:
		return c.outcome(cs, where, call.Error, resp, object, method, reply)
	case <-ctx.Done():
		return c.ctxErr(where(), ctx.Err())
	}
}

func (c *caller) ctxErr(where string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w (%w)", where, ErrTimeout, err)
	}
	return fmt.Errorf("%s: call abandoned, outcome unknown: %w", where, err)
}

// outcome classifies the end of a call.
func (c *caller) outcome(cs *callStream, where func() string, callErr error, resp *Response, object, method string, reply any) error {
	if callErr == nil {
		if resp.Failed && resp.ErrCode == timeoutCode {
			return fmt.Errorf("%s: %w (%w): the method gave up: %s", where(), ErrTimeout, context.DeadlineExceeded, resp.ErrMsg)
		}
		if resp.Failed {
			return &RemoteError{Code: resp.ErrCode, Message: resp.ErrMsg, Object: object, Method: method}
		}
		if err := DecodeReply(resp.Result, reply); err != nil {
			return fmt.Errorf("%s: decoding result: %w", where(), err)
		}
		return nil
	}
	var se rpc.ServerError
	if errors.As(callErr, &se) {
		msg := string(se)
		switch {
		case strings.HasPrefix(msg, tooLargePrefix):
			// The server closes the stream after this.
			c.discard(cs)
			return &RemoteError{Code: ErrTooLarge.Code, Message: msg, Object: object, Method: method}
		case strings.HasPrefix(msg, badRequestPrefix):
			c.discard(cs)
			return fmt.Errorf("%s: %w: server could not decode the request: %s", where(), ErrMarshal, msg)
		default:
			return &RemoteError{Message: msg, Object: object, Method: method}
		}
	}
	c.discard(cs)
	if strings.HasPrefix(callErr.Error(), "reading body") {
		return fmt.Errorf("%s: %w: decoding response: %v", where(), ErrMarshal, callErr)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if errors.Is(closed, ErrClosed) {
		// Closed by its owner while the call was in flight.
		return fmt.Errorf("%s: %w: %w", where(), ErrConnLost, ErrClosed)
	}
	return fmt.Errorf("%s: %w: %v", where(), ErrConnLost, callErr)
}
