package rmi

// This file is the reader of a conn (conn.go): the codec of its
// rpc.Client, whose input goroutine reads every frame, and the serving of
// the requests it meets.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// ReadResponseHeader implements rpc.ClientCodec. It reads frames until a
// response: it answers pings, and hands each request to a goroutine of
// its own. When the connection fails it ends it, and returns why (never a
// bare io.EOF, which net/rpc would report as its own shutdown).
func (c *conn) ReadResponseHeader(r *rpc.Response) error {
	if !c.started {
		<-c.ready
		c.started = true
	}
	for {
		kind, n, err := readFrameHeader(c.r, &c.hdr)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("rmi: %s closed the connection: %w", c.remote, io.ErrUnexpectedEOF)
			}
			return c.readFailed(err)
		}
		switch kind {
		case framePing, framePong:
			if n != 0 {
				return c.readFailed(fmt.Errorf("%w: a keepalive frame with a body of %d bytes", errProtocol, n))
			}
			if kind == framePing {
				c.pong()
			}
		case frameRequest:
			if err := c.readRequest(n); err != nil {
				return c.readFailed(err)
			}
		case frameResponse:
			if n > c.maxResponse {
				return c.readFailed(fmt.Errorf("%w: a response of %d bytes, over the cap of %d: %w", errProtocol, n, c.maxResponse, ErrTooLarge))
			}
			body, err := readBody(c.r, n, n)
			if err != nil {
				return c.readFailed(err)
			}
			c.body, c.dec, c.bodyErr = body, getDecoder(body), nil
			if g := (lenGuard{max: maxResponseValue}); g.feed(body) < len(body) {
				c.bodyErr = errResponseTooLarge
			}
			if err := c.dec.Decode(r); err != nil {
				c.freeResponse()
				return c.readFailed(fmt.Errorf("%w: a response header: %w", errProtocol, err))
			}
			return nil
		default:
			return c.readFailed(fmt.Errorf("%w: a frame of unknown kind %d", errProtocol, kind))
		}
	}
}

// ReadResponseBody implements rpc.ClientCodec. A body that does not decode
// fails its call only (the next frame starts where the header said): the
// error is kept in the call's reply, since net/rpc passes it on as text.
func (c *conn) ReadResponseBody(body any) error {
	defer c.freeResponse()
	r, _ := body.(*reply) // nil for a net/rpc error, or an answer to no call
	if r == nil {
		return nil
	}
	err := c.bodyErr
	// A body in a buffer of its own (over pooledFrame) stays with the
	// call once read, so its Result can point into it; a pooled one goes
	// back to the pool below, so its Result is copied out.
	if err == nil && !(cap(c.body) > pooledFrame && decodeResponse(c.body[c.dec.NumBytesRead():], &r.resp)) {
		err = c.dec.Decode(&r.resp)
	}
	if err != nil {
		r.decodeErr = err
	}
	return err
}

// freeResponse returns the response's decoder to its pool, and its buffer
// too if it is of the first pool's size: a larger one stays with the call,
// whose Result may point into it (ReadResponseBody).
func (c *conn) freeResponse() {
	if c.dec != nil {
		putDecoder(c.dec)
		if cap(c.body) == pooledFrame {
			putBuf(c.body)
		}
		c.dec, c.body = nil, nil
	}
}

// WriteRequest implements rpc.ClientCodec. body is the call's reply
// (RoundTrip's calls), or else the argument itself, sent with no
// deadline on the write but the idle timeout.
func (c *conn) WriteRequest(r *rpc.Request, body any) error {
	if out, ok := body.(*reply); ok && out.req != nil {
		return c.writeFrame(out.ctx, frameRequest, r, out.req)
	}
	return c.writeFrame(context.Background(), frameRequest, r, body)
}

// Close implements rpc.ClientCodec: it ends the connection, closed by its
// owner.
func (c *conn) Close() error {
	c.close(ErrClosed)
	return nil
}

// readFailed ends the connection because reading failed with err, starts
// what must follow its end, and returns err for net/rpc to fail the calls
// in flight with.
func (c *conn) readFailed(err error) error {
	if c.in != nil && c.in.slow.Load() {
		err = fmt.Errorf("rmi: request not received whole within %v: %w", c.in.lim.timeout, err)
	}
	c.close(err)
	// The end hooks wait for the requests in flight, which may wait for
	// calls on this connection: those fail once this returns.
	c.finishOnce.Do(func() { go c.finished() })
	return err
}

// readRequest reads a request of n bytes and starts a goroutine that runs
// it. It first waits until fewer than maxRequests are in flight, so a
// flood of requests waits in the connection. A request over the size cap,
// or one that does not fit in the byte budgets, is read (its first
// refusedPrefix bytes kept, the rest dropped) and answered with
// ErrTooLarge or ErrBusy; its bytes are never held, and the connection
// carries on. A request not read whole within the request timeout ends
// the connection.
func (c *conn) readRequest(n int) error {
	in := c.in
	if in == nil {
		return fmt.Errorf("%w: a request, and this end serves no objects", errProtocol)
	}
	select {
	case in.slots <- struct{}{}:
	case <-c.done:
		return net.ErrClosed
	}
	// The request timer runs from before the request is counted against
	// the byte budgets, so that whoever sees it counted (a test moving
	// a mock clock) knows the timer is armed.
	c.beginRequest()
	keep, charge := n, 0
	var refused error
	if in.lim.maxBytes > 0 && n > in.lim.maxBytes {
		refused = tooLarge(in.lim.maxBytes)
	} else if err := in.lim.budgets.take(bodyCap(n) + requestOverhead); err != nil {
		refused = err
	} else {
		charge = bodyCap(n) + requestOverhead // its buffer, rounded up to its class
	}
	if refused != nil {
		keep = refusedPrefix
	}
	body, err := readBody(c.r, n, keep)
	c.endRequest()
	if err != nil {
		in.lim.budgets.release(charge)
		<-in.slots
		return err
	}
	in.wg.Add(1)
	in.workers.Run(func() { c.serveRequest(body, charge, refused) })
	return nil
}

// beginRequest arms the request timer for the request being read.
func (c *conn) beginRequest() {
	in := c.in
	if in.lim.timeout <= 0 {
		return
	}
	gen := in.reqGen.Add(1)
	in.armedGen.Store(gen)
	if in.reqTimer == nil {
		in.reqTimer = in.lim.clk.AfterFunc(in.lim.timeout, c.requestTimedOut)
	} else {
		in.reqTimer.Reset(in.lim.timeout)
	}
}

// endRequest disarms the request timer.
func (c *conn) endRequest() {
	in := c.in
	if in.lim.timeout <= 0 {
		return
	}
	in.reqTimer.Stop()
	in.reqGen.Add(1)
}

// requestTimedOut ends the connection if the request the timer was armed
// for is still being read.
func (c *conn) requestTimedOut() {
	in := c.in
	if g := in.armedGen.Load(); in.reqGen.Load() == g {
		in.slow.Store(true)
		c.close(fmt.Errorf("rmi: request not received whole within %v", in.lim.timeout))
	}
}

// serveRequest runs one request, body, with net/rpc and writes its
// response; then it releases the request's charge and slot. A refused
// request (refused not nil) is answered with that error.
func (c *conn) serveRequest(body []byte, charge int, refused error) {
	in := c.in
	defer func() {
		in.lim.budgets.release(charge)
		<-in.slots
		in.wg.Done()
	}()
	if refused == nil && in.lim.maxBytes > 0 {
		// The decoder trusts length prefixes (see lenGuard).
		if g := (lenGuard{max: in.lim.maxBytes}); g.feed(body) < len(body) {
			refused = tooLarge(in.lim.maxBytes)
		}
	}
	rc := &requestCodec{c: c, body: body, dec: getDecoder(body), refused: refused}
	err := in.rs.ServeRequest(rc)
	rc.free()
	if err != nil && !rc.answered {
		// Not even its net/rpc header decoded: nothing can answer it.
		c.close(fmt.Errorf("%w: %w", errProtocol, err))
	}
}

// requestCodec is the rpc.ServerCodec of one request: it decodes the
// request from its frame and writes the response on the connection.
type requestCodec struct {
	c        *conn
	body     []byte
	dec      *codec.Decoder
	refused  error
	answered bool
}

// ReadRequestHeader implements rpc.ServerCodec.
func (rc *requestCodec) ReadRequestHeader(r *rpc.Request) error {
	if err := rc.dec.Decode(r); err != nil {
		return fmt.Errorf("a request header that does not decode: %w", err)
	}
	return nil
}

// ReadRequestBody implements rpc.ServerCodec. A request refused before it
// was read, or one that does not decode, is handed on marked unread, so
// that it is answered with ErrTooLarge, ErrBusy or errBadRequest; its
// Object and Method, which come first, are kept when they decoded, so
// that the answer can be its method's own error (see ArgTooLarge).
func (rc *requestCodec) ReadRequestBody(body any) error {
	defer rc.freeDecoder()
	req, ok := body.(*Request)
	if !ok {
		return nil // net/rpc drops the body of a call it cannot run
	}
	// req.Args may point into rc.body, which is kept until the request
	// has been served (serveRequest frees it).
	var err error
	if !decodeRequest(rc.body[rc.dec.NumBytesRead():], req) {
		err = rc.dec.Decode(req)
	}
	switch {
	case rc.refused != nil:
		*req = Request{Object: req.Object, Method: req.Method, unread: rc.refused}
	case err != nil:
		*req = Request{Object: req.Object, Method: req.Method, unread: fmt.Errorf("%w: %w", errBadRequest, err)}
	default:
		req.in = rc.c.in
	}
	return nil
}

// WriteResponse implements rpc.ServerCodec.
func (rc *requestCodec) WriteResponse(r *rpc.Response, body any) error {
	rc.answered = true
	return rc.c.writeFrame(context.Background(), frameResponse, r, body)
}

// Close implements rpc.ServerCodec; net/rpc never calls it for a single
// request.
func (rc *requestCodec) Close() error { return nil }

// freeDecoder returns the request's decoder to its pool.
func (rc *requestCodec) freeDecoder() {
	if rc.dec != nil {
		putDecoder(rc.dec)
		rc.dec = nil
	}
}

// free returns the request's decoder and buffer to their pools, once the
// request has been served: its Args may point into the buffer until then.
func (rc *requestCodec) free() {
	rc.freeDecoder()
	if rc.body != nil {
		putBuf(rc.body)
		rc.body = nil
	}
}
