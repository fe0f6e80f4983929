// Package workpool runs short tasks on goroutines that, once done, wait
// for the next task instead of exiting.
//
// Why bother, when goroutines are cheap? A new goroutine starts with a
// small stack (the runtime's average, often a few KiB). A task that goes
// deep — a remote call decodes, dispatches by reflection, encrypts and
// writes — outgrows it, and every growth copies the whole stack. A chat
// server running thousands of such tasks a second spent about 6% of its
// CPU in runtime.copystack before its tasks were pooled. A worker that
// waits for the next task keeps the stack it grew.
//
// [Pool] serves rmi's request handlers; [Clock] serves a component's
// timers (clock.AfterFunc), whose functions the real clock would run each
// on a goroutine of its own.
package workpool

import (
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// Pool runs functions on goroutines that, once done, wait for the next
// one: up to maxIdle of them wait at a time, the others exit. Run never
// blocks: with no worker waiting, it starts one. The zero Pool is not
// usable; call New.
type Pool struct {
	jobs    chan func() // unbuffered: a send succeeds only if a worker waits
	stop    chan struct{}
	idle    atomic.Int32
	maxIdle int32
}

// New returns a pool in which up to maxIdle workers wait.
func New(maxIdle int) *Pool {
	return &Pool{jobs: make(chan func()), stop: make(chan struct{}), maxIdle: int32(maxIdle)}
}

// Run runs f on a waiting worker, or on a new one.
func (p *Pool) Run(f func()) {
	select {
	case p.jobs <- f:
	default:
		go p.work(f)
	}
}

// Idle reports how many workers wait for a task.
func (p *Pool) Idle() int { return int(p.idle.Load()) }

// work runs f, then the jobs handed to it while it waits, until enough
// other workers wait or the pool is closed.
func (p *Pool) work(f func()) {
	for {
		f()
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		select {
		case f = <-p.jobs:
			p.idle.Add(-1)
		case <-p.stop:
			p.idle.Add(-1)
			return
		}
	}
}

// Close ends the waiting workers; busy ones end when done. A task Run
// after Close still runs, on a goroutine that then exits.
func (p *Pool) Close() { close(p.stop) }

// Clock is a clock.Clock whose AfterFunc runs its functions on a Pool;
// everything else is the wrapped clock's. Wrap the real clock with it
// where a component runs many short tasks through AfterFunc (a chat
// server's deliveries and forwards). A mock or simulated clock is better
// left unwrapped: theirs run the functions themselves, in an order that
// tests and the simulator rely on.
type Clock struct {
	clock.Clock
	pool *Pool
}

var _ clock.Clock = (*Clock)(nil)

// NewClock wraps c; up to maxIdle workers wait for its timers.
func NewClock(c clock.Clock, maxIdle int) *Clock {
	return &Clock{Clock: c, pool: New(maxIdle)}
}

// AfterFunc implements clock.Clock: once d has passed, f runs on one of
// the clock's workers. The timer's own goroutine only hands f over, which
// its small stack does without growing.
func (c *Clock) AfterFunc(d time.Duration, f func()) *clock.Timer {
	return c.Clock.AfterFunc(d, func() { c.pool.Run(f) })
}

// Idle reports how many workers wait for a timer.
func (c *Clock) Idle() int { return c.pool.Idle() }

// Close ends the workers waiting for timers. Timers that fire later
// still run their functions, each on a goroutine that then exits.
func (c *Clock) Close() {
	c.pool.Close()
}
