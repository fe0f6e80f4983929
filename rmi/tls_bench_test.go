package rmi

import (
	"context"
	"testing"
)

// The cost of TLS: compare BenchmarkInvoke with BenchmarkInvokeTLS (one
// call on an open connection) and BenchmarkDial with BenchmarkDialTLS (a
// new connection: TCP, handshakes, close).

func BenchmarkInvokeTLS(b *testing.B) {
	ca := newTestCA(b, "cluster CA")
	ts := startServer(b, ServerConfig{TLS: ca.serverTLSConfig(ca.issue(b, "server"))}, nil)
	c := dial(b, ts.addr, DialConfig{TLS: ca.clientTLSConfig()})
	ctx := context.Background()
	var out EchoArgs
	for b.Loop() {
		if err := c.Invoke(ctx, "svc", "Echo", EchoArgs{S: "hello", N: 1}, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDial(b *testing.B) {
	secret := []byte("s3cret")
	ts := startServer(b, ServerConfig{ClusterSecret: secret}, nil)
	benchDial(b, ts.addr, DialConfig{ClusterSecret: secret})
}

func BenchmarkDialTLS(b *testing.B) {
	ca := newTestCA(b, "cluster CA")
	secret := []byte("s3cret")
	ts := startServer(b, ServerConfig{ClusterSecret: secret, TLS: ca.serverTLSConfig(ca.issue(b, "server")), RequireClusterCert: true}, nil)
	benchDial(b, ts.addr, DialConfig{ClusterSecret: secret, TLS: ca.clientTLSConfig(ca.issue(b, "peer"))})
}

func benchDial(b *testing.B, addr string, cfg DialConfig) {
	cfg.Logger = quietLog()
	ctx := context.Background()
	for b.Loop() {
		c, err := Dial(ctx, addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
}
