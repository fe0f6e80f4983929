package rmi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/benbjohnson/clock"
)

// Transport moves the bytes of calls: it delivers a Request to the callee
// (which runs it with [Table.Handle]) and brings back its Response. TCP
// ([Client], [Peer.Back]), the in-process [Local] and the simulator's
// network are transports; everything else a call involves is done once,
// by [Caller] on the caller's side and [Table.Handle] on the callee's.
type Transport interface {
	// RoundTrip delivers req and waits for the response. It must stop
	// waiting when ctx's deadline passes (a simulator watches it with its
	// own timer) or ctx is canceled, and then return an error wrapping
	// context.DeadlineExceeded or context.Canceled. Its other failures
	// wrap ErrConnect (req was not sent), ErrClosed, ErrConnLost or
	// ErrMarshal; any other error counts as a lost connection.
	//
	// It must keep nothing of req once it returns: the caller reuses the
	// buffer of req.Args. A transport that delivers req later (a
	// simulated network) copies it.
	RoundTrip(ctx context.Context, req *Request) (*Response, error)
}

// Caller is the caller's half of every call, whatever the transport: it
// implements Invoker on a Transport. It gives a call without a deadline
// one of CallTimeout, fails at once a call whose deadline has passed,
// encodes the arguments, sends the caller's remaining time along so that
// the callee runs under the same deadline, and classifies the outcome:
// ErrTimeout, ErrConnect, ErrConnLost, ErrClosed, ErrMarshal, or a
// *RemoteError when the remote method ran and returned an error.
type Caller struct {
	// Transport carries the calls.
	Transport Transport
	// Clock reads the deadlines of the contexts given to Invoke and
	// arms CallTimeout. Nil means the real clock.
	Clock clock.Clock
	// CallTimeout bounds a call whose context has no deadline; zero means
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// Remote names the callee in error messages (an address, a node);
	// it may be empty.
	Remote string
}

// realClock is the clock of a Caller or Local whose Clock is nil. The
// real clock has no state, so sharing it is safe.
var realClock = clock.New()

// Invoke implements Invoker.
func (c Caller) Invoke(ctx context.Context, object, method string, args, reply any) error {
	clk := c.Clock
	if clk == nil {
		clk = realClock
	}
	if err := ctx.Err(); err != nil {
		return c.failed(object, method, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := c.CallTimeout
		if timeout <= 0 {
			timeout = DefaultCallTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = clk.WithTimeout(ctx, timeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	remaining := clk.Until(dl)
	if remaining <= 0 {
		return c.failed(object, method, context.DeadlineExceeded)
	}
	b, err := encodeArgs(args)
	if err != nil {
		return fmt.Errorf("%s: encoding arguments: %w", c.where(object, method), err)
	}
	resp, err := c.Transport.RoundTrip(ctx, &Request{Object: object, Method: method, Timeout: int64(remaining), Args: b})
	putBuf(b) // the transport keeps nothing of req once it returns
	if err != nil {
		return c.failed(object, method, err)
	}
	return c.outcome(object, method, resp, reply)
}

// where prefixes the caller's error messages.
func (c Caller) where(object, method string) string {
	if c.Remote == "" {
		return fmt.Sprintf("rmi: %s.%s", object, method)
	}
	return fmt.Sprintf("rmi: %s.%s on %s", object, method, c.Remote)
}

// failed classifies a call that got no response.
func (c Caller) failed(object, method string, err error) error {
	where := c.where(object, method)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w (%w)", where, ErrTimeout, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: call abandoned, outcome unknown: %w", where, err)
	case errors.Is(err, ErrConnect), errors.Is(err, ErrConnLost), errors.Is(err, ErrClosed), errors.Is(err, ErrMarshal):
		return fmt.Errorf("%s: %w", where, err)
	}
	return fmt.Errorf("%s: %w: %w", where, ErrConnLost, err)
}

// outcome classifies a response and decodes its result into reply.
func (c Caller) outcome(object, method string, resp *Response, reply any) error {
	if resp.Failed {
		switch resp.ErrCode {
		case timeoutCode:
			return fmt.Errorf("%s: %w (%w): %s", c.where(object, method), ErrTimeout, context.DeadlineExceeded, resp.ErrMsg)
		case errBadRequest.Code:
			return fmt.Errorf("%s: %w: the callee could not decode the request: %s", c.where(object, method), ErrMarshal, resp.ErrMsg)
		}
		return &RemoteError{Code: resp.ErrCode, Message: resp.ErrMsg, Object: object, Method: method}
	}
	if reply == nil || len(resp.Result) == 0 {
		return nil
	}
	if err := Unmarshal(resp.Result, reply); err != nil {
		return fmt.Errorf("%s: decoding result: %w", c.where(object, method), err)
	}
	return nil
}

// Call calls method on the remote object exported as object, through inv,
// and returns its result: the one-line body of a typed stub method, for
// remote methods that return a result (for those that return only an
// error, a stub calls inv.Invoke with a nil reply).
func Call[R any](ctx context.Context, inv Invoker, object, method string, args any) (R, error) {
	var r R
	err := inv.Invoke(ctx, object, method, args, &r)
	return r, err
}
