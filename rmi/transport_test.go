package rmi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/distchat/distchat/rmi/clocktest"
)

// waitBound is the longest any test waits for an event that should come
// much sooner.
const waitBound = 5 * time.Second

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

var errTestFail = NewError("test.fail", "test failure")

type EchoArgs struct {
	S string
	N int
}

type PeerInfo struct {
	ID      uint64
	Cluster bool
	HasBack bool
}

type NotifyArgs struct{ Text string }

// testAPI is the remote interface testSvc is exported as.
type testAPI interface {
	Echo(ctx context.Context, a EchoArgs) (EchoArgs, error)
	Fail(ctx context.Context, a EchoArgs) error
	Panic(ctx context.Context, a EchoArgs) error
	Block(ctx context.Context, a EchoArgs) error
	Remaining(ctx context.Context, a EchoArgs) (time.Duration, error)
	Deadline(ctx context.Context, a EchoArgs) (time.Time, error)
	Overrun(ctx context.Context, a EchoArgs) (EchoArgs, error)
	WhoAmI(ctx context.Context, a EchoArgs) (PeerInfo, error)
	CallBack(ctx context.Context, a NotifyArgs) (string, error)
	Watch(ctx context.Context, a EchoArgs) error
	Size(ctx context.Context, b []byte) (int, error)
}

// cbAPI is the remote interface of a client's callback object.
type cbAPI interface {
	Notify(ctx context.Context, a NotifyArgs) (string, error)
}

// testSvc is the remote object the transport tests call.
type testSvc struct {
	started chan struct{} // Block and Overrun send when they start
	release chan struct{} // Block returns when this is closed
	closed  chan struct{} // closed by the OnClose hook Watch installs
	once    sync.Once
}

func newTestSvc() *testSvc {
	return &testSvc{started: make(chan struct{}, 16), release: make(chan struct{}), closed: make(chan struct{})}
}

func (s *testSvc) Echo(_ context.Context, a EchoArgs) (EchoArgs, error) {
	return EchoArgs{S: a.S + "!", N: a.N + 1}, nil
}

func (s *testSvc) Fail(_ context.Context, a EchoArgs) error {
	return fmt.Errorf("failing %q: %w", a.S, errTestFail)
}

func (s *testSvc) Panic(_ context.Context, _ EchoArgs) error { panic("boom") }

func (s *testSvc) Block(ctx context.Context, _ EchoArgs) error {
	s.started <- struct{}{}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *testSvc) Remaining(ctx context.Context, _ EchoArgs) (time.Duration, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, nil
	}
	return time.Until(dl), nil
}

// Deadline returns the deadline the method runs under (zero if none).
func (s *testSvc) Deadline(ctx context.Context, _ EchoArgs) (time.Time, error) {
	dl, _ := ctx.Deadline()
	return dl, nil
}

// Overrun waits until its deadline has passed and then succeeds,
// ignoring it; it sends on started first.
func (s *testSvc) Overrun(ctx context.Context, a EchoArgs) (EchoArgs, error) {
	s.started <- struct{}{}
	<-ctx.Done()
	return a, nil
}

// written waits until inv, if a TCP Client, has finished writing: the
// request can reach the server before the writer stops its stall timer,
// and moving the mock clock then would end the connection.
func written(t testing.TB, inv Invoker) {
	t.Helper()
	if c, ok := inv.(*Client); ok {
		rmitest.WaitFor(t, "the client's write to end", func() bool { return !c.conn.writing.Load() })
	}
}

// Secret has the shape of a remote method but is not in testAPI, so it
// must not be callable.
func (s *testSvc) Secret(_ context.Context, a EchoArgs) (EchoArgs, error) {
	return EchoArgs{S: "leaked " + a.S}, nil
}

func (s *testSvc) WhoAmI(ctx context.Context, _ EchoArgs) (PeerInfo, error) {
	p := PeerFromContext(ctx)
	if p == nil {
		return PeerInfo{}, errors.New("no peer")
	}
	return PeerInfo{ID: p.ID, Cluster: p.Cluster, HasBack: p.Back != nil}, nil
}

func (s *testSvc) CallBack(ctx context.Context, a NotifyArgs) (string, error) {
	p := PeerFromContext(ctx)
	if p == nil || p.Back == nil {
		return "", ErrNoCallback
	}
	var out string
	if err := p.Back.Invoke(ctx, "cb", "Notify", a, &out); err != nil {
		return "", fmt.Errorf("calling back: %w", err)
	}
	return out, nil
}

func (s *testSvc) Watch(ctx context.Context, _ EchoArgs) error {
	PeerFromContext(ctx).OnClose(func() { s.once.Do(func() { close(s.closed) }) })
	return nil
}

func (s *testSvc) Size(_ context.Context, b []byte) (int, error) { return len(b), nil }

// cbSvc is a client's callback object.
type cbSvc struct {
	mu   sync.Mutex
	got  []string
	peer *Peer
}

func (c *cbSvc) Notify(ctx context.Context, a NotifyArgs) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, a.Text)
	c.peer = PeerFromContext(ctx)
	return "got " + a.Text, nil
}

type testServer struct {
	srv  *Server
	svc  *testSvc
	addr string
	l    net.Listener
	done chan error
}

// startServer serves a table holding a testSvc as "svc" (and, via setup,
// anything else) on a loopback port.
func startServer(t testing.TB, cfg ServerConfig, setup func(*Table)) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startServerOn(t, l, cfg, setup)
}

func startServerOn(t testing.TB, l net.Listener, cfg ServerConfig, setup func(*Table)) *testServer {
	t.Helper()
	tab := NewTable(quietLog())
	svc := newTestSvc()
	if err := Export[testAPI](tab, "svc", svc); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(tab)
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLog()
	}
	ts := &testServer{srv: NewServer(tab, cfg), svc: svc, addr: l.Addr().String(), l: l, done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(l) }()
	t.Cleanup(func() {
		_ = ts.srv.Close()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitBound):
			t.Errorf("Serve did not return after Close")
		}
	})
	return ts
}

func dial(t testing.TB, addr string, cfg DialConfig) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog()
	}
	c, err := Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	t.Cleanup(cancel)
	return ctx
}

func waitChan[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitBound):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func TestRoundTrip(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	var out EchoArgs
	if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{S: "hi", N: 41}, &out); err != nil {
		t.Fatal(err)
	}
	if out != (EchoArgs{S: "hi!", N: 42}) {
		t.Fatalf("got %+v", out)
	}
	// A method returning only an error, with a nil reply.
	if err := c.Invoke(ctxT(t), "svc", "Watch", EchoArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	var info PeerInfo
	if err := c.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil {
		t.Fatal(err)
	}
	if info.Cluster || info.HasBack || info.ID == 0 {
		t.Fatalf("peer info %+v", info)
	}
}

func TestConcurrentCalls(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			var out EchoArgs
			if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: i}, &out); err != nil {
				errs <- err
			} else if out.N != i+1 {
				errs <- fmt.Errorf("call %d got %d", i, out.N)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestAppErrorCodeCrossesTCP(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	err := c.Invoke(ctxT(t), "svc", "Fail", EchoArgs{S: "x"}, nil)
	if !errors.Is(err, errTestFail) {
		t.Fatalf("errors.Is(%v, errTestFail) = false", err)
	}
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "test.fail" || re.Object != "svc" || re.Method != "Fail" {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(re.Message, `failing "x"`) {
		t.Fatalf("message %q lost the remote text", re.Message)
	}
	if IsUnreachable(err) || IsOutcomeUnknown(err) || errors.Is(err, ErrMarshal) {
		t.Fatalf("application error misclassified: %v", err)
	}
	if errors.Is(err, ErrNotBound) {
		t.Fatal("matched an unrelated code")
	}
}

func TestUnknownObjectMethodAndBadArgs(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	if err := c.Invoke(ctxT(t), "nope", "Echo", EchoArgs{}, nil); !errors.Is(err, ErrNoSuchObject) {
		t.Fatalf("unknown object: %v", err)
	}
	if err := c.Invoke(ctxT(t), "svc", "Nope", EchoArgs{}, nil); !errors.Is(err, ErrNoSuchMethod) {
		t.Fatalf("unknown method: %v", err)
	}
	if err := c.Invoke(ctxT(t), "svc", "Echo", []int{1, 2}, nil); !errors.Is(err, ErrBadArgs) {
		t.Fatalf("bad args: %v", err)
	}
	// The connection is still fine.
	var out EchoArgs
	if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, &out); err != nil {
		t.Fatal(err)
	}
}

func TestPanicReturnsErrPanic(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	err := c.Invoke(ctxT(t), "svc", "Panic", EchoArgs{}, nil)
	if !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v", err)
	}
	var out EchoArgs
	if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, &out); err != nil {
		t.Fatalf("server broken after panic: %v", err)
	}
}

func TestMarshalFailure(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	err := c.Invoke(ctxT(t), "svc", "Echo", complex(1, 2), nil)
	if !errors.Is(err, ErrMarshal) {
		t.Fatalf("encode failure: %v", err)
	}
	// A result that does not decode into the reply.
	var wrong []string
	err = c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, &wrong)
	if !errors.Is(err, ErrMarshal) {
		t.Fatalf("decode failure: %v", err)
	}
}

func TestClusterOnly(t *testing.T) {
	secret := []byte("s3cret")
	ts := startServer(t, ServerConfig{ClusterSecret: secret}, func(tab *Table) {
		if err := Export[testAPI](tab, "admin", newTestSvc(), ClusterOnly()); err != nil {
			t.Fatal(err)
		}
	})
	var out EchoArgs
	anon := dial(t, ts.addr, DialConfig{})
	if err := anon.Invoke(ctxT(t), "admin", "Echo", EchoArgs{}, &out); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("without secret: %v", err)
	}
	var info PeerInfo
	if err := anon.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil || info.Cluster {
		t.Fatalf("anonymous peer: %+v %v", info, err)
	}

	member := dial(t, ts.addr, DialConfig{ClusterSecret: secret})
	if err := member.Invoke(ctxT(t), "admin", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("with secret: %+v %v", out, err)
	}
	if err := member.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil || !info.Cluster {
		t.Fatalf("cluster peer: %+v %v", info, err)
	}
}

func TestHandshakeSecretMismatch(t *testing.T) {
	withSecret := startServer(t, ServerConfig{ClusterSecret: []byte("right")}, nil)
	_, err := Dial(ctxT(t), withSecret.addr, DialConfig{ClusterSecret: []byte("wrong"), Logger: quietLog()})
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, ErrConnect) {
		t.Fatalf("wrong secret: %v", err)
	}
	// A client with a secret refuses a server that cannot prove one.
	noSecret := startServer(t, ServerConfig{}, nil)
	_, err = Dial(ctxT(t), noSecret.addr, DialConfig{ClusterSecret: []byte("right"), Logger: quietLog()})
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("server without secret: %v", err)
	}
	rmitest.WaitFor(t, "failed connections to end", func() bool {
		return withSecret.srv.numConns() == 0 && noSecret.srv.numConns() == 0
	})
}

func TestHandshakeAgainstNonRMIServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	silent := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			silent <- c // never answers
		}
	}()
	start := time.Now()
	_, err = Dial(ctxT(t), l.Addr().String(), DialConfig{HandshakeTimeout: 150 * time.Millisecond, Logger: quietLog()})
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("silent server: %v", err)
	}
	if el := time.Since(start); el > waitBound/2 {
		t.Fatalf("handshake timeout took %v", el)
	}
	(<-silent).Close()

	// A server that answers in some other protocol.
	http := make(chan struct{})
	go func() {
		defer close(http)
		c := <-silent
		_, _ = c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
		_ = c.Close()
	}()
	_, err = Dial(ctxT(t), l.Addr().String(), DialConfig{HandshakeTimeout: waitBound, Logger: quietLog()})
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("http server: %v", err)
	}
	<-http
}

func TestCallbacksOverClientConnection(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	cbTab := NewTable(quietLog())
	cb := &cbSvc{}
	if err := Export[cbAPI](cbTab, "cb", cb); err != nil {
		t.Fatal(err)
	}
	// The client has no listener: the callback must come back over the
	// connection it dialed.
	c := dial(t, ts.addr, DialConfig{Callbacks: cbTab})
	var out string
	if err := c.Invoke(ctxT(t), "svc", "CallBack", NotifyArgs{Text: "hello"}, &out); err != nil {
		t.Fatal(err)
	}
	if out != "got hello" {
		t.Fatalf("callback reply %q", out)
	}
	if err := c.Invoke(ctxT(t), "svc", "CallBack", NotifyArgs{Text: "again"}, &out); err != nil {
		t.Fatal(err)
	}
	cb.mu.Lock()
	got, peer := strings.Join(cb.got, ","), cb.peer
	cb.mu.Unlock()
	if got != "hello,again" {
		t.Fatalf("callbacks received %q", got)
	}
	if peer == nil || peer.Back == nil {
		t.Fatal("callback saw no peer, or no way back to the server")
	}
	var info PeerInfo
	if err := c.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil || !info.HasBack {
		t.Fatalf("server side peer: %+v %v", info, err)
	}

	// A client that exported nothing has no Back.
	plain := dial(t, ts.addr, DialConfig{})
	if err := plain.Invoke(ctxT(t), "svc", "CallBack", NotifyArgs{}, &out); !errors.Is(err, ErrNoCallback) {
		t.Fatalf("no callbacks: %v", err)
	}
}

func TestPeerOnCloseWhenClientCloses(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	if err := c.Invoke(ctxT(t), "svc", "Watch", EchoArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ts.svc.closed:
		t.Fatal("OnClose ran while the connection was open")
	default:
	}
	clientClosed := make(chan struct{})
	c.OnClose(func() { close(clientClosed) })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitChan(t, "client OnClose", clientClosed)
	waitChan(t, "server Peer.OnClose", ts.svc.closed)
	if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	rmitest.WaitFor(t, "server to drop the connection", func() bool { return ts.srv.numConns() == 0 })
}

func TestClientOnCloseWhenServerGoes(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	lost := make(chan struct{})
	c.OnClose(func() { close(lost) })
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	waitChan(t, "client OnClose", lost)
	err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil)
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("call on a lost connection: %v", err)
	}
}

func TestCallTimeout(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Invoke(ctx, "svc", "Block", EchoArgs{}, nil)
	if !errors.Is(err, ErrTimeout) || !IsOutcomeUnknown(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	waitChan(t, "Block to start", ts.svc.started)

	// The default call timeout applies when the context has none.
	short := dial(t, ts.addr, DialConfig{CallTimeout: 100 * time.Millisecond})
	if err := short.Invoke(context.Background(), "svc", "Block", EchoArgs{}, nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("CallTimeout: %v", err)
	}
	waitChan(t, "Block to start", ts.svc.started)
	close(ts.svc.release)

	// The connection survives the timeouts; the late replies are dropped.
	var out EchoArgs
	if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("after timeout: %+v %v", out, err)
	}
	// The server runs the method under the caller's remaining deadline.
	var rem time.Duration
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if err := c.Invoke(ctx2, "svc", "Remaining", EchoArgs{}, &rem); err != nil {
		t.Fatal(err)
	}
	if rem <= 0 || rem > 3*time.Second {
		t.Fatalf("server-side deadline %v", rem)
	}
	// An expired context never sends.
	expired, cancel3 := context.WithTimeout(context.Background(), -time.Second)
	defer cancel3()
	if err := c.Invoke(expired, "svc", "Echo", EchoArgs{}, nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("expired context: %v", err)
	}
	canceled, cancel4 := context.WithCancel(context.Background())
	cancel4()
	if err := c.Invoke(canceled, "svc", "Echo", EchoArgs{}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: %v", err)
	}
}

func TestCallTimeoutUsesInjectedClock(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	mock := clocktest.New()
	c := dial(t, ts.addr, DialConfig{Clock: mock, CallTimeout: time.Minute})
	errc := make(chan error, 1)
	go func() { errc <- c.Invoke(context.Background(), "svc", "Block", EchoArgs{}, nil) }()
	waitChan(t, "Block to start", ts.svc.started)
	select {
	case err := <-errc:
		t.Fatalf("returned before the mock clock moved: %v", err)
	default:
	}
	written(t, c) // else the write's stall timer, due at the same time, may fire first
	mock.Add(time.Minute)
	if err := waitChan(t, "the call to time out", errc); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v", err)
	}
	close(ts.svc.release)
}

func TestServerKilledMidCall(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	errc := make(chan error, 1)
	go func() { errc <- c.Invoke(ctxT(t), "svc", "Block", EchoArgs{}, nil) }()
	waitChan(t, "Block to start", ts.svc.started)
	closed := make(chan error, 1)
	go func() { closed <- ts.srv.Close() }()
	err := waitChan(t, "the call to fail", errc)
	if !errors.Is(err, ErrConnLost) || !IsOutcomeUnknown(err) {
		t.Fatalf("got %v", err)
	}
	if err := waitChan(t, "Server.Close", closed); err != nil {
		t.Fatal(err)
	}
}

func TestDialClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Dial(ctxT(t), addr, DialConfig{Logger: quietLog()})
	if !errors.Is(err, ErrConnect) || !IsUnreachable(err) || IsOutcomeUnknown(err) {
		t.Fatalf("got %v", err)
	}
}

// readUntilClosed reads from c until the peer closes it, failing the test
// if that takes longer than waitBound.
func readUntilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitBound))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection (read %q)", buf.String())
	}
	return buf.Bytes()
}

func TestGarbageIsRejected(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	for _, garbage := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		strings.Repeat("\x00\xff", 64),
		"distchat-rmi/9\n" + strings.Repeat("x", 40),
	} {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(garbage)); err != nil {
			t.Fatal(err)
		}
		got := readUntilClosed(t, conn)
		if len(got) > 0 && !bytes.HasPrefix(got, []byte("ERR ")) {
			t.Errorf("server answered garbage with %q", got)
		}
		conn.Close()
	}
	rmitest.WaitFor(t, "garbage connections to be dropped", func() bool { return ts.srv.numConns() == 0 })
	c := dial(t, ts.addr, DialConfig{})
	var out EchoArgs
	if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, &out); err != nil {
		t.Fatalf("server broken by garbage: %v", err)
	}
}

func TestHalfSentMagic(t *testing.T) {
	ts := startServer(t, ServerConfig{HandshakeTimeout: 200 * time.Millisecond}, nil)
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(protoMagic[:5])); err != nil {
		t.Fatal(err)
	}
	readUntilClosed(t, conn)
	rmitest.WaitFor(t, "the stalled connection to be dropped", func() bool { return ts.srv.numConns() == 0 })
}

// handshaken dials the server and runs the client handshake by hand.
func handshaken(t *testing.T, addr string) net.Conn {
	t.Helper()
	return handshakenWith(t, addr, false)
}

// handshakenWith is handshaken, saying whether the client serves
// callbacks.
func handshakenWith(t *testing.T, addr string, callbacks bool) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := clientHandshake(conn, nil, callbacks, nil); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestHalfSentFrameAfterHandshake(t *testing.T) {
	ts := startServer(t, ServerConfig{IdleTimeout: 300 * time.Millisecond}, nil)
	conn := handshaken(t, ts.addr)
	// Half of a frame header, then silence.
	if _, err := conn.Write([]byte{frameRequest, 0, 0}); err != nil {
		t.Fatal(err)
	}
	readUntilClosed(t, conn)
	rmitest.WaitFor(t, "the silent connection to be dropped", func() bool { return ts.srv.numConns() == 0 })
}

// TestStalledRequestClosesConn: a request that stalls half-sent on a live
// connection ends the connection after the idle timeout (the connection
// has one reader, which waits for the rest of the request); the server
// serves other connections meanwhile.
func TestStalledRequestClosesConn(t *testing.T) {
	ts := startServer(t, ServerConfig{IdleTimeout: 300 * time.Millisecond}, nil)
	conn := handshaken(t, ts.addr)
	_ = conn.SetDeadline(time.Now().Add(waitBound))
	// A live connection: the server answers a ping.
	if _, err := conn.Write(pingFrame[:]); err != nil {
		t.Fatal(err)
	}
	var hdr [frameHeaderLen]byte
	for {
		kind, n, err := readFrameHeader(conn, &hdr)
		if err != nil || n != 0 {
			t.Fatalf("waiting for a pong: kind %d, %d bytes, %v", kind, n, err)
		}
		if kind == framePong {
			break
		}
	}
	// A request's frame header and the first byte of its body, and no more.
	req := frame(t, 1, &Request{Object: "svc", Method: "Echo", Timeout: int64(time.Minute), Args: mustMarshal(t, EchoArgs{N: 1})})
	if _, err := conn.Write(req[:frameHeaderLen+1]); err != nil {
		t.Fatal(err)
	}
	var out EchoArgs
	if err := dial(t, ts.addr, DialConfig{}).Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("another connection while a request stalls: %+v %v", out, err)
	}
	readUntilClosed(t, conn)
}

func TestOversizeRequest(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxRequestBytes: 4096}, nil)
	c := dial(t, ts.addr, DialConfig{})
	var n int
	if err := c.Invoke(ctxT(t), "svc", "Size", make([]byte, 1000), &n); err != nil || n != 1000 {
		t.Fatalf("small request: %d %v", n, err)
	}
	err := c.Invoke(ctxT(t), "svc", "Size", make([]byte, 64<<10), &n)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize request: %v", err)
	}
	// The same client carries on (on a fresh stream), and so do others.
	if err := c.Invoke(ctxT(t), "svc", "Size", make([]byte, 10), &n); err != nil || n != 10 {
		t.Fatalf("after oversize: %d %v", n, err)
	}
	other := dial(t, ts.addr, DialConfig{})
	if err := other.Invoke(ctxT(t), "svc", "Size", make([]byte, 10), &n); err != nil || n != 10 {
		t.Fatalf("other client: %d %v", n, err)
	}
}

func TestOversizeRequestLargerThanSocketBuffers(t *testing.T) {
	// 2 MiB, more than the sockets' buffers hold, so the client's write
	// completes only if the server keeps reading: it reads the frame and
	// drops it by its length, answers ErrTooLarge, and the connection
	// serves the next call.
	ts := startServer(t, ServerConfig{MaxRequestBytes: 4096}, nil)
	c := dial(t, ts.addr, DialConfig{})
	var n int
	err := c.Invoke(ctxT(t), "svc", "Size", make([]byte, 2<<20), &n)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize request: %v", err)
	}
	if err := c.Invoke(ctxT(t), "svc", "Size", make([]byte, 10), &n); err != nil || n != 10 {
		t.Fatalf("after oversize: %d %v", n, err)
	}
}

func TestCloseTwiceAndServeAfterClose(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Serve(l); err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestServerDeadlineUsesInjectedClock(t *testing.T) {
	mock := clocktest.New()
	ts := startServer(t, ServerConfig{Clock: mock, IdleTimeout: 2 * time.Hour}, nil)
	c := dial(t, ts.addr, DialConfig{})
	errc := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	go func() { errc <- c.Invoke(ctx, "svc", "Block", EchoArgs{}, nil) }()
	waitChan(t, "Block to start", ts.svc.started)
	// The server runs the method under the caller's remaining hour, on
	// its own clock; when that passes, the caller sees ErrTimeout.
	mock.Add(time.Hour)
	if err := waitChan(t, "the call to fail", errc); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestLocalTimeoutMatchesTCP(t *testing.T) {
	tab := NewTable(quietLog())
	svc := newTestSvc()
	if err := Export[testAPI](tab, "svc", svc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := (Local{Table: tab}).Invoke(ctx, "svc", "Block", EchoArgs{}, nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v", err)
	}
	if err := (Local{Table: tab}).Invoke(context.Background(), "svc", "Fail", EchoArgs{}, nil); !errors.Is(err, errTestFail) || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		ts := startServer(t, ServerConfig{HandshakeTimeout: 500 * time.Millisecond, MaxRequestBytes: 4096}, nil)
		defer ts.srv.Close()
		cbTab := NewTable(quietLog())
		if err := Export[cbAPI](cbTab, "cb", &cbSvc{}); err != nil {
			t.Fatal(err)
		}
		c, err := Dial(ctxT(t), ts.addr, DialConfig{Callbacks: cbTab, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var out string
		if err := c.Invoke(ctxT(t), "svc", "CallBack", NotifyArgs{Text: "x"}, &out); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := c.Invoke(ctx, "svc", "Block", EchoArgs{}, nil); !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
		// An oversize request retires the client's stream (both ends close
		// their codecs).
		var n int
		if err := c.Invoke(ctxT(t), "svc", "Size", make([]byte, 8192), &n); !errors.Is(err, ErrTooLarge) {
			t.Fatal(err)
		}
		if err := c.Invoke(ctxT(t), "svc", "Size", make([]byte, 10), &n); err != nil {
			t.Fatal(err)
		}
		raw, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		_, _ = raw.Write([]byte("dist")) // stalls in the handshake
		readUntilClosed(t, raw)
	}()
	rmitest.WaitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= base })
}

func TestIdleHealthyConnectionSurvives(t *testing.T) {
	const idle = 300 * time.Millisecond
	ts := startServer(t, ServerConfig{IdleTimeout: idle}, nil)
	c := dial(t, ts.addr, DialConfig{})
	lost := make(chan struct{})
	c.OnClose(func() { close(lost) })
	// Nothing but keepalives crosses the connection for several idle
	// timeouts; it must stay up.
	select {
	case <-lost:
		t.Fatal("an idle but healthy connection was closed")
	case <-time.After(3 * idle):
	}
	var out EchoArgs
	if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("after idling: %+v %v", out, err)
	}
}

// TestCallsFailWhenClosed closes a client with a call in flight: the call
// fails with ErrConnLost and ErrClosed, a later one with ErrClosed, and
// neither waits for its deadline.
func TestCallsFailWhenClosed(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	c := dial(t, ts.addr, DialConfig{})
	inFlight := make(chan error, 1)
	go func() { inFlight <- c.Invoke(ctxT(t), "svc", "Block", EchoArgs{}, nil) }()
	waitChan(t, "Block to start", ts.svc.started)
	_ = c.Close()
	if err := waitChan(t, "the call in flight to fail", inFlight); !errors.Is(err, ErrConnLost) || !errors.Is(err, ErrClosed) {
		t.Fatalf("the call in flight: %v", err)
	}
	if err := c.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("a call after Close: %v", err)
	}
	close(ts.svc.release)
}
