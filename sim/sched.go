package sim

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// event is one entry of the queue: something that happens at a virtual
// time. Events of a node that crashed since they were scheduled are
// skipped (node != nil and its incarnation changed).
type event struct {
	at    int64 // virtual time, UnixNano
	seq   uint64
	node  *node
	inc   int
	run   func()
	timer *clock.Timer // the placeholder timer of an AfterFunc event
}

// eventQueue is a binary min-heap of events by (at, seq): the order in
// which they run. It is written out rather than taken from container/heap,
// whose calls through an interface cost the simulator a tenth of its time
// with the hundreds of thousands of events (mostly deadlines) a long run
// keeps queued.
type eventQueue []*event

// before reports whether a runs before b.
func before(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// push adds e.
func (q *eventQueue) push(e *event) {
	h := append(*q, e)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !before(e, h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
	*q = h
}

// pop removes and returns the first event; q must not be empty.
func (q *eventQueue) pop() *event {
	h := *q
	first := h[0]
	n := len(h) - 1
	last := h[n]
	h[n] = nil
	h = h[:n]
	if n > 0 {
		i := 0
		for {
			c := 2*i + 1
			if c >= n {
				break
			}
			if r := c + 1; r < n && before(h[r], h[c]) {
				c = r
			}
			if !before(h[c], last) {
				break
			}
			h[i] = h[c]
			i = c
		}
		h[i] = last
	}
	*q = h
	return first
}

// scheduler owns virtual time and runs tasks one at a time.
//
// Exactly one goroutine runs at a time: the one holding the baton. The
// caller of Sim.Run (the root) hands the baton to a driver, a goroutine
// that runs the due events in order (step) and hands the baton back when
// none is left. A task runs on the goroutine of the event that starts it,
// as a plain call, so a task that finishes without a remote call costs no
// switch at all. A task that makes a remote call parks: its goroutine
// keeps the task's stack and hands driving to another goroutine (an idle
// one, or a new one). When the reply arrives, the event delivering it
// hands the baton to the parked goroutine and waits, idle, until it is
// asked to drive; the woken task finishes and its goroutine drives on.
// A remote call thus costs two switches: to the next driver when it
// parks, and back when it is resumed.
type scheduler struct {
	now     time.Time
	start   time.Time
	seq     uint64
	q       eventQueue
	wall    clock.Clock // real time: only for the watchdog and wall-time reporting
	stalled time.Duration
	events  int64
	closing bool

	// until and cond bound the current run: drivers stop at the first
	// event after until, or as soon as cond (if set) holds.
	until time.Time
	cond  func() bool
	// root is true while the root holds the baton (between runs).
	root bool
	// idle holds the goroutines waiting to drive, each on its channel.
	idle []chan struct{}
	// done takes the baton back to the root.
	done chan struct{}
	// stopped ends idle goroutines instead of waking them to drive.
	stopped bool
	// progress counts events for the watchdog, which reads it from the
	// root while a driver runs.
	progress atomic.Int64
}

func newScheduler(start time.Time, wall clock.Clock) *scheduler {
	return &scheduler{now: start, start: start, wall: wall, stalled: 30 * time.Second, root: true, done: make(chan struct{})}
}

// at schedules run at virtual time t (never before now). With a node, the
// event is skipped if the node has crashed or restarted in between.
func (s *scheduler) at(t time.Time, n *node, run func()) *event {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	e := &event{at: t.UnixNano(), seq: s.seq, node: n, run: run}
	if n != nil {
		e.inc = n.inc
	}
	s.q.push(e)
	return e
}

// after schedules run d from now and returns the event.
func (s *scheduler) after(d time.Duration, n *node, run func()) *event {
	return s.at(s.now.Add(d), n, run)
}

// step runs the next event; it reports false when the queue is empty or
// the next event is after until.
func (s *scheduler) step(until time.Time) bool {
	if len(s.q) == 0 || s.q[0].at > until.UnixNano() {
		return false
	}
	e := s.q.pop()
	s.now = time.Unix(0, e.at).UTC()
	if e.node != nil && (!e.node.up || e.node.inc != e.inc) {
		return true
	}
	s.events++
	s.progress.Add(1)
	e.run()
	return true
}

// runTask runs f as a task, on the calling goroutine: the one holding
// the baton, which an event started by a driver always is.
func (s *scheduler) runTask(f func()) { f() }

// run runs events, on drivers, until none is left up to until, or cond
// (if not nil, checked before each event) holds. It is called by the
// root, and returns with the baton back at the root.
func (s *scheduler) run(until time.Time, cond func() bool) {
	s.until, s.cond = until, cond
	s.root = false
	s.startDriver()
	s.waitDone()
	s.root, s.cond = true, nil
}

// drive is a driver's loop: run due events, then hand the baton back to
// the root and wait to drive again. A goroutine that parked in a task and
// was resumed comes back here once the task ends.
func (s *scheduler) drive() {
	for {
		for !s.stopped && !s.closing && (s.cond == nil || !s.cond()) && s.step(s.until) {
		}
		if s.stopped {
			s.done <- struct{}{}
			return
		}
		me := make(chan struct{})
		s.idle = append(s.idle, me)
		s.done <- struct{}{}
		<-me
	}
}

// startDriver hands the baton to an idle goroutine, or to a new one, to
// drive. Its caller must not touch the scheduler's state afterwards until
// the baton comes back to it.
func (s *scheduler) startDriver() {
	if n := len(s.idle); n > 0 {
		w := s.idle[n-1]
		s.idle = s.idle[:n-1]
		w <- struct{}{}
		return
	}
	go s.drive()
}

// stop ends the idle goroutines, one at a time, once nothing is parked
// (Sim.Close resumes every parked call first). A goroutine idle in resume
// returns from it, finishes its event and leaves its loop.
func (s *scheduler) stop() {
	s.stopped = true
	for len(s.idle) > 0 {
		w := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		w <- struct{}{}
		<-s.done
	}
}

// park is called on a task's goroutine when it makes a remote call: it
// hands driving to another goroutine and returns when resume(w) is
// called.
func (s *scheduler) park(w chan struct{}) {
	s.startDriver()
	<-w
}

// resume hands the baton to the task parked on w. On a driver, the caller
// then waits, idle, until it is asked to drive (the resumed goroutine
// drives on once its task ends); at the root (Sim.Close), it waits until
// the baton comes back.
func (s *scheduler) resume(w chan struct{}) {
	if s.root {
		s.root = false
		w <- struct{}{}
		s.waitDone()
		s.root = true
		return
	}
	me := make(chan struct{})
	s.idle = append(s.idle, me)
	w <- struct{}{}
	<-me
}

// waitDone waits at the root for the baton to come back. A run in which
// no event happens for s.stalled of real time has a task blocked on
// something the simulator does not control (a channel, a lock held across
// a remote call): that is a bug in the component, reported instead of
// hanging.
func (s *scheduler) waitDone() {
	t := s.wall.Ticker(s.stalled)
	defer t.Stop()
	last := s.progress.Load()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			if p := s.progress.Load(); p != last {
				last = p
				continue
			}
			panic(fmt.Sprintf("sim: no event ran for %v of real time: a task is blocked outside a remote call; "+
				"component code must not block outside remote calls (no channel waits, no locks held across calls)", s.stalled))
		}
	}
}
