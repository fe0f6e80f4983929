package rmi

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// blob is an argument with a hand-written msgp encoder, as the generated
// ones of server/chatapi: Caller.Invoke encodes it into a pooled buffer.
type blob struct{ B []byte }

func (b blob) MarshalMsg(o []byte) ([]byte, error) { return msgp.AppendBytes(o, b.B), nil }

func (b blob) Msgsize() int { return msgp.BytesPrefixSize + len(b.B) }

func (b *blob) UnmarshalMsg(in []byte) ([]byte, error) {
	v, rest, err := msgp.ReadBytesBytes(in, nil)
	b.B = v
	return rest, err
}

type blobAPI interface {
	Reverse(ctx context.Context, b blob) (blob, error)
}

type blobSvc struct{}

func (blobSvc) Reverse(_ context.Context, b blob) (blob, error) {
	out := bytes.Clone(b.B)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return blob{B: out}, nil
}

// TestArgsBuffersReusedSafely makes many concurrent calls, each with its
// own argument of its own size (up to 300 KiB, in every class of the
// frame pools: the server's caps are raised for it), over one
// connection: argument buffers go back to the pool once a call is sent,
// and every callee must still get its own caller's bytes.
func TestArgsBuffersReusedSafely(t *testing.T) {
	limits := Limits{MaxClientRequestBytes: 1 << 20, MaxClientConnBytes: 16 << 20, MaxAddrBytes: 16 << 20}
	ts := startServer(t, ServerConfig{Limits: limits}, func(tab *Table) {
		if err := Export[blobAPI](tab, "blob", blobSvc{}); err != nil {
			t.Fatal(err)
		}
	})
	c := dial(t, ts.addr, DialConfig{})
	sizes := []int{0, 1, 100, 4 << 10, 20 << 10, 60 << 10, 100 << 10, 300 << 10}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				in := bytes.Repeat([]byte{byte(g), byte(i)}, sizes[(g+i)%len(sizes)]/2)
				var out blob
				// A bound for each call, not one for all 480: with -race on a
				// busy machine they took more than waitBound together.
				ctx := ctxT(t)
				if err := c.Invoke(ctx, "blob", "Reverse", blob{B: in}, &out); err != nil {
					errs <- err
					return
				}
				want, _ := blobSvc{}.Reverse(ctx, blob{B: in})
				if !bytes.Equal(out.B, want.B) {
					errs <- fmt.Errorf("goroutine %d call %d: %d bytes back, not the reverse of the %d sent", g, i, len(out.B), len(in))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A generated encoder's arguments are encoded into a buffer of the frame
// pools' class for its Msgsize, which putBuf takes back.
func TestArgsEncodedIntoAPooledClass(t *testing.T) {
	for _, n := range []int{0, 100, 4 << 10, 20 << 10, 300 << 10} {
		a := blob{B: bytes.Repeat([]byte{7}, n)}
		b, err := encodeArgs(a)
		if err != nil {
			t.Fatal(err)
		}
		want := max(pooledFrame, bodyCap(a.Msgsize()))
		if cap(b) != want {
			t.Errorf("%d bytes encoded into a buffer of %d, want the class of %d", n, cap(b), want)
		}
		var out blob
		if err := Unmarshal(b, &out); err != nil || !bytes.Equal(out.B, a.B) {
			t.Errorf("%d bytes decode to %d (%v)", n, len(out.B), err)
		}
		putBuf(b)
	}
}
