package rmi

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/distchat/distchat/rmi/clocktest"
)

func TestRedialer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	ts := startServerOn(t, l, ServerConfig{}, nil)
	mock := clocktest.New()
	r := NewRedialer(addr, DialConfig{Clock: mock, Logger: quietLog()})
	defer r.Close()

	// Dials on first use; concurrent callers share one connection.
	var wg sync.WaitGroup
	ids := make(chan uint64, 16)
	for range 16 {
		wg.Go(func() {
			var info PeerInfo
			if err := r.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil {
				t.Error(err)
			}
			ids <- info.ID
		})
	}
	wg.Wait()
	close(ids)
	first := uint64(0)
	for id := range ids {
		if first == 0 {
			first = id
		}
		if id != first {
			t.Fatalf("calls used different connections: %d and %d", first, id)
		}
	}
	if n := ts.srv.numConns(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}

	// The server goes away: calls fail, then fail fast with ErrConnect.
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "calls to fail with ErrConnect", func() bool {
		err := r.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil)
		if err == nil || !IsUnreachable(err) {
			t.Fatalf("call to a dead server: %v", err)
		}
		return errors.Is(err, ErrConnect)
	})
	err = r.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil)
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("while down: %v", err)
	}

	// It comes back on the same address; after the backoff (on the
	// injected clock) the next call redials.
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	ts2 := startServerOn(t, l2, ServerConfig{}, nil)
	if err := r.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil); !errors.Is(err, ErrConnect) {
		t.Fatalf("within the backoff: %v", err)
	}
	mock.Add(redialBackoff)
	var info PeerInfo
	if err := r.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if info.ID == first {
		t.Fatal("reused the dead connection")
	}
	if n := ts2.srv.numConns(); n != 1 {
		t.Fatalf("%d connections to the new server, want 1", n)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	rmitest.WaitFor(t, "the server to see the close", func() bool { return ts2.srv.numConns() == 0 })
}

func TestRedialerRedialsAfterLostConnection(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	r := NewRedialer(ts.addr, DialConfig{Logger: quietLog()})
	defer r.Close()
	var a, b PeerInfo
	if err := r.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &a); err != nil {
		t.Fatal(err)
	}
	// Drop the connection from the server's side; the server stays up.
	r.mu.Lock()
	c := r.c
	r.mu.Unlock()
	lost := make(chan struct{})
	c.OnClose(func() { close(lost) })
	ts.srv.mu.Lock()
	for sc := range ts.srv.conns {
		_ = sc.raw.Close()
	}
	ts.srv.mu.Unlock()
	waitChan(t, "the client to notice", lost)
	if err := r.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &b); err != nil {
		t.Fatalf("next call did not redial: %v", err)
	}
	if a.ID == b.ID {
		t.Fatal("same connection after it was lost")
	}
}

func TestRedialerDialTimeoutHonoursContext(t *testing.T) {
	// A listener that never completes the handshake.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			held = append(held, c)
		}
	}()
	r := NewRedialer(l.Addr().String(), DialConfig{Logger: quietLog(), HandshakeTimeout: 100 * time.Millisecond})
	defer r.Close()
	err = r.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil)
	if !errors.Is(err, ErrConnect) || !errors.Is(err, ErrHandshake) {
		t.Fatalf("got %v", err)
	}
	rmitest.WaitFor(t, "the first dial to be accepted", func() bool { return accepted.Load() == 1 })
	// Fails fast within the backoff, without dialing again: a dial would
	// have waited the handshake timeout, in which its connection is
	// accepted. (It checked the call's wall time, which a loaded machine
	// could stretch past its limit.)
	if err := r.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil); !errors.Is(err, ErrConnect) {
		t.Fatalf("second call: %v", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("the second call dialed again: %d connections", n)
	}
}
