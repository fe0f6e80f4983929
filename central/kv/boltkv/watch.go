package boltkv

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/distchat/distchat/central/kv"
)

// watcher is one Watch: a queue the store appends to under its lock, and
// a goroutine that hands the queue to the caller's channel, so that a
// slow reader never blocks a write.
type watcher struct {
	prefix string
	from   int64 // the first revision to report
	out    chan kv.WatchResponse

	mu    sync.Mutex
	cond  *sync.Cond
	queue []kv.WatchResponse
	err   error // set once: the watch ends after the queue
}

// Watch implements kv.Store.
func (s *Store) Watch(ctx context.Context, prefix string, fromRev int64) <-chan kv.WatchResponse {
	w := &watcher{prefix: prefix, from: fromRev, out: make(chan kv.WatchResponse)}
	w.cond = sync.NewCond(&w.mu)
	s.mu.Lock()
	switch {
	case s.closed:
		w.err = kv.ErrClosed
	case fromRev > 0 && fromRev <= s.compacted:
		w.err = fmt.Errorf("boltkv: watch from revision %d, history starts after %d: %w", fromRev, s.compacted, kv.ErrCompacted)
	default:
		if fromRev > 0 {
			for _, re := range s.events {
				w.send(re.rev, re.events)
			}
		}
		s.watchers[w] = struct{}{}
	}
	s.mu.Unlock()
	go w.run(ctx, func() {
		s.mu.Lock()
		if s.watchers != nil {
			delete(s.watchers, w)
		}
		s.mu.Unlock()
	})
	return w.out
}

// send queues the events of revision rev under the watch's prefix, if
// any.
func (w *watcher) send(rev int64, events []kv.Event) {
	if rev < w.from {
		return
	}
	var mine []kv.Event
	for _, ev := range events {
		if strings.HasPrefix(ev.KV.Key, w.prefix) {
			mine = append(mine, ev)
		}
	}
	if len(mine) == 0 {
		return
	}
	w.mu.Lock()
	w.queue = append(w.queue, kv.WatchResponse{Events: mine})
	w.mu.Unlock()
	w.cond.Signal()
}

// end makes the watch end with err after what is queued.
func (w *watcher) end(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cond.Signal()
}

// run delivers the queue until ctx ends or the watch ends, then closes the
// channel and unregisters the watch.
func (w *watcher) run(ctx context.Context, unregister func()) {
	defer close(w.out)
	defer unregister()
	stop := context.AfterFunc(ctx, func() { w.end(ctx.Err()) })
	defer stop()
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && w.err == nil {
			w.cond.Wait()
		}
		var next kv.WatchResponse
		last := false
		if len(w.queue) > 0 {
			next = w.queue[0]
			w.queue = w.queue[1:]
		} else {
			next, last = kv.WatchResponse{Err: w.err}, true
		}
		w.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		select {
		case w.out <- next:
		case <-ctx.Done():
			return
		}
		if last {
			return
		}
	}
}
