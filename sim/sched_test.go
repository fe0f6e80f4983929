package sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"pgregory.net/rapid"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/sim/trace"
)

// TestSchedulerParkAndResume drives the scheduler alone: tasks run in
// event order, one at a time; a task that parks lets the next events run
// on another goroutine and picks up where it stopped when resumed; a run
// ends with the baton back at its caller while a task is still parked,
// and a later run resumes it.
func TestSchedulerParkAndResume(t *testing.T) {
	s := newScheduler(trace.Epoch, clock.New())
	var log []string
	wake := make(chan struct{})
	ms := func(n int) time.Time { return s.start.Add(time.Duration(n) * time.Millisecond) }
	s.at(ms(1), nil, func() {
		s.runTask(func() {
			log = append(log, "a starts")
			s.park(wake)
			log = append(log, fmt.Sprintf("a resumed at %v", s.now.Sub(s.start)))
		})
	})
	s.at(ms(2), nil, func() { s.runTask(func() { log = append(log, "b runs") }) })
	s.at(ms(5), nil, func() { s.resume(wake) })
	s.at(ms(6), nil, func() { s.runTask(func() { log = append(log, "c runs") }) })

	s.run(ms(3), nil)
	want := []string{"a starts", "b runs"}
	if !slices.Equal(log, want) {
		t.Fatalf("first run: %q, want %q", log, want)
	}
	s.run(ms(10), nil)
	want = append(want, "a resumed at 5ms", "c runs")
	if !slices.Equal(log, want) {
		t.Fatalf("second run: %q, want %q", log, want)
	}
	if s.events != 4 {
		t.Errorf("%d events, want 4", s.events)
	}
	s.stop()
}

// TestSchedulerResumeFromRoot: Sim.Close resumes parked calls from the
// root; the task finishes and the baton comes back, running no further
// event once the simulation is closing.
func TestSchedulerResumeFromRoot(t *testing.T) {
	s := newScheduler(trace.Epoch, clock.New())
	wake := make(chan struct{})
	var log []string
	s.at(s.start, nil, func() {
		s.runTask(func() {
			s.park(wake)
			log = append(log, "finished")
			s.after(time.Millisecond, nil, func() { log = append(log, "ran after close") })
		})
	})
	s.run(s.start.Add(time.Second), nil)
	s.closing = true
	s.resume(wake)
	if !slices.Equal(log, []string{"finished"}) {
		t.Fatalf("log %q, want the task finished and nothing more", log)
	}
	s.stop()
}

// TestStalledTaskIsReported: a task blocked on something the simulator
// does not control (here a channel) stops every event; the watchdog
// reports it with a panic rather than hanging the run.
func TestStalledTaskIsReported(t *testing.T) {
	wall := clock.NewMock()
	s := newScheduler(trace.Epoch, wall)
	block := make(chan struct{})
	s.after(time.Millisecond, nil, func() { s.runTask(func() { <-block }) })
	got := make(chan any, 1)
	go func() {
		defer func() { got <- recover() }()
		s.run(s.now.Add(time.Second), nil)
	}()
	var msg any
	rmitest.WaitFor(t, "the watchdog to report the stalled task", func() bool {
		select {
		case msg = <-got:
			return true
		default:
			wall.Add(s.stalled)
			return false
		}
	})
	if !strings.Contains(fmt.Sprint(msg), "a task is blocked outside a remote call") {
		t.Fatalf("panic %v, want the stalled-task report", msg)
	}
	close(block)
	<-s.done // the unblocked driver runs out of events and hands the baton back
	s.stop()
}

// TestEventQueueOrder pushes and pops events in random interleavings and
// requires every pop to return the earliest event queued, by time and then
// by the order of scheduling.
func TestEventQueueOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q eventQueue
		var want []*event // kept sorted
		seq := uint64(0)
		for range rapid.IntRange(0, 200).Draw(t, "steps") {
			if len(want) > 0 && rapid.IntRange(0, 2).Draw(t, "op") == 0 {
				got := q.pop()
				if got != want[0] {
					t.Fatalf("popped (%d, %d), want (%d, %d)", got.at, got.seq, want[0].at, want[0].seq)
				}
				want = want[1:]
				continue
			}
			seq++
			e := &event{at: int64(rapid.IntRange(0, 20).Draw(t, "at")), seq: seq}
			q.push(e)
			i := sort.Search(len(want), func(i int) bool { return before(e, want[i]) })
			want = slices.Insert(want, i, e)
		}
		for len(want) > 0 {
			if got := q.pop(); got != want[0] {
				t.Fatalf("popped (%d, %d), want (%d, %d)", got.at, got.seq, want[0].at, want[0].seq)
			}
			want = want[1:]
		}
		if len(q) != 0 {
			t.Fatalf("%d events left", len(q))
		}
	})
}
