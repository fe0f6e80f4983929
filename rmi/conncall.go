package rmi

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
)

// RoundTrip implements Transport: it carries one call on the connection's
// rpc.Client. The request is written from a goroutine of its own, so
// that the caller stops waiting when ctx ends even while the write is
// blocked (the other end stopped reading) or waits for another's.
func (c *conn) RoundTrip(ctx context.Context, req *Request) (*Response, error) {
	if err := c.ended(); err != nil {
		return nil, err
	}
	r := new(reply)
	done := make(chan *rpc.Call, 1)
	go c.rc.Go(serviceMethod, req, r, done)
	select {
	case call := <-done:
		if call.Error != nil {
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
// Response, or why it could not be decoded.
type reply struct {
	resp      Response
	decodeErr error
}
