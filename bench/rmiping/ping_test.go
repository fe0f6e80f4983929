package main

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
)

func TestMeasure(t *testing.T) {
	clk := clocktest.New()
	calls := 0
	// Call i (from 1) takes i µs; the first 3 are the warm-up.
	rtt, err := measure(context.Background(), clk, 100, 3, func(context.Context) error {
		calls++
		clk.Add(time.Duration(calls) * time.Microsecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 103 || len(rtt) != 100 {
		t.Fatalf("%d calls, %d timed; want 103 and 100", calls, len(rtt))
	}
	if rtt[0] != 4*time.Microsecond || rtt[99] != 103*time.Microsecond {
		t.Fatalf("timed %v … %v, want 4µs … 103µs", rtt[0], rtt[99])
	}
	if q := quantile(rtt, 0.50); q != 53*time.Microsecond {
		t.Errorf("p50 %v, want 53µs", q)
	}
	if q := quantile(rtt, 0.99); q != 102*time.Microsecond {
		t.Errorf("p99 %v, want 102µs", q)
	}
	if m := mean(rtt); m != 53500*time.Nanosecond {
		t.Errorf("mean %v, want 53.5µs", m)
	}
	var out strings.Builder
	if err := writeResult(&out, "go-rmi", "tcp", 3, rtt); err != nil {
		t.Fatal(err)
	}
	if want := "impl=go-rmi transport=tcp n=100 warmup=3 p50_us=53.0 p99_us=102.0 mean_us=53.5\n"; out.String() != want {
		t.Errorf("line %q, want %q", out.String(), want)
	}
}

func TestMeasureStopsAtError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	_, err := measure(context.Background(), clocktest.New(), 10, 2, func(context.Context) error {
		if n++; n == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 5 {
		t.Fatalf("after %d calls: %v, want boom after 5", n, err)
	}
}

// TestPing runs serve and call in this process over loopback, plaintext
// and TLS, and checks that every call reached the Pinger.
func TestPing(t *testing.T) {
	for _, tc := range []struct{ name, tlsDir string }{{"tcp", ""}, {"tls13", t.TempDir()}} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			p := &pinger{}
			srv, err := newServer(p, addr, tc.tlsDir, rmitest.QuietLogger())
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(l) }()
			t.Cleanup(func() { _ = srv.Close() })

			var out strings.Builder
			if err := call(t.Context(), addr, tc.tlsDir, 20, 5, rmitest.QuietLogger(), &out); err != nil {
				t.Fatal(err)
			}
			re := regexp.MustCompile(`^impl=go-rmi transport=` + tc.name + ` n=20 warmup=5 p50_us=[0-9.]+ p99_us=[0-9.]+ mean_us=[0-9.]+\n$`)
			if !re.MatchString(out.String()) {
				t.Errorf("output %q", out.String())
			}
			if got := p.calls.Load(); got != 25 {
				t.Errorf("the Pinger got %d calls, want 25", got)
			}
		})
	}
}

func TestServeAndCall(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r, w := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0"}, w) }()
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	ready := strings.TrimSpace(string(buf[:n]))
	addr, ok := strings.CutPrefix(ready, "ready ")
	if !ok {
		t.Fatalf("serve printed %q, want ready ADDR", ready)
	}
	var out strings.Builder
	if err := run(ctx, []string{"call", "--addr", addr, "--n", "3", "--warmup", "0"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "impl=go-rmi transport=tcp n=3 warmup=0 ") {
		t.Errorf("call printed %q", out.String())
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// TestNetrpc runs the bare net/rpc ping (--netrpc) in this process and
// checks that every call reached its Pinger.
func TestNetrpc(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	served := make(chan error, 1)
	go func() { served <- serveNetrpc(l, &calls) }()
	var out strings.Builder
	if err := run(t.Context(), []string{"call", "--netrpc", "--addr", l.Addr().String(), "--n", "20", "--warmup", "5"}, &out); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^impl=go-netrpc transport=tcp n=20 warmup=5 p50_us=[0-9.]+ p99_us=[0-9.]+ mean_us=[0-9.]+\n$`)
	if !re.MatchString(out.String()) {
		t.Errorf("output %q", out.String())
	}
	if got := calls.Load(); got != 25 {
		t.Errorf("the Pinger got %d calls, want 25", got)
	}
	if err := errors.Join(l.Close(), <-served); err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"bogus"},
		{"serve", "stray"},
		{"call", "--n", "0"},
		{"call", "--warmup", "-1"},
		{"call", "--netrpc", "--tls", "x"},
		{"serve", "--netrpc", "--tls", "x"},
	} {
		if err := run(t.Context(), args, &strings.Builder{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
