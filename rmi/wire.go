package rmi

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/yamux"
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

	// keepAliveInterval is how often yamux pings an otherwise idle session,
	// so that healthy idle connections keep bytes flowing and never hit the
	// idle timeout. Servers lower it when their IdleTimeout is short.
	keepAliveInterval = 15 * time.Second
	// maxInflightPerStream caps requests read but not yet answered on one
	// stream; further requests wait, so a flood cannot pile up goroutines.
	maxInflightPerStream = 256

	// timeoutCode is the Response.ErrCode of a method that returned after
	// the caller's deadline had passed; the caller sees ErrTimeout.
	timeoutCode = "rmi.timeout"
)

// errBadRequest is what a server answers to a request it could not decode
// (not even its envelope); the caller sees ErrMarshal. Like a request over
// the size cap, it ends the stream it came on.
var errBadRequest = NewError("rmi.bad_request", "request could not be decoded")

// tooLarge is the error of a request over the size cap of maxBytes.
func tooLarge(maxBytes int) error {
	return fmt.Errorf("rmi: request larger than %d bytes: %w", maxBytes, ErrTooLarge)
}

// pastDeadline is an instant long gone; setting it as a stream deadline
// makes blocked and future I/O on the stream fail at once.
var pastDeadline = time.Unix(1, 0)

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

	// unread, set only by a server's codec (it is never encoded), says
	// why the request could not be read whole; the server answers it
	// with this error instead of running a method.
	unread error
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
	// EndStream reports that the callee could not read the request whole
	// (too large, refused for want of budget, or undecodable) and ends the
	// stream it came on; the caller opens a fresh one for its next call.
	EndStream bool
}

// fail records err, a method's error, in r.
func (r *Response) fail(err error) {
	r.Failed = true
	r.ErrCode, r.ErrMsg = ErrorCode(err)
}

// rmiService is registered with net/rpc (one instance per connection, so
// it knows its caller) and hands every request to a Table.
type rmiService struct {
	table    *Table
	ctx      context.Context // carries the Peer; canceled when the connection ends
	clk      clock.Clock
	maxBytes int
}

// Invoke is the only net/rpc method: it runs one remote method call.
// Application errors travel in resp; the returned error is always nil.
func (s *rmiService) Invoke(req *Request, resp *Response) error {
	if req.unread != nil {
		resp.fail(s.table.unread(req))
		resp.EndStream = true
		return nil
	}
	s.table.handle(s.ctx, s.clk, s.maxBytes, req, resp)
	return nil
}

// newRPCServer returns a net/rpc server whose RMI service hands requests
// to t with ctx (which carries the caller's Peer).
func newRPCServer(ctx context.Context, t *Table, lim streamLimits) *rpc.Server {
	rs := rpc.NewServer()
	if err := rs.RegisterName(serviceName, &rmiService{table: t, ctx: ctx, clk: lim.clk, maxBytes: lim.maxBytes}); err != nil {
		// Registration only fails if rmiService's method set is wrong,
		// which is a bug in this package.
		panic(fmt.Sprintf("rmi: registering service: %v", err))
	}
	return rs
}

// streamLimits are the server-side limits applied to each stream.
type streamLimits struct {
	clk        clock.Clock
	idle       time.Duration // a started request, or a response write, may stall this long
	timeout    time.Duration // a request's first byte to its last (0: no limit)
	maxBytes   int           // largest request accepted
	maxStreams int           // streams open at once on the connection
	budgets    budgets       // request bytes in flight: the connection's and the process's
}

// serveStreams accepts streams on sess and serves rs on each (rs nil:
// refuse every stream) until the session ends; then it runs ended (if
// not nil), which should end the calls in flight, and waits for the
// streams' goroutines, which wait for those calls. A peer that
// opens more than lim.maxStreams streams at once has its connection
// closed.
func serveStreams(sess *yamux.Session, rs *rpc.Server, lim streamLimits, log *slog.Logger, ended func()) {
	var wg sync.WaitGroup
	var open atomic.Int32
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			break
		}
		if rs == nil {
			log.Debug("rmi: refusing stream: no callback objects", "remote", sess.RemoteAddr())
			_ = st.Close()
			continue
		}
		if open.Load() >= int32(lim.maxStreams) {
			log.Warn("rmi: peer opened too many streams; closing its connection", "remote", sess.RemoteAddr(), "open", open.Load())
			_ = sess.Close()
			break
		}
		open.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer open.Add(-1)
			rs.ServeCodec(newServerCodec(st, lim))
			// The codec has closed our half of the stream. Until the peer
			// closes its half (or yamux gives up on it after
			// StreamCloseTimeout), whatever it still sends would pile up
			// in the stream's buffer: read and drop it, and keep counting
			// the stream against the cap meanwhile. (A stalled request
			// left a read deadline in the past; clear it first.)
			_ = st.SetReadDeadline(time.Time{})
			_, _ = io.Copy(io.Discard, st)
		}()
	}
	if ended != nil {
		ended()
	}
	wg.Wait()
}

// serverCodec wraps go-msgpack's GoRpc server codec for one stream. It caps
// the size of each request, bounds how long a started request may stall,
// how long it may take in all, and how long a response write may block (so
// a half-sent or trickled request or a peer that stops reading cannot hold
// a goroutine), limits requests in flight and charges their bytes to the
// byte budgets until they are answered, and closes the stream for good
// after any malformed request.
type serverCodec struct {
	rpc.ServerCodec
	rd     *requestReader
	st     stream
	lim    streamLimits
	slots  chan struct{}
	closed chan struct{}
	once   sync.Once

	seq uint64     // of the request being read
	mu  sync.Mutex // guards charges
	// charges holds the budget bytes of each request read but not yet
	// answered, by sequence number. A peer may reuse a number, so each
	// holds a queue: requests sharing one may swap amounts, but every
	// byte is released once all of them are answered.
	charges map[uint64][]int
}

// stream is what a codec runs on: a yamux stream (in tests, any
// connection with deadlines).
type stream interface {
	io.ReadWriteCloser
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

func newServerCodec(st stream, lim streamLimits) *serverCodec {
	rd := &requestReader{st: st, lim: lim, guard: lenGuard{max: lim.maxBytes}}
	if lim.maxBytes <= 0 {
		rd.guard.max = int(^uint(0) >> 1)
	}
	rd.br = bufio.NewReader(streamReader{rd})
	h := newHandle()
	// We buffer ourselves, below the size counter, so the decoder must not
	// read ahead into the next request.
	h.RPCNoBuffer = true
	// Embedding *requestReader (not io.Reader) keeps its ReadByte and
	// UnreadByte visible, so the decoder uses them directly.
	rwc := struct {
		*requestReader
		*bufio.Writer
		io.Closer
	}{rd, bufio.NewWriter(st), closingStream{st}}
	return &serverCodec{
		ServerCodec: codec.GoRpc.ServerCodec(rwc, h),
		rd:          rd,
		st:          st,
		lim:         lim,
		slots:       make(chan struct{}, maxInflightPerStream),
		closed:      make(chan struct{}),
		charges:     map[uint64][]int{},
	}
}

// ReadRequestHeader implements rpc.ServerCodec.
func (c *serverCodec) ReadRequestHeader(r *rpc.Request) error {
	select {
	case <-c.closed:
		return io.EOF
	default:
	}
	select {
	case c.slots <- struct{}{}:
	case <-c.closed:
		return io.EOF
	}
	c.rd.begin()
	if err := c.ServerCodec.ReadRequestHeader(r); err != nil {
		c.rd.end()
		c.lim.budgets.release(c.rd.charged)
		<-c.slots
		if err2 := c.rd.failure(); err2 != nil {
			return err2
		}
		return err
	}
	c.seq = r.Seq
	return nil
}

// ReadRequestBody implements rpc.ServerCodec. A request body over the
// size cap, one that finds the byte budgets full, or one that does not
// decode, is handed on marked unread, so that the caller gets an answer
// (ErrTooLarge, ErrBusy or errBadRequest); the stream is out of step after
// it, so nothing more is read from it. The request's bytes stay charged
// to the budgets until WriteResponse answers it.
func (c *serverCodec) ReadRequestBody(body any) error {
	err := c.rd.startBody()
	if err == nil {
		err = c.ServerCodec.ReadRequestBody(body)
	}
	c.rd.end()
	c.mu.Lock()
	c.charges[c.seq] = append(c.charges[c.seq], c.rd.charged)
	c.mu.Unlock()
	if err == nil {
		return nil
	}
	fail := c.rd.failure()
	switch {
	case fail == nil:
		fail = fmt.Errorf("%w: %w", errBadRequest, err)
	case !errors.Is(fail, ErrTooLarge) && !errors.Is(fail, ErrBusy):
		return fail // stalled or too slow: the stream is closed under it
	}
	c.rd.poison(fail)
	req, ok := body.(*Request)
	if !ok {
		return fail
	}
	// Object and Method come before Args, so they are usually decoded
	// already: they let a too-large request be answered with its
	// method's own error (see ArgTooLarge).
	*req = Request{Object: req.Object, Method: req.Method, unread: fail}
	return nil
}

// WriteResponse implements rpc.ServerCodec.
func (c *serverCodec) WriteResponse(r *rpc.Response, body any) error {
	defer func() {
		c.mu.Lock()
		var n int
		if q := c.charges[r.Seq]; len(q) > 0 {
			n = q[0]
			if c.charges[r.Seq] = q[1:]; len(q) == 1 {
				delete(c.charges, r.Seq)
			}
		}
		c.mu.Unlock()
		c.lim.budgets.release(n)
		<-c.slots
	}()
	var fired atomic.Bool
	t := c.lim.clk.AfterFunc(c.lim.idle, func() {
		fired.Store(true)
		_ = c.st.SetWriteDeadline(pastDeadline)
	})
	err := c.ServerCodec.WriteResponse(r, body)
	if !t.Stop() && fired.Load() {
		// The peer stopped reading; the stream is unusable from now on.
		c.rd.poison(errors.New("rmi: response write stalled"))
		_ = c.Close()
	}
	return err
}

// Close implements rpc.ServerCodec.
func (c *serverCodec) Close() error {
	c.once.Do(func() { close(c.closed) })
	c.rd.poison(net.ErrClosed)
	return c.ServerCodec.Close()
}

// closingStream is a yamux stream whose Close always reports
// net.ErrClosed. go-msgpack's rpc codec remembers what Close returned and
// hands it to every later read and write; were that nil, as a stream's
// Close returns, a closed codec would "read" empty messages forever (a
// busy loop in net/rpc's read loops, and empty replies for pending calls).
type closingStream struct{ stream }

// Close closes the stream and returns net.ErrClosed.
func (s closingStream) Close() error {
	_ = s.stream.Close()
	return net.ErrClosed
}

// clientCodec wraps go-msgpack's GoRpc client codec and records the first
// I/O failure, after which the stream is not used for new calls.
type clientCodec struct {
	rpc.ClientCodec
	dead *atomic.Bool
}

// WriteRequest implements rpc.ClientCodec.
func (c clientCodec) WriteRequest(r *rpc.Request, body any) error {
	err := c.ClientCodec.WriteRequest(r, body)
	if err != nil {
		c.dead.Store(true)
	}
	return err
}

// ReadResponseHeader implements rpc.ClientCodec.
func (c clientCodec) ReadResponseHeader(r *rpc.Response) error {
	err := c.ClientCodec.ReadResponseHeader(r)
	if err != nil {
		c.dead.Store(true)
	}
	return err
}

// ReadResponseBody implements rpc.ClientCodec. net/rpc reports a body
// that failed to decode only as text, so the error is also kept in the
// call's reply, where the caller can examine it.
func (c clientCodec) ReadResponseBody(body any) error {
	r, _ := body.(*reply) // nil for a net/rpc error, whose body is skipped
	var dst any
	if r != nil {
		dst = &r.resp
	}
	err := c.ClientCodec.ReadResponseBody(dst)
	if err != nil {
		c.dead.Store(true)
		if r != nil {
			r.decodeErr = err
		}
	}
	return err
}

// reply is what the net/rpc reply of a call points to: the decoded
// Response, or why it could not be decoded.
type reply struct {
	resp      Response
	decodeErr error
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

// yamuxConfig returns the multiplexer settings for one session; this side
// pings the other every keepAlive, or never if keepAlive is zero.
func yamuxConfig(log *slog.Logger, keepAlive time.Duration) *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = keepAlive > 0 // zero: this side does not ping
	if keepAlive > 0 {
		cfg.KeepAliveInterval = keepAlive
	}
	cfg.StreamCloseTimeout = 30 * time.Second
	// Streams opened but not yet accepted: each may buffer a stream
	// window (256 KiB). The accept loop takes them at once, so a short
	// queue is plenty; yamux resets streams beyond it.
	cfg.AcceptBacklog = 16
	cfg.LogOutput = nil
	cfg.Logger = yamuxLogger{log}
	return cfg
}

// yamuxLogger sends yamux's log lines to slog at debug level.
type yamuxLogger struct{ log *slog.Logger }

// Print implements yamux.Logger.
func (l yamuxLogger) Print(v ...any) { l.log.Debug(fmt.Sprint(v...)) }

// Printf implements yamux.Logger.
func (l yamuxLogger) Printf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Println implements yamux.Logger.
func (l yamuxLogger) Println(v ...any) { l.log.Debug(fmt.Sprint(v...)) }

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
