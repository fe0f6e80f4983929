package rmi

import "sync/atomic"

// workers runs request handlers on goroutines that, once done, wait for
// the next one (up to maxIdle of them wait at a time), rather than on a
// new goroutine each: a new goroutine starts with a small stack, which
// every request then grows by copying it, a few times, as it decodes,
// dispatches by reflection and encodes. A pool serves all the
// connections of a Server (or a Client's callbacks); stop ends its idle
// workers.
type workers struct {
	jobs    chan func() // unbuffered: a send succeeds only if a worker waits
	stop    chan struct{}
	idle    atomic.Int32
	maxIdle int32
}

// newWorkers returns a pool in which up to maxIdle workers wait.
func newWorkers(maxIdle int) *workers {
	return &workers{jobs: make(chan func()), stop: make(chan struct{}), maxIdle: int32(maxIdle)}
}

// run runs f on a waiting worker, or on a new one.
func (w *workers) run(f func()) {
	select {
	case w.jobs <- f:
	default:
		go w.work(f)
	}
}

// work runs f, then the jobs handed to it while it waits, until enough
// other workers wait or the pool is stopped.
func (w *workers) work(f func()) {
	for {
		f()
		if w.idle.Add(1) > w.maxIdle {
			w.idle.Add(-1)
			return
		}
		select {
		case f = <-w.jobs:
			w.idle.Add(-1)
		case <-w.stop:
			w.idle.Add(-1)
			return
		}
	}
}

// close ends the waiting workers; busy ones end when done.
func (w *workers) close() { close(w.stop) }
