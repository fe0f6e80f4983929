package sim

import (
	"testing"
	"time"

	"github.com/distchat/distchat/server"
)

func run(t *testing.T, cfg Config, w Workload) *Report {
	t.Helper()
	cfg.Settled = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.RunWorkload(w)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSmoke(t *testing.T) {
	r := run(t, Config{Seed: 1}, Workload{Posts: 50})
	t.Log("\n" + r.Summary())
	if r.Failed() || r.Acked != r.Posts || r.Posts == 0 {
		t.Fatalf("run failed")
	}
}

func TestSkewAnomalyWallVsHLC(t *testing.T) {
	for _, mode := range []string{server.ClockWall, server.ClockHLC} {
		r := run(t, Config{Seed: 7, ClockMode: mode, Delay: Uniform{time.Millisecond, 5 * time.Millisecond}},
			Workload{Posts: 200, Skew: 200 * time.Millisecond, Gap: 10 * time.Millisecond})
		t.Log("\n" + r.Summary())
		if mode == server.ClockWall && r.Causality.OK {
			t.Errorf("wall mode with 200ms skew and 1-5ms delay: no causality violation found")
		}
		if mode == server.ClockHLC && !r.Causality.OK {
			t.Errorf("hlc mode violates causality: %s", r.Causality.Counterexample)
		}
		if !r.Agreement.OK || !r.Completeness.OK {
			t.Errorf("%s: agreement %v completeness %v", mode, r.Agreement, r.Completeness)
		}
	}
}

// TestSettledPrefixUnderFaults runs lossy, duplicating, long-tail runs with
// skewed clocks: a settled prefix must never change, and the settled
// prefixes must still cover every final log (progress, not just safety).
func TestSettledPrefixUnderFaults(t *testing.T) {
	delay := LongTail{Uniform{time.Millisecond, 5 * time.Millisecond}, 0.05, Uniform{100 * time.Millisecond, time.Second}}
	for seed := uint64(1); seed <= 12; seed++ {
		for _, mode := range []string{server.ClockWall, server.ClockHLC} {
			r := run(t, Config{Seed: seed, ClockMode: mode, Drop: 0.05, Dup: 0.02, Delay: delay},
				Workload{Posts: 60, Skew: 50 * time.Millisecond})
			if !r.Stability.OK {
				t.Errorf("seed %d %s: %s", seed, mode, r.Stability.Counterexample)
			}
			if !r.Agreement.OK || !r.Completeness.OK {
				t.Errorf("seed %d %s: agreement %s completeness %s", seed, mode, r.Agreement.Counterexample, r.Completeness.Counterexample)
			}
			if r.Acked == 0 || r.Stability.Checked == 0 || r.Settled != r.Logged {
				t.Errorf("seed %d %s: %d acked, %d settles, %d of %d logged messages settled", seed, mode, r.Acked, r.Stability.Checked, r.Settled, r.Logged)
			}
		}
	}
}
