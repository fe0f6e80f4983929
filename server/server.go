package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// Tuning knobs. They are constants rather than flags because the protocol's
// correctness does not depend on them; tests exercise their edges.
const (
	attachTTL           = 30 * time.Second // an attachment lives this long without a Ping
	roomInfoTTL         = 30 * time.Second // cached room membership is refreshed after this
	antiEntropyTick     = 10 * time.Second // rooms with local members are re-checked this often
	callTimeout         = 10 * time.Second // bound on any call this server makes
	fetchTimeout        = 3 * time.Second  // bound on one catch-up Fetch from a peer
	defaultMaxQueue     = 4096             // a client's queued deliveries before it must resync
	defaultDeliverBatch = 512              // messages per Deliver callback
	defaultForwardBatch = 512              // messages per Forward call
	maxRetry            = 30 * time.Second // largest forwarding back-off
	maxFuture           = time.Minute      // a client's Seen stamp is capped at now+maxFuture: one client cannot push the clocks far ahead
	heartbeatEvery      = time.Second      // how often watermarks (settled prefixes) advance
)

// Config configures a chat server.
type Config struct {
	// Name identifies the server in stamps and at central; [a-z0-9-]+.
	Name string
	// Addr is the host:port others reach its RMI listener at.
	Addr string
	// HTTP is the host:port of its web listener, if any (reported to central).
	HTTP string
	// Dir holds the server's bbolt file (server.db).
	Dir string
	// Clock is the only source of time; default clock.New().
	Clock clock.Clock
	// ClockMode is ClockWall or ClockHLC (default).
	ClockMode string
	// Central is the central server's cluster interface.
	Central centralapi.Cluster
	// Connect returns an Invoker for another chat server's address; it
	// should connect lazily and reconnect after failures.
	Connect func(addr string) rmi.Invoker
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Settled turns on settled-prefix tracking (see settled.go): every
	// second the server promises a watermark it will never stamp at or
	// below again, and members learn which prefix of each room is final.
	// The promise also floors later stamps, so with it on even a wall
	// clock stepped backwards does not stamp below what was promised.
	Settled bool
	// NoSync skips fsync on commit. Only for the simulator, whose crashes
	// close the file (so nothing written is lost) and which would
	// otherwise spend its time waiting on the disk. Never in production.
	NoSync bool
}

// Server is a chat server. It implements ChatServer; its Peer interface is
// exported separately by Export.
type Server struct {
	cfg     Config
	name    string
	clk     clock.Clock
	log     *slog.Logger
	central centralapi.Cluster
	st      *store
	commit  *committer
	leases  *rmi.Leases

	mu           sync.Mutex
	closed       bool
	started      bool
	stamper      *stamper
	rooms        map[string]*room
	atts         map[string]*attachment          // by session token
	local        map[string]map[*attachment]bool // room -> attachments whose user is a member
	peers        map[string]*forwarder           // other servers by name
	cursors      map[string]map[string]uint64    // dest -> room -> own seq acknowledged
	posting      map[string]bool                 // user\x00id of posts being stamped
	live         []centralapi.ServerInfo         // live servers, from central
	timers       map[*clock.Timer]bool           // armed timers, stopped by Close
	renewWait    time.Duration                   // lease renewal period
	maxQueue     int                             // per-client delivery queue bound
	inflight     int                             // own posts stamped but not yet durable
	wm           map[string]map[string]int64     // room -> origin server -> watermark received
	wmDefault    map[string]int64                // origin server -> watermark for rooms it has no messages in
	settledSent  map[string]int64                // room -> settled point last told to clients
	known        map[string]bool                 // every chat server ever seen (persisted)
	knownDirty   bool                            // known changed since written
	deliverBatch int                             // messages per Deliver callback
	forwardBatch int                             // messages per Forward call
	dirty        map[string]map[string]uint64    // cursors not yet written
	flushing     bool                            // a cursor flush is scheduled
}

// room is what the server knows of one room.
type room struct {
	name       string
	info       centralapi.RoomInfo
	infoValid  bool
	infoAt     time.Time
	gen        uint64 // bumped by each invalidation
	refreshing bool
	stampSeq   uint64            // last seq stamped here (maybe not yet durable)
	ownSeq     uint64            // last seq stamped here and durable
	heads      map[string]uint64 // contiguous head per origin
	synced     bool              // caught up from peers since it gained local members
	catchingUp bool              // a background catch-up is running
}

// Open opens (or creates) the server's data and returns a server that is
// not yet registered with central; call Start.
func Open(cfg Config) (*Server, error) {
	if !validServerName(cfg.Name) {
		return nil, fmt.Errorf("server name %q: want 1-32 of a-z, 0-9 and -, not starting with -", cfg.Name)
	}
	if cfg.Central == nil || cfg.Connect == nil {
		return nil, errors.New("server: Config.Central and Config.Connect are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	st, err := openStore(cfg.Dir, cfg.Name, cfg.NoSync)
	if err != nil {
		return nil, err
	}
	ls, err := st.load(cfg.Name)
	if err != nil {
		st.close()
		return nil, err
	}
	stp, err := newStamper(cfg.ClockMode, ls.last)
	if err != nil {
		st.close()
		return nil, err
	}
	s := &Server{
		cfg: cfg, name: cfg.Name, clk: cfg.Clock, log: cfg.Logger.With("server", cfg.Name),
		central: cfg.Central, st: st, stamper: stp,
		rooms: map[string]*room{}, atts: map[string]*attachment{}, local: map[string]map[*attachment]bool{},
		peers: map[string]*forwarder{}, cursors: ls.cursors, posting: map[string]bool{},
		timers: map[*clock.Timer]bool{}, maxQueue: defaultMaxQueue,
		deliverBatch: defaultDeliverBatch, forwardBatch: defaultForwardBatch,
	}
	for name, rd := range ls.rooms {
		r := s.room(name)
		r.stampSeq, r.ownSeq, r.heads = rd.ownSeq, rd.ownSeq, rd.heads
	}
	s.commit = &committer{st: st, after: s.afterCommit, extra: s.takeDirtyCursors}
	s.wm, s.wmDefault, s.settledSent = map[string]map[string]int64{}, map[string]int64{}, map[string]int64{}
	s.known = map[string]bool{cfg.Name: true}
	for _, n := range ls.known {
		s.known[n] = true
	}
	s.leases = rmi.NewLeases(s.clk, s.attachmentExpired)
	return s, nil
}

func validServerName(n string) bool { return central.ValidServerName(n) }

// Name returns the server's name.
func (s *Server) Name() string { return s.name }

// Export exports the server's remote objects into t: ChatServer for
// clients under ObjectName, and Peer, cluster-only, under PeerObjectName.
func (s *Server) Export(t *rmi.Table) error {
	if err := rmi.Export[chatapi.ChatServer](t, chatapi.ObjectName, s); err != nil {
		return err
	}
	return rmi.Export[chatapi.Peer](t, chatapi.PeerObjectName, &peerAPI{s}, rmi.ClusterOnly())
}

// PeerAPI returns the server's server-to-server interface (what Export
// exports as PeerObjectName), for in-process wiring and tests.
func (s *Server) PeerAPI() chatapi.Peer { return &peerAPI{s} }

// Start registers the server with central and starts its background work
// (lease renewal, forwarding of anything left in the outbox, anti-entropy).
func (s *Server) Start(ctx context.Context) error {
	if err := s.register(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.started = true
	// Resume forwarding whatever the outbox may still hold.
	for _, r := range s.sortedRooms() {
		if r.ownSeq > 0 {
			s.dispatchLocked(r)
		}
	}
	s.after(s.renewWait, s.renew)
	s.after(antiEntropyTick, s.antiEntropy)
	if s.cfg.Settled {
		s.after(heartbeatEvery, s.heartbeat)
	}
	s.mu.Unlock()
	return nil
}

// Close stops background work and closes the data file. Attached clients
// are dropped; everything acknowledged is already durable.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	s.mu.Unlock()
	s.leases.Close()
	return s.st.close()
}

// after runs f after d as a background task, unless the server closes
// first. Callers hold s.mu.
func (s *Server) after(d time.Duration, f func()) {
	if s.closed {
		return
	}
	var t *clock.Timer
	t = s.clk.AfterFunc(d, func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		delete(s.timers, t)
		s.mu.Unlock()
		f()
	})
	s.timers[t] = true
}

// room returns the room's state, creating it. Callers hold s.mu.
func (s *Server) room(name string) *room {
	r := s.rooms[name]
	if r == nil {
		r = &room{name: name, heads: map[string]uint64{}}
		s.rooms[name] = r
	}
	return r
}

// sortedRooms lists rooms by name (deterministic iteration). Callers hold s.mu.
func (s *Server) sortedRooms() []*room {
	rs := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	return rs
}

// register (re-)registers with central and records the live servers. It
// presents the sessions attached here, so that after central forgot this
// server (a restart, or an expired lease) it knows where they are again;
// sessions central no longer accepts are detached.
func (s *Server) register(ctx context.Context) error {
	s.mu.Lock()
	atts := s.sortedAttachments()
	s.mu.Unlock()
	tokens := make([]string, len(atts))
	for i, a := range atts {
		tokens[i] = a.token
	}
	ctx, cancel := s.clk.WithTimeout(ctx, callTimeout)
	defer cancel()
	rep, err := s.central.RegisterServer(ctx, centralapi.RegisterArgs{Name: s.name, Addr: s.cfg.Addr, HTTP: s.cfg.HTTP, Sessions: tokens})
	if err != nil {
		return fmt.Errorf("register with central: %w", err)
	}
	s.mu.Lock()
	s.renewWait = rep.LeaseTTL / 3
	if s.renewWait <= 0 {
		s.renewWait = time.Second
	}
	s.setLiveLocked(rep.Servers, true)
	rejected := map[string]bool{}
	for _, t := range rep.Rejected {
		rejected[t] = true
	}
	s.mu.Unlock()
	for _, a := range atts {
		if rejected[a.token] {
			s.detach(a, "session no longer valid")
		}
	}
	return nil
}

// renew renews the lease at central; after central forgot us (restart or
// expiry) it registers again and re-presents every attached session.
//
// Each attempt waits at most a sixth of the lease (renewals are sent every
// third), and a failed one is retried after a second, so several lost
// renewals in a row fit in one lease.
func (s *Server) renew() {
	s.mu.Lock()
	wait := s.renewWait / 2
	s.mu.Unlock()
	ctx, cancel := s.clk.WithTimeout(context.Background(), max(wait, 100*time.Millisecond))
	defer cancel()
	rep, err := s.central.RenewServer(ctx, centralapi.RenewArgs{Name: s.name})
	switch {
	case err == nil:
		s.mu.Lock()
		s.setLiveLocked(rep.Servers, false)
		wait = s.renewWait
		s.mu.Unlock()
	case errors.Is(err, centralapi.ErrUnknownServer):
		s.log.Warn("central forgot this server; registering again")
		if err := s.register(context.Background()); err != nil {
			s.log.Warn("register again", "err", err)
			wait = time.Second
			break
		}
		s.mu.Lock()
		wait = s.renewWait
		s.mu.Unlock()
	default:
		s.log.Warn("renew lease at central", "err", err)
		wait = time.Second
	}
	s.mu.Lock()
	s.after(wait, s.renew)
	s.mu.Unlock()
}

// setLiveLocked records central's list of live servers; when a server
// appears, rooms with local members are caught up from it.
func (s *Server) setLiveLocked(servers []centralapi.ServerInfo, force bool) {
	known := map[string]bool{}
	for _, sv := range s.live {
		known[sv.Name] = true
	}
	newcomer := false
	for _, sv := range servers {
		if sv.Name == s.name {
			continue
		}
		if !known[sv.Name] {
			newcomer = true
		}
		if !s.known[sv.Name] {
			s.known[sv.Name] = true
			s.knownDirty = true
		}
		s.forwarder(sv.Name, sv.Addr)
	}
	changed := newcomer || len(servers) != len(s.live)
	s.live = servers
	if changed || force {
		// Cached memberships name servers as central saw them; with the
		// set of live servers changed (or central having forgotten us),
		// they may be wrong: read them again, now for rooms that matter.
		for _, r := range s.sortedRooms() {
			s.invalidateLocked(r)
			if r.ownSeq > 0 || len(s.local[r.name]) > 0 {
				s.refreshSoonLocked(r)
			}
		}
	}
	if newcomer && s.started {
		s.after(0, s.antiEntropy)
	}
}

// livePeers returns the other live servers, sorted by name.
func (s *Server) livePeers() []*forwarder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.livePeersLocked()
}

// livePeersLocked is livePeers for callers holding s.mu.
func (s *Server) livePeersLocked() []*forwarder {
	var out []*forwarder
	for _, sv := range s.live {
		if sv.Name != s.name {
			out = append(out, s.forwarder(sv.Name, sv.Addr))
		}
	}
	return out
}
