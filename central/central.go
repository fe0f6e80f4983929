package central

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/central/kv/boltkv"
	"github.com/distchat/distchat/rmi"
)

// Defaults for Config.
const (
	DefaultServerLeaseTTL = 10 * time.Second
	DefaultSessionTTL     = 30 * 24 * time.Hour
)

const (
	// dbFile is the name of the bbolt file under Config.Dir.
	dbFile = "central.db"
	// dbLockTimeout bounds the wait for another process's lock on the file.
	dbLockTimeout = 2 * time.Second
	// maxSweepInterval bounds how often expired sessions are purged.
	maxSweepInterval = time.Hour
	// placementGrace is how long a placement made by Login or Reassign
	// counts towards a server's load before the session attaches there.
	placementGrace = 30 * time.Second
)

// Config configures a Central.
type Config struct {
	// Dir is the data directory; the state lives in Dir/central.db (a
	// boltkv store). It is created if missing. Unused if Store is set.
	Dir string
	// Store, if set, holds the state instead of Dir/central.db: an etcd
	// cluster (etcdkv), for central front-ends that share it. The live
	// chat servers (on kv leases), their sessions, web login tickets and
	// voice hosts then live in it too (registry.go). Close closes it.
	Store kv.Store
	// Clock is the only source of time; nil means clock.New().
	Clock clock.Clock
	// Logger receives the log; nil means slog.Default().
	Logger *slog.Logger
	// ServerLeaseTTL is the lease granted to a chat server; zero means
	// DefaultServerLeaseTTL (10s).
	ServerLeaseTTL time.Duration
	// SessionTTL is how long a session stays valid without use; zero means
	// DefaultSessionTTL (30 days). A session in use is extended.
	SessionTTL time.Duration
	// PasswordCost is the bcrypt cost of password and recovery-code
	// hashes; zero means bcrypt.DefaultCost. Set bcrypt.MinCost only in
	// tests, benchmarks and simulations.
	PasswordCost int
	// Rand is the source of session tokens and recovery codes; nil means
	// crypto/rand.Reader. Only a simulator that needs reproducible runs
	// should set it. It must be safe for concurrent use or used by one
	// Central only (reads are serialised).
	Rand io.Reader
	// Prefer, if set, names the chat server a user should be placed on;
	// placement follows it whenever that server is live (and not the one
	// being failed over from), else falls back to least-loaded. It lets the
	// simulator and tests put users on chosen servers.
	Prefer func(user string) string
	// Connect returns an Invoker for a chat server's address, proving the
	// cluster secret; central uses it only to tell chat servers that
	// sessions ended (EndSessions). If the Invoker is an io.Closer it is
	// closed after the call. Nil means no push: servers then learn of
	// ended sessions at their next lease renewal only.
	Connect func(addr string) rmi.Invoker
	// HTTP is the host:port of the central web port, if it has one; chat
	// servers learn it when they register (RegisterReply.CentralHTTP).
	HTTP string
}

// Central is the central server. It implements [CentralServer] and
// [Cluster]; use Export to serve them. It is safe for concurrent use. Its
// only remote calls tell chat servers that sessions ended (endpush.go).
type Central struct {
	clk        clock.Clock
	log        *slog.Logger
	leaseTTL   time.Duration
	sessionTTL time.Duration
	cost       int
	prefer     func(user string) string
	connect    func(addr string) rmi.Invoker
	http       string          // the web port's host:port, if any
	bg         context.Context // for background calls; cancelled by Close
	stopBg     context.CancelFunc
	store      kv.Store
	// shared: the store is shared with other central front-ends (it came
	// in Config.Store), so the live servers and attachments live in it
	// too (registry.go); followDone closes when the registry watch ends.
	shared     bool
	followDone chan struct{}
	roomsDone  chan struct{} // closes when the membership watch ends (roomwatch.go)
	leases     *rmi.Leases
	// dummyHash is compared against when a user does not exist, so that
	// the answer takes as long as for a wrong password.
	dummyHash []byte
	// checks holds a token per bcrypt computation running (checkSlot).
	checks chan struct{}
	// checkQueue holds a token per call waiting for a checks slot.
	checkQueue chan struct{}

	throttleMu sync.Mutex
	throttle   *throttle // failed logins and resets (throttle.go)

	randMu sync.Mutex
	rand   io.Reader

	// Decoded records of sessions and rooms, by key (store.go).
	sessions recordCache[sessionRecord]
	rooms    recordCache[roomRecord]

	// mu guards the in-memory state below, and is held across the store's
	// transactions that must agree with it (sessions vs. attachments).
	mu       sync.Mutex
	closed   bool
	sweep    *clock.Timer
	gen      uint64                      // last server registration generation
	servers  map[string]*liveServer      // live chat servers by name
	attached map[string]*attachment      // session key -> where it is attached
	online   map[string][]serverCount    // user -> attached sessions per server, sorted by server
	pending  map[string]pendingPlacement // session key -> placement not yet attached
	toPush   map[string][]string         // chat server address -> ended session ids to tell it
	retried  map[string]bool             // chat server address -> its ids wait for their one retry (endpush.go)
	tickets  map[string]ticket           // web login tickets by hash (tickets.go)
	// voiceHosts names, by room, the chat server hosting its voice
	// channel (voice.go).
	voiceHosts map[string]voiceHost
	// ticketQueue holds the keys of c.tickets in the order issued (some
	// perhaps redeemed already), for expiry.
	ticketQueue []string
}

// liveServer is a registered chat server holding a lease.
type liveServer struct {
	info     centralapi.ServerInfo // Sessions is not maintained here; see len(sessions)
	gen      uint64
	lease    string              // in the lease table (one process)
	kvLease  kv.LeaseID          // in the store (shared registry); then gen is it too
	sessions map[string]struct{} // keys of the sessions attached here
	// storageFailing: the server reported that it cannot write; no one is
	// placed there (servers.go).
	storageFailing bool
	// servedUntil: the server registered or renewed its lease at this
	// front-end, which tells it of membership changes until then
	// (roomwatch.go; shared registry only).
	servedUntil time.Time
}

// attachment records the servers one session is attached to: almost
// always one, so a short sorted list rather than a map (whose first entry
// costs ~200 bytes for every logged-in user).
type attachment struct {
	user    string
	servers []string // sorted
}

// serverCount is how many of a user's sessions are attached to one server.
type serverCount struct {
	server   string
	sessions int
}

// pendingPlacement is a session placed on a server that has not yet
// presented itself there.
type pendingPlacement struct {
	server string
	gen    uint64
	at     time.Time
}

// Open opens (creating if needed) the central server's state: cfg.Store,
// or else the bbolt file in cfg.Dir (a file of an older distchat is
// carried over to the current layout, legacy.go).
func Open(cfg Config) (*Central, error) {
	if cfg.Dir == "" && cfg.Store == nil {
		return nil, errors.New("central: Config.Dir is empty")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ServerLeaseTTL == 0 {
		cfg.ServerLeaseTTL = DefaultServerLeaseTTL
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.ServerLeaseTTL < 0 || cfg.SessionTTL < 0 {
		return nil, errors.New("central: negative TTL in Config")
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	if cfg.PasswordCost < bcrypt.MinCost || cfg.PasswordCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("central: PasswordCost %d outside [%d, %d]", cfg.PasswordCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	where := "the given store"
	db := cfg.Store
	if db == nil {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("central: %w", err)
		}
		where = filepath.Join(cfg.Dir, dbFile)
		var err error
		db, err = boltkv.Open(where, boltkv.Options{Clock: cfg.Clock, LockTimeout: dbLockTimeout, Legacy: carryLegacy})
		if err != nil {
			return nil, fmt.Errorf("central: %w", err)
		}
	}
	if err := initSchema(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("central: %s: %w", where, err)
	}
	c := &Central{
		clk:        cfg.Clock,
		log:        cfg.Logger.With("component", "central"),
		leaseTTL:   cfg.ServerLeaseTTL,
		sessionTTL: cfg.SessionTTL,
		cost:       cfg.PasswordCost,
		prefer:     cfg.Prefer,
		connect:    cfg.Connect,
		http:       cfg.HTTP,
		store:      db,
		shared:     cfg.Store != nil,
		rand:       cfg.Rand,
		servers:    map[string]*liveServer{},
		attached:   map[string]*attachment{},
		voiceHosts: map[string]voiceHost{},
		online:     map[string][]serverCount{},
		pending:    map[string]pendingPlacement{},
		toPush:     map[string][]string{},
		retried:    map[string]bool{},
		checks:     make(chan struct{}, runtime.GOMAXPROCS(0)),
		checkQueue: make(chan struct{}, maxCheckWaiting),
		throttle:   newThrottle(),
	}
	dummy := make([]byte, 32)
	if err := c.readRand(dummy); err != nil {
		db.Close()
		return nil, err
	}
	dummyHash, err := c.hashSecret(context.Background(), string(dummy))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("central: %w", err)
	}
	c.dummyHash = dummyHash
	c.bg, c.stopBg = context.WithCancel(context.Background())
	c.leases = rmi.NewLeases(c.clk, c.leaseExpired)
	if c.shared {
		rev, err := c.loadLive(context.Background())
		if err != nil {
			c.stopBg()
			c.leases.Close()
			db.Close()
			return nil, err
		}
		c.followDone = make(chan struct{})
		go c.followLive(rev)
		c.roomsDone = make(chan struct{})
		go c.followRooms(rev)
	}
	c.mu.Lock()
	c.sweep = c.clk.AfterFunc(c.sweepInterval(), c.sweepSessions)
	c.mu.Unlock()
	c.log.Info("central server open", "db", where, "server_lease", c.leaseTTL, "session_ttl", c.sessionTTL)
	return c, nil
}

// Close stops the background work, forgets the live servers and closes the
// database. Calls after Close fail.
func (c *Central) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.sweep != nil {
		c.sweep.Stop()
	}
	clear(c.servers)
	clear(c.attached)
	clear(c.online)
	clear(c.pending)
	clear(c.toPush)
	clear(c.retried)
	c.mu.Unlock()
	c.stopBg()
	c.leases.Close()
	if c.followDone != nil {
		<-c.followDone
		<-c.roomsDone
	}
	if err := c.store.Close(); err != nil {
		return fmt.Errorf("central: close: %w", err)
	}
	c.log.Info("central server closed")
	return nil
}

// Export exports the client-facing [CentralServer] under [ObjectName] and
// the chat servers' [Cluster] under [ClusterObjectName], the latter with
// rmi.ClusterOnly. Each export carries only its own interface's methods, so
// no cluster method is reachable without the cluster secret.
func (c *Central) Export(t *rmi.Table) error {
	if err := rmi.Export[centralapi.CentralServer](t, centralapi.ObjectName, &publicAPI{c}); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	if err := rmi.Export[centralapi.Cluster](t, centralapi.ClusterObjectName, &clusterAPI{c}, rmi.ClusterOnly()); err != nil {
		t.Unexport(centralapi.ObjectName)
		return fmt.Errorf("central: %w", err)
	}
	return nil
}

// readRand fills b from the configured random source.
func (c *Central) readRand(b []byte) error {
	c.randMu.Lock()
	defer c.randMu.Unlock()
	if _, err := io.ReadFull(c.rand, b); err != nil {
		return fmt.Errorf("central: random source: %w", err)
	}
	return nil
}

// publicAPI is the object exported as ObjectName: CentralServer only.
type publicAPI struct{ c *Central }

// SignUp implements CentralServer.
func (p *publicAPI) SignUp(ctx context.Context, a centralapi.SignUpArgs) (centralapi.SignUpReply, error) {
	return p.c.SignUp(ctx, a)
}

// Login implements CentralServer.
func (p *publicAPI) Login(ctx context.Context, a centralapi.LoginArgs) (centralapi.LoginReply, error) {
	return p.c.Login(ctx, a)
}

// Reassign implements CentralServer.
func (p *publicAPI) Reassign(ctx context.Context, a centralapi.ReassignArgs) (centralapi.LoginReply, error) {
	return p.c.Reassign(ctx, a)
}

// ResetPassword implements CentralServer.
func (p *publicAPI) ResetPassword(ctx context.Context, a centralapi.ResetArgs) (centralapi.ResetReply, error) {
	return p.c.ResetPassword(ctx, a)
}

// Logout implements CentralServer.
func (p *publicAPI) Logout(ctx context.Context, a centralapi.LogoutArgs) error {
	return p.c.Logout(ctx, a)
}

// clusterAPI is the object exported as ClusterObjectName: Cluster only.
type clusterAPI struct{ c *Central }

// RegisterServer implements Cluster.
func (p *clusterAPI) RegisterServer(ctx context.Context, a centralapi.RegisterArgs) (centralapi.RegisterReply, error) {
	return p.c.RegisterServer(ctx, a)
}

// RenewServer implements Cluster.
func (p *clusterAPI) RenewServer(ctx context.Context, a centralapi.RenewArgs) (centralapi.RenewReply, error) {
	return p.c.RenewServer(ctx, a)
}

// UnregisterServer implements Cluster.
func (p *clusterAPI) UnregisterServer(ctx context.Context, a centralapi.UnregisterArgs) error {
	return p.c.UnregisterServer(ctx, a)
}

// CheckSession implements Cluster.
func (p *clusterAPI) CheckSession(ctx context.Context, a centralapi.SessionArgs) (centralapi.SessionInfo, error) {
	return p.c.CheckSession(ctx, a)
}

// EndSession implements Cluster.
func (p *clusterAPI) EndSession(ctx context.Context, a centralapi.SessionArgs) error {
	return p.c.EndSession(ctx, a)
}

// CreateRoom implements Cluster.
func (p *clusterAPI) CreateRoom(ctx context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return p.c.CreateRoom(ctx, a)
}

// JoinRoom implements Cluster.
func (p *clusterAPI) JoinRoom(ctx context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return p.c.JoinRoom(ctx, a)
}

// LeaveRoom implements Cluster.
func (p *clusterAPI) LeaveRoom(ctx context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return p.c.LeaveRoom(ctx, a)
}

// DirectRoom implements Cluster.
func (p *clusterAPI) DirectRoom(ctx context.Context, a centralapi.DirectArgs) (centralapi.RoomInfo, error) {
	return p.c.DirectRoom(ctx, a)
}

// Room implements Cluster.
func (p *clusterAPI) Room(ctx context.Context, a centralapi.RoomQuery) (centralapi.RoomInfo, error) {
	return p.c.Room(ctx, a)
}

// ListRooms implements Cluster.
func (p *clusterAPI) ListRooms(ctx context.Context, a centralapi.UserArgs) (centralapi.ListReply, error) {
	return p.c.ListRooms(ctx, a)
}

// UserRooms implements Cluster.
func (p *clusterAPI) UserRooms(ctx context.Context, a centralapi.UserArgs) (centralapi.UserRoomsReply, error) {
	return p.c.UserRooms(ctx, a)
}

// SearchUsers implements Cluster.
func (p *clusterAPI) SearchUsers(ctx context.Context, a centralapi.SearchArgs) (centralapi.SearchReply, error) {
	return p.c.SearchUsers(ctx, a)
}

// RedeemTicket implements Cluster.
func (p *clusterAPI) RedeemTicket(ctx context.Context, a centralapi.TicketArgs) (centralapi.TicketReply, error) {
	return p.c.RedeemTicket(ctx, a)
}

// IssueResetCode implements Cluster.
func (p *clusterAPI) IssueResetCode(ctx context.Context, a centralapi.UserArgs) (centralapi.ResetReply, error) {
	return p.c.IssueResetCode(ctx, a)
}

// VoiceHost implements Cluster.
func (p *clusterAPI) VoiceHost(ctx context.Context, a centralapi.RoomArgs) (centralapi.VoiceHostReply, error) {
	return p.c.VoiceHost(ctx, a)
}

var (
	_ centralapi.CentralServer = (*Central)(nil)
	_ centralapi.Cluster       = (*Central)(nil)
	_ centralapi.CentralServer = (*publicAPI)(nil)
	_ centralapi.Cluster       = (*clusterAPI)(nil)
)
