package rmi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/rpc"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// Defaults for ServerConfig and DialConfig fields left zero.
const (
	// DefaultConnectTimeout bounds the TCP dial.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultHandshakeTimeout bounds the protocol handshake on both sides.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultCallTimeout bounds a call whose context has no deadline.
	DefaultCallTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a connection may go without receiving
	// a byte before it is closed, and how long a started request may stall.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultMaxRequestBytes caps the encoded size of one request.
	DefaultMaxRequestBytes = 8 << 20
)

const (
	// serviceName is the one net/rpc service every rmi connection serves.
	serviceName   = "RMI"
	serviceMethod = serviceName + ".Invoke"

	// keepAliveInterval is how often a client pings an otherwise idle
	// connection (the server answers), so that healthy idle connections
	// keep bytes flowing both ways and never hit the idle timeout. A
	// server pings too when its IdleTimeout is too short for that.
	keepAliveInterval = 15 * time.Second

	// maxIdleWorkers is how many goroutines that ran requests a Server
	// keeps waiting for the next ones (see package workpool).
	maxIdleWorkers = 16

	// timeoutCode is the Response.ErrCode of a method that returned after
	// the caller's deadline had passed; the caller sees ErrTimeout.
	timeoutCode = "rmi.timeout"
)

// errBadRequest is what a server answers to a request it could not decode
// (not even its envelope); the caller sees ErrMarshal.
var errBadRequest = NewError("rmi.bad_request", "request could not be decoded")

// tooLarge is the error of a request over the size cap of maxBytes.
func tooLarge(maxBytes int) error {
	return fmt.Errorf("rmi: request larger than %d bytes: %w", maxBytes, ErrTooLarge)
}

// Request is the wire form of one call: the single argument of the RMI
// net/rpc service's Invoke method.
type Request struct {
	// Encode as an array, in the order of the fields, so that Object and
	// Method arrive before Args: a server that refuses Args as too large
	// still knows which method they were for.
	_struct bool `codec:",toarray"`

	// Object and Method name the remote method.
	Object, Method string
	// Timeout is the caller's remaining deadline in nanoseconds; the server
	// runs the method with this deadline on its own clock. Zero or less
	// means no deadline.
	Timeout int64
	// Args is the msgpack encoding of the method's argument.
	Args []byte

	// unread, set only by the callee's codec (it is never encoded), says
	// why the request could not be read whole; the callee answers it
	// with this error instead of running a method.
	unread error
	// in, set only by the callee's codec, is the connection the request
	// came on: its context (with the caller's Peer) and limits.
	in *callee
}

// Response is the wire form of a call's outcome: the reply of the RMI
// net/rpc service's Invoke method.
type Response struct {
	// Result is the msgpack encoding of the method's result, if any.
	Result []byte
	// ErrCode and ErrMsg describe the method's error when Failed is set:
	// the code of the *Error it wrapped (or empty) and its full text.
	ErrCode, ErrMsg string
	// Failed reports that the method returned an error.
	Failed bool
}

// fail records err, a method's error, in r.
func (r *Response) fail(err error) {
	r.Failed = true
	r.ErrCode, r.ErrMsg = ErrorCode(err)
}

// rmiService is registered with net/rpc and hands every request to a
// Table, with the context and limits of the connection it came on.
type rmiService struct {
	table *Table
}

// Invoke is the only net/rpc method: it runs one remote method call.
// Application errors travel in resp; the returned error is always nil.
func (s *rmiService) Invoke(req *Request, resp *Response) error {
	if req.unread != nil {
		resp.fail(s.table.unread(req))
		return nil
	}
	s.table.handle(req.in.ctx, req.in.lim.clk, req.in.lim.maxBytes, req, resp)
	return nil
}

// newRPCServer returns a net/rpc server whose RMI service hands requests
// to t; one serves all the connections of a Server (or a Client's).
func newRPCServer(t *Table) *rpc.Server {
	rs := rpc.NewServer()
	if err := rs.RegisterName(serviceName, &rmiService{table: t}); err != nil {
		// Registration only fails if rmiService's method set is wrong,
		// which is a bug in this package.
		panic(fmt.Sprintf("rmi: registering service: %v", err))
	}
	return rs
}

// idleConn closes the connection when no Read has been started for the
// idle timeout: each Read pushes the deadline back. It uses a timer on the
// injected clock rather than a socket deadline, so it behaves with a mock
// clock too.
type idleConn struct {
	net.Conn
	d     time.Duration
	timer *clock.Timer
}

func newIdleConn(c net.Conn, clk clock.Clock, d time.Duration) *idleConn {
	ic := &idleConn{Conn: c, d: d}
	ic.timer = clk.AfterFunc(d, func() { _ = c.Close() })
	return ic
}

// Read implements net.Conn.
func (c *idleConn) Read(p []byte) (int, error) {
	c.timer.Reset(c.d)
	return c.Conn.Read(p)
}

// Close implements net.Conn.
func (c *idleConn) Close() error {
	c.timer.Stop()
	return c.Conn.Close()
}

// newPeerID returns a random connection id: unique within the process
// with overwhelming probability, without shared mutable state.
func newPeerID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return binary.BigEndian.Uint64(b[:]) >> 1
}

// clockContext returns a context that ends when parent does or when d has
// passed on clk. Unlike clk.WithTimeout it reports no Deadline: the net
// package treats a context deadline as a wall-clock instant, which a mock
// clock's is not. timedOut reports whether d passed.
func clockContext(parent context.Context, clk clock.Clock, d time.Duration) (ctx context.Context, timedOut func() bool, cancel context.CancelFunc) {
	ctx, cancelCtx := context.WithCancel(context.WithoutCancel(parent))
	stopParent := context.AfterFunc(parent, cancelCtx)
	var fired atomic.Bool
	t := clk.AfterFunc(d, func() {
		fired.Store(true)
		cancelCtx()
	})
	return ctx, fired.Load, func() {
		stopParent()
		t.Stop()
		cancelCtx()
	}
}
