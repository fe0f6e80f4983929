package sim

import (
	"container/heap"
	"fmt"
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

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// scheduler owns virtual time and runs tasks one at a time.
type scheduler struct {
	now     time.Time
	start   time.Time
	seq     uint64
	q       eventQueue
	yield   chan struct{}
	wall    clock.Clock // real time: only for the watchdog and wall-time reporting
	stalled time.Duration
	events  int64
	closing bool
	idle    []chan func() // parked worker goroutines, reused for tasks
}

func newScheduler(start time.Time, wall clock.Clock) *scheduler {
	return &scheduler{now: start, start: start, yield: make(chan struct{}), wall: wall, stalled: 30 * time.Second}
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
	heap.Push(&s.q, e)
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
	e := heap.Pop(&s.q).(*event)
	s.now = time.Unix(0, e.at).UTC()
	if e.node != nil && (!e.node.up || e.node.inc != e.inc) {
		return true
	}
	s.events++
	e.run()
	return true
}

// runTask runs f as a task: on a goroutine of its own, holding the baton,
// and returns when f finishes or parks in a remote call. Finished
// goroutines wait to be reused, so a long run does not pay for a fresh
// goroutine (and its stack growth) per task.
func (s *scheduler) runTask(f func()) {
	if n := len(s.idle); n > 0 {
		w := s.idle[n-1]
		s.idle = s.idle[:n-1]
		w <- f
	} else {
		w := make(chan func())
		go s.worker(w, f)
	}
	s.waitYield()
}

// worker runs tasks handed to it on w until the simulation ends.
func (s *scheduler) worker(w chan func(), f func()) {
	for f != nil {
		f()
		// Only the goroutine holding the baton touches s.idle.
		s.idle = append(s.idle, w)
		s.yield <- struct{}{}
		f = <-w
	}
}

// stop ends the idle workers.
func (s *scheduler) stop() {
	for _, w := range s.idle {
		close(w)
	}
	s.idle = nil
}

// park is called on a task's goroutine: it hands the baton back to the
// scheduler and returns when resume(w) is called.
func (s *scheduler) park(w chan struct{}) {
	s.yield <- struct{}{}
	<-w
}

// resume hands the baton to the task parked on w and waits until it
// finishes or parks again.
func (s *scheduler) resume(w chan struct{}) {
	w <- struct{}{}
	s.waitYield()
}

// waitYield waits for the running task to yield. A task that neither
// finishes nor parks is blocked on something the simulator does not
// control (a channel, a lock held across a remote call): that is a bug in
// the component, reported instead of hanging.
func (s *scheduler) waitYield() {
	t := s.wall.Timer(s.stalled)
	defer t.Stop()
	select {
	case <-s.yield:
	case <-t.C:
		panic(fmt.Sprintf("sim: a task ran for %v of real time without finishing or making a remote call at virtual %v; "+
			"component code must not block outside remote calls (no channel waits, no locks held across calls)", s.stalled, s.now.Sub(s.start)))
	}
}
