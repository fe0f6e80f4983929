package rmi

// This file is the framing of a connection: after the handshake, each
// side writes frames, each a 5-byte header (its kind, then the length of
// its body as a big-endian uint32) and a body. A request's body is what
// go-msgpack's GoRpc codec writes for a net/rpc call (the net/rpc request
// header, then the Request), a response's what it writes for the answer
// (the net/rpc response header, then the Response); a ping has no body.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// The kinds of frame.
const (
	frameRequest  byte = 1 // a call, from either end
	frameResponse byte = 2 // the answer to a call
	framePing     byte = 3 // keepalive: no body; answered with a pong
	framePong     byte = 4 // the answer to a ping: no body
)

const (
	// frameHeaderLen is the size of a frame header: kind, body length.
	frameHeaderLen = 5
	// maxResponseFrame is the largest response body accepted: a Response
	// holds one value of at most maxResponseValue and a few small fields.
	maxResponseFrame = maxResponseValue + 64<<10
	// refusedPrefix is how much of a refused request (too large, or no
	// room in the budgets) is kept: enough for its net/rpc header and the
	// Request's Object and Method, so that it can be answered with its
	// method's own error. The rest is read and dropped.
	refusedPrefix = 1 << 10
	// pooledFrame is the capacity of the frame buffers of the first
	// pool; larger ones, up to maxPooledFrame, come from pools by size
	// class (bigPools).
	pooledFrame = 4 << 10
	// maxPooledFrame is the capacity of the largest frame buffer kept for
	// reuse; a larger frame gets a buffer of its own.
	maxPooledFrame = 1 << 20
	// firstAlloc is the most readBody allocates before a body's bytes
	// arrive.
	firstAlloc = 64 << 10
)

// errProtocol marks a peer that broke the framing: an unknown kind of
// frame, a ping with a body, a response over maxResponseFrame, a request
// to an end that serves no objects. It ends the connection.
var errProtocol = errors.New("rmi: protocol violation")

// Frame buffers and the encoders and decoders of frames are reused across
// connections (an idle connection holds none), from pools. A pool holds
// no state a caller can observe: what it returns is reset before use.
var (
	bufPool = sync.Pool{New: func() any { return new([pooledFrame]byte) }}
	encPool = sync.Pool{New: func() any {
		fw := &frameWriter{}
		fw.enc = codec.NewEncoder(fw, handle)
		return fw
	}}
	decPool = sync.Pool{New: func() any { return codec.NewDecoderBytes(nil, handle) }}
	// bigPools holds frame buffers over pooledFrame, one pool per power
	// of two up to maxPooledFrame: bigPools[i] those of capacity
	// pooledFrame<<(i+1). A Deliver batch or a Forward is one frame of
	// 5 KB to hundreds, read and written by every chat server and client;
	// allocating each afresh (and clearing it) kept the collector busy.
	bigPools [bigClasses]sync.Pool
)

// bigClasses is the number of size classes of bigPools.
const bigClasses = 8 // 8 KiB to 1 MiB

// getBuf returns an empty buffer of capacity pooledFrame.
func getBuf() []byte { return bufPool.Get().(*[pooledFrame]byte)[:0] }

// getBig returns an empty buffer of capacity at least n: from the pools if
// n is at most maxPooledFrame (its capacity is then the power of two at or
// above n), else of its own.
func getBig(n int) []byte {
	if n <= pooledFrame {
		return getBuf()
	}
	if n <= maxPooledFrame {
		if p, _ := bigPools[bigClass(n)].Get().(*[]byte); p != nil {
			return (*p)[:0]
		}
	}
	return make([]byte, 0, bodyCap(n))
}

// bodyCap is the capacity of the buffer readBody reads a body of n bytes
// into: what the body holds in memory while its request runs, and so what
// a request is charged against the byte budgets.
func bodyCap(n int) int {
	if n <= pooledFrame || n > maxPooledFrame {
		return n
	}
	return pooledFrame << (bigClass(n) + 1)
}

// bigClass returns the index in bigPools of the smallest class holding n
// bytes, pooledFrame < n <= maxPooledFrame.
func bigClass(n int) int {
	return bits.Len(uint(n-1)) - bits.Len(uint(pooledFrame))
}

// putBuf returns b to its pool if its capacity is one of a pool's (a
// buffer that grew by appends past its class is dropped). The first pool
// holds pointers to arrays, which go in and out without allocating.
func putBuf(b []byte) {
	c := cap(b)
	switch {
	case c == pooledFrame:
		bufPool.Put((*[pooledFrame]byte)(b[:pooledFrame]))
	case c > pooledFrame && c <= maxPooledFrame && c&(c-1) == 0:
		p := new([]byte) // not &b, which would move every b to the heap
		*p = b[:0]
		bigPools[bigClass(c)].Put(p)
	}
}

// frameWriter encodes frames into a buffer: the header's room, then the
// values, then the header filled in.
type frameWriter struct {
	b   []byte
	enc *codec.Encoder
}

// Write implements io.Writer for the encoder.
func (w *frameWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// encodeFrame returns a frameWriter holding the frame of kind with head
// and body encoded in turn (a ping: neither). The caller returns it with
// release.
func encodeFrame(kind byte, head, body any) (*frameWriter, error) {
	w := encPool.Get().(*frameWriter)
	if need := frameHeaderLen + envelopeSize(body); need > pooledFrame {
		// Room for the whole frame at once: grown by appends, a 16 KB
		// frame took buffers of 8, 16 and 32 KB in turn.
		putBuf(w.b)
		w.b = getBig(need)
	} else if w.b == nil {
		w.b = getBuf()
	}
	w.b = append(w.b[:0], kind, 0, 0, 0, 0)
	if head != nil {
		w.enc.Reset(w)
		if err := w.enc.Encode(head); err != nil {
			w.release()
			return nil, fmt.Errorf("%w: encoding a frame header: %w", ErrMarshal, err)
		}
		if err := w.enc.Encode(body); err != nil {
			w.release()
			return nil, fmt.Errorf("%w: %w", ErrMarshal, err)
		}
	}
	n := len(w.b) - frameHeaderLen
	if n > math.MaxUint32 {
		w.release()
		return nil, fmt.Errorf("rmi: a frame of %d bytes: %w", n, ErrTooLarge)
	}
	binary.BigEndian.PutUint32(w.b[1:frameHeaderLen], uint32(n))
	return w, nil
}

// envelopeSize is about how many bytes body takes encoded, with a net/rpc
// header before it, if it is a call's envelope: a little more than the
// argument or result it carries. It is 0 for anything else.
func envelopeSize(body any) int {
	const overhead = 128 // the header, the field names and lengths
	switch v := body.(type) {
	case *Request:
		return overhead + len(v.Object) + len(v.Method) + len(v.Args)
	case *Response:
		return overhead + len(v.ErrCode) + len(v.ErrMsg) + len(v.Result)
	}
	return 0
}

// release returns w to its pool, keeping no large buffer: that goes back
// to its own pool.
func (w *frameWriter) release() {
	if cap(w.b) != pooledFrame {
		putBuf(w.b)
		w.b = nil
	}
	encPool.Put(w)
}

// readFrameHeader reads a frame header from r.
func readFrameHeader(r io.Reader, hdr *[frameHeaderLen]byte) (kind byte, n int, err error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	return hdr[0], int(binary.BigEndian.Uint32(hdr[1:])), nil
}

// readBody reads a body of n bytes from r and returns its first keep
// bytes, reading and dropping the rest. The buffer comes from the pools
// (getBig): one of the body's size up to firstAlloc, which then grows as
// the bytes arrive, so that a length the peer declares but does not send
// takes no more than that. The caller gives it back with putBuf. (A
// buffer of firstAlloc for every larger body, as before, made each
// Deliver of 5 KB allocate and clear 64 KB.)
func readBody(r io.Reader, n, keep int) ([]byte, error) {
	keep = min(keep, n)
	b := getBig(min(keep, firstAlloc))
	for len(b) < keep {
		if len(b) == cap(b) {
			// Double, up to keep.
			nb := append(getBig(min(keep, 2*cap(b))), b...)
			putBuf(b)
			b = nb
		}
		m, err := r.Read(b[len(b):min(cap(b), keep)])
		b = b[:len(b)+m]
		if err != nil && len(b) < keep {
			putBuf(b)
			return nil, unexpectedEOF(err)
		}
	}
	if rest := int64(n - keep); rest > 0 {
		if _, err := io.CopyN(io.Discard, r, rest); err != nil {
			putBuf(b)
			return nil, unexpectedEOF(err)
		}
	}
	return b, nil
}

// unexpectedEOF turns the end of the input in the middle of a frame into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// getDecoder returns a decoder reading b.
func getDecoder(b []byte) *codec.Decoder {
	d := decPool.Get().(*codec.Decoder)
	d.ResetBytes(b)
	return d
}

// putDecoder returns d to the pool, holding no reference to its input.
func putDecoder(d *codec.Decoder) {
	d.ResetBytes(make([]byte, 0)) // not nil: ResetBytes ignores nil
	decPool.Put(d)
}
