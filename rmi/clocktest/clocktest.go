// Package clocktest is the mock clock of distchat's tests: a
// github.com/benbjohnson/clock Mock whose deadline contexts are safe to use
// from several goroutines.
//
// The Mock's own WithTimeout and WithDeadline return a context whose Err
// reads the error without the lock its timer writes it under, so a call
// that checks ctx.Err() while the test moves the clock past the deadline
// is a data race (reported by -race, failing the test). Here the
// deadline cancels a context.WithCancelCause instead, which is
// synchronised like every standard context; Err reports
// context.DeadlineExceeded once the mock time passes the deadline.
package clocktest

import (
	"context"
	"errors"
	"time"

	"github.com/benbjohnson/clock"
)

// Mock is a clock.Mock with race-free deadline contexts.
type Mock struct {
	*clock.Mock
}

// New returns a Mock at the Unix epoch, as clock.NewMock does.
func New() *Mock { return &Mock{Mock: clock.NewMock()} }

// WithTimeout implements clock.Clock.
func (m *Mock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return m.WithDeadline(parent, m.Now().Add(d))
}

// WithDeadline implements clock.Clock: the context ends when the mock
// time reaches deadline (or parent ends, or cancel is called).
func (m *Mock) WithDeadline(parent context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if cur, ok := parent.Deadline(); ok && !cur.After(deadline) {
		return context.WithCancel(parent) // parent's deadline comes first
	}
	inner, cancel := context.WithCancelCause(parent)
	ctx := &deadlineCtx{Context: inner, deadline: deadline}
	d := m.Until(deadline)
	if d <= 0 {
		cancel(context.DeadlineExceeded)
		return ctx, func() {}
	}
	t := m.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// deadlineCtx is a cancellable context with a deadline on the mock clock.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

// Deadline reports the mock-clock deadline.
func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Err is DeadlineExceeded when the deadline ended the context, else what
// ended it (the parent's error, or Canceled).
func (c *deadlineCtx) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}
