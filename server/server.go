package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/voice"
	"github.com/tinylib/msgp/msgp"
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
	defaultDeliverPace  = 4                // a client's next Deliver waits for this many of its round trips after the last (fanout.go)
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
	// Dir holds the server's data: its log (Dir/log, store.go).
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
	// WriteFault, if set, is asked after every write to the log, before
	// it is synced, and an error it returns fails that write as a full
	// disk would (storage.go). Only for tests of storage failure.
	WriteFault func() error
	// VoiceNetwork says which addresses and UDP ports the SFU of the voice
	// channels this server hosts uses. With no IPs, it offers the host of
	// Addr when that is an IP address (a loopback one works on one
	// machine), else every interface but loopback.
	VoiceNetwork voice.Network
	// VoiceMax caps each voice channel's participants; zero means
	// voice.DefaultMaxParticipants.
	VoiceMax int
	// VoiceRing is how often a caller alone in a direct room's voice
	// channel rings the other member again (ring.go); zero means
	// DefaultVoiceRing.
	VoiceRing time.Duration
}

// Server is a chat server. It implements ChatServer; its Peer interface is
// exported separately by Export.
//
// Its decisions are taken by plain cores with no lock, no I/O and no clock
// of their own (stamper, outbox, settledTracker, and roomMembers in each
// room): the server takes s.mu, calls a core, and carries out what it
// returns, making remote calls only after releasing s.mu.
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
	stamper      *stamper        // stamp times (stamp.go)
	out          *outbox         // what each other server is owed (outbox.go)
	settled      *settledTracker // watermarks and settled points (settled.go)
	rooms        map[string]*room
	atts         map[string]*attachment          // by session token
	ended        map[string]time.Time            // session id -> when it ended (ended.go)
	local        map[string]map[*attachment]bool // room -> attachments whose user is a member
	localSorted  map[string][]*attachment        // room -> local, sorted (localMembersLocked)
	peers        map[string]*forwarder           // other servers by name
	posting      map[postKey]bool                // posts being stamped, by sender and ID
	live         []centralapi.ServerInfo         // live servers, from central
	timers       map[*clock.Timer]bool           // armed timers, stopped by Close
	renewWait    time.Duration                   // lease renewal period
	maxQueue     int                             // per-client delivery queue bound
	deliverBatch int                             // messages per Deliver callback
	deliverPace  int                             // round trips between a client's Delivers (0: none)
	spareQueues  [][]msgp.Raw                    // emptied delivery queues for reuse (fanout.go)
	inflight     int                             // own posts stamped but not yet durable
	storageErr   error                           // the write that failed, while storage is failing (storage.go)
	probeWait    time.Duration                   // the wait before the next storage probe
	centralHTTP  string                          // central's web host:port, from the registration

	// Voice (voice.go, voicehost.go). As a participant's server: its
	// clients' joins by session, and each user's latest join by channel.
	// As a host: each participant's current session by channel.
	voiceNonce  string // makes this process's join sessions unique
	voiceSeq    uint64
	voiceJoins  map[string]*voiceJoin
	voiceByUser map[voiceKey]string
	voiceHosted map[voiceKey]string

	voiceMu     sync.Mutex // guards sfu and voiceClosed; never taken with s.mu held
	sfu         *voice.SFU // created when first needed (voiceSFU)
	voiceClosed bool       // Close closed the SFU: no other is made
}

// room is what the server knows of one room.
type room struct {
	name       string
	members    roomMembers       // cached membership (members.go)
	refreshing bool              // a membership refresh is scheduled or running
	stampSeq   uint64            // last seq stamped here (maybe not yet durable)
	heads      map[string]uint64 // contiguous head per origin
	synced     bool              // caught up from peers since it gained local members
	catchingUp bool              // a background catch-up is running
	// held are messages from other servers stored while the membership
	// was unknown, kept for the members its read makes local (commit.go).
	held []chatapi.Message
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
	if cfg.VoiceRing <= 0 {
		cfg.VoiceRing = DefaultVoiceRing
	}
	st, err := openStore(cfg.Dir, cfg.Name, cfg.NoSync)
	if err != nil {
		return nil, err
	}
	st.fault = cfg.WriteFault
	if n := st.tornBytes(); n > 0 {
		cfg.Logger.Warn("cut a torn write off the end of the log (a crash during a write; it was never acknowledged)",
			"server", cfg.Name, "bytes", n)
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
	durable := map[string]uint64{}
	for name, rd := range ls.rooms {
		durable[name] = rd.ownSeq
	}
	s := &Server{
		cfg: cfg, name: cfg.Name, clk: cfg.Clock, log: cfg.Logger.With("server", cfg.Name),
		central: cfg.Central, st: st, stamper: stp,
		out:     newOutbox(defaultForwardBatch, durable, ls.cursors),
		settled: newSettledTracker(cfg.Name, ls.known),
		rooms:   map[string]*room{}, atts: map[string]*attachment{}, ended: map[string]time.Time{},
		local: map[string]map[*attachment]bool{}, localSorted: map[string][]*attachment{},
		peers: map[string]*forwarder{}, posting: map[postKey]bool{},
		timers: map[*clock.Timer]bool{}, maxQueue: defaultMaxQueue, deliverBatch: defaultDeliverBatch,
		deliverPace: defaultDeliverPace,
		voiceNonce:  rand.Text()[:8], voiceJoins: map[string]*voiceJoin{},
		voiceByUser: map[voiceKey]string{}, voiceHosted: map[voiceKey]string{},
	}
	for name, rd := range ls.rooms {
		r := s.room(name)
		r.stampSeq, r.heads = rd.ownSeq, rd.heads
	}
	s.commit = &committer{
		st: st, after: s.committed, extra: s.takeDirtyCursors, unwritten: s.restoreCursors,
		failed: s.storageFailed,
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

// peerAPI is the Peer interface of a Server, exported cluster-only. Its
// methods live with their jobs: Forward in fanout.go, Fetch in
// catchup.go, RoomChanged in rooms.go.
type peerAPI struct{ s *Server }

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
		if s.out.has(r.name) {
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
	// The SFU first: its byes to the participants go out through this
	// server, which must still deliver them.
	s.closeVoice()
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
		name = strings.Clone(name) // not part of a decoded message, which it would keep alive
		r = &room{name: name, members: roomMembers{room: name}, heads: map[string]uint64{}}
		s.rooms[name] = r
	}
	return r
}

// sortedRooms lists rooms by name (deterministic iteration). Callers hold s.mu.
func (s *Server) sortedRooms() []*room {
	return slices.SortedFunc(maps.Values(s.rooms), func(a, b *room) int { return cmp.Compare(a.name, b.name) })
}
