package rmi

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"
)

func BenchmarkInvoke(b *testing.B) {
	ts := startServer(b, ServerConfig{}, nil)
	c := dial(b, ts.addr, DialConfig{})
	ctx := context.Background()
	var out EchoArgs
	for b.Loop() {
		if err := c.Invoke(ctx, "svc", "Echo", EchoArgs{S: "hello", N: 1}, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeSize is a call whose argument and result are of some
// size, as a Deliver batch or a Forward is (5-20 KB): what reading the
// envelopes costs as the bodies grow.
func BenchmarkInvokeSize(b *testing.B) {
	for _, size := range []int{64, 16 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			ts := startServer(b, ServerConfig{}, nil)
			c := dial(b, ts.addr, DialConfig{})
			ctx := context.Background()
			in := EchoArgs{S: string(bytes.Repeat([]byte("x"), size)), N: 1}
			var out EchoArgs
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Invoke(ctx, "svc", "Echo", in, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkInvokeParallel(b *testing.B) {
	ts := startServer(b, ServerConfig{}, nil)
	c := dial(b, ts.addr, DialConfig{})
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		var out EchoArgs
		for pb.Next() {
			if err := c.Invoke(ctx, "svc", "Echo", EchoArgs{S: "hello", N: 1}, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkIdleConn measures what an idle connection costs the process,
// both ends of it (client and server run here): live heap and goroutine
// stacks after a GC, per connection, each dialed with a callback table and
// used for one call that calls back (so that both ends served a request).
func BenchmarkIdleConn(b *testing.B) {
	const conns = 200
	ts := startServer(b, ServerConfig{Limits: Limits{MaxConnsPerAddr: conns}}, nil)
	cbTab := NewTable(quietLog())
	if err := Export[cbAPI](cbTab, "cb", &cbSvc{}); err != nil {
		b.Fatal(err)
	}
	inUse := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc + m.StackInuse)
	}
	var perConn int64
	for b.Loop() {
		before := inUse()
		clients := make([]*Client, conns)
		for i := range clients {
			clients[i] = dial(b, ts.addr, DialConfig{Callbacks: cbTab})
			var out string
			if err := clients[i].Invoke(context.Background(), "svc", "CallBack", NotifyArgs{Text: "x"}, &out); err != nil {
				b.Fatal(err)
			}
		}
		perConn = (inUse() - before) / conns
		for _, c := range clients {
			_ = c.Close()
		}
		rmitest.WaitFor(b, "the server to drop the connections", func() bool { return ts.srv.numConns() == 0 })
	}
	b.ReportMetric(float64(perConn), "B/conn")
}

// BenchmarkReadBody reads frame bodies of the sizes a Deliver batch has
// (1 to 64 messages): a body over the pooled 4 KiB gets a buffer of its
// own size (before: 64 KiB, allocated and cleared for each).
func BenchmarkReadBody(b *testing.B) {
	for _, n := range []int{1 << 10, 5 << 10, 20 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", n), func(b *testing.B) {
			src := bytes.Repeat([]byte{0xa5}, n)
			r := bytes.NewReader(src)
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				r.Reset(src)
				body, err := readBody(r, n, n)
				if err != nil || len(body) != n {
					b.Fatalf("read %d bytes: %v", len(body), err)
				}
				putBuf(body)
			}
		})
	}
}
