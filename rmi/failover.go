package rmi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Failover is an Invoker over several servers that serve one shared state,
// such as the central servers of a cluster: any of them answers any call
// the same way. Calls go to one server, the current one; when a call cannot
// reach it, the next server in the list becomes current, round robin.
//
// Which failures move on: a connection error (errors.Is ErrConnect: the
// call was not sent) makes the same call try the next server at once, each
// server once per call; a broken conversation (lost connection, timeout:
// the outcome is unknown) returns its error, as a single server would, and
// the next call goes to the next server: whether to repeat the call is the
// caller's choice. An application error is an answer: the server stays
// current. Backoff is the per-server Invokers' own (a Redialer fails fast
// for a while after a failed dial), so a server that is down costs a call
// almost nothing.
//
// With one address a Failover behaves exactly as its one Invoker. It is
// safe for concurrent use.
type Failover struct {
	addrs  []string
	invs   []Invoker
	onMove func(from, to string, cause error)

	mu     sync.Mutex
	cur    int    // index of the current server
	last   string // the address of the last server that answered ("" before any)
	why    error  // the failure that last moved cur on
	closed bool
}

// FailoverConfig configures a Failover.
type FailoverConfig struct {
	// Connect returns the Invoker for one address (a Redialer, say). It
	// is called once per address, by NewFailover; it should not connect
	// before the first call.
	Connect func(addr string) Invoker
	// OnMove, if set, is called when a call is answered by another server
	// than the one that answered the call before: from is that one, to the
	// new one, cause the failure that made the Failover leave from. It is
	// called on the calling goroutine, after the call, with no lock held.
	OnMove func(from, to string, cause error)
}

// NewFailover returns a Failover over addrs, in that order of preference:
// calls go to addrs[0] first.
func NewFailover(addrs []string, cfg FailoverConfig) (*Failover, error) {
	if len(addrs) == 0 {
		return nil, errors.New("rmi: failover without addresses")
	}
	if cfg.Connect == nil {
		return nil, errors.New("rmi: failover without Connect")
	}
	f := &Failover{addrs: addrs, onMove: cfg.OnMove}
	for _, a := range addrs {
		f.invs = append(f.invs, cfg.Connect(a))
	}
	return f, nil
}

// Invoke implements Invoker.
func (f *Failover) Invoke(ctx context.Context, object, method string, args, reply any) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return fmt.Errorf("rmi: %s.%s: %w", object, method, ErrClosed)
	}
	start := f.cur
	f.mu.Unlock()
	var failed error // the connection errors of the servers tried so far
	for i := range f.invs {
		at := (start + i) % len(f.invs)
		err := f.invs[at].Invoke(ctx, object, method, args, reply)
		if err == nil || !IsUnreachable(err) {
			f.answered(at)
			return err
		}
		if failed != nil {
			err = fmt.Errorf("%w; before that, %w", err, failed)
		}
		if f.isClosed() {
			return err
		}
		if !errors.Is(err, context.Canceled) {
			// The caller's giving up says nothing about the server.
			f.moveOn(at, err)
		}
		if !errors.Is(err, ErrConnect) || ctx.Err() != nil {
			return err
		}
		failed = err
	}
	return failed
}

// answered makes the server at index at current, and reports a move.
func (f *Failover) answered(at int) {
	to := f.addrs[at]
	f.mu.Lock()
	from, why := f.last, f.why
	f.cur, f.last = at, to
	f.mu.Unlock()
	if from != "" && from != to && f.onMove != nil {
		f.onMove(from, to, why)
	}
}

// moveOn makes the server after index at current, unless another call
// moved on already.
func (f *Failover) moveOn(at int, why error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == at {
		f.cur = (at + 1) % len(f.invs)
		f.why = why
	}
}

func (f *Failover) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Addrs returns the addresses, in order of preference.
func (f *Failover) Addrs() []string { return append([]string(nil), f.addrs...) }

// Current returns the address calls go to now.
func (f *Failover) Current() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[f.cur]
}

// Close closes every per-server Invoker that is an io.Closer; later calls
// fail with ErrClosed.
func (f *Failover) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	var errs []error
	for _, inv := range f.invs {
		if c, ok := inv.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
