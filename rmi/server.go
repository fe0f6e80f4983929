package rmi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/rmi/workpool"
)

// ServerConfig configures a Server. Zero fields take the defaults noted.
type ServerConfig struct {
	// Clock drives every timer the server arms (handshake, idle and stall
	// timeouts, call deadlines). Default: the real clock.
	Clock clock.Clock
	// Logger receives connection events. Default: slog.Default().
	Logger *slog.Logger
	// ClusterSecret, if set, lets clients prove they belong to the cluster;
	// those that do are Peer.Cluster and may call ClusterOnly objects.
	ClusterSecret []byte
	// TLS, if set, makes every connection TLS 1.3 (MinVersion is raised to
	// it): its Certificates or GetCertificate give the server's
	// certificate; with ClientAuth tls.VerifyClientCertIfGiven and
	// ClientCAs, clients may present a certificate for mutual TLS. A peer
	// that does not speak TLS (plaintext bytes, an older TLS version) fails
	// the TLS handshake and is disconnected. Without TLS the server speaks
	// plaintext: for tests and in-process use only.
	TLS *tls.Config
	// RequireClusterCert, with TLS, grants Cluster only to a client that
	// proves the cluster secret and also presents a certificate that
	// verifies against TLS.ClientCAs (mutual TLS); a client that proves
	// the secret without one is refused. Without TLS no client is Cluster.
	RequireClusterCert bool
	// HandshakeTimeout bounds the handshakes (TLS and protocol) of a new
	// connection. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that receives nothing for this long
	// (healthy connections exchange keepalives well within it), or on
	// which a write blocks for this long (the peer stopped reading).
	// Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxRequestBytes caps the encoded size of one request from a cluster
	// peer (Limits.MaxClientRequestBytes, from any other); a larger one
	// is read, dropped and answered with ErrTooLarge. Default
	// DefaultMaxRequestBytes.
	MaxRequestBytes int
	// Limits bound what peers can make the server allocate (bytes in
	// flight, requests per connection, connections, time per request).
	Limits Limits
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Clock == nil {
		c.Clock = clock.New()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.TLS != nil {
		c.TLS = tls13(c.TLS)
	}
	c.Limits = c.Limits.withDefaults(c.MaxRequestBytes)
	return c
}

// Server accepts rmi connections and dispatches their calls into a Table.
// Each connection gets a Peer (see PeerFromContext) whose OnClose hooks run
// when the connection ends.
type Server struct {
	table *Table
	cfg   ServerConfig
	log   *slog.Logger

	ctx    context.Context // parent of every call's context
	cancel context.CancelFunc

	inflight       *byteBudget    // request bytes in flight across the server
	clientInflight *byteBudget    // the part of inflight from peers not in the cluster
	admitted       *connCounter   // connections served, in all and per address
	rpc            *rpc.Server    // runs the requests of every connection on table
	workers        *workpool.Pool // the goroutines that run them

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	wg        sync.WaitGroup
}

// serverConn is one accepted connection.
type serverConn struct {
	raw       net.Conn
	host      string      // the remote IP address, as counted by Server.admitted
	addrBytes *byteBudget // host's byte budget, kept by Server.admitted
	conn      *conn       // nil until the handshake is done; guarded by Server.mu
}

// NewServer returns a server for the objects in t.
func NewServer(t *Table, cfg ServerConfig) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		table:          t,
		cfg:            cfg,
		log:            cfg.Logger,
		ctx:            ctx,
		cancel:         cancel,
		listeners:      map[net.Listener]struct{}{},
		conns:          map[*serverConn]struct{}{},
		inflight:       newByteBudget("the server", cfg.Limits.MaxInflightBytes),
		clientInflight: newByteBudget("the clients' share of the server", cfg.Limits.MaxClientInflightBytes),
		admitted:       newConnCounter(cfg.Limits.MaxConns, cfg.Limits.MaxConnsPerAddr, cfg.Limits.MaxAddrBytes),
		rpc:            newRPCServer(t),
		workers:        workpool.New(maxIdleWorkers),
	}
}

// Serve accepts connections on l until l fails or the server is closed,
// serving each in its own goroutines. It returns nil once Close was called,
// else the error that stopped it. Serve may be called for several
// listeners.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		raw, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("rmi: accept: %w", err)
			}
			// Probably out of file descriptors: back off and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("rmi: accept failed; retrying", "err", err, "in", backoff)
			t := s.cfg.Clock.Timer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		sc, ok := s.admit(raw)
		if !ok {
			continue
		}
		if !s.track(sc) {
			s.admitted.leave(sc.host)
			_ = raw.Close()
			return nil
		}
		go s.serveConn(sc)
	}
}

// track registers a new connection; false once the server is closed.
func (s *Server) track(sc *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(sc *serverConn) {
	s.admitted.leave(sc.host)
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// numConns reports the connections being served (for tests).
func (s *Server) numConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// serveConn runs the handshakes on a new connection and starts its
// reader; it returns then, and the connection's end (its reader's
// failure) untracks it.
func (s *Server) serveConn(sc *serverConn) {
	raw := sc.raw
	addr := raw.RemoteAddr().String()
	log := s.log.With("remote", addr)

	hsTimer := s.cfg.Clock.AfterFunc(s.cfg.HandshakeTimeout, func() { _ = raw.Close() })
	nc, hs, err := s.handshakes(raw)
	if !hsTimer.Stop() && err == nil {
		err = errors.New("handshake timed out")
	}
	if err != nil {
		_ = raw.Close()
		s.untrack(sc)
		switch {
		case errors.Is(err, errBadProof):
			log.Warn("rmi: client failed the cluster secret proof; closed")
		case errors.Is(err, errNoClusterCert):
			log.Warn("rmi: client proved the cluster secret without a cluster certificate; closed")
		case errors.Is(err, errBadMagic), errors.Is(err, errBadVersion):
			log.Debug("rmi: not an rmi client of this version; closed", "err", err)
		default:
			log.Debug("rmi: handshake failed; closed", "err", err)
		}
		return
	}

	// Clients ping every keepAliveInterval, which keeps a connection
	// from going idle here (and the server's answers keep it from going
	// idle there). The server pings on its own only when its idle timeout
	// is too short for that.
	var keepAlive time.Duration
	if s.cfg.IdleTimeout < 3*keepAliveInterval {
		keepAlive = max(s.cfg.IdleTimeout/3, time.Millisecond)
	}
	peer := NewPeer(newPeerID(), addr, hs.cluster, nil)
	log = log.With("peer", peer.ID)
	lim := s.connLimits(sc, hs.cluster)
	// A response is the answer to a callback: from a peer without the
	// cluster secret it may be no larger than its requests may be.
	maxResponse := maxResponseFrame
	if !hs.cluster {
		maxResponse = lim.maxBytes
	}
	c := newConn(nc, connConfig{
		clk:         s.cfg.Clock,
		log:         log,
		remote:      addr,
		idle:        s.cfg.IdleTimeout,
		keepAlive:   keepAlive,
		maxResponse: maxResponse,
		serve:       s.rpc,
		workers:     s.workers,
		ctx:         WithPeer(s.ctx, peer),
		lim:         lim,
		// When the connection ends, its calls' contexts are canceled
		// (after the connection is gone, so a call interrupted by its
		// end cannot still send a reply) and the Peer's hooks run; once
		// its calls have returned, it is untracked.
		lost: peer.Close,
		done: func() {
			log.Debug("rmi: connection closed")
			s.untrack(sc)
		},
	})
	if hs.callbacks {
		peer.Back = Caller{Transport: c, Clock: s.cfg.Clock, CallTimeout: DefaultCallTimeout, Remote: addr}
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		sc.conn = c
	}
	s.mu.Unlock()
	if closed {
		_ = raw.Close()
		s.untrack(sc)
		return
	}
	log.Debug("rmi: connection open", "cluster", hs.cluster, "callbacks", hs.callbacks)
	c.start()
}

// errServerClosed is why the connections of a closed Server ended.
var errServerClosed = errors.New("rmi: the server was closed")

// handshakes runs the TLS handshake, if the server speaks TLS, and the
// protocol handshake on raw. It returns the connection to carry the
// frames: raw, or the TLS connection over it.
func (s *Server) handshakes(raw net.Conn) (net.Conn, handshakeResult, error) {
	conn := raw
	var binding []byte
	certOK := false
	if s.cfg.TLS != nil {
		tc, b, ok, err := serverTLS(raw, s.cfg.TLS)
		if err != nil {
			return nil, handshakeResult{}, err
		}
		conn, binding, certOK = tc, b, ok
	}
	certMissing := s.cfg.RequireClusterCert && !certOK
	hs, err := serverHandshake(conn, s.cfg.ClusterSecret, binding, certMissing)
	return conn, hs, err
}

// Close stops accepting, closes every connection (so their Peers' OnClose
// hooks run), cancels the contexts of calls in flight and waits for those
// calls to return.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	for l := range s.listeners {
		_ = l.Close()
	}
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	for _, sc := range conns {
		s.mu.Lock()
		c := sc.conn
		s.mu.Unlock()
		if c != nil {
			c.close(errServerClosed)
		} else {
			_ = sc.raw.Close()
		}
	}
	s.cancel()
	s.wg.Wait()
	s.workers.Close()
	return nil
}
