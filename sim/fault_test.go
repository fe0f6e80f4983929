package sim

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/distchat/distchat/server"
)

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
