package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/distchat/distchat/server"
)

// Determinism: the same seed and configuration give a byte-identical
// trace and report (everything but the wall time), with every kind of
// fault at work; a different seed gives a different trace.

// detOutcome is what a run produced, canonically encoded: every trace
// event as a JSON line, and the report without its wall time.
type detOutcome struct {
	trace  []byte
	lines  [][]byte
	report []byte
	events int
}

func detEncode(t *testing.T, s *Sim, rep *Report) detOutcome {
	t.Helper()
	var out detOutcome
	for _, e := range s.Trace() {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out.lines = append(out.lines, b)
	}
	out.trace = bytes.Join(out.lines, []byte("\n"))
	out.events = len(out.lines)
	r := *rep
	r.Wall = 0
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	out.report = b
	return out
}

// detSame fails the test unless a and b are byte-identical, pointing at
// the first event that differs.
func detSame(t *testing.T, what string, a, b detOutcome) {
	t.Helper()
	if !bytes.Equal(a.trace, b.trace) {
		i := 0
		for i < len(a.lines) && i < len(b.lines) && bytes.Equal(a.lines[i], b.lines[i]) {
			i++
		}
		line := func(ls [][]byte) string {
			if i < len(ls) {
				return string(ls[i])
			}
			return "(trace ends)"
		}
		t.Fatalf("%s: traces of two runs with the same seed differ at event %d of %d/%d:\n first run:  %s\n second run: %s",
			what, i, len(a.lines), len(b.lines), line(a.lines), line(b.lines))
	}
	if !bytes.Equal(a.report, b.report) {
		t.Fatalf("%s: reports of two runs with the same seed differ:\n first run:  %s\n second run: %s", what, a.report, b.report)
	}
}

// detSchedule is a fixed schedule with every fault the simulator has:
// a long-tail delay distribution, a slower link, 3% drops and duplicates,
// skewed and drifting clocks, a partition that heals, a crash and restart,
// a clock step backwards, and posts, direct messages and a join.
func detSchedule(mode string, seed uint64) *propSchedule {
	ms := time.Millisecond
	sc := &propSchedule{
		Mode: mode, Settled: true, Seed: seed, Settle: 60 * time.Second,
		Delay: LongTail{Base: Uniform{ms, 5 * ms}, P: 0.05, Tail: Uniform{100 * ms, 800 * ms}},
		Drop:  0.03, Dup: 0.03,
		Servers: []propServer{
			{Name: "s1", Offset: 120 * ms, Drift: 50e-6},
			{Name: "s2", Offset: -80 * ms, Drift: -30e-6},
			{Name: "s3", Drift: 100e-6},
		},
		Rooms: []propRoom{
			{Name: "r1", Creator: "u01", Members: []string{"u02", "u03", "u04"}},
			{Name: "r2", Creator: "u05", Members: []string{"u06", "u01"}},
		},
		Links: []propLink{{From: "s1", To: "s2", Link: Link{Delay: Exponential{2 * ms, 10 * ms}, Drop: 0.03, Dup: 0.03}}},
	}
	for i := 0; i < 6; i++ {
		sc.Users = append(sc.Users, propUser{Name: userName(i), Home: serverName(i % 3)})
	}
	rooms := map[string][]string{
		"u01": {"r1", "r2"}, "u02": {"r1"}, "u03": {"r1"}, "u04": {"r1"}, "u05": {"r2"}, "u06": {"r2"},
	}
	for i := 0; i < 40; i++ {
		u := sc.Users[i%6].Name
		sc.Steps = append(sc.Steps, propStep{At: time.Duration(i) * 200 * ms, Kind: "post", User: u,
			Room: rooms[u][i/6%len(rooms[u])], Text: fmt.Sprintf("%s#%d", u, i+1)})
	}
	sc.addSteps(
		propStep{At: 1 * time.Second, Kind: "partition", Groups: [2][]string{{"s1", "u01", "u04"}, {"central", "s2", "s3", "u02", "u03", "u05", "u06"}}},
		propStep{At: 2 * time.Second, Kind: "join", User: "u06", Room: "r1"},
		propStep{At: 2500 * ms, Kind: "msg", User: "u02", Peer: "u05", Text: "u02#dm"},
		propStep{At: 3 * time.Second, Kind: "heal"},
		propStep{At: 4 * time.Second, Kind: "crash", Node: "s2"},
		propStep{At: 5 * time.Second, Kind: "step", Node: "s3", D: -400 * ms},
		propStep{At: 6 * time.Second, Kind: "restart", Node: "s2"},
		propStep{At: 7 * time.Second, Kind: "msg", User: "u05", Peer: "u02", Text: "u05#dm"},
	)
	return sc
}

// detRunSchedule runs detSchedule and encodes the outcome.
func detRunSchedule(t *testing.T, mode string, seed uint64) detOutcome {
	t.Helper()
	r := propRunSchedule(t, detSchedule(mode, seed), true)
	defer r.close()
	out := detEncode(t, r.s, r.rep)
	// The run must have exercised what it claims to.
	kinds := map[string]int{}
	for _, e := range r.s.Trace() {
		kinds[e.Kind]++
		if e.Kind == "recv" && e.Dup {
			kinds["dup"]++
		}
	}
	for _, k := range []string{"drop", "dup", "partition", "heal", "crash", "restart", "clockstep", "ack", "deliver"} {
		if kinds[k] == 0 {
			t.Fatalf("seed %d: no %q event in the trace: the schedule did not exercise it", seed, k)
		}
	}
	return out
}

// TestDeterminismFaults: a run with every fault kind, twice with the same
// seed, gives the same trace byte for byte and the same report; another
// seed gives another trace.
func TestDeterminismFaults(t *testing.T) {
	for _, mode := range []string{server.ClockHLC, server.ClockWall} {
		t.Run(mode, func(t *testing.T) {
			a := detRunSchedule(t, mode, 42)
			b := detRunSchedule(t, mode, 42)
			detSame(t, fmt.Sprintf("%s mode, seed 42", mode), a, b)
			c := detRunSchedule(t, mode, 43)
			if bytes.Equal(a.trace, c.trace) {
				t.Fatalf("%s mode: seeds 42 and 43 gave the same trace (%d events): the seed does not drive the run", mode, a.events)
			}
			t.Logf("%s mode: %d events, identical across runs; seed 43 differs", mode, a.events)
		})
	}
}

// TestDeterminismWorkload: the random workload of `distchat sim` (with
// drops, duplicates, skew and drift) is deterministic in its seed too.
func TestDeterminismWorkload(t *testing.T) {
	run := func(seed uint64) detOutcome {
		s, err := New(Config{Seed: seed, Trace: true, Settled: true, Drop: 0.02, Dup: 0.02,
			Delay: LongTail{Base: Uniform{time.Millisecond, 5 * time.Millisecond}, P: 0.05, Tail: Uniform{50 * time.Millisecond, 500 * time.Millisecond}}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		rep, err := s.RunWorkload(Workload{Servers: 3, Clients: 6, Rooms: 2, Posts: 100, Skew: 200 * time.Millisecond, Drift: 1e-4, Settle: 60 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Acked == 0 {
			t.Fatalf("seed %d: no post acknowledged", seed)
		}
		return detEncode(t, s, rep)
	}
	a, b := run(9), run(9)
	detSame(t, "workload, seed 9", a, b)
	if c := run(10); bytes.Equal(a.trace, c.trace) {
		t.Fatalf("seeds 9 and 10 gave the same trace (%d events)", a.events)
	}
}
