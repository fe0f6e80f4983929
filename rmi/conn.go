package rmi

import (
	"bufio"
	"context"
	"crypto/tls"
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

	"github.com/distchat/distchat/rmi/workpool"
)

// conn is one rmi connection, at either end, after the handshake: it
// carries net/rpc calls both ways, in frames (frame.go), with one
// goroutine reading it. That goroutine is the input goroutine of the
// connection's rpc.Client (conn is its codec): reading for a response, it
// meets requests from the other end too, and hands each to a goroutine
// (a workpool.Pool) that runs it with rpc.Server.ServeRequest and writes the
// response. A write happens in the goroutine that has something to send,
// holding wsem.
//
// A call therefore costs what it costs over plain net/rpc: the caller
// writes its request, the other end's reader hands it to a goroutine that
// runs it and writes the response, and the caller's reader hands that to
// the caller.
type conn struct {
	nc          net.Conn  // the connection; its reads pass through an idleConn
	r           io.Reader // what the reader reads: nc, buffered unless nc buffers itself
	remote      string
	clk         clock.Clock
	log         *slog.Logger
	idle        time.Duration
	maxResponse int     // the largest response body this end reads
	in          *callee // the objects this end serves; nil: none
	rc          *rpc.Client

	wsem    chan struct{} // held (full) by the goroutine writing a frame
	writing atomic.Bool   // a write is under way, which the stall timer bounds
	wrote   atomic.Bool   // a frame with a body was written since the last keepalive tick
	stall   *clock.Timer  // closes the connection when a write blocks too long
	keep    *clock.Timer  // the keepalive tick; nil if this end never pings
	every   time.Duration

	// The response being read, between ReadResponseHeader and
	// ReadResponseBody (only the reader touches them).
	hdr     [frameHeaderLen]byte
	body    []byte
	dec     *codec.Decoder
	bodyErr error // why the response's body is refused

	ready      chan struct{} // closed once rc is set
	started    bool          // the reader has seen ready (only the reader touches it)
	closeOnce  sync.Once
	done       chan struct{} // closed when the connection ends
	why        error         // why it ended; set before done is closed
	finished   func()        // runs once the connection has ended: cancels its requests, waits for them, runs the hooks
	finishOnce sync.Once
}

// callee is what one end of a connection needs to run the requests it
// receives: its net/rpc server, their context and their limits.
type callee struct {
	rs      *rpc.Server
	workers *workpool.Pool  // run the requests
	ctx     context.Context // carries the Peer; canceled when the connection ends
	cancel  context.CancelFunc
	lim     connLimits
	slots   chan struct{} // one per request in flight
	wg      sync.WaitGroup

	reqTimer *clock.Timer  // RequestTimeout of the request being read; made on first use
	reqGen   atomic.Uint64 // counts requests begun and ended, so that a late timer is ignored
	armedGen atomic.Uint64 // the generation reqTimer was armed for
	slow     atomic.Bool   // the request timer fired
}

// connLimits are the limits one end applies to the requests it receives
// on a connection.
type connLimits struct {
	clk         clock.Clock
	timeout     time.Duration // a request's first byte to its last (0: no limit)
	maxBytes    int           // largest request accepted
	maxRequests int           // requests in flight (read, not yet answered)
	budgets     budgets       // request bytes in flight: the connection's and wider ones
}

// connConfig configures newConn.
type connConfig struct {
	clk    clock.Clock
	log    *slog.Logger
	remote string
	// idle closes the connection when nothing arrives for this long, or
	// a write blocks for this long.
	idle time.Duration
	// keepAlive is how often this end pings when it has written nothing
	// else; zero: it never pings (it still answers pings).
	keepAlive time.Duration
	// maxResponse caps the body of a response frame; a larger one ends
	// the connection. Zero: maxResponseFrame.
	maxResponse int
	// serve runs the requests the other end sends, with ctx and lim; nil:
	// this end serves no objects, and a request ends the connection.
	serve *rpc.Server
	// workers run the requests; nil: a pool of the connection's own
	workers *workpool.Pool
	ctx     context.Context
	lim     connLimits
	// lost runs (once) when the connection ends, before its requests have
	// returned; done runs after they have.
	lost, done func()
}

// readBufferSize is the read buffer of a plain TCP connection: a small
// frame fits, a larger one is read past it.
const readBufferSize = 1 << 10

// pingFrame and pongFrame are the keepalive frames (never modified): a
// ping asks the other end to answer with a pong, so that bytes flow both
// ways on an idle connection even when only one end pings.
var (
	pingFrame = [frameHeaderLen]byte{framePing}
	pongFrame = [frameHeaderLen]byte{framePong}
)

// newConn returns a conn on nc, which has done its handshakes. start
// starts its reader.
func newConn(nc net.Conn, cfg connConfig) *conn {
	ic := newIdleConn(nc, cfg.clk, cfg.idle)
	c := &conn{
		nc:          ic,
		r:           ic,
		remote:      cfg.remote,
		clk:         cfg.clk,
		log:         cfg.log,
		idle:        cfg.idle,
		every:       cfg.keepAlive,
		maxResponse: cfg.maxResponse,
		done:        make(chan struct{}),
		ready:       make(chan struct{}),
		wsem:        make(chan struct{}, 1),
	}
	if c.maxResponse <= 0 {
		c.maxResponse = maxResponseFrame
	}
	if _, ok := nc.(*tls.Conn); !ok {
		// TLS reads whole records into a buffer of its own; a plain TCP
		// connection is read through a small one, so that a frame costs
		// one read system call, not one for its header and one for its
		// body.
		c.r = bufio.NewReaderSize(ic, readBufferSize)
	}
	wk := cfg.workers
	ownWorkers := wk == nil && cfg.serve != nil
	if ownWorkers {
		wk = workpool.New(1)
	}
	if cfg.serve != nil {
		c.in = &callee{rs: cfg.serve, workers: wk, lim: cfg.lim, slots: make(chan struct{}, max(cfg.lim.maxRequests, 1))}
		c.in.ctx, c.in.cancel = context.WithCancel(cfg.ctx)
	}
	c.finished = func() {
		if c.in != nil {
			c.in.cancel()
		}
		if cfg.lost != nil {
			cfg.lost()
		}
		if c.in != nil {
			c.in.wg.Wait()
		}
		if ownWorkers {
			wk.Close()
		}
		if cfg.done != nil {
			cfg.done()
		}
	}
	c.stall = cfg.clk.AfterFunc(cfg.idle, c.stalled)
	c.stall.Stop()
	if c.every > 0 {
		c.keep = cfg.clk.AfterFunc(c.every, c.keepalive)
		c.keep.Stop()
	}
	return c
}

// start starts the reader and the keepalive.
func (c *conn) start() {
	c.rc = rpc.NewClientWithCodec(c)
	close(c.ready) // the reader waits for it, so that what it starts sees rc
	if c.keep != nil {
		c.keep.Reset(c.every)
	}
}

// close ends the connection (once) for the reason why: the reader then
// fails, which fails the calls in flight and runs the end hooks.
func (c *conn) close(why error) {
	c.closeOnce.Do(func() {
		c.why = why
		close(c.done)
		if c.keep != nil {
			c.keep.Stop()
		}
		c.stall.Stop()
		_ = c.nc.Close()
	})
}

// ended returns nil while the connection is up, else why no call can
// start on it: ErrClosed if its owner closed it, else an ErrConnect.
func (c *conn) ended() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	if errors.Is(c.why, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: connection to %s has ended: %w", ErrConnect, c.remote, c.why)
}

// isDone reports whether the connection has ended.
func (c *conn) isDone() bool { return c.ended() != nil }

// writeFrame encodes and writes one frame for a caller whose context is
// ctx: it waits for another writer no longer than ctx allows (the frame
// is then not sent), and a write that blocks past ctx's deadline ends the
// connection (see writeLocked).
func (c *conn) writeFrame(ctx context.Context, kind byte, head, body any) error {
	w, err := encodeFrame(kind, head, body)
	if err != nil {
		return err
	}
	defer w.release()
	select {
	case c.wsem <- struct{}{}:
	default:
		select {
		case c.wsem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("rmi: not sent, waiting to write: %w", ctx.Err())
		}
	}
	defer func() { <-c.wsem }()
	limit := c.idle
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		if limit = min(limit, c.clk.Until(dl)); limit <= 0 {
			return fmt.Errorf("rmi: not sent: %w", context.DeadlineExceeded)
		}
	}
	err = c.writeLocked(w.b, true, limit)
	if err != nil && hasDeadline && !c.clk.Now().Before(dl) {
		err = fmt.Errorf("%w (the write blocked until the deadline): %w", context.DeadlineExceeded, err)
	}
	return err
}

// tryWrite writes a keepalive frame unless another write is under way
// (the other end then hears from this one anyway): it never waits.
func (c *conn) tryWrite(b []byte) {
	select {
	case c.wsem <- struct{}{}:
		_ = c.writeLocked(b, false, c.idle)
		<-c.wsem
	default:
	}
}

// writeLocked writes b, a whole frame, holding wsem; data says it is not
// a keepalive. A write that fails, or blocks for limit (the idle timeout,
// or less for a caller with a deadline), ends the connection, since the
// other end would read half a frame; a frame not written because the
// connection had ended wraps ErrConnect.
func (c *conn) writeLocked(b []byte, data bool, limit time.Duration) error {
	if err := c.ended(); err != nil {
		return fmt.Errorf("%w: not sent: %w", ErrConnect, err)
	}
	c.writing.Store(true)
	c.stall.Reset(limit)
	_, err := c.nc.Write(b)
	c.stall.Stop()
	c.writing.Store(false)
	if data {
		c.wrote.Store(true)
	}
	if err != nil {
		err = fmt.Errorf("rmi: writing to %s: %w", c.remote, err)
		c.close(err)
	}
	return err
}

// stalled ends the connection if a write is blocked (the other end
// stopped reading, for longer than the idle timeout or the writer's
// deadline).
func (c *conn) stalled() {
	if c.writing.Load() {
		c.close(fmt.Errorf("rmi: a write to %s blocked too long", c.remote))
	}
}

// keepalive pings the other end if nothing else was written since the
// last tick, and arms the next tick.
func (c *conn) keepalive() {
	if c.isDone() {
		return
	}
	if !c.wrote.Swap(false) {
		c.tryWrite(pingFrame[:])
	}
	c.keep.Reset(c.every)
}

// pong answers a ping, unless a write is under way (the other end then
// hears from this one anyway): the reader never waits for another
// writer, and a write of its own that blocks is ended by the stall timer.
func (c *conn) pong() { c.tryWrite(pongFrame[:]) }
