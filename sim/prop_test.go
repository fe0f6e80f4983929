package sim

// Property tests: random topologies, fault schedules and workloads, drawn
// through pgregory.net/rapid so that a failure shrinks to a minimal
// schedule, checked for agreement and completeness in both clock modes and
// for causality in hlc mode.
//
// A failing case logs the schedule as a script in the scenario language
// (see ScenarioHelp): exactly the Sim calls the test made, in order, with
// the virtual time advanced between them by "run" lines. Save it to a file
// to read it, replay it with `distchat sim --scenario FILE`, or add "log"
// and "posts" directives to see more.
//
// rapid also writes the failing case to
// sim/testdata/rapid/<TestName>/<TestName>-<time>-<pid>.fail and, on every
// later run, replays the fail files it finds there before trying new
// cases. To replay one explicitly:
//
//	go test ./sim -run 'TestPropFaults/hlc' -rapid.failfile=testdata/rapid/TestPropFaults_hlc/TestPropFaults_hlc-....fail
//
// (or with the -rapid.seed=N the failure message prints). A fail file
// replays only while the generator below draws the same way; after
// changing it, replay from the logged script instead.
//
// The number of cases: rapid's default (-rapid.checks=100) is too slow for
// a simulation per case, so these tests run propChecks cases unless
// -rapid.checks or RAPID_CHECKS says otherwise (and a fifth of that with
// -short). For a deeper search:
//
//	go test ./sim -run TestPropFaults -rapid.checks=500 -timeout=1h

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/distchat/distchat/server"
)

// propChecks is how many random schedules each property test tries by
// default, per clock mode.
const propChecks = 30

// propSettle is the quiescence period at the end of every schedule, once
// every fault is repaired: long enough for attachment leases (30s), server
// leases at central (10s), anti-entropy (every 10s), a call lost just
// before the repair to time out (10s for clients, up to 30s for a server's
// forwarding back-off) and be retried after a failover, and the clients'
// gap syncs (2s).
const propSettle = 90 * time.Second

// propLimitChecks makes rapid run n cases in this test unless the number
// was chosen on the command line (-rapid.checks) or in the environment
// (RAPID_CHECKS). It sets the flag's value without marking the flag as set,
// and restores it when the test ends.
func propLimitChecks(t *testing.T, n int) {
	t.Helper()
	if _, ok := os.LookupEnv("RAPID_CHECKS"); ok {
		return
	}
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.checks" })
	f := flag.Lookup("rapid.checks")
	if explicit || f == nil {
		return
	}
	old := f.Value.String()
	if err := f.Value.Set(strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Value.Set(old) })
}

// propTB is what the runner needs of *testing.T and *rapid.T.
type propTB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// A propSchedule is one random run: topology, faults and workload.
type propSchedule struct {
	Mode    string
	Settled bool   // the servers' settled-prefix tracking (on in production)
	Seed    uint64 // the network's randomness (and message ids)
	Delay   Dist   // every link's delay
	Drop    float64
	Dup     float64 // loss and duplication on every link during the fault phase
	Servers []propServer
	Users   []propUser
	Rooms   []propRoom
	Links   []propLink // per-link overrides during the fault phase
	Steps   []propStep // the fault phase, in time order
	Settle  time.Duration
}

type propServer struct {
	Name   string
	Offset time.Duration
	Drift  float64
}

type propUser struct{ Name, Home string }

type propRoom struct {
	Name    string
	Creator string
	Members []string // besides the creator
}

type propLink struct {
	From, To string
	Link     Link
}

// propStep is one action of the fault phase, At after its start.
type propStep struct {
	At   time.Duration
	Kind string // post, msg, join, partition, heal, crash, restart, step
	User string // post, msg, join
	Peer string // msg
	Room string // post, join
	Text string // post, msg
	Node string // crash, restart, step
	D    time.Duration
	// Groups of a partition: the first is named, the second is everyone
	// else (also named, for the reader).
	Groups [2][]string
}

// propRaw is a step as rapid draws it: numbers only, interpreted against
// the topology and the memberships so far (see interpret). Keeping the
// draw free of state lets rapid delete any step while shrinking.
type propRaw struct {
	Gap  int // ms since the previous step
	Kind int // 0..99, see interpret
	A, B int // choices (users, rooms, servers), taken modulo the candidates
	Mask int // partition: which nodes are in the first group
	Dur  int // ms: outage or partition length, clock step size
	Neg  bool
}

func propDrawDist(t *rapid.T, label string) Dist {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	switch rapid.IntRange(0, 3).Draw(t, label+"-kind") {
	case 0:
		return Constant(ms(rapid.IntRange(0, 20).Draw(t, label+"-ms")))
	case 1:
		lo := rapid.IntRange(0, 10).Draw(t, label+"-min")
		return Uniform{ms(lo), ms(lo + rapid.IntRange(0, 30).Draw(t, label+"-spread"))}
	case 2:
		return Exponential{ms(rapid.IntRange(0, 5).Draw(t, label+"-min")), ms(rapid.IntRange(1, 20).Draw(t, label+"-mean"))}
	default:
		lo := rapid.IntRange(0, 5).Draw(t, label+"-min")
		tail := rapid.IntRange(20, 500).Draw(t, label+"-tail")
		return LongTail{
			Base: Uniform{ms(lo), ms(lo + rapid.IntRange(0, 10).Draw(t, label+"-spread"))},
			P:    float64(rapid.IntRange(1, 20).Draw(t, label+"-tail-percent")) / 100,
			Tail: Uniform{ms(tail), ms(tail + rapid.IntRange(0, 2000).Draw(t, label+"-tail-spread"))},
		}
	}
}

func propPermille(t *rapid.T, max int, label string) float64 {
	return float64(rapid.IntRange(0, max).Draw(t, label)) / 1000
}

// drawSchedule draws a schedule for clock mode mode.
func propDraw(t *rapid.T, mode string) *propSchedule {
	sc := &propSchedule{Mode: mode, Settle: propSettle}
	sc.Settled = rapid.Bool().Draw(t, "settled")
	sc.Seed = rapid.Uint64().Draw(t, "seed")
	sc.Delay = propDrawDist(t, "delay")
	sc.Drop = propPermille(t, 50, "drop-permille")
	sc.Dup = propPermille(t, 50, "dup-permille")
	nServers := rapid.IntRange(2, 5).Draw(t, "servers")
	for i := 0; i < nServers; i++ {
		sc.Servers = append(sc.Servers, propServer{
			Name:   serverName(i),
			Offset: time.Duration(rapid.IntRange(-500, 500).Draw(t, "offset-ms")) * time.Millisecond,
			Drift:  float64(rapid.IntRange(-100, 100).Draw(t, "drift-ppm")) / 1e6,
		})
	}
	nUsers := rapid.IntRange(2, 8).Draw(t, "users")
	for i := 0; i < nUsers; i++ {
		home := rapid.IntRange(0, nServers-1).Draw(t, "home")
		sc.Users = append(sc.Users, propUser{Name: userName(i), Home: serverName(home)})
	}
	nRooms := rapid.IntRange(1, 3).Draw(t, "rooms")
	for r := 0; r < nRooms; r++ {
		creator := rapid.IntRange(0, nUsers-1).Draw(t, "creator")
		room := propRoom{Name: roomName(r), Creator: userName(creator)}
		for i := 0; i < nUsers; i++ {
			if i != creator && rapid.Bool().Draw(t, "member") {
				room.Members = append(room.Members, userName(i))
			}
		}
		sc.Rooms = append(sc.Rooms, room)
	}
	nodes, pairs := sc.nodes(), sc.pairs()
	links := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) propLink {
		p := pairs[rapid.IntRange(0, len(pairs)-1).Draw(t, "link")]
		return propLink{From: p[0], To: p[1], Link: Link{
			Delay: propDrawDist(t, "link-delay"),
			Drop:  propPermille(t, 50, "link-drop-permille"),
			Dup:   propPermille(t, 50, "link-dup-permille"),
		}}
	}), 0, 3).Draw(t, "links")
	sc.Links = links
	raws := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) propRaw {
		return propRaw{
			Gap:  rapid.IntRange(0, 3000).Draw(t, "gap-ms"),
			Kind: rapid.IntRange(0, 99).Draw(t, "kind"),
			A:    rapid.IntRange(0, 63).Draw(t, "a"),
			B:    rapid.IntRange(0, 63).Draw(t, "b"),
			Mask: rapid.IntRange(0, 1<<len(nodes)-1).Draw(t, "mask"),
			Dur:  rapid.IntRange(0, 10000).Draw(t, "dur-ms"),
			Neg:  rapid.Bool().Draw(t, "neg"),
		}
	}), 1, 30).Draw(t, "steps")
	sc.Steps = sc.interpret(raws)
	return sc
}

// nodes lists central, the servers and the users.
func (sc *propSchedule) nodes() []string {
	out := []string{"central"}
	for _, s := range sc.Servers {
		out = append(out, s.Name)
	}
	for _, u := range sc.Users {
		out = append(out, u.Name)
	}
	return out
}

// pairs lists the links that carry messages: both ways between central
// and every server or user, between servers, and between servers and
// users.
func (sc *propSchedule) pairs() [][2]string {
	var out [][2]string
	nodes := sc.nodes()
	users := len(nodes) - len(sc.Users)
	for i, a := range nodes {
		for j, b := range nodes {
			if i != j && (i < users || j < users) {
				out = append(out, [2]string{a, b})
			}
		}
	}
	return out
}

// interpret turns raw draws into steps. Kinds by raw.Kind: 0-49 post
// (a msg if the user is in no room), 50-59 msg (direct message), 60-69 join, 70-79 partition healed after
// Dur, 80-89 crash restarted after Dur, 90-99 clock step of ±Dur/5.
func (sc *propSchedule) interpret(raws []propRaw) []propStep {
	member := map[string]map[string]bool{}
	for _, u := range sc.Users {
		member[u.Name] = map[string]bool{}
	}
	for _, r := range sc.Rooms {
		member[r.Creator][r.Name] = true
		for _, m := range r.Members {
			member[m][r.Name] = true
		}
	}
	nodes := sc.nodes()
	var steps []propStep
	at := time.Duration(0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for i, raw := range raws {
		at += ms(raw.Gap)
		user := sc.Users[raw.A%len(sc.Users)].Name
		srv := sc.Servers[raw.A%len(sc.Servers)].Name
		switch k := raw.Kind; {
		case k < 50 && len(member[user]) > 0:
			rooms := slices.Sorted(maps.Keys(member[user]))
			steps = append(steps, propStep{At: at, Kind: "post", User: user, Room: rooms[raw.B%len(rooms)], Text: fmt.Sprintf("%s#%d", user, i+1)})
		case k < 60:
			// (Also a post by a user in no room yet.)
			peer := sc.Users[(raw.A+1+raw.B%(len(sc.Users)-1))%len(sc.Users)].Name
			steps = append(steps, propStep{At: at, Kind: "msg", User: user, Peer: peer, Text: fmt.Sprintf("%s#%d", user, i+1)})
		case k < 70:
			var candidates []string
			for _, r := range sc.Rooms {
				if !member[user][r.Name] {
					candidates = append(candidates, r.Name)
				}
			}
			if len(candidates) == 0 {
				continue
			}
			room := candidates[raw.B%len(candidates)]
			member[user][room] = true
			steps = append(steps, propStep{At: at, Kind: "join", User: user, Room: room})
		case k < 80:
			var g [2][]string
			for j, n := range nodes {
				side := 1
				if raw.Mask&(1<<j) != 0 {
					side = 0
				}
				g[side] = append(g[side], n)
			}
			if len(g[0]) == 0 || len(g[1]) == 0 {
				continue
			}
			steps = append(steps, propStep{At: at, Kind: "partition", Groups: g},
				propStep{At: at + ms(raw.Dur), Kind: "heal"})
		case k < 90:
			steps = append(steps, propStep{At: at, Kind: "crash", Node: srv},
				propStep{At: at + ms(raw.Dur), Kind: "restart", Node: srv})
		default:
			d := ms(raw.Dur / 5)
			if raw.Neg {
				d = -d
			}
			steps = append(steps, propStep{At: at, Kind: "step", Node: srv, D: d})
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	return steps
}

// maxDelay bounds d's samples (for Exponential, all but a 1e-13 tail).
func propMaxDelay(d Dist) time.Duration {
	switch d := d.(type) {
	case Constant:
		return time.Duration(d)
	case Uniform:
		return d.Max
	case Exponential:
		return d.Min + 30*d.Mean
	case LongTail:
		return max(propMaxDelay(d.Base), propMaxDelay(d.Tail))
	}
	return time.Second
}

// propRun is a schedule being run: the simulation and the script of what
// was done to it, in the scenario language.
type propRun struct {
	t          propTB
	sc         *propSchedule
	s          *Sim
	rep        *Report       // the checks at quiescence
	faultStart time.Duration // virtual time the fault phase started
	script     []string
	pending    time.Duration // run not yet written to the script
}

func (r *propRun) say(format string, args ...any) {
	r.flush()
	r.script = append(r.script, fmt.Sprintf(format, args...))
}

func (r *propRun) flush() {
	if r.pending > 0 {
		r.script = append(r.script, "run "+r.pending.String())
		r.pending = 0
	}
}

func (r *propRun) run(d time.Duration) {
	if d <= 0 {
		return
	}
	r.s.Run(d)
	r.pending += d
}

// Script returns the scenario script of everything done so far.
func (r *propRun) Script() string {
	r.flush()
	return strings.Join(r.script, "\n")
}

// fail ends the test, logging the script.
func (r *propRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Logf("schedule (scenario script):\n%s", r.Script())
	r.t.Fatalf(format, args...)
}

func propLinkArgs(l Link) string {
	return fmt.Sprintf("delay=%s drop=%g dup=%g", l.Delay, l.Drop, l.Dup)
}

// runUntil runs in steps of 250ms until cond holds or limit passes.
func (r *propRun) runUntil(limit time.Duration, cond func() bool) bool {
	for waited := time.Duration(0); !cond(); waited += 250 * time.Millisecond {
		if waited >= limit {
			return false
		}
		r.run(250 * time.Millisecond)
	}
	return true
}

// member reports whether user's client knows it is in room.
func (r *propRun) member(user, room string) bool {
	for _, x := range r.s.Rooms(user) {
		if x == room {
			return true
		}
	}
	return false
}

// runSchedule runs sc and leaves the simulation at quiescence, with the
// checkers' report in r.rep; the caller closes r.s. The setup (servers,
// logins, rooms, initial members) happens on a network that delays but
// loses nothing, and must complete; then the fault phase runs the steps;
// then every fault is repaired (partition healed, servers restarted,
// links restored) and the system settles for sc.Settle.
func propRunSchedule(t propTB, sc *propSchedule, trace bool) *propRun {
	t.Helper()
	s, err := New(Config{Seed: sc.Seed, ClockMode: sc.Mode, Delay: sc.Delay, Settled: sc.Settled, Trace: trace})
	if err != nil {
		t.Fatalf("new simulation: %v", err)
	}
	r := &propRun{t: t, sc: sc, s: s}
	ok := false
	defer func() {
		if !ok {
			r.closeAfter(recover())
		}
	}()
	settled := "off"
	if sc.Settled {
		settled = "on"
	}
	r.say("config seed=%d clock=%s delay=%s drop=0 dup=0 settled=%s", sc.Seed, sc.Mode, sc.Delay, settled)
	for _, sv := range sc.Servers {
		if err := s.AddServer(sv.Name, sv.Offset, sv.Drift); err != nil {
			r.fail("server %s: %v", sv.Name, err)
		}
		r.say("server %s skew=%s drift=%g", sv.Name, sv.Offset, sv.Drift)
	}
	// Central places users only on registered servers: give every server
	// time for its registration round trip.
	r.run(2*propMaxDelay(sc.Delay) + 100*time.Millisecond)
	for _, u := range sc.Users {
		if err := s.AddUser(u.Name, u.Home); err != nil {
			r.fail("user %s: %v", u.Name, err)
		}
		r.say("user %s on=%s", u.Name, u.Home)
	}
	const setupLimit = 60 * time.Second
	if !r.runUntil(setupLimit, func() bool {
		for _, u := range sc.Users {
			if s.ServerOf(u.Name) == "" {
				return false
			}
		}
		return true
	}) {
		r.fail("setup on a lossless network: not every user logged in within %v", setupLimit)
	}
	for _, room := range sc.Rooms {
		if err := s.Create(room.Creator, room.Name); err != nil {
			r.fail("create: %v", err)
		}
		r.say("create %s %s", room.Creator, room.Name)
	}
	if !r.runUntil(setupLimit, func() bool {
		for _, room := range sc.Rooms {
			if !r.member(room.Creator, room.Name) {
				return false
			}
		}
		return true
	}) {
		r.fail("setup on a lossless network: rooms not created within %v", setupLimit)
	}
	for _, room := range sc.Rooms {
		for _, m := range room.Members {
			if err := s.Join(m, room.Name); err != nil {
				r.fail("join: %v", err)
			}
			r.say("join %s %s", m, room.Name)
		}
	}
	if !r.runUntil(setupLimit, func() bool {
		for _, room := range sc.Rooms {
			for _, m := range room.Members {
				if !r.member(m, room.Name) {
					return false
				}
			}
		}
		return true
	}) {
		r.fail("setup on a lossless network: initial joins not done within %v", setupLimit)
	}

	// The fault phase.
	lossy := sc.Drop > 0 || sc.Dup > 0
	if lossy {
		r.say("# the fault phase: every link drops %g and duplicates %g of its messages", sc.Drop, sc.Dup)
		l := Link{Delay: sc.Delay, Drop: sc.Drop, Dup: sc.Dup}
		for _, p := range sc.pairs() {
			s.SetLink(p[0], p[1], l)
			r.say("link %s %s %s", p[0], p[1], propLinkArgs(l))
		}
	} else {
		r.say("# the fault phase")
	}
	for _, l := range sc.Links {
		s.SetLink(l.From, l.To, l.Link)
		r.say("link %s %s %s", l.From, l.To, propLinkArgs(l.Link))
	}
	r.faultStart = s.Now()
	for _, st := range sc.Steps {
		r.run(r.faultStart + st.At - s.Now())
		switch st.Kind {
		case "post":
			err = s.Post(st.User, st.Room, st.Text)
			r.say("post %s %s %s", st.User, st.Room, st.Text)
		case "msg":
			err = s.Direct(st.User, st.Peer, st.Text)
			r.say("msg %s %s %s", st.User, st.Peer, st.Text)
		case "join":
			err = s.Join(st.User, st.Room)
			r.say("join %s %s", st.User, st.Room)
		case "partition":
			err = s.Partition(st.Groups[0], st.Groups[1])
			r.say("partition %s | %s", strings.Join(st.Groups[0], ","), strings.Join(st.Groups[1], ","))
		case "heal":
			s.Heal()
			r.say("heal")
		case "crash":
			if s.nodes[st.Node].up {
				err = s.Crash(st.Node)
				r.say("crash %s", st.Node)
			}
		case "restart":
			if !s.nodes[st.Node].up {
				err = s.Restart(st.Node)
				r.say("restart %s", st.Node)
			}
		case "step":
			err = s.StepClock(st.Node, st.D)
			r.say("step %s %s", st.Node, st.D)
		default:
			err = fmt.Errorf("unknown step kind %q", st.Kind)
		}
		if err != nil {
			r.fail("%s at +%v: %v", st.Kind, st.At, err)
		}
	}

	// Repair everything and settle.
	r.run(time.Second)
	r.say("# repair: heal, restart every server, links lose nothing; then settle")
	s.Heal()
	r.say("heal")
	for _, sv := range sc.Servers {
		if !s.nodes[sv.Name].up {
			if err := s.Restart(sv.Name); err != nil {
				r.fail("restart %s: %v", sv.Name, err)
			}
			r.say("restart %s", sv.Name)
		}
	}
	clean := Link{Delay: sc.Delay}
	restored := map[[2]string]bool{}
	restore := func(a, b string) {
		if !restored[[2]string{a, b}] {
			restored[[2]string{a, b}] = true
			s.SetLink(a, b, clean)
			r.say("link %s %s", a, b)
		}
	}
	if lossy {
		for _, p := range sc.pairs() {
			restore(p[0], p[1])
		}
	}
	for _, l := range sc.Links {
		restore(l.From, l.To)
	}
	r.run(sc.Settle)
	r.rep = s.Check()
	ok = true
	return r
}

// closeAfter closes the simulation on the way out of a failed or
// panicking test and passes the panic p (if any) on. After the scheduler's
// watchdog panicked ("sim: a task ran for ...") a task may be stuck holding
// a component's lock, and Close would wait for it forever: then the
// simulation is left as it is.
func (r *propRun) closeAfter(p any) {
	if msg, ok := p.(string); !ok || !strings.HasPrefix(msg, "sim: ") {
		r.s.Close()
	}
	if p != nil {
		panic(p)
	}
}

// close is deferred by the callers of propRunSchedule.
func (r *propRun) close() { r.closeAfter(recover()) }

// requireProps fails the test if the run broke agreement or completeness,
// or causality in hlc mode. With lasting set, it first runs five more
// minutes of virtual time and reports whether the violation lasts, to
// tell a convergence that is merely slow from one that never happens (the
// property test leaves that out: it would slow every step of shrinking).
func (r *propRun) requireProps(lasting bool) {
	r.t.Helper()
	rep := r.rep
	if rep.Agreement.OK && rep.Completeness.OK && (rep.Causality.OK || r.sc.Mode != server.ClockHLC) {
		return
	}
	var detached []string
	for _, u := range r.sc.Users {
		if r.s.ServerOf(u.Name) == "" {
			detached = append(detached, u.Name)
		}
	}
	r.say("check")
	r.t.Logf("schedule (scenario script):\n%s", r.Script())
	r.t.Logf("at the check: users without a chat server: %v; calls in flight: %d", detached, len(r.s.pending))
	if lasting {
		r.s.Run(5 * time.Minute)
		r.t.Logf("five minutes later the checks say:\n%s", r.s.Check().Checks())
	}
	r.t.Fatalf("%s clock, %d servers, %d users, %d rooms, %d steps: %d posts (%d acked), %d errors; the checks after %v of quiescence:\n%s",
		r.sc.Mode, len(r.sc.Servers), len(r.sc.Users), len(r.sc.Rooms), len(r.sc.Steps), rep.Posts, rep.Acked, rep.Errors, r.sc.Settle, rep.Checks())
}

// TestPropFaults: under random topologies, fault schedules and workloads,
// agreement and completeness hold in both clock modes, and causality in
// hlc mode.
func TestPropFaults(t *testing.T) {
	propLimitChecks(t, propChecks)
	for _, mode := range []string{server.ClockHLC, server.ClockWall} {
		t.Run(mode, rapid.MakeCheck(func(t *rapid.T) {
			r := propRunSchedule(t, propDraw(t, mode), false)
			defer r.close()
			r.requireProps(false)
		}))
	}
}

// Focused tests: one fault kind each, on a fixed topology, so that a
// failure names the kind. Each runs in both clock modes.

// baseSchedule is the fixed topology of the focused tests: three servers
// with skewed, drifting clocks, six users (two per server), two rooms with
// members on every server, and a steady stream of posts (one every gap,
// round robin over the users) during the fault phase, plus two direct
// messages.
func propBaseSchedule(mode string, seed uint64, posts int, gap time.Duration) *propSchedule {
	sc := &propSchedule{
		Mode: mode, Settled: true, Seed: seed, Settle: propSettle,
		Delay: Uniform{time.Millisecond, 5 * time.Millisecond},
		Servers: []propServer{
			{Name: "s1", Offset: 40 * time.Millisecond, Drift: 50e-6},
			{Name: "s2", Offset: -30 * time.Millisecond, Drift: -20e-6},
			{Name: "s3"},
		},
		Rooms: []propRoom{
			{Name: "r1", Creator: "u01", Members: []string{"u02", "u03", "u04", "u05"}},
			{Name: "r2", Creator: "u06", Members: []string{"u01", "u03", "u04"}},
		},
	}
	for i := 0; i < 6; i++ {
		sc.Users = append(sc.Users, propUser{Name: userName(i), Home: serverName(i % 3)})
	}
	member := map[string][]string{}
	for _, room := range sc.Rooms {
		for _, u := range append([]string{room.Creator}, room.Members...) {
			member[u] = append(member[u], room.Name)
		}
	}
	for i := 0; i < posts; i++ {
		u := sc.Users[i%len(sc.Users)].Name
		rooms := member[u]
		sc.Steps = append(sc.Steps, propStep{At: time.Duration(i) * gap, Kind: "post", User: u, Room: rooms[i/len(sc.Users)%len(rooms)], Text: fmt.Sprintf("%s#%d", u, i+1)})
	}
	sc.Steps = append(sc.Steps,
		propStep{At: gap / 2, Kind: "msg", User: "u02", Peer: "u06", Text: "u02#dm1"},
		propStep{At: time.Duration(posts) * gap / 2, Kind: "msg", User: "u06", Peer: "u02", Text: "u06#dm2"})
	return sc
}

// addSteps adds steps to sc, keeping them in time order.
func (sc *propSchedule) addSteps(steps ...propStep) {
	sc.Steps = append(sc.Steps, steps...)
	sort.SliceStable(sc.Steps, func(i, j int) bool { return sc.Steps[i].At < sc.Steps[j].At })
}

// count counts the trace events that match.
func propCount(s *Sim, match func(e Event) bool) int {
	n := 0
	for _, e := range s.Trace() {
		if match(e) {
			n++
		}
	}
	return n
}

// forEachMode runs f as a subtest per clock mode.
func propForEachMode(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range []string{server.ClockHLC, server.ClockWall} {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

// TestFaultDropsAndDups: every link loses and duplicates 5% of its
// messages while users post.
func TestFaultDropsAndDups(t *testing.T) {
	propForEachMode(t, func(t *testing.T, mode string) {
		for seed := uint64(1); seed <= 3; seed++ {
			func() {
				sc := propBaseSchedule(mode, seed, 60, 100*time.Millisecond)
				sc.Drop, sc.Dup = 0.05, 0.05
				r := propRunSchedule(t, sc, true)
				defer r.close()
				r.requireProps(true)
				drops := propCount(r.s, func(e Event) bool { return e.Kind == "drop" })
				dups := propCount(r.s, func(e Event) bool { return e.Kind == "recv" && e.Dup })
				if drops == 0 || dups == 0 || r.rep.Acked == 0 {
					t.Fatalf("seed %d: %d drops, %d duplicated requests, %d acked posts: the fault did not happen", seed, drops, dups, r.rep.Acked)
				}
			}()
		}
	})
}

// TestFaultLongTailReordering: one message in ten takes 100ms-1s instead
// of 1-3ms (labrpc's long reordering), so later messages overtake earlier
// ones; the clients must still agree.
func TestFaultLongTailReordering(t *testing.T) {
	propForEachMode(t, func(t *testing.T, mode string) {
		sc := propBaseSchedule(mode, 7, 100, 20*time.Millisecond)
		sc.Delay = LongTail{Base: Uniform{time.Millisecond, 3 * time.Millisecond}, P: 0.1, Tail: Uniform{100 * time.Millisecond, time.Second}}
		r := propRunSchedule(t, sc, true)
		defer r.close()
		r.requireProps(true)
		if r.rep.Reorders == 0 || r.rep.Acked == 0 {
			t.Fatalf("%d acked posts, %d reorders: the long tail reordered nothing", r.rep.Acked, r.rep.Reorders)
		}
	})
}

// TestFaultPartitionHeals: s1 and its users are cut off from central and
// the other servers for 12s (longer than the servers' 10s lease at
// central) while everyone posts; then the partition heals.
func TestFaultPartitionHeals(t *testing.T) {
	propForEachMode(t, func(t *testing.T, mode string) {
		sc := propBaseSchedule(mode, 3, 80, 200*time.Millisecond)
		sc.addSteps(
			propStep{At: 2 * time.Second, Kind: "partition", Groups: [2][]string{{"s1", "u01", "u04"}, {"central", "s2", "s3", "u02", "u03", "u05", "u06"}}},
			propStep{At: 14 * time.Second, Kind: "heal"})
		r := propRunSchedule(t, sc, true)
		defer r.close()
		r.requireProps(true)
		from, to := r.faultStart+2*time.Second, r.faultStart+14*time.Second
		cut := propCount(r.s, func(e Event) bool { return e.Kind == "drop" && e.T >= from && e.T < to })
		acked := propCount(r.s, func(e Event) bool { return e.Kind == "ack" && e.T >= from && e.T < to })
		if cut == 0 || acked == 0 {
			t.Fatalf("during the partition: %d messages cut, %d posts acked: the partition did not take effect", cut, acked)
		}
	})
}

// TestFaultCrashMidFanout: s1 stores and acknowledges a burst of posts
// and forwards them to s2, but its requests to s3 are lost; it crashes
// with the fan-out half done (s2 has the posts, s3 has not) and restarts
// 3s later from its disk.
func TestFaultCrashMidFanout(t *testing.T) {
	propForEachMode(t, func(t *testing.T, mode string) {
		sc := propBaseSchedule(mode, 5, 0, 0)
		sc.Delay = Constant(5 * time.Millisecond)
		sc.Steps = nil
		sc.Links = []propLink{{From: "s1", To: "s3", Link: Link{Delay: sc.Delay, Drop: 1}}}
		for i := 0; i < 5; i++ {
			sc.Steps = append(sc.Steps, propStep{At: time.Duration(i) * 10 * time.Millisecond, Kind: "post", User: "u01", Room: "r1", Text: fmt.Sprintf("u01#%d", i+1)})
		}
		// Each post is acknowledged 10ms after it is made (two 5ms hops);
		// the last at +50ms.
		const crashAt = 60 * time.Millisecond
		sc.addSteps(
			propStep{At: crashAt, Kind: "crash", Node: "s1"},
			propStep{At: crashAt + 3*time.Second, Kind: "restart", Node: "s1"})
		r := propRunSchedule(t, sc, true)
		defer r.close()
		r.requireProps(true)
		crash := r.faultStart + crashAt
		acked := propCount(r.s, func(e Event) bool { return e.Kind == "ack" && e.Node == "u01" && e.T < crash })
		atS2 := propCount(r.s, func(e Event) bool {
			return e.Kind == "recv" && e.Node == "s2" && e.Peer == "s1" && e.Method == "ChatPeer.Forward" && e.T < crash
		})
		atS3 := propCount(r.s, func(e Event) bool {
			return e.Kind == "recv" && e.Node == "s3" && e.Peer == "s1" && e.Method == "ChatPeer.Forward" && e.T < crash
		})
		if acked != 5 || atS2 == 0 || atS3 != 0 {
			t.Fatalf("before the crash: %d of 5 posts acked, %d forwards reached s2, %d reached s3: not a crash in mid-fan-out", acked, atS2, atS3)
		}
	})
}

// TestFaultClockStepBack: s2's clock jumps 5s back while users post; in
// wall mode this reorders s2's later stamps against the others', but
// agreement and completeness must hold (and causality too in hlc mode).
func TestFaultClockStepBack(t *testing.T) {
	propForEachMode(t, func(t *testing.T, mode string) {
		sc := propBaseSchedule(mode, 11, 60, 100*time.Millisecond)
		sc.addSteps(propStep{At: 2 * time.Second, Kind: "step", Node: "s2", D: -5 * time.Second})
		r := propRunSchedule(t, sc, true)
		defer r.close()
		r.requireProps(true)
		after := propCount(r.s, func(e Event) bool {
			return e.Kind == "ack" && e.Stamp != nil && e.Stamp.Server == "s2" && e.T > r.faultStart+2*time.Second
		})
		if after == 0 {
			t.Fatalf("no post was stamped by s2 after its clock stepped back")
		}
	})
}
