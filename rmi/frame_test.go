package rmi

import (
	"bytes"
	"math/bits"
	"testing"
)

// Frame buffers come in size classes: getBig gives at least what is asked,
// a power of two from 8 KiB to 1 MiB (4 KiB below that), and a buffer put
// back is handed out again for a size of its class. A buffer whose
// capacity is no class's (one that grew by appends) is not kept.
func TestFrameBufferClasses(t *testing.T) {
	for _, n := range []int{0, 1, pooledFrame, pooledFrame + 1, 8 << 10, 8<<10 + 1, 100 << 10, maxPooledFrame - 1, maxPooledFrame} {
		b := getBig(n)
		c := cap(b)
		want := max(pooledFrame, 1<<bits.Len(uint(n-1)))
		if n <= 1 {
			want = pooledFrame
		}
		if len(b) != 0 || c != want {
			t.Errorf("getBig(%d): len %d cap %d, want 0 and %d", n, len(b), c, want)
		}
		putBuf(b)
	}
	if b := getBig(maxPooledFrame + 1); cap(b) != maxPooledFrame+1 {
		t.Errorf("getBig over the largest class: cap %d, want %d", cap(b), maxPooledFrame+1)
	}
	// What is put back is taken again. (sync.Pool may drop buffers at a
	// collection, so this tries a few times.)
	for n := pooledFrame + 1; n <= maxPooledFrame; n *= 2 {
		reused := false
		for range 10 {
			b := getBig(n)
			b = append(b, 'x')
			putBuf(b)
			if c := getBig(n); cap(c) == cap(b) && &c[:1][0] == &b[0] {
				reused = true
				break
			}
		}
		if !reused {
			t.Errorf("a buffer of %d bytes put back was not taken again", n)
		}
	}
	odd := make([]byte, 0, 12<<10)
	putBuf(odd)
	for range 3 {
		if b := getBig(12 << 10); cap(b) == cap(odd) {
			t.Fatalf("a buffer of capacity %d, no class's, was kept", cap(odd))
		}
	}
}

// readBody grows its buffer through the classes as the bytes come, up to
// the body, and gives back the bytes sent; a body cut short gives
// io.ErrUnexpectedEOF.
func TestReadBodyAcrossClasses(t *testing.T) {
	for _, n := range []int{5, pooledFrame + 7, firstAlloc + 1, 3*firstAlloc + 5} {
		src := bytes.Repeat([]byte("abcdefg"), n/7+1)[:n]
		got, err := readBody(bytes.NewReader(src), n, n)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("readBody of %d bytes: %d bytes back, %v", n, len(got), err)
		}
		putBuf(got)
		if _, err := readBody(bytes.NewReader(src[:n-1]), n, n); err == nil {
			t.Fatalf("readBody of %d bytes, one missing: no error", n)
		}
	}
}
