package rmi

// This file reads one request off a stream for the server's codec
// (wire.go): within its size cap and byte budgets, and within its time
// limits (a stall timer while bytes are awaited, a timer for the whole
// request from its first byte).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/benbjohnson/clock"
)

// requestReader sits between the msgpack decoder and a buffered stream.
// It counts the bytes of the current request, failing once it exceeds the
// cap, charges them to the byte budgets (failing once these are full),
// arms a stall timer whenever it must wait for more bytes of a request
// that has started, and a timer for the request as a whole at its first
// byte. Errors are sticky.
type requestReader struct {
	st    stream
	br    *bufio.Reader
	lim   streamLimits
	guard lenGuard // below br: sees each byte of the stream once, in order

	n       int          // bytes of the current request consumed by the decoder
	charged int          // bytes of the current request charged to the budgets
	inBody  bool         // reading the body: the budgets may refuse bytes
	whole   *clock.Timer // the current request's RequestTimeout, armed at its first byte

	mu       sync.Mutex
	inReq    bool   // between begin and end
	gen      uint64 // identifies the armed stall timer
	reqGen   uint64 // identifies the current request, for its whole-request timer
	stalled  bool
	slow     bool // the request took longer than lim.timeout
	tooLarge bool
	busy     error // the budgets refused the request
	err      error // sticky failure
}

func (r *requestReader) begin() {
	r.mu.Lock()
	r.inReq = true
	r.reqGen++
	r.mu.Unlock()
	r.n, r.charged, r.inBody = 0, 0, false
}

func (r *requestReader) end() {
	r.mu.Lock()
	r.inReq = false
	r.reqGen++
	r.mu.Unlock()
	if r.whole != nil {
		r.whole.Stop()
		r.whole = nil
	}
}

// startBody marks the start of the request's body and charges the
// request's fixed overhead, failing with ErrBusy if the budgets are full.
func (r *requestReader) startBody() error {
	r.inBody = true
	if err := r.lim.budgets.take(requestOverhead); err != nil {
		r.refuse(err)
		return err
	}
	r.charged += requestOverhead
	return nil
}

// refuse records that the budgets refused the current request.
func (r *requestReader) refuse(err error) {
	r.mu.Lock()
	r.busy = err
	r.mu.Unlock()
	r.poison(err)
}

// consumed counts n more bytes of the current request: it arms the
// whole-request timer at the first byte and charges the bytes to the
// budgets. The header's bytes are charged whatever the budgets hold (they
// are small, and a refusal there could not be answered); the body's may be
// refused.
func (r *requestReader) consumed(n int) {
	if n <= 0 {
		return
	}
	if r.whole == nil && r.lim.timeout > 0 {
		r.mu.Lock()
		gen := r.reqGen
		r.mu.Unlock()
		r.whole = r.lim.clk.AfterFunc(r.lim.timeout, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.reqGen == gen {
				r.slow = true
				_ = r.st.SetReadDeadline(pastDeadline)
			}
		})
	}
	r.n += n
	if !r.inBody {
		r.lim.budgets.force(n)
	} else if err := r.lim.budgets.take(n); err != nil {
		r.refuse(err)
		return
	}
	r.charged += n
}

// failure returns the error that explains a failed decode, if the reader
// caused it (size cap, budgets, stall or request timeout), else nil.
func (r *requestReader) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.tooLarge:
		return tooLarge(r.lim.maxBytes)
	case r.busy != nil:
		return r.busy
	case r.slow:
		return fmt.Errorf("rmi: request not received whole within %v", r.lim.timeout)
	case r.stalled:
		return fmt.Errorf("rmi: request stalled for %v", r.lim.idle)
	}
	return nil
}

func (r *requestReader) poison(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

func (r *requestReader) sticky() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// room returns how many more bytes the current request may use, or an
// error once it has used them all.
func (r *requestReader) room() (int, error) {
	if err := r.sticky(); err != nil {
		return 0, err
	}
	if r.lim.maxBytes <= 0 {
		return int(^uint(0) >> 1), nil
	}
	left := r.lim.maxBytes - r.n
	if left <= 0 {
		err := tooLarge(r.lim.maxBytes)
		r.mu.Lock()
		r.tooLarge = true
		r.mu.Unlock()
		r.poison(err)
		return 0, err
	}
	return left, nil
}

// Read implements io.Reader for the decoder.
func (r *requestReader) Read(p []byte) (int, error) {
	left, err := r.room()
	if err != nil {
		return 0, err
	}
	if len(p) > left {
		p = p[:left]
	}
	n, err := r.br.Read(p)
	r.consumed(n)
	r.readFailed(err)
	return n, err
}

// ReadByte implements io.ByteScanner for the decoder.
func (r *requestReader) ReadByte() (byte, error) {
	if _, err := r.room(); err != nil {
		return 0, err
	}
	b, err := r.br.ReadByte()
	if err == nil {
		r.consumed(1)
	}
	r.readFailed(err)
	return b, err
}

// readFailed records a failed read of the stream: past EOF nothing more
// can be read, and a length prefix the guard refused makes the request
// too large.
func (r *requestReader) readFailed(err error) {
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return
	case errors.Is(err, ErrTooLarge):
		r.mu.Lock()
		r.tooLarge = true
		r.mu.Unlock()
	}
	r.poison(err)
}

// UnreadByte implements io.ByteScanner for the decoder.
func (r *requestReader) UnreadByte() error {
	if err := r.br.UnreadByte(); err != nil {
		return err
	}
	r.n--
	return nil
}

// streamReader is what the bufio.Reader under a requestReader reads from:
// the stream, with a stall timer armed while a started request waits for
// more bytes.
type streamReader struct{ r *requestReader }

// Read implements io.Reader.
func (s streamReader) Read(p []byte) (int, error) {
	r := s.r
	r.mu.Lock()
	arm := r.inReq && r.n > 0
	r.gen++
	gen := r.gen
	r.mu.Unlock()
	var t *clock.Timer
	if arm {
		t = r.lim.clk.AfterFunc(r.lim.idle, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.gen == gen {
				r.stalled = true
				_ = r.st.SetReadDeadline(pastDeadline)
			}
		})
	}
	n, err := r.st.Read(p)
	if ok := r.guard.feed(p[:n]); ok < n {
		// A length prefix declares more than the cap: hand on the bytes
		// before its last one, then the refusal.
		n, err = ok, tooLarge(r.lim.maxBytes)
	}
	if t != nil {
		t.Stop()
		r.mu.Lock()
		r.gen++
		r.mu.Unlock()
	}
	return n, err
}
