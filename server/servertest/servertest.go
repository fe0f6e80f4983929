// Package servertest runs a real distchat cluster inside a test, as
// net/http/httptest runs a real HTTP server: a central server and chat
// servers opened with the real central and server packages on a temporary
// directory, each serving its objects from an rmi.Table. Every call
// between them, and from a client, goes through rmi.Local-style invokers,
// so it is encoded and dispatched exactly as over TCP; with Options.TCP
// the registry, central and the chat servers also listen on loopback TCP
// for clients that dial with rmi.Dial.
//
// A test can crash, stop and restart a chat server (its data survives),
// restart central, make a chat server unreachable, cut two chat servers
// off from each other, hold a chat server's calls to central, count the Forward calls a chat server receives,
// and choose where central places a user. A test of the chat server
// attaches a [RawClient] with [Cluster.Login], which records what the
// server delivers. A real client connects with [Cluster.Dial], which
// exports the client's callback table on the connection so that the chat
// server's deliveries reach it:
//
//	c := servertest.New(t, servertest.Options{Servers: 2})
//	c.AddUser("ann")
//	cfg := client.Config{
//		Central: c.RegistryAddr(), User: "ann", Password: c.Password("ann"),
//		Dial: func(ctx context.Context, addr string, cb *rmi.Table) (client.Conn, error) {
//			conn, err := c.Dial(ctx, addr, cb)
//			if err != nil {
//				return nil, err // not conn: a nil *Conn is not a nil client.Conn
//			}
//			return conn, nil
//		},
//	}
//
// The package uses only the exported API of package server and central,
// and does not import the client: the client's own tests use it. Package
// server's internal tests cannot (it imports server); its external tests
// (package server_test) and the end-to-end tests can.
package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/voice"
)

// LeaseTTL is the lease central grants the chat servers: a crashed server
// is dropped from central's list of live servers after about this long.
const LeaseTTL = time.Second

// Options configure a Cluster. The zero value is one chat server on the
// real clock, reached in memory.
type Options struct {
	// Servers is the number of chat servers, named server-1 … server-N
	// (as distchat up names them); default 1.
	Servers int
	// Clock is central's and every chat server's clock; default
	// clock.New(). With a mock clock (clocktest.Mock) their background work (deliveries,
	// forwarding, lease renewals) runs only as the test advances it.
	Clock clock.Clock
	// ClientClock is the clock of the clients that connect with Dial: it
	// reads their calls' deadlines, and the cluster's callbacks run under
	// it on their side. Default: Clock.
	ClientClock clock.Clock
	// ClockMode is the chat servers' stamp clock: server.ClockHLC
	// (default) or server.ClockWall.
	ClockMode string
	// Settled turns on settled prefixes on the chat servers.
	Settled bool
	// TCP also serves the registry, central and each chat server on a
	// loopback TCP listener (an rmi.Server), so that clients can connect
	// with rmi.Dial; the addresses are then 127.0.0.1:port. The chat
	// servers still reach central and each other in memory.
	TCP bool
	// Logger receives every component's log; default: discarded.
	Logger *slog.Logger
	// Voice is the network of every chat server's SFU (server.Config's
	// VoiceNetwork); with no IPs, 127.0.0.1. VoiceMax caps each voice
	// channel (zero: the voice package's default). VoiceRing is how
	// often a caller alone in a direct room's channel rings again (zero:
	// server.DefaultVoiceRing).
	Voice     voice.Network
	VoiceMax  int
	VoiceRing time.Duration
}

// Cluster is a running central server and its chat servers. Its methods
// that start or stop something fail the test on error, so call them from
// the test's goroutine; the others are safe for concurrent use.
type Cluster struct {
	t       testing.TB
	opts    Options
	dir     string
	log     *slog.Logger
	ctable  *rmi.Table // central's objects
	rtable  *rmi.Table // the registry
	regAddr string
	cenAddr string
	peerIDs atomic.Uint64

	mu      sync.Mutex
	central *central.Central
	servers map[string]*chatServer // by name
	byAddr  map[string]*chatServer
	conns   map[*Conn]bool     // open connections from clients
	place   map[string]string  // user -> chat server central should place them on
	cut     map[[2]string]bool // pairs of chat servers that cannot reach each other
	tcp     []*rmi.Server      // the registry's and central's TCP servers
	nopush  bool               // central's EndSessions calls fail (LoseSessionPushes)
}

// chatServer is one chat server of the cluster. Its fields are guarded by
// Cluster.mu.
type chatServer struct {
	name, addr  string
	diskFull    bool           // its writes fail (DiskFull)
	writeHold   chan struct{}  // while not nil, its writes wait for it to close (HoldWrites)
	srv         *server.Server // nil while down
	table       *rmi.Table     // nil while down
	tcp         *rmi.Server    // its TCP server (Options.TCP), nil while down
	listener    net.Listener   // tcp's listener, nil while down
	unreachable bool
	forwards    int64          // Forward calls that reached it from other chat servers
	centralHold chan struct{}  // its calls to central wait for this (HoldCentral), or nil
	loseReply   map[string]int // method -> how many of its next calls to central lose their reply (LoseCentralReplies)
}

// up reports whether the chat server runs and can be reached.
func (s *chatServer) up() bool { return s != nil && s.srv != nil && !s.unreachable }

// New starts a cluster: central, then opts.Servers chat servers, each
// registered with central. Everything is closed when the test ends.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Servers <= 0 {
		opts.Servers = 1
	}
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	if opts.ClientClock == nil {
		opts.ClientClock = opts.Clock
	}
	if opts.ClockMode == "" {
		opts.ClockMode = server.ClockHLC
	}
	if len(opts.Voice.IPs) == 0 {
		opts.Voice.IPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	if opts.Logger == nil {
		opts.Logger = rmitest.QuietLogger()
	}
	c := &Cluster{
		t: t, opts: opts, dir: t.TempDir(), log: opts.Logger,
		regAddr: "registry:1099", cenAddr: "central:1099",
		servers: map[string]*chatServer{}, byAddr: map[string]*chatServer{},
		conns: map[*Conn]bool{}, place: map[string]string{}, cut: map[[2]string]bool{},
	}
	t.Cleanup(c.close)

	c.ctable = rmi.NewTable(opts.Logger)
	c.openCentral()
	c.rtable = rmi.NewTable(opts.Logger)
	if err := rmi.Export[rmi.RegistryService](c.rtable, rmi.RegistryObjectName, rmi.NewRegistry()); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	if opts.TCP {
		c.regAddr = c.serveTCP(c.rtable, "127.0.0.1:0")
		c.cenAddr = c.serveTCP(c.ctable, "127.0.0.1:0")
	}
	// The registry is a process of its own, as rmiregistry was in the
	// original: its entry for central names central's address, which a
	// client follows.
	ref := rmi.Ref{Addr: c.cenAddr, Object: centralapi.ObjectName}
	if err := (rmi.RegistryStub{Inv: rmi.Local{Table: c.rtable}}).Bind(context.Background(), centralapi.ObjectName, ref); err != nil {
		t.Fatalf("servertest: bind central in the registry: %v", err)
	}

	for i := 1; i <= opts.Servers; i++ {
		name := fmt.Sprintf("server-%d", i)
		s := &chatServer{name: name, addr: name + ":7000"}
		if opts.TCP {
			s.addr = "127.0.0.1:0"
		}
		c.servers[name] = s
		c.Start(name)
	}
	return c
}

// openCentral opens central on its data directory and exports it into
// c.ctable.
func (c *Cluster) openCentral() {
	c.t.Helper()
	cen, err := central.Open(central.Config{
		Dir: c.dir + "/central", Clock: c.opts.Clock, Logger: c.log,
		PasswordCost: bcrypt.MinCost, ServerLeaseTTL: LeaseTTL, Prefer: c.preferred,
		Connect: func(to string) rmi.Invoker { return &link{c: c, from: fromCentral, to: to} },
	})
	if err != nil {
		c.t.Fatalf("servertest: open central: %v", err)
	}
	if err := cen.Export(c.ctable); err != nil {
		c.t.Fatalf("servertest: %v", err)
	}
	c.mu.Lock()
	c.central = cen
	c.mu.Unlock()
}

// serveTCP serves table on a new loopback listener at addr and returns
// the listener's address.
func (c *Cluster) serveTCP(table *rmi.Table, addr string) string {
	c.t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatalf("servertest: listen: %v", err)
	}
	rs := rmi.NewServer(table, rmi.ServerConfig{Clock: c.opts.Clock, Logger: c.log})
	go func() { _ = rs.Serve(l) }()
	c.mu.Lock()
	c.tcp = append(c.tcp, rs)
	c.mu.Unlock()
	return l.Addr().String()
}

// close ends every connection and closes the chat servers and central.
func (c *Cluster) close() {
	c.mu.Lock()
	conns := slices.Collect(maps.Keys(c.conns))
	servers := slices.Collect(maps.Values(c.servers))
	tcp, cen := c.tcp, c.central
	c.mu.Unlock()
	for _, k := range conns {
		k.end(false)
	}
	for _, s := range servers {
		c.takeDown(s)
	}
	for _, rs := range tcp {
		_ = rs.Close()
	}
	if cen != nil {
		_ = cen.Close()
	}
}

// RegistryAddr is the registry's address: what a client's Config.Central
// names.
func (c *Cluster) RegistryAddr() string { return c.regAddr }

// CentralAddr is the central server's address, which the registry's entry
// names.
func (c *Cluster) CentralAddr() string { return c.cenAddr }

// Clock is the cluster's clock (Options.Clock).
func (c *Cluster) Clock() clock.Clock { return c.opts.Clock }

// Central is the central server, for calls a test makes directly. After
// RestartCentral it is the new one.
func (c *Cluster) Central() *central.Central {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.central
}

// Servers returns the chat servers' names, sorted.
func (c *Cluster) Servers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.servers))
}

// Server returns the chat server name, or nil while it is down.
func (c *Cluster) Server(name string) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mustServer(name).srv
}

// Addr returns the address chat server name registers at central.
func (c *Cluster) Addr(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mustServer(name).addr
}

// mustServer returns the chat server name. Callers hold c.mu.
func (c *Cluster) mustServer(name string) *chatServer {
	s := c.servers[name]
	if s == nil {
		c.t.Fatalf("servertest: no chat server %q", name)
	}
	return s
}

// Password is the password AddUser gives user.
func (c *Cluster) Password(user string) string { return "password-" + user }

// AddUser signs user up at central with the password Password(user), and
// returns that password.
func (c *Cluster) AddUser(user string) string {
	c.t.Helper()
	pw := c.Password(user)
	if _, err := c.Central().SignUp(context.Background(), centralapi.SignUpArgs{User: user, Password: pw}); err != nil {
		c.t.Fatalf("servertest: sign up %s: %v", user, err)
	}
	return pw
}

// Place makes central place user on chat server name (at login, and on a
// failover unless name is the server failed over from) whenever it is
// live; an empty name restores central's own choice (least loaded).
func (c *Cluster) Place(user, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "" {
		delete(c.place, user)
		return
	}
	c.place[user] = name
}

// preferred is central's Config.Prefer.
func (c *Cluster) preferred(user string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.place[user]
}
