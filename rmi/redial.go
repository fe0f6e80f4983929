package rmi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// redialBackoff is how long after a failed dial a Redialer fails calls at
// once with that failure instead of dialing again.
const redialBackoff = time.Second

// Redialer is an Invoker that connects on first use, reuses the
// connection, and dials again on the next call after the connection is
// lost. Concurrent callers share one dial. After a failed dial, calls fail
// fast with the same ErrConnect error for a short backoff (one second on
// the configured clock) rather than each waiting for a dial of its own.
// It is safe for concurrent use.
type Redialer struct {
	addr string
	cfg  DialConfig

	mu       sync.Mutex
	c        *Client
	dialing  chan struct{} // non-nil while a dial is in flight; closed when it ends
	lastErr  error         // the last dial failure, while in backoff
	failedAt time.Time
	closed   bool
}

// NewRedialer returns a Redialer for the rmi server at addr. It does not
// connect until the first call.
func NewRedialer(addr string, cfg DialConfig) *Redialer {
	return &Redialer{addr: addr, cfg: cfg.withDefaults()}
}

// Invoke implements Invoker.
func (r *Redialer) Invoke(ctx context.Context, object, method string, args, reply any) error {
	for attempt := 0; ; attempt++ {
		c, err := r.client(ctx)
		if err != nil {
			return fmt.Errorf("rmi: %s.%s: %w", object, method, err)
		}
		err = c.Invoke(ctx, object, method, args, reply)
		// ErrConnect means the call was not sent: if the connection died
		// just before it, one fresh dial is safe.
		if attempt == 0 && errors.Is(err, ErrConnect) && c.lost() {
			continue
		}
		return err
	}
}

// client returns a live Client, dialing if needed.
func (r *Redialer) client(ctx context.Context) (*Client, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, ErrClosed
		}
		if r.c != nil && !r.c.lost() {
			c := r.c
			r.mu.Unlock()
			return c, nil
		}
		if old := r.c; old != nil {
			// Lost: release it (outside the lock) and dial afresh.
			r.c = nil
			r.mu.Unlock()
			_ = old.Close()
			continue
		}
		if ch := r.dialing; ch != nil {
			r.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: waiting for the dial to %s: %w", ErrConnect, r.addr, ctx.Err())
			}
		}
		if r.lastErr != nil && r.cfg.Clock.Since(r.failedAt) < redialBackoff {
			err := r.lastErr
			r.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		r.dialing = ch
		r.mu.Unlock()

		c, err := Dial(ctx, r.addr, r.cfg)

		r.mu.Lock()
		r.dialing = nil
		close(ch)
		switch {
		case r.closed:
			r.mu.Unlock()
			if c != nil {
				_ = c.Close()
			}
			return nil, ErrClosed
		case err != nil:
			if ctx.Err() == nil {
				// The peer's failure, not this caller's impatience.
				r.lastErr, r.failedAt = err, r.cfg.Clock.Now()
			}
			r.mu.Unlock()
			return nil, err
		}
		r.lastErr = nil
		r.c = c
		r.mu.Unlock()
		return c, nil
	}
}

// Close closes the current connection, if any; later calls fail with
// ErrClosed.
func (r *Redialer) Close() error {
	r.mu.Lock()
	r.closed = true
	c := r.c
	r.c = nil
	r.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}
