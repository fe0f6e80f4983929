package rmi

import (
	"sync"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"
)

// TestWorkers runs jobs at once and one after another: every job runs, at
// most maxIdle workers then wait for more, and close ends them.
func TestWorkers(t *testing.T) {
	w := newWorkers(2)
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 5 { // five at once: five goroutines
		wg.Add(1)
		w.run(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	rmitest.WaitFor(t, "maxIdle workers to wait", func() bool { return w.idle.Load() == 2 })
	for range 100 { // one after another
		wg.Add(1)
		w.run(wg.Done)
		wg.Wait()
	}
	rmitest.WaitFor(t, "maxIdle workers to wait after jobs in turn", func() bool { return w.idle.Load() == 2 })
	w.close()
	rmitest.WaitFor(t, "the waiting workers to exit", func() bool { return w.idle.Load() == 0 })
}
