package rmi

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"time"

	"github.com/benbjohnson/clock"
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
	conn     *conn
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
	c := &Client{}
	c.peer = NewPeer(newPeerID(), raw.RemoteAddr().String(), hs.cluster, c)
	cbctx, cbCancel := context.WithCancel(WithPeer(context.Background(), c.peer))
	c.cbCancel = cbCancel
	var rs *rpc.Server
	if cfg.Callbacks != nil {
		rs = newRPCServer(cfg.Callbacks)
	}
	c.conn = newConn(tconn, connConfig{
		clk:       cfg.Clock,
		log:       log,
		remote:    addr,
		idle:      DefaultIdleTimeout,
		keepAlive: keepAliveInterval,
		serve:     rs,
		ctx:       cbctx,
		lim:       callbackLimits(cfg.Clock),
		lost: func() {
			log.Debug("rmi: connection closed")
			c.cbCancel()
			c.peer.Close()
		},
	})
	c.calls = Caller{Transport: c.conn, Clock: cfg.Clock, CallTimeout: cfg.CallTimeout, Remote: addr}
	c.conn.start()
	log.Debug("rmi: connected", "cluster", hs.cluster)
	return c, nil
}

// clientHandshakes runs the TLS handshake, if cfg asks for TLS, and the
// protocol handshake on raw. It returns the connection to carry the
// frames: raw, or the TLS connection over it.
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
	c.conn.close(ErrClosed)
	c.cbCancel()
	c.peer.Close()
	return nil
}

// lost reports whether the connection has ended.
func (c *Client) lost() bool { return c.conn.isDone() }
