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
