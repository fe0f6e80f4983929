package rmi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/distchat/distchat/rmi/clocktest"
)

// scripted is one server of a failover test: each call records the
// server's address and fails with its current error (nil: success).
type scripted struct {
	addr   string
	calls  *[]string
	mu     *sync.Mutex
	err    error
	closed bool
}

func (s *scripted) Invoke(ctx context.Context, object, method string, args, reply any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.calls = append(*s.calls, s.addr)
	return s.err
}

func (s *scripted) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// failoverFixture is a Failover over scripted servers, and what it did.
type failoverFixture struct {
	f       *Failover
	servers map[string]*scripted
	mu      sync.Mutex
	calls   []string // addresses called, in order
	moves   []string // "from->to (cause)" reported by OnMove
}

func newFailoverFixture(t *testing.T, addrs ...string) *failoverFixture {
	t.Helper()
	x := &failoverFixture{servers: map[string]*scripted{}}
	f, err := NewFailover(addrs, FailoverConfig{
		Connect: func(addr string) Invoker {
			s := &scripted{addr: addr, calls: &x.calls, mu: &x.mu}
			x.servers[addr] = s
			return s
		},
		OnMove: func(from, to string, cause error) {
			x.mu.Lock()
			defer x.mu.Unlock()
			x.moves = append(x.moves, fmt.Sprintf("%s->%s (%v)", from, to, errors.Is(cause, ErrConnect) || errors.Is(cause, ErrConnLost)))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	x.f = f
	return x
}

func (x *failoverFixture) set(addr string, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.servers[addr].err = err
}

// call makes one call and returns its error and the addresses it tried.
func (x *failoverFixture) call(t *testing.T) ([]string, error) {
	x.mu.Lock()
	x.calls = nil
	x.mu.Unlock()
	err := x.f.Invoke(context.Background(), "svc", "Echo", nil, nil)
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.calls), err
}

func (x *failoverFixture) takeMoves() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.moves
	x.moves = nil
	return m
}

var (
	errRefused = fmt.Errorf("%w: connection refused", ErrConnect)
	errLost    = fmt.Errorf("%w: EOF", ErrConnLost)
	errApp     = &RemoteError{Code: "app.no", Message: "no"}
)

func TestFailover(t *testing.T) {
	x := newFailoverFixture(t, "a:1", "b:1", "c:1")
	check := func(what string, wantTried []string, wantErr error, wantMoves ...string) {
		t.Helper()
		tried, err := x.call(t)
		if !slices.Equal(tried, wantTried) {
			t.Errorf("%s: tried %v, want %v", what, tried, wantTried)
		}
		if (wantErr == nil) != (err == nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
			t.Errorf("%s: error %v, want %v", what, err, wantErr)
		}
		if moves := x.takeMoves(); !slices.Equal(moves, wantMoves) {
			t.Errorf("%s: moves %q, want %q", what, moves, wantMoves)
		}
	}

	check("all up", []string{"a:1"}, nil)
	check("again", []string{"a:1"}, nil)

	// An application error is an answer: no move.
	x.set("a:1", errApp)
	check("application error", []string{"a:1"}, errApp)
	x.set("a:1", nil)
	check("after the application error", []string{"a:1"}, nil)

	// Not sent: the same call goes to the next server.
	x.set("a:1", errRefused)
	check("a refuses", []string{"a:1", "b:1"}, nil, "a:1->b:1 (true)")
	check("b stays current", []string{"b:1"}, nil)
	x.set("a:1", nil)
	check("a back: b stays current", []string{"b:1"}, nil)

	// Outcome unknown: the error comes back, the next call goes on.
	x.set("b:1", errLost)
	check("b lost mid-call", []string{"b:1"}, ErrConnLost)
	check("the next call", []string{"c:1"}, nil, "b:1->c:1 (true)")

	// Round robin: from the last to the first.
	x.set("c:1", errRefused)
	check("c refuses", []string{"c:1", "a:1"}, nil, "c:1->a:1 (true)")

	// Nobody: each tried once, every failure in the error.
	for _, a := range []string{"a:1", "b:1", "c:1"} {
		x.set(a, fmt.Errorf("%w: %s refused", ErrConnect, a))
	}
	tried, err := x.call(t)
	if !slices.Equal(tried, []string{"a:1", "b:1", "c:1"}) || !errors.Is(err, ErrConnect) {
		t.Fatalf("all down: tried %v, error %v", tried, err)
	}
	for _, a := range []string{"a:1", "b:1", "c:1"} {
		if !strings.Contains(err.Error(), a+" refused") {
			t.Errorf("all down: error %q does not say %s refused", err, a)
		}
	}
	if cur := x.f.Current(); cur != "a:1" {
		t.Errorf("after a full round the current server is %s, want a:1", cur)
	}
	x.set("b:1", nil)
	check("b back", []string{"a:1", "b:1"}, nil, "a:1->b:1 (true)")

	if err := x.f.Close(); err != nil {
		t.Fatal(err)
	}
	for a, s := range x.servers {
		if !s.closed {
			t.Errorf("Close left %s open", a)
		}
	}
	check("closed", nil, ErrClosed)
}

func TestFailoverOneAddressIsItsInvoker(t *testing.T) {
	x := newFailoverFixture(t, "a:1")
	for _, err := range []error{nil, errRefused, errLost, errApp, nil} {
		x.set("a:1", err)
		tried, got := x.call(t)
		if !slices.Equal(tried, []string{"a:1"}) || !errors.Is(got, err) || (err == nil) != (got == nil) {
			t.Fatalf("with %v: tried %v, got %v", err, tried, got)
		}
	}
	if m := x.takeMoves(); m != nil {
		t.Fatalf("moves with one address: %q", m)
	}
}

func TestFailoverCallerGivingUpDoesNotMove(t *testing.T) {
	x := newFailoverFixture(t, "a:1", "b:1")
	x.set("a:1", fmt.Errorf("%w: %w", ErrTimeout, context.Canceled))
	if tried, err := x.call(t); !slices.Equal(tried, []string{"a:1"}) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("tried %v, error %v", tried, err)
	}
	if cur := x.f.Current(); cur != "a:1" {
		t.Fatalf("the caller's cancel moved the failover to %s", cur)
	}
}

func TestFailoverBadConfig(t *testing.T) {
	if _, err := NewFailover(nil, FailoverConfig{Connect: func(string) Invoker { return nil }}); err == nil {
		t.Error("no addresses accepted")
	}
	if _, err := NewFailover([]string{"a:1"}, FailoverConfig{}); err == nil {
		t.Error("no Connect accepted")
	}
}

// TestFailoverOverRedialers runs a Failover over two real servers: the
// first goes away, calls go to the second, with the Redialers' backoff.
func TestFailoverOverRedialers(t *testing.T) {
	a := startServer(t, ServerConfig{}, nil)
	b := startServer(t, ServerConfig{}, nil)
	mock := clocktest.New()
	var moved []string
	f, err := NewFailover([]string{a.addr, b.addr}, FailoverConfig{
		Connect: func(addr string) Invoker {
			return NewRedialer(addr, DialConfig{Clock: mock, Logger: quietLog()})
		},
		OnMove: func(from, to string, cause error) { moved = append(moved, from+"->"+to) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var first, second PeerInfo
	if err := f.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &first); err != nil {
		t.Fatal(err)
	}
	if n := b.srv.numConns(); n != 0 {
		t.Fatalf("the second server got %d connections while the first answered", n)
	}
	if err := a.srv.Close(); err != nil {
		t.Fatal(err)
	}
	// The first call after the close may be lost mid-call (outcome
	// unknown, returned as is); the one after it reaches b.
	err = f.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &second)
	if err != nil {
		if !errors.Is(err, ErrConnLost) {
			t.Fatalf("call after the first server closed: %v", err)
		}
		err = f.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &second)
	}
	if err != nil {
		t.Fatalf("call after the first server closed: %v", err)
	}
	if f.Current() != b.addr || b.srv.numConns() != 1 {
		t.Fatalf("current %s, %d connections at b", f.Current(), b.srv.numConns())
	}
	if !slices.Equal(moved, []string{a.addr + "->" + b.addr}) {
		t.Fatalf("moves %q", moved)
	}
}
