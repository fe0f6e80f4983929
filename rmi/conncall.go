package rmi

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
)

// RoundTrip implements Transport: it carries one call on the connection's
// rpc.Client, writing the request in the caller's goroutine. A caller
// waits for another's write no longer than ctx allows; if its own write
// blocks (the other end stopped reading) past ctx's deadline, the
// connection ends, since half a frame was written. (A caller can also
// wait in net/rpc behind another caller that is waiting to write, until
// that one's deadline.)
func (c *conn) RoundTrip(ctx context.Context, req *Request) (*Response, error) {
	if err := c.ended(); err != nil {
		return nil, err
	}
	r := &reply{ctx: ctx, req: req}
	done := make(chan *rpc.Call, 1)
	c.rc.Go(serviceMethod, r, r, done) // r is the argument too (see WriteRequest)
	select {
	case call := <-done:
		if call.Error != nil {
			if err := ctx.Err(); err != nil {
				// The deadline passed first (the write that blocked past
				// it failed when it ended the connection).
				return nil, err
			}
			return c.failed(call.Error, r)
		}
		return &r.resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// failed explains a call that net/rpc failed with callErr.
func (c *conn) failed(callErr error, r *reply) (*Response, error) {
	var se rpc.ServerError
	if errors.As(callErr, &se) {
		// The other end's net/rpc could not run the call; its only
		// account of why is the text.
		return &Response{Failed: true, ErrMsg: string(se)}, nil
	}
	if errors.Is(callErr, context.DeadlineExceeded) || errors.Is(callErr, context.Canceled) {
		return nil, callErr // not sent: the caller's time ran out first
	}
	if r.decodeErr != nil {
		return nil, fmt.Errorf("%w: decoding the response: %w", ErrMarshal, r.decodeErr)
	}
	if errors.Is(callErr, ErrConnect) || errors.Is(callErr, ErrMarshal) {
		return nil, callErr // not sent
	}
	if errors.Is(callErr, rpc.ErrShutdown) {
		// net/rpc refused to send it: the connection had just ended.
		if err := c.ended(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrConnect, callErr)
	}
	if errors.Is(c.ended(), ErrClosed) {
		// Closed by its owner while the call was in flight.
		return nil, fmt.Errorf("%w: %w", ErrConnLost, ErrClosed)
	}
	return nil, fmt.Errorf("%w: %w", ErrConnLost, callErr)
}

// reply is what the net/rpc reply of a call points to: the decoded
// Response, or why it could not be decoded. It is the net/rpc argument of
// the call too: it holds the Request, and the caller's context, which
// bounds the write (one allocation for both).
type reply struct {
	ctx context.Context
	req *Request

	resp      Response
	decodeErr error
}
