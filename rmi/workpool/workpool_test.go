package workpool_test

import (
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/rmi/workpool"
)

// TestPool runs jobs at once and one after another: every job runs, at
// most maxIdle workers then wait for more, and Close ends them.
func TestPool(t *testing.T) {
	p := workpool.New(2)
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 5 { // five at once: five goroutines
		wg.Add(1)
		p.Run(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	rmitest.WaitFor(t, "maxIdle workers to wait", func() bool { return p.Idle() == 2 })
	for range 100 { // one after another
		wg.Add(1)
		p.Run(wg.Done)
		wg.Wait()
	}
	rmitest.WaitFor(t, "maxIdle workers to wait after jobs in turn", func() bool { return p.Idle() == 2 })
	p.Close()
	rmitest.WaitFor(t, "the waiting workers to exit", func() bool { return p.Idle() == 0 })
	done := make(chan struct{})
	p.Run(func() { close(done) })
	<-done
}

// TestClockRunsTimersOnWorkers fires timers of a Clock over a mock clock:
// each function runs once its time has come, not before, on a worker that
// then waits for the next timer (one worker for timers in turn); after
// Close a timer still runs its function, and a stopped one does not.
func TestClockRunsTimersOnWorkers(t *testing.T) {
	mock := clocktest.New()
	c := workpool.NewClock(mock, 1)
	ran := make(chan int, 1)
	for i := range 3 {
		c.AfterFunc(time.Second, func() { ran <- i })
		mock.Add(999 * time.Millisecond)
		select {
		case got := <-ran:
			t.Fatalf("timer %d ran before its time", got)
		default:
		}
		mock.Add(time.Millisecond)
		if got := <-ran; got != i {
			t.Fatalf("timer %d ran the function of timer %d", i, got)
		}
		rmitest.WaitFor(t, "the timer's worker to wait for the next", func() bool { return c.Idle() == 1 })
	}
	stopped := c.AfterFunc(time.Second, func() { ran <- -1 })
	stopped.Stop()
	c.Close()
	rmitest.WaitFor(t, "the waiting worker to exit", func() bool { return c.Idle() == 0 })
	c.AfterFunc(time.Second, func() { ran <- 3 })
	mock.Add(time.Second)
	if got := <-ran; got != 3 {
		t.Fatalf("after Close, got the function of timer %d, want 3's", got)
	}
}
