package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/benbjohnson/clock"
)

// nodeClock is a node's view of time: virtual time plus the node's offset
// (skew) and drift. It implements clock.Clock; AfterFunc is the only way
// it runs code, and it does so through the scheduler, as a task.
type nodeClock struct {
	sim    *Sim
	node   *node
	offset time.Duration // current offset from virtual time
	drift  float64       // rate error: 1e-4 runs 100 ppm fast
	base   time.Time     // virtual time the drift is measured from
}

var _ clock.Clock = (*nodeClock)(nil)

// neverFires is how far ahead the placeholder timers are set.
const neverFires = 100 * 365 * 24 * time.Hour

// Now returns the node's local time.
func (c *nodeClock) Now() time.Time {
	now := c.sim.sched.now
	el := now.Sub(c.base)
	return now.Add(c.offset + time.Duration(float64(el)*c.drift))
}

// toVirtual converts a local duration to virtual time.
func (c *nodeClock) toVirtual(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) / (1 + c.drift))
}

// Since implements clock.Clock.
func (c *nodeClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Until implements clock.Clock.
func (c *nodeClock) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }

// AfterFunc runs f as a task on this node after d of local time, unless
// the returned timer is stopped first or the node crashes.
//
// clock.Timer is a concrete type, so the timer handed back is a real one
// set a century ahead, which never fires; the simulator's event asks its
// Stop whether it was still armed (Stop reports whether it stopped an
// armed timer). Components must therefore cancel with Stop and never use
// Reset.
func (c *nodeClock) AfterFunc(d time.Duration, f func()) *clock.Timer {
	t := c.sim.timers.AfterFunc(neverFires, func() {})
	if c.sim.sched.closing {
		t.Stop()
		return t
	}
	s := c.sim.sched
	e := s.after(c.toVirtual(d), c.node, func() {
		if t.Stop() { // still armed: it fires now
			s.runTask(f)
		}
	})
	e.timer = t
	return t
}

// WithTimeout implements clock.Clock with a deadline in local time.
func (c *nodeClock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return c.WithDeadline(parent, c.Now().Add(d))
}

// WithDeadline implements clock.Clock. The context's Deadline is in this
// node's local time; the simulator's network reads it to time calls out.
// Err reports the deadline as passed once virtual time reaches it. (Done
// is closed only by cancel: nothing in a simulation may block on it.)
func (c *nodeClock) WithDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	if cur, ok := parent.Deadline(); ok && !cur.After(d) {
		return context.WithCancel(parent)
	}
	inner, cancel := context.WithCancel(parent)
	return &deadlineCtx{Context: inner, deadline: d, clock: c}, cancel
}

// deadlineCtx is a context whose deadline is in virtual time.
type deadlineCtx struct {
	context.Context
	deadline time.Time
	clock    *nodeClock
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !c.clock.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// The blocking parts of clock.Clock cannot work in a simulation: a
// component blocking on time would stall the one running task. They panic
// with an explanation; no distchat component calls them.

func (c *nodeClock) blocking(name string) {
	panic(fmt.Sprintf("sim: component called clock.%s on node %s; components must use AfterFunc, not block on time", name, c.node.name))
}

// After implements clock.Clock by refusing (see blocking).
func (c *nodeClock) After(d time.Duration) <-chan time.Time { c.blocking("After"); return nil }

// Sleep implements clock.Clock by refusing (see blocking).
func (c *nodeClock) Sleep(d time.Duration) { c.blocking("Sleep") }

// Tick implements clock.Clock by refusing (see blocking).
func (c *nodeClock) Tick(d time.Duration) <-chan time.Time { c.blocking("Tick"); return nil }

// Ticker implements clock.Clock by refusing (see blocking).
func (c *nodeClock) Ticker(d time.Duration) *clock.Ticker { c.blocking("Ticker"); return nil }

// Timer implements clock.Clock by refusing (see blocking).
func (c *nodeClock) Timer(d time.Duration) *clock.Timer { c.blocking("Timer"); return nil }
