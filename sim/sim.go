package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/benbjohnson/clock"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/sim/trace"
)

// Config sets up a simulation.
type Config struct {
	// Seed makes every random choice; the same seed and configuration give
	// the same run.
	Seed uint64
	// ClockMode is server.ClockWall or server.ClockHLC.
	ClockMode string
	// Delay is the default one-way delay of every link.
	Delay Dist
	// Drop and Dup are the default loss and duplication probabilities.
	Drop, Dup float64
	// Dir holds the nodes' data; empty means a temporary directory that
	// Close removes.
	Dir string
	// Settled turns on the chat servers' settled-prefix tracking, checked
	// by the stability checker.
	Settled bool
	// Trace keeps the full event trace (for the trace, ShiViz and SVG
	// outputs); without it only counters are kept.
	Trace bool
	// Logger receives the components' logs; nil discards them.
	Logger *slog.Logger
	// Wall is real time, used only to report the wall duration and to
	// detect a component that blocks outside the simulator's control;
	// nil means clock.New().
	Wall clock.Clock
}

// node is one simulated process: the central server, a chat server or a
// client.
type node struct {
	name  string
	kind  string // "central", "server", "client"
	up    bool
	inc   int // incarnation: bumped by each crash
	clock *nodeClock
	vc    vclock
	sim   *Sim

	table *rmi.Table // exported objects (central, servers)
	srv   *server.Server
	cen   *central.Central
	dir   string

	cl     *client.Client // clients
	home   string         // preferred server
	joined map[string]bool
}

func (n *node) tick() vclock {
	if !n.sim.cfg.Trace {
		return nil
	}
	n.vc[n.name]++
	return n.vc.clone()
}

func (n *node) recv(v vclock) vclock {
	if !n.sim.cfg.Trace {
		return nil
	}
	mergeMax(n.vc, v)
	n.vc[n.name]++
	return n.vc.clone()
}

// Sim is one simulation. Build it with New, add servers and users, script
// what happens with the action methods (each runs at the current virtual
// time) and Run, then Check.
type Sim struct {
	cfg     Config
	sched   *scheduler
	rng     *rand.Rand
	timers  clock.Clock // real clock: placeholder timers only (see nodeClock.AfterFunc)
	net     *network
	nodes   map[string]*node
	servers []*node
	clients []*node
	central *node
	tmpDir  bool

	callSeq   uint64
	pending   map[uint64]*call
	abandoned []*call
	peerSeq   uint64
	wallStart time.Time

	trace  []Event
	obs    observations
	wanted [][2]string // (user, room) joins of the random workload
}

const centralAddr = "central:1099"

// New builds a simulation with its central server running.
func New(cfg Config) (*Sim, error) {
	if cfg.ClockMode == "" {
		cfg.ClockMode = server.ClockHLC
	}
	if cfg.ClockMode != server.ClockWall && cfg.ClockMode != server.ClockHLC {
		return nil, fmt.Errorf("clock mode %q: want wall or hlc", cfg.ClockMode)
	}
	if cfg.Delay == nil {
		cfg.Delay = Uniform{time.Millisecond, 10 * time.Millisecond}
	}
	if cfg.Drop < 0 || cfg.Drop >= 1 || cfg.Dup < 0 || cfg.Dup >= 1 {
		return nil, fmt.Errorf("drop %g, dup %g: probabilities must be in [0, 1)", cfg.Drop, cfg.Dup)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Wall == nil {
		cfg.Wall = clock.New()
	}
	s := &Sim{
		cfg:     cfg,
		sched:   newScheduler(trace.Epoch, cfg.Wall),
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x6469737463686174)), // "distchat"
		timers:  clock.New(),
		nodes:   map[string]*node{},
		pending: map[uint64]*call{},
	}
	s.wallStart = cfg.Wall.Now()
	s.net = &network{sim: s, def: Link{Delay: cfg.Delay, Drop: cfg.Drop, Dup: cfg.Dup}, links: map[[2]string]Link{}, parts: map[string]int{}}
	if s.cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "distchat-sim-")
		if err != nil {
			return nil, err
		}
		s.cfg.Dir, s.tmpDir = dir, true
	}
	n := s.addNode("central", "central", 0, 0)
	n.dir = filepath.Join(s.cfg.Dir, "central")
	if err := s.openCentral(n); err != nil {
		s.Close()
		return nil, err
	}
	s.central = n
	return s, nil
}

func (s *Sim) addNode(name, kind string, offset time.Duration, drift float64) *node {
	n := &node{name: name, kind: kind, up: true, vc: vclock{}, sim: s, joined: map[string]bool{}}
	n.clock = &nodeClock{sim: s, node: n, offset: offset, drift: drift, base: s.sched.now}
	s.nodes[name] = n
	return n
}

// seeded returns a deterministic byte stream for a component's randomness.
func (s *Sim) seeded() io.Reader {
	return &randReader{r: rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))}
}

type randReader struct{ r *rand.Rand }

func (r *randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}

func (s *Sim) openCentral(n *node) error {
	cen, err := central.Open(central.Config{
		Dir: n.dir, Clock: n.clock, Logger: s.cfg.Logger.With("node", n.name),
		PasswordCost: bcrypt.MinCost, Rand: s.seeded(),
		Prefer: func(user string) string {
			if c := s.nodes[user]; c != nil {
				return c.home
			}
			return ""
		},
		Connect: func(addr string) rmi.Invoker {
			to := s.nodes[hostOf(addr)]
			if to == nil {
				return failing{addr}
			}
			return s.clusterInvoker(n, to)
		},
	})
	if err != nil {
		return fmt.Errorf("central: %w", err)
	}
	t := rmi.NewTable(s.cfg.Logger)
	if err := cen.Export(t); err != nil {
		return err
	}
	reg := rmi.NewRegistry()
	if err := rmi.Export[rmi.RegistryService](t, rmi.RegistryObjectName, reg); err != nil {
		return err
	}
	if err := (rmi.RegistryStub{Inv: rmi.Local{Table: t}}).Bind(context.Background(), centralapi.ObjectName, rmi.Ref{Addr: centralAddr, Object: centralapi.ObjectName}); err != nil {
		return err
	}
	n.cen, n.table = cen, t
	return nil
}

// clusterInvoker is a server's connection to another node, proving the
// cluster secret.
func (s *Sim) clusterInvoker(from, to *node) *invoker {
	s.peerSeq++
	return &invoker{sim: s, from: from, to: to, table: func() *rmi.Table { return to.table },
		peer: rmi.NewPeer(s.peerSeq, from.name, true, nil)}
}

// AddServer adds a chat server whose clock is offset from virtual time by
// offset and runs fast by drift (e.g. 1e-4 = 100 ppm), and starts it.
func (s *Sim) AddServer(name string, offset time.Duration, drift float64) error {
	if s.nodes[name] != nil {
		return fmt.Errorf("node %q exists", name)
	}
	n := s.addNode(name, "server", offset, drift)
	n.dir = filepath.Join(s.cfg.Dir, name)
	s.servers = append(s.servers, n)
	return s.startServer(n)
}

func (s *Sim) startServer(n *node) error {
	srv, err := server.Open(server.Config{
		Name: n.name, Addr: n.name + ":7000", Dir: n.dir, Clock: n.clock, ClockMode: s.cfg.ClockMode,
		Central: centralapi.ClusterStub{Inv: s.clusterInvoker(n, s.central)},
		Connect: func(addr string) rmi.Invoker {
			to := s.nodes[hostOf(addr)]
			if to == nil {
				return failing{addr}
			}
			return s.clusterInvoker(n, to)
		},
		Logger:  s.cfg.Logger.With("node", n.name),
		NoSync:  true,
		Settled: s.cfg.Settled,
	})
	if err != nil {
		return fmt.Errorf("server %s: %w", n.name, err)
	}
	t := rmi.NewTable(s.cfg.Logger)
	if err := srv.Export(t); err != nil {
		srv.Close()
		return err
	}
	n.srv, n.table = srv, t
	s.record(Event{Kind: "start", Node: n.name})
	s.startTask(n, srv, 0)
	return nil
}

// startTask registers a chat server with central, trying again a second
// later when that fails, as the distchat server command does.
func (s *Sim) startTask(n *node, srv *server.Server, attempt int) {
	s.task(n, "start", func(ctx context.Context) error {
		err := srv.Start(ctx)
		if err != nil && attempt < 60 {
			s.sched.after(time.Second, n, func() { s.startTask(n, srv, attempt+1) })
		}
		return err
	})
}

func hostOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i]
		}
	}
	return addr
}

// failing is the invoker for an address no node has.
type failing struct{ addr string }

func (f failing) Invoke(context.Context, string, string, any, any) error {
	return fmt.Errorf("%s: %w", f.addr, rmi.ErrConnect)
}

// task runs f as a task on node n now, recording failures.
func (s *Sim) task(n *node, what string, f func(ctx context.Context) error) {
	s.sched.after(0, n, func() {
		s.sched.runTask(func() {
			if err := f(context.Background()); err != nil {
				s.record(Event{Kind: "error", Node: n.name, Text: what + ": " + err.Error()})
				s.obs.errors++
			}
		})
	})
}

// Crash stops a chat server abruptly: its calls in flight are lost, its
// clients' calls fail, and its data stays on disk.
func (s *Sim) Crash(name string) error {
	n := s.nodes[name]
	if n == nil || n.kind != "server" {
		return fmt.Errorf("crash %q: no such server", name)
	}
	if !n.up {
		return fmt.Errorf("crash %q: already down", name)
	}
	n.up = false
	n.inc++
	s.record(Event{Kind: "crash", Node: name})
	s.obs.crashes++
	// Closing the file releases its lock so the restart can open it;
	// everything acknowledged is already in it. Parked tasks of this
	// node are abandoned and never touch it again.
	n.srv.Close()
	n.srv, n.table = nil, nil
	return nil
}

// Restart starts a crashed chat server again from its data.
func (s *Sim) Restart(name string) error {
	n := s.nodes[name]
	if n == nil || n.kind != "server" {
		return fmt.Errorf("restart %q: no such server", name)
	}
	if n.up {
		return fmt.Errorf("restart %q: it is running", name)
	}
	n.up = true
	s.record(Event{Kind: "restart", Node: name})
	return s.startServer(n)
}

// Partition splits the network into groups of nodes that can talk only
// among themselves; nodes not named form one more group together.
func (s *Sim) Partition(groups ...[]string) error {
	parts := map[string]int{}
	for i, g := range groups {
		for _, name := range g {
			if s.nodes[name] == nil {
				return fmt.Errorf("partition: no node %q", name)
			}
			parts[name] = i + 1
		}
	}
	s.net.parts = parts
	s.record(Event{Kind: "partition", Text: fmt.Sprint(groups)})
	return nil
}

// Heal ends any partition.
func (s *Sim) Heal() {
	s.net.parts = map[string]int{}
	s.record(Event{Kind: "heal"})
}

// SetLink overrides the link from one node to another (one direction).
func (s *Sim) SetLink(from, to string, l Link) { s.net.links[[2]string{from, to}] = l }

// StepClock jumps a server's clock by d (negative: backwards).
func (s *Sim) StepClock(name string, d time.Duration) error {
	n := s.nodes[name]
	if n == nil {
		return fmt.Errorf("clock step: no node %q", name)
	}
	n.clock.offset += d
	s.record(Event{Kind: "clockstep", Node: name, Text: d.String()})
	return nil
}

// Run advances virtual time by d, running every event due.
func (s *Sim) Run(d time.Duration) {
	until := s.sched.now.Add(d)
	s.sched.run(until, nil)
	s.sched.now = until
}

// RunUntil advances virtual time until cond holds (checked after each
// event) or max has passed; it reports whether cond held.
func (s *Sim) RunUntil(cond func() bool, max time.Duration) bool {
	until := s.sched.now.Add(max)
	s.sched.run(until, cond)
	if cond() {
		return true
	}
	s.sched.now = until
	return false
}

// Quiesce ends every fault — partitions heal, links stop losing and
// duplicating messages (their delays stay), crashed servers restart — and
// runs for settle, so the checkers see the system after it had the chance
// to converge.
func (s *Sim) Quiesce(settle time.Duration) {
	if len(s.net.parts) > 0 {
		s.Heal()
	}
	s.net.def.Drop, s.net.def.Dup = 0, 0
	for k, l := range s.net.links {
		l.Drop, l.Dup = 0, 0
		s.net.links[k] = l
	}
	for _, n := range s.servers {
		if !n.up {
			s.Restart(n.name)
		}
	}
	s.record(Event{Kind: "quiesce"})
	s.Run(settle)
}

// Now is the virtual time elapsed since the start.
func (s *Sim) Now() time.Duration { return s.sched.now.Sub(s.sched.start) }

// Close ends the simulation: calls still parked are completed with an
// error so their goroutines finish, the nodes are closed, and a temporary
// data directory is removed.
func (s *Sim) Close() error {
	s.sched.closing = true
	for _, id := range slices.Sorted(maps.Keys(s.pending)) {
		if c := s.pending[id]; c != nil {
			s.finish(c, nil, rmi.ErrClosed)
		}
	}
	for _, c := range s.abandoned {
		// Their process is gone; let the goroutine end. Every call it
		// makes now fails at once.
		c.err = rmi.ErrClosed
		s.sched.resume(c.wake)
	}
	s.sched.stop()
	// Stop the placeholder timers of events that will never run.
	for _, e := range s.sched.q {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	s.sched.q = nil
	var errs []error
	for _, n := range s.clients {
		if n.cl != nil {
			n.cl.Close()
		}
	}
	for _, n := range s.servers {
		if n.srv != nil {
			errs = append(errs, n.srv.Close())
		}
	}
	if s.central.cen != nil {
		errs = append(errs, s.central.cen.Close())
	}
	if s.tmpDir {
		errs = append(errs, os.RemoveAll(s.cfg.Dir))
	}
	return errors.Join(errs...)
}
