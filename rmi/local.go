package rmi

import (
	"context"

	"github.com/benbjohnson/clock"
)

// Local is an in-process Invoker: a Transport that hands each request
// straight to a Table, behind the same Caller and Table.Handle as TCP. The
// arguments and result are encoded and decoded exactly as over the network
// (so caller and callee share no memory), and the callee runs under the
// caller's deadline and cap, as over TCP. The method runs in the caller's
// goroutine, as the simulator's calls do: a method that overruns the
// deadline is reported as ErrTimeout when it returns, and one that ignores
// its context holds its caller (over TCP the caller would stop waiting).
// That keeps an in-process call as cheap as the call itself, which the
// server's benchmarks measure. It is for tests and single-process wiring.
type Local struct {
	Table *Table
	// Peer is attached to each call's context; nil means an
	// unauthenticated caller with no callbacks.
	Peer *Peer
	// Clock is the caller's clock: it reads the caller's deadlines, as
	// DialConfig.Clock does over TCP. Nil means the real clock.
	Clock clock.Clock
	// CalleeClock times the method under the caller's remaining time, as
	// ServerConfig.Clock does over TCP. Nil means Clock. Set it when caller
	// and callee keep different clocks (a test's client on a mock clock
	// calling servers on the real one).
	CalleeClock clock.Clock
	// MaxRequestBytes caps the encoded arguments of one call, as
	// ServerConfig.MaxRequestBytes does. Zero means DefaultMaxRequestBytes.
	MaxRequestBytes int
}

// Invoke implements Invoker.
func (l Local) Invoke(ctx context.Context, object, method string, args, reply any) error {
	return Caller{Transport: l, Clock: l.Clock}.Invoke(ctx, object, method, args, reply)
}

// RoundTrip implements Transport.
func (l Local) RoundTrip(ctx context.Context, req *Request) (*Response, error) {
	clk := l.CalleeClock
	if clk == nil {
		clk = l.Clock
	}
	if clk == nil {
		clk = realClock
	}
	maxBytes := l.MaxRequestBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRequestBytes
	}
	// The callee's context carries only what a network would carry: the
	// caller's Peer here, and its deadline in req.
	callee := context.Background()
	if l.Peer != nil {
		callee = WithPeer(callee, l.Peer)
	}
	return l.Table.Handle(callee, clk, maxBytes, req), nil
}
