package sim

import (
	"testing"
	"time"

	"github.com/distchat/distchat/server"
)

func run(t *testing.T, cfg Config, w Workload) *Report {
	t.Helper()
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
