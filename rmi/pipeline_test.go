package rmi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/distchat/distchat/rmi/clocktest"
)

// The tests in this file call the same remote object over each transport
// and check that the shared pipeline (Caller, Table.Handle) makes them
// behave alike.

// overrunBy is how far the overrun tests move the clock while a call
// runs, further than their deadlines; it stays under DefaultIdleTimeout,
// so the TCP connection survives it.
const overrunBy = 20 * time.Second

// route is one way to reach a testSvc exported as "svc".
type route struct {
	name string
	inv  Invoker
	svc  *testSvc
}

// syncTransport is a fake Transport that runs each request in the
// caller's goroutine, as the simulator does: the callee's deadline comes
// from the request alone, and the caller waits however long the method
// takes.
type syncTransport struct {
	table    *Table
	clk      clock.Clock
	maxBytes int
}

// RoundTrip implements Transport.
func (s syncTransport) RoundTrip(_ context.Context, req *Request) (*Response, error) {
	return s.table.Handle(context.Background(), s.clk, s.maxBytes, req), nil
}

// routes returns the ways to call a testSvc: over TCP, through Local, and
// through syncTransport. Every end reads time on mock and caps requests at
// maxBytes.
func routes(t *testing.T, mock *clocktest.Mock, maxBytes int) []route {
	t.Helper()
	table := func() (*Table, *testSvc) {
		tab := NewTable(quietLog())
		svc := newTestSvc()
		if err := Export[testAPI](tab, "svc", svc); err != nil {
			t.Fatal(err)
		}
		return tab, svc
	}
	ts := startServer(t, ServerConfig{Clock: mock, MaxRequestBytes: maxBytes, IdleTimeout: 100 * overrunBy}, nil)
	localTab, localSvc := table()
	fakeTab, fakeSvc := table()
	return []route{
		{"tcp", dial(t, ts.addr, DialConfig{Clock: mock}), ts.svc},
		{"local", Local{Table: localTab, Clock: mock, MaxRequestBytes: maxBytes}, localSvc},
		{"fake", Caller{Transport: syncTransport{fakeTab, mock, maxBytes}, Clock: mock}, fakeSvc},
	}
}

func TestCalleeSeesCallersDeadline(t *testing.T) {
	mock := clocktest.New()
	for _, r := range routes(t, mock, DefaultMaxRequestBytes) {
		ctx, cancel := mock.WithTimeout(context.Background(), 42*time.Second)
		want, _ := ctx.Deadline()
		var got time.Time
		err := r.inv.Invoke(ctx, "svc", "Deadline", EchoArgs{}, &got)
		cancel()
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: callee's deadline %v (%v), want the caller's %v", r.name, got, err, want)
		}
		// A call without a deadline gets the default call timeout, and
		// the callee that too.
		want = mock.Now().Add(DefaultCallTimeout)
		if err := r.inv.Invoke(context.Background(), "svc", "Deadline", EchoArgs{}, &got); err != nil || !got.Equal(want) {
			t.Errorf("%s: callee's deadline %v (%v) without one, want %v", r.name, got, err, want)
		}
	}
}

// classify describes err by the predicates callers use.
type classified struct {
	timeout, deadline, unknown, unreachable, remote bool
}

func classify(err error) classified {
	var re *RemoteError
	return classified{
		timeout:     errors.Is(err, ErrTimeout),
		deadline:    errors.Is(err, context.DeadlineExceeded),
		unknown:     IsOutcomeUnknown(err),
		unreachable: IsUnreachable(err),
		remote:      errors.As(err, &re),
	}
}

func TestDeadlineOverrunIsTheSameErrorEverywhere(t *testing.T) {
	want := classified{timeout: true, deadline: true, unknown: true, unreachable: true}
	mock := clocktest.New()
	for _, r := range routes(t, mock, DefaultMaxRequestBytes) {
		// A method that ignores its deadline and succeeds after it.
		ctx, cancel := mock.WithTimeout(context.Background(), overrunBy/2)
		errc := make(chan error, 1)
		go func() { var out EchoArgs; errc <- r.inv.Invoke(ctx, "svc", "Overrun", EchoArgs{N: 1}, &out) }()
		waitChan(t, r.name+": Overrun to start", r.svc.started)
		written(t, r.inv)
		mock.Add(overrunBy)
		err := waitChan(t, r.name+": the call to end", errc)
		cancel()
		if got := classify(err); got != want {
			t.Errorf("%s: a method that succeeded after the deadline: %v, classified %+v, want %+v", r.name, err, got, want)
		}

		// A method that gives up when its deadline passes.
		ctx, cancel = mock.WithTimeout(context.Background(), overrunBy/2)
		errc = make(chan error, 1)
		go func() { errc <- r.inv.Invoke(ctx, "svc", "Block", EchoArgs{}, nil) }()
		waitChan(t, r.name+": Block to start", r.svc.started)
		written(t, r.inv)
		mock.Add(overrunBy)
		err = waitChan(t, r.name+": the call to end", errc)
		cancel()
		if got := classify(err); got != want {
			t.Errorf("%s: a method that gave up at the deadline: %v, classified %+v, want %+v", r.name, err, got, want)
		}
	}
}

func TestOversizeArgsRejectedTheSameWayEverywhere(t *testing.T) {
	const maxBytes = 4096
	for _, r := range routes(t, clocktest.New(), maxBytes) {
		var n int
		err := r.inv.Invoke(context.Background(), "svc", "Size", make([]byte, 16*maxBytes), &n)
		var re *RemoteError
		if !errors.Is(err, ErrTooLarge) || !errors.As(err, &re) || re.Code != ErrTooLarge.Code || re.Object != "svc" || re.Method != "Size" {
			t.Errorf("%s: oversize arguments: %#v", r.name, err)
		}
		if IsUnreachable(err) || IsOutcomeUnknown(err) {
			t.Errorf("%s: oversize arguments misclassified: %v", r.name, err)
		}
		if err := r.inv.Invoke(context.Background(), "svc", "Size", make([]byte, maxBytes/2), &n); err != nil || n != maxBytes/2 {
			t.Errorf("%s: a call within the cap after an oversize one: %d %v", r.name, n, err)
		}
	}
}

func TestOnlyTheInterfaceIsCallable(t *testing.T) {
	for _, r := range routes(t, clocktest.New(), DefaultMaxRequestBytes) {
		var out EchoArgs
		// Secret has a remote method's shape, but testAPI lacks it.
		if err := r.inv.Invoke(context.Background(), "svc", "Secret", EchoArgs{S: "x"}, &out); !errors.Is(err, ErrNoSuchMethod) || out.S != "" {
			t.Errorf("%s: calling a method outside the interface: %q %v", r.name, out.S, err)
		}
		if err := r.inv.Invoke(context.Background(), "svc", "Echo", EchoArgs{S: "x"}, &out); err != nil || out.S != "x!" {
			t.Errorf("%s: calling an interface method: %q %v", r.name, out.S, err)
		}
	}
}

// notRemote has a method that is not a remote method.
type notRemote interface {
	Echo(ctx context.Context, a EchoArgs) (EchoArgs, error)
	Close() error
}

type closingSvc struct{ *testSvc }

func (closingSvc) Close() error { return nil }

func TestExportNeedsARemoteInterface(t *testing.T) {
	tab := NewTable(quietLog())
	svc := newTestSvc()
	if err := Export(tab, "svc", svc); err == nil {
		t.Error("exported a concrete type")
	}
	if err := Export[notRemote](tab, "svc", closingSvc{svc}); err == nil {
		t.Error("exported an interface with a method that is not remote")
	}
	if err := Export[testAPI](tab, "svc", nil); err == nil {
		t.Error("exported nil")
	}
	if err := Export[any](tab, "svc", svc); err == nil {
		t.Error("exported an interface without methods")
	}
	if got := tab.Names(); len(got) != 0 {
		t.Fatalf("failed exports left %v in the table", got)
	}
	if err := Export[testAPI](tab, "svc", svc); err != nil {
		t.Fatal(err)
	}
	if err := Export[testAPI](tab, "svc", svc); !errors.Is(err, ErrAlreadyBound) {
		t.Errorf("exported a name twice: %v", err)
	}
}

// A failed Dial keeps the cause of its failure.
func TestDialKeepsTheCause(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Dial(ctxT(t), addr, DialConfig{Logger: quietLog()})
	var opErr *net.OpError
	if !errors.Is(err, ErrConnect) || !errors.As(err, &opErr) {
		t.Fatalf("dial to a closed port: %v lost its *net.OpError", err)
	}
}

// A request the server cannot decode is answered with a code the caller
// classifies as ErrMarshal (not by net/rpc's text), and the connection
// carries on.
func TestUndecodableRequestIsErrMarshal(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := newConn(handshaken(t, ts.addr), connConfig{clk: clock.New(), log: quietLog(), remote: ts.addr, idle: time.Minute})
	c.start()
	defer c.Close()
	r := new(reply)
	if err := c.rc.Call(serviceMethod, "not a Request", r); err != nil {
		t.Fatal(err)
	}
	err := Caller{}.outcome("svc", "Echo", &r.resp, nil)
	if !errors.Is(err, ErrMarshal) || r.resp.ErrCode != errBadRequest.Code {
		t.Fatalf("undecodable request: %+v, classified %v", r.resp, err)
	}
	// The connection still carries calls.
	var out EchoArgs
	fresh := Caller{Transport: c}
	if err := fresh.Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("after an undecodable request: %+v %v", out, err)
	}
}

// TestLocalAcrossClocks calls from a caller on one mock clock to a callee
// on another, hours apart: the callee gets the caller's remaining time,
// measured on its own clock, as over TCP.
func TestLocalAcrossClocks(t *testing.T) {
	caller, callee := clocktest.New(), clocktest.New()
	caller.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	callee.Set(caller.Now().Add(7 * time.Hour))
	tab := NewTable(quietLog())
	svc := newTestSvc()
	if err := Export[testAPI](tab, "svc", svc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caller.WithTimeout(context.Background(), 42*time.Second)
	defer cancel()
	var got time.Time
	err := Local{Table: tab, Clock: caller, CalleeClock: callee}.Invoke(ctx, "svc", "Deadline", EchoArgs{}, &got)
	if want := callee.Now().Add(42 * time.Second); err != nil || !got.Equal(want) {
		t.Fatalf("callee's deadline %v (%v), want %v on its own clock", got, err, want)
	}
}
