package rmi

import (
	"context"
	"testing"
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
