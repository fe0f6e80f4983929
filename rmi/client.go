package rmi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
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
	// TLS, if set, runs the connection over TLS with this configuration:
	// its RootCAs (or VerifyConnection) verify the server, and its client
	// certificate, if any, is presented for mutual TLS. MinVersion is
	// raised to TLS 1.3, and ServerName defaults to the host of the
	// address dialed. A cluster secret's proofs are then bound to the TLS
	// session. Without TLS the connection is plaintext: for tests and
	// in-process use only.
	TLS *tls.Config
	// ConnectTimeout bounds the TCP dial. Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// CallTimeout bounds a call whose context has no deadline. Default
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// HandshakeTimeout bounds the TLS and protocol handshakes after the
	// TCP connection is made. Default DefaultHandshakeTimeout.
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
	conn     *sessionTransport
	calls    Caller
	peer     *Peer // the server, as the callbacks see it
	cbCancel context.CancelFunc
}

// Dial connects to the rmi server at addr ("host:port"), runs the TLS
// handshake (if cfg.TLS is set) and the protocol handshake, and returns a
// Client. Failures wrap ErrConnect; handshake failures (wrong protocol, a
// server certificate that does not verify, cluster secret mismatch) also
// wrap ErrHandshake.
func Dial(ctx context.Context, addr string, cfg DialConfig) (*Client, error) {
	cfg = cfg.withDefaults()
	dctx, dialTimedOut, cancel := clockContext(ctx, cfg.Clock, cfg.ConnectTimeout)
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		if dialTimedOut() {
			err = fmt.Errorf("timed out after %v: %w", cfg.ConnectTimeout, err)
		}
		return nil, fmt.Errorf("rmi: dial %s: %w: %w", addr, ErrConnect, err)
	}

	hctx, hsTimedOut, cancel := clockContext(ctx, cfg.Clock, cfg.HandshakeTimeout)
	stop := context.AfterFunc(hctx, func() { _ = raw.Close() })
	tconn, hs, err := clientHandshakes(raw, addr, cfg)
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
	sess, err := yamux.Client(&frameConn{Conn: newIdleConn(tconn, cfg.Clock, DefaultIdleTimeout)}, yamuxConfig(log, keepAliveInterval))
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("rmi: dial %s: %w: %w", addr, ErrConnect, err)
	}
	conn := newSessionTransport(sess, addr)
	c := &Client{
		sess:  sess,
		conn:  conn,
		calls: Caller{Transport: conn, Clock: cfg.Clock, CallTimeout: cfg.CallTimeout, Remote: addr},
	}
	c.peer = NewPeer(newPeerID(), raw.RemoteAddr().String(), hs.cluster, c)
	cbctx, cbCancel := context.WithCancel(WithPeer(context.Background(), c.peer))
	c.cbCancel = cbCancel

	lim := callbackLimits(cfg.Clock)
	var rs *rpc.Server
	if cfg.Callbacks != nil {
		rs = newRPCServer(cbctx, cfg.Callbacks, lim)
	}
	go serveStreams(sess, rs, lim, log, nil)
	go func() {
		<-sess.CloseChan()
		log.Debug("rmi: connection closed")
		c.conn.close()
		c.cbCancel()
		c.peer.Close()
	}()
	log.Debug("rmi: connected", "cluster", hs.cluster)
	return c, nil
}

// clientHandshakes runs the TLS handshake, if cfg asks for TLS, and the
// protocol handshake on raw. It returns the connection to carry the
// session: raw, or the TLS connection over it.
func clientHandshakes(raw net.Conn, addr string, cfg DialConfig) (net.Conn, handshakeResult, error) {
	conn := raw
	var binding []byte
	if cfg.TLS != nil {
		tc, b, err := clientTLS(raw, cfg.TLS, addr)
		if err != nil {
			return nil, handshakeResult{}, err
		}
		conn, binding = tc, b
	}
	hs, err := clientHandshake(conn, cfg.ClusterSecret, cfg.Callbacks != nil, binding)
	return conn, hs, err
}

// Invoke implements Invoker.
func (c *Client) Invoke(ctx context.Context, object, method string, args, reply any) error {
	return c.calls.Invoke(ctx, object, method, args, reply)
}

// OnClose registers f to run (once) when the connection ends, whether by
// Close or because it was lost; if it has ended already, f runs at once.
func (c *Client) OnClose(f func()) { c.peer.OnClose(f) }

// Close closes the connection. Later calls fail with ErrClosed; calls in
// flight fail with ErrConnLost (wrapping ErrClosed too).
func (c *Client) Close() error {
	c.conn.shut()
	_ = c.sess.Close()
	c.cbCancel()
	c.peer.Close()
	return nil
}

// lost reports whether the connection has ended.
func (c *Client) lost() bool { return c.sess.IsClosed() }

// sessionTransport is the TCP Transport: it carries calls over one yamux
// session (the client's connection, or the server's side of it for
// Peer.Back) on a stream it opens lazily and replaces if the stream dies
// while the session lives.
type sessionTransport struct {
	sess   *yamux.Session
	remote string

	mu     sync.Mutex
	cur    *callStream
	closed error // set once no call may start: ErrClosed, or ErrConnect when the connection ended
}

// callStream is one net/rpc client on one stream.
type callStream struct {
	rc   *rpc.Client
	dead atomic.Bool
}

func newSessionTransport(sess *yamux.Session, remote string) *sessionTransport {
	return &sessionTransport{sess: sess, remote: remote}
}

// shut makes later calls fail with ErrClosed (the owner closed it).
func (t *sessionTransport) shut() { t.stop(ErrClosed) }

// close makes later calls fail with ErrConnect (the connection ended).
func (t *sessionTransport) close() {
	t.stop(fmt.Errorf("%w: connection to %s has ended", ErrConnect, t.remote))
}

func (t *sessionTransport) stop(err error) {
	t.mu.Lock()
	if t.closed == nil {
		t.closed = err
	}
	cur := t.cur
	t.cur = nil
	t.mu.Unlock()
	if cur != nil {
		_ = cur.rc.Close()
	}
}

// stream returns the live call stream, opening one if needed.
func (t *sessionTransport) stream() (*callStream, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed != nil {
		return nil, t.closed
	}
	if t.cur != nil && !t.cur.dead.Load() {
		return t.cur, nil
	}
	if t.cur != nil {
		_ = t.cur.rc.Close()
		t.cur = nil
	}
	if t.sess.IsClosed() {
		return nil, fmt.Errorf("%w: connection to %s has ended", ErrConnect, t.remote)
	}
	st, err := t.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("%w: opening a stream to %s: %w", ErrConnect, t.remote, err)
	}
	cs := &callStream{}
	cs.rc = rpc.NewClientWithCodec(clientCodec{ClientCodec: codec.GoRpc.ClientCodec(guardedStream{closingStream{st}, &lenGuard{max: maxResponseValue}}, newHandle()), dead: &cs.dead})
	t.cur = cs
	return cs, nil
}

// discard retires cs so that the next call opens a fresh stream.
func (t *sessionTransport) discard(cs *callStream) {
	cs.dead.Store(true)
	t.mu.Lock()
	if t.cur == cs {
		t.cur = nil
	}
	t.mu.Unlock()
	_ = cs.rc.Close()
}

// RoundTrip implements Transport.
func (t *sessionTransport) RoundTrip(ctx context.Context, req *Request) (*Response, error) {
	cs, err := t.stream()
	if err != nil {
		return nil, err
	}
	r := new(reply)
	done := make(chan *rpc.Call, 1)
	// Send from another goroutine: a write may block on flow control (the
	// server stopped reading), and the deadline must still hold.
	go cs.rc.Go(serviceMethod, req, r, done)
	select {
	case call := <-done:
		if call.Error != nil {
			return t.failed(cs, call.Error, r)
		}
		if r.resp.EndStream {
			// The server could not read the request whole and ends the
			// stream after answering.
			t.discard(cs)
		}
		return &r.resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// failed explains a call on cs that net/rpc failed with callErr.
func (t *sessionTransport) failed(cs *callStream, callErr error, r *reply) (*Response, error) {
	var se rpc.ServerError
	if errors.As(callErr, &se) {
		// The server's net/rpc could not run the call; its only account
		// of why is the text.
		return &Response{Failed: true, ErrMsg: string(se)}, nil
	}
	t.discard(cs)
	if r.decodeErr != nil {
		if !isIOError(r.decodeErr) {
			return nil, fmt.Errorf("%w: decoding the response: %w", ErrMarshal, r.decodeErr)
		}
		callErr = r.decodeErr // net/rpc passed on only its text
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if errors.Is(closed, ErrClosed) {
		// Closed by its owner while the call was in flight.
		return nil, fmt.Errorf("%w: %w", ErrConnLost, ErrClosed)
	}
	return nil, fmt.Errorf("%w: %w", ErrConnLost, callErr)
}

// isIOError reports whether err came from the stream rather than from
// decoding what was read.
func isIOError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}
