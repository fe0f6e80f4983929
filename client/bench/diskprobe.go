package bench

import (
	"fmt"
	"os"
	"time"

	"github.com/benbjohnson/clock"
)

// Every post waits for its first server's disk (a group commit's append
// and sync) before it is acknowledged and delivered, so a run's latency
// tail is often the disk's. On a shared or virtual disk a sync that takes
// 20 ms, or 500, comes and goes with the neighbours' load; a probe on the
// servers' disk, timed beside the run, tells such a run from a slow
// server. It costs that disk a small sync every probeEvery, next to the
// servers' hundreds a second.
const (
	probeEvery = 50 * time.Millisecond // between the probe's syncs
	probeBytes = 128                   // appended before each
)

// diskProbe appends probeBytes to a file of its own and syncs it, every
// probeEvery, until stopped, timing each append and sync.
type diskProbe struct {
	clk  clock.Clock
	stop chan struct{}
	done chan struct{}
	took []time.Duration // written by run until done
	err  error           // the write or sync that failed; nil if none
}

// startDiskProbe starts a probe of the disk dir is on, in a file it
// creates there and removes when stopped.
func startDiskProbe(dir string, clk clock.Clock) (*diskProbe, error) {
	f, err := os.CreateTemp(dir, "bench-disk-probe-")
	if err != nil {
		return nil, fmt.Errorf("bench: disk probe: %w", err)
	}
	p := &diskProbe{clk: clk, stop: make(chan struct{}), done: make(chan struct{})}
	// The ticker starts now, not when the goroutine first runs: the
	// probe's period counts from its start, on a mock clock too.
	go p.run(f, clk.Ticker(probeEvery))
	return p, nil
}

// run probes, on each tick, until stopped or a write fails.
func (p *diskProbe) run(f *os.File, tick *clock.Ticker) {
	defer close(p.done)
	defer os.Remove(f.Name())
	defer f.Close()
	defer tick.Stop()
	buf := make([]byte, probeBytes)
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		start := p.clk.Now()
		if _, err := f.Write(buf); err != nil {
			p.err = fmt.Errorf("bench: disk probe: %w", err)
			return
		}
		if err := f.Sync(); err != nil {
			p.err = fmt.Errorf("bench: disk probe: %w", err)
			return
		}
		p.took = append(p.took, p.clk.Since(start))
	}
}

// finish stops the probe and returns how long its syncs took, or why it
// stopped early.
func (p *diskProbe) finish() (Latency, error) {
	close(p.stop)
	<-p.done
	if p.err != nil {
		return Latency{}, p.err
	}
	return latency(p.took), nil
}
