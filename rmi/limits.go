package rmi

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// Defaults for the Limits fields left zero. Together with
// DefaultMaxRequestBytes they bound what peers can make a server allocate;
// the package documentation ("Resource limits") states the bound.
const (
	// DefaultMaxClientRequestBytes caps one request from a peer that did
	// not prove the cluster secret. Every client method's argument fits
	// well within it (the largest, a post, is at most about 17 KiB).
	DefaultMaxClientRequestBytes = 64 << 10
	// DefaultMaxConnBytes caps the request bytes in flight on one cluster
	// peer's connection: two of its largest requests.
	DefaultMaxConnBytes = 2 * DefaultMaxRequestBytes
	// DefaultMaxClientConnBytes caps the request bytes in flight on one
	// other peer's connection.
	DefaultMaxClientConnBytes = 1 << 20
	// DefaultMaxAddrBytes caps the request bytes in flight from one IP
	// address over all its connections (but those of cluster peers): a
	// sixteenth of DefaultMaxInflightBytes, so one address cannot fill
	// the clients' share alone.
	DefaultMaxAddrBytes = 4 << 20
	// DefaultMaxInflightBytes caps the request bytes in flight across the
	// whole server.
	DefaultMaxInflightBytes = 64 << 20
	// DefaultMaxClientInflightBytes caps the request bytes in flight from
	// all the peers that did not prove the cluster secret: half of
	// DefaultMaxInflightBytes, the other half being kept for cluster peers.
	DefaultMaxClientInflightBytes = 32 << 20
	// DefaultMaxRequestsPerConn caps the requests in flight (read and not
	// yet answered) on one connection: what bounds the goroutines a peer
	// can make a server run at once, whatever the byte budgets allow.
	DefaultMaxRequestsPerConn = 256
	// DefaultMaxConns caps the connections a server serves at once.
	DefaultMaxConns = 1024
	// DefaultMaxConnsPerAddr caps the connections from one IP address.
	DefaultMaxConnsPerAddr = 64
	// DefaultRequestTimeout bounds the time from a request's first byte to
	// its last.
	DefaultRequestTimeout = 10 * time.Second
)

// requestOverhead is what each request is charged in the byte budgets on
// top of its body's buffer (bodyCap): it stands for the goroutine that runs it and the
// structures net/rpc keeps for it, so that a flood of tiny requests is
// bounded too.
const requestOverhead = 8 << 10

// Limits bound what the peers of a Server can make it allocate and how
// long they can hold it. A request that breaks a limit is refused with a
// clear error (ErrTooLarge or ErrBusy), and the connection carries on; a
// request that takes too long has its connection closed, and a connection
// over the caps is closed at once.
// Zero fields take the defaults noted. ServerConfig.MaxRequestBytes is the
// per-request cap for cluster peers.
type Limits struct {
	// MaxClientRequestBytes caps the encoded size of one request from a
	// peer that did not prove the cluster secret (at most
	// ServerConfig.MaxRequestBytes). Default DefaultMaxClientRequestBytes.
	MaxClientRequestBytes int
	// MaxConnBytes caps the bytes of requests in flight (being read, run
	// or answered, each charged the buffer it is read into, its size
	// rounded up to a power of two over 4 KiB, plus a fixed overhead) on
	// one cluster peer's connection. Default DefaultMaxConnBytes.
	MaxConnBytes int
	// MaxClientConnBytes is MaxConnBytes for every other peer. Default
	// DefaultMaxClientConnBytes.
	MaxClientConnBytes int
	// MaxAddrBytes caps the bytes of requests in flight from one IP
	// address, over all its connections but those of cluster peers, so
	// that one address with many connections cannot fill the server's
	// budget. Default DefaultMaxAddrBytes.
	MaxAddrBytes int
	// MaxInflightBytes caps the bytes of requests in flight across the
	// server. Default DefaultMaxInflightBytes.
	MaxInflightBytes int
	// MaxClientInflightBytes caps the bytes of requests in flight from
	// all peers that did not prove the cluster secret (at most
	// MaxInflightBytes). The rest of MaxInflightBytes is kept for cluster
	// peers, so that clients cannot starve the cluster's own calls (lease
	// renewals, session checks). Default DefaultMaxClientInflightBytes.
	MaxClientInflightBytes int
	// MaxRequestsPerConn caps the requests in flight (read, and not yet
	// answered) on one connection; when a peer has that many, the server
	// reads nothing more from its connection until one is answered.
	// Default DefaultMaxRequestsPerConn.
	MaxRequestsPerConn int
	// MaxConns caps the connections served at once; further ones are
	// closed at once. Default DefaultMaxConns.
	MaxConns int
	// MaxConnsPerAddr caps the connections served at once from one IP
	// address. Default DefaultMaxConnsPerAddr.
	MaxConnsPerAddr int
	// RequestTimeout bounds the time from a request's first byte to its
	// last, however steadily the bytes come; a request that takes longer
	// has its connection closed. It runs on ServerConfig.Clock. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
}

func (l Limits) withDefaults(maxRequestBytes int) Limits {
	if l.MaxClientRequestBytes <= 0 {
		l.MaxClientRequestBytes = DefaultMaxClientRequestBytes
	}
	l.MaxClientRequestBytes = min(l.MaxClientRequestBytes, maxRequestBytes)
	if l.MaxConnBytes <= 0 {
		l.MaxConnBytes = DefaultMaxConnBytes
	}
	if l.MaxClientConnBytes <= 0 {
		l.MaxClientConnBytes = DefaultMaxClientConnBytes
	}
	if l.MaxAddrBytes <= 0 {
		l.MaxAddrBytes = DefaultMaxAddrBytes
	}
	if l.MaxInflightBytes <= 0 {
		l.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if l.MaxClientInflightBytes <= 0 {
		l.MaxClientInflightBytes = DefaultMaxClientInflightBytes
	}
	l.MaxClientInflightBytes = min(l.MaxClientInflightBytes, l.MaxInflightBytes)
	if l.MaxRequestsPerConn <= 0 {
		l.MaxRequestsPerConn = DefaultMaxRequestsPerConn
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerAddr <= 0 {
		l.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = DefaultRequestTimeout
	}
	return l
}

// ErrBusy is the error of a request refused because the request bytes in
// flight, on its connection, from its address, from all clients or in
// the whole server, are at their cap. The
// method did not run; the caller may retry later.
var ErrBusy = NewError("rmi.busy", "server busy: too many request bytes in flight; retry later")

// busy is the error of a request refused for want of room in budget b.
func busy(b *byteBudget) error {
	return fmt.Errorf("rmi: %s holds %d bytes of requests in flight, its cap: %w", b.name, b.max, ErrBusy)
}

// byteBudget counts bytes in flight against a cap. A nil budget is
// unlimited. It is safe for concurrent use.
type byteBudget struct {
	name string // for errors: "this connection", "the server", ...
	max  int

	mu   sync.Mutex
	used int
}

func newByteBudget(name string, max int) *byteBudget {
	return &byteBudget{name: name, max: max}
}

// take adds n bytes if they fit under the cap and reports whether they did.
func (b *byteBudget) take(n int) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// force adds n bytes even over the cap (bytes already read that must be
// counted until they are released).
func (b *byteBudget) force(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// release returns n bytes.
func (b *byteBudget) release(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse reports the bytes held.
func (b *byteBudget) inUse() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// budgets are the byte budgets a request is charged to, narrowest first:
// its connection's, its address's (clients only), all clients' (clients
// only) and the server's. Any may be nil (unlimited).
type budgets []*byteBudget

// take charges n bytes to every budget, or to none (returning the error
// of the first that is full).
func (bs budgets) take(n int) error {
	for i, b := range bs {
		if !b.take(n) {
			bs[:i].release(n)
			return busy(b)
		}
	}
	return nil
}

func (bs budgets) force(n int) {
	for _, b := range bs {
		b.force(n)
	}
}

func (bs budgets) release(n int) {
	for _, b := range bs {
		b.release(n)
	}
}

// connCounter caps the connections a server serves, in all and per IP
// address, and keeps the byte budget of each address that has some. It
// is safe for concurrent use.
type connCounter struct {
	max, perAddr int
	addrBytes    int // the cap of each address's byte budget

	mu     sync.Mutex
	total  int
	byAddr map[string]*addrConns
}

// addrConns is what one IP address holds: its connections and the bytes
// its requests have in flight.
type addrConns struct {
	n     int
	bytes *byteBudget
}

func newConnCounter(max, perAddr, addrBytes int) *connCounter {
	return &connCounter{max: max, perAddr: perAddr, addrBytes: addrBytes, byAddr: map[string]*addrConns{}}
}

// hostOf returns the IP address part of a network address.
func hostOf(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// admit counts a new connection from host and returns host's byte
// budget, or reports why it is refused.
func (c *connCounter) admit(host string) (*byteBudget, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.byAddr[host]
	switch {
	case c.total >= c.max:
		return nil, fmt.Errorf("serving %d connections, the cap", c.total)
	case a != nil && a.n >= c.perAddr:
		return nil, fmt.Errorf("serving %d connections from %s, the cap per address", a.n, host)
	}
	if a == nil {
		a = &addrConns{bytes: newByteBudget("this address", c.addrBytes)}
		c.byAddr[host] = a
	}
	c.total++
	a.n++
	return a.bytes, nil
}

// leave uncounts a connection admitted from host. Its address's budget
// is dropped with its last connection (requests still running release
// into the dropped budget; the server's budget still counts them).
func (c *connCounter) leave(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if a := c.byAddr[host]; a != nil {
		if a.n--; a.n <= 0 {
			delete(c.byAddr, host)
		}
	}
}

// admit counts a new connection against the caps on connections, or
// closes it and returns false.
func (s *Server) admit(raw net.Conn) (*serverConn, bool) {
	host := hostOf(raw.RemoteAddr())
	addrBytes, err := s.admitted.admit(host)
	if err != nil {
		// Debug, not Warn: a flood of connections must not flood the log.
		s.log.Debug("rmi: refusing connection", "remote", raw.RemoteAddr().String(), "why", err)
		_ = raw.Close()
		return nil, false
	}
	return &serverConn{raw: raw, host: host, addrBytes: addrBytes}, true
}

// connLimits returns the limits of the requests on connection sc, from
// a cluster peer or not, with a byte budget of its own. A cluster peer's
// requests are charged to it and the server's budget; any other peer's
// also to its address's and all clients' budgets.
func (s *Server) connLimits(sc *serverConn, cluster bool) connLimits {
	l := s.cfg.Limits
	maxBytes := l.MaxClientRequestBytes
	bs := budgets{newByteBudget("this connection", l.MaxClientConnBytes), sc.addrBytes, s.clientInflight, s.inflight}
	if cluster {
		maxBytes = s.cfg.MaxRequestBytes
		bs = budgets{newByteBudget("this connection", l.MaxConnBytes), s.inflight}
	}
	return connLimits{
		clk:         s.cfg.Clock,
		timeout:     l.RequestTimeout,
		maxBytes:    maxBytes,
		maxRequests: l.MaxRequestsPerConn,
		budgets:     bs,
	}
}

// callbackLimits returns the limits of the requests (callbacks) a client
// serves: the server it dialed is bounded like a cluster peer of a Server
// with the default limits.
func callbackLimits(clk clock.Clock) connLimits {
	return connLimits{
		clk:         clk,
		timeout:     DefaultRequestTimeout,
		maxBytes:    DefaultMaxRequestBytes,
		maxRequests: DefaultMaxRequestsPerConn,
		budgets:     budgets{newByteBudget("this connection", DefaultMaxConnBytes)},
	}
}
