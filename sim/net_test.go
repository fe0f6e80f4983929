package sim

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi"
)

// probeAPI is a remote interface for testing the simulated network.
type probeAPI interface {
	// Remaining reports how long the call may still run, on the callee's
	// clock.
	Remaining(ctx context.Context, _ struct{}) (time.Duration, error)
}

// probe implements probeAPI on one node.
type probe struct{ n *node }

func (p probe) Remaining(ctx context.Context, _ struct{}) (time.Duration, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, errors.New("no deadline")
	}
	return dl.Sub(p.n.clock.Now()), nil
}

// TestCalleeRunsUnderCallersDeadline checks that the simulated network,
// like TCP, gives the callee the caller's remaining time, to be read on
// the callee's own clock from when the request arrives, and that a call
// whose reply comes too late fails with ErrTimeout.
func TestCalleeRunsUnderCallersDeadline(t *testing.T) {
	s, err := New(Config{Seed: 1, Delay: Constant(3 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Clocks hours apart: an absolute deadline would be useless across them.
	for i, offset := range []time.Duration{time.Hour, -time.Hour, 0} {
		name := fmt.Sprintf("s%d", i+1)
		if err := s.AddServer(name, offset, 0); err != nil {
			t.Fatal(err)
		}
		if err := rmi.Export[probeAPI](s.nodes[name].table, "probe", probe{s.nodes[name]}); err != nil {
			t.Fatal(err)
		}
	}
	s1, s2, s3 := s.nodes["s1"], s.nodes["s2"], s.nodes["s3"]
	s.net.links = map[[2]string]Link{{"s3", "s1"}: {Delay: Constant(time.Minute)}} // s3 answers s1 late

	var remaining, late time.Duration
	var errRemaining, errLate error
	done := 0
	call := func(to *node, got *time.Duration, err *error) func(context.Context) error {
		return func(ctx context.Context) error {
			defer func() { done++ }()
			ctx, cancel := s1.clock.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			*got, *err = rmi.Call[time.Duration](ctx, s.clusterInvoker(s1, to), "probe", "Remaining", struct{}{})
			return nil
		}
	}
	s.task(s1, "remaining", call(s2, &remaining, &errRemaining))
	s.task(s1, "late", call(s3, &late, &errLate))
	if !s.RunUntil(func() bool { return done == 2 }, 5*time.Minute) {
		t.Fatal("the calls did not finish")
	}
	if errRemaining != nil || remaining != 5*time.Second {
		t.Errorf("callee's remaining time %v (%v), want the caller's 5s", remaining, errRemaining)
	}
	if !errors.Is(errLate, rmi.ErrTimeout) || !errors.Is(errLate, context.DeadlineExceeded) || !rmi.IsOutcomeUnknown(errLate) {
		t.Errorf("a reply after the deadline: %v", errLate)
	}
}
