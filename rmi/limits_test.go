package rmi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/hashicorp/go-msgpack/v2/codec"
)

// syncArgs has the shape and the limits of chatapi.SyncArgs (which this
// package cannot import): a Have map of at most 256 origin servers. Its
// Len cap is looser than CheckLimits, so tests can reach both.
type syncArgs struct {
	Token string
	Room  string
	Have  map[string]uint64
}

func (syncArgs) ArgCaps() ArgCaps { return ArgCaps{Bytes: 128 << 10, Len: 1024} }

func (a syncArgs) CheckLimits() error {
	if len(a.Have) > 256 {
		return fmt.Errorf("Have names %d servers, at most 256", len(a.Have))
	}
	return nil
}

// postArgs has the shape of chatapi.PostArgs, whose method answers a post
// too large with an error of its own.
type postArgs struct {
	Token string
	Text  string
}

func (postArgs) ArgCaps() ArgCaps   { return ArgCaps{Bytes: 16<<10 + 1<<10, Len: 16} }
func (postArgs) CheckLimits() error { return nil }
func (postArgs) TooLarge() error    { return errTextTooLarge }

var (
	errNotAttached  = NewError("test.not_attached", "session not attached")
	errTextTooLarge = NewError("test.text_too_large", "message text too large")
)

// chatAPI is a chat-server-like remote interface.
type chatAPI interface {
	Sync(ctx context.Context, a syncArgs) error
	Post(ctx context.Context, a postArgs) error
}

// chatSvc refuses every token, as a chat server refuses a made-up one.
type chatSvc struct{}

func (chatSvc) Sync(context.Context, syncArgs) error { return errNotAttached }
func (chatSvc) Post(context.Context, postArgs) error { return errNotAttached }

func exportChat(t testing.TB) func(*Table) {
	return func(tab *Table) {
		if err := Export[chatAPI](tab, "chat", chatSvc{}); err != nil {
			t.Fatal(err)
		}
	}
}

// frame returns the frame a client sends for one call.
func frame(t testing.TB, seq uint64, req *Request) []byte {
	t.Helper()
	body := frameBody(t, seq, req)
	hdr := []byte{frameRequest, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(body)))
	return append(hdr, body...)
}

// frameBody returns the body of a request frame: what a net/rpc client
// with the GoRpc codec writes for one call (the request header and the
// Request).
func frameBody(t testing.TB, seq uint64, req *Request) []byte {
	t.Helper()
	var b []byte
	enc := codec.NewEncoderBytes(&b, newHandle())
	if err := enc.Encode(rpc.Request{ServiceMethod: serviceMethod, Seq: seq}); err != nil {
		t.Fatal(err)
	}
	if err := enc.Encode(req); err != nil {
		t.Fatal(err)
	}
	return b
}

// amplificationFrame is the attack of issue 7: a Sync request just under
// the old 8 MiB request cap whose Have map holds about 1.3 million keys (a
// made-up token), about 90 MB once decoded. It is encoded by hand, so
// building it costs the test only its 8 MiB.
func amplificationFrame(t testing.TB) []byte {
	t.Helper()
	const keys = 1_300_000
	appendStr := func(b []byte, s string) []byte { return append(append(b, 0xa0|byte(len(s))), s...) }
	args := make([]byte, 0, 8<<20)
	args = append(args, 0x83) // a map of three fields
	args = appendStr(args, "Token")
	args = appendStr(args, "made-up-token")
	args = appendStr(args, "Room")
	args = appendStr(args, "lobby")
	args = appendStr(args, "Have")
	args = append(args, 0xdf, keys>>24, keys>>16&0xff, keys>>8&0xff, keys&0xff) // map32
	var key []byte
	for i := range keys {
		key = strconv.AppendInt(key[:0], int64(i), 36)
		args = append(appendStr(args, string(key)), 1)
	}
	if len(args) >= DefaultMaxRequestBytes-1024 {
		t.Fatalf("attack of %d bytes does not fit the old cap", len(args))
	}
	return frame(t, 1, &Request{Object: "chat", Method: "Sync", Timeout: int64(time.Minute), Args: args})
}

// readResponse reads frames from r until a response, and decodes it.
func readResponse(r io.Reader) (Response, error) {
	var hdr [frameHeaderLen]byte
	for {
		kind, n, err := readFrameHeader(r, &hdr)
		if err != nil {
			return Response{}, err
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return Response{}, err
		}
		if kind != frameResponse {
			continue
		}
		dec := codec.NewDecoderBytes(body, newHandle())
		var h rpc.Response
		var resp Response
		if err := dec.Decode(&h); err != nil {
			return resp, err
		}
		if h.Error != "" {
			return resp, errors.New(h.Error)
		}
		err = dec.Decode(&resp)
		return resp, err
	}
}

// allocated returns how many bytes the process allocated while f ran and
// how much more heap it holds after f than before (both after a GC).
// Since the heap can never have grown by more than was allocated, the
// first bounds the peak too.
func allocated(f func()) (total, retained int64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc), int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// TestAmplificationRequestRefused sends the attack of issue 7 from an
// unauthenticated peer, 4 requests on each of 4 connections: every request
// is refused with ErrTooLarge without the server keeping more than a few
// bytes of it, and the process allocates a few MiB, where it allocated
// ~1.5 GB.
func TestAmplificationRequestRefused(t *testing.T) {
	ts := startServer(t, ServerConfig{}, exportChat(t))
	attack := amplificationFrame(t)
	const conns, perConn = 4, 4
	sessions := make([]net.Conn, conns)
	for i := range sessions {
		sessions[i] = handshaken(t, ts.addr)
	}
	codes := make(chan string, conns*perConn)
	total, retained := allocated(func() {
		var wg sync.WaitGroup
		for _, conn := range sessions {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for range perConn {
					if _, err := conn.Write(attack); err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				for range perConn {
					resp, err := readResponse(conn)
					if err != nil {
						codes <- "no response: " + err.Error()
						return
					}
					codes <- resp.ErrCode
				}
			}()
		}
		wg.Wait()
	})
	close(codes)
	if len(codes) != conns*perConn {
		t.Errorf("%d of %d attack requests answered", len(codes), conns*perConn)
	}
	for code := range codes {
		if code != ErrTooLarge.Code {
			t.Errorf("attack answered %q, want %q", code, ErrTooLarge.Code)
		}
	}
	t.Logf("16 attack requests: %d KiB allocated, %d KiB retained", total>>10, retained>>10)
	const bound = 32 << 20
	if total > bound {
		t.Errorf("16 attack requests made the process allocate %d MiB, over the bound of %d MiB", total>>20, bound>>20)
	}
	if retained > bound {
		t.Errorf("16 attack requests left the heap %d MiB larger", retained>>20)
	}
	rmitest.WaitFor(t, "the attack's bytes to be released", func() bool { return ts.srv.inflight.inUse() == 0 })
	// The server still serves.
	var n int
	if err := dial(t, ts.addr, DialConfig{}).Invoke(ctxT(t), "svc", "Size", make([]byte, 10), &n); err != nil || n != 10 {
		t.Fatalf("after the attack: %d %v", n, err)
	}
}

// TestTrickledRequestCutOff sends a request one byte a second (on the
// server's mock clock): its connection is closed RequestTimeout after the
// request's frame header, though no byte is ever late enough to count as
// a stall.
func TestTrickledRequestCutOff(t *testing.T) {
	mock := clocktest.New()
	ts := startServer(t, ServerConfig{Clock: mock}, nil)
	req := frame(t, 1, &Request{Object: "svc", Method: "Echo", Timeout: int64(time.Hour), Args: mustMarshal(t, EchoArgs{S: "slow"})})
	st := handshaken(t, ts.addr)
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, st)
		close(closed)
	}()
	isClosed := func() bool {
		select {
		case <-closed:
			return true
		default:
			return false
		}
	}
	total, _ := allocated(func() {
		if _, err := st.Write(req[:frameHeaderLen]); err != nil {
			t.Fatal(err)
		}
		rmitest.WaitFor(t, "the server to read the frame header", func() bool { return ts.srv.inflight.inUse() > 0 })
		elapsed := time.Duration(0)
		for i := frameHeaderLen; elapsed < DefaultRequestTimeout-time.Second; i++ {
			mock.Add(time.Second)
			elapsed += time.Second
			if _, err := st.Write(req[i : i+1]); err != nil {
				t.Fatalf("connection closed after %v, before the request timeout: %v", elapsed, err)
			}
		}
		if isClosed() {
			t.Fatalf("connection closed after %v, before the request timeout", elapsed)
		}
		mock.Add(time.Second)
		rmitest.WaitFor(t, "the trickled request's connection to be closed", isClosed)
	})
	if total > 4<<20 {
		t.Errorf("a trickled request made the process allocate %d KiB", total>>10)
	}
	rmitest.WaitFor(t, "the request's bytes to be released", func() bool { return ts.srv.inflight.inUse() == 0 })
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientRequestCapBelowClusterCap(t *testing.T) {
	secret := []byte("cluster secret")
	ts := startServer(t, ServerConfig{ClusterSecret: secret, Limits: Limits{MaxClientRequestBytes: 4096}}, nil)
	var n int
	client := dial(t, ts.addr, DialConfig{})
	if err := client.Invoke(ctxT(t), "svc", "Size", make([]byte, 8192), &n); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("8 KiB from a client, over its 4 KiB cap: %v", err)
	}
	cluster := dial(t, ts.addr, DialConfig{ClusterSecret: secret})
	if err := cluster.Invoke(ctxT(t), "svc", "Size", make([]byte, 8192), &n); err != nil || n != 8192 {
		t.Fatalf("8 KiB from a cluster peer: %d %v", n, err)
	}
}

func TestArgLimitsCheckedBeforeAndAfterDecoding(t *testing.T) {
	tab := NewTable(quietLog())
	exportChat(t)(tab)
	inv := Local{Table: tab}
	have := func(n, keyLen int) map[string]uint64 {
		m := map[string]uint64{}
		for i := range n {
			m[fmt.Sprintf("%0*d", keyLen, i)] = 1
		}
		return m
	}
	for _, tc := range []struct {
		name string
		args syncArgs
		want error
		why  string // in the error
	}{
		{"within limits", syncArgs{Token: "t", Have: have(256, 32)}, errNotAttached, ""},
		{"over CheckLimits", syncArgs{Token: "t", Have: have(257, 4)}, ErrTooLarge, "at most 256"},
		{"over the Len cap", syncArgs{Token: "t", Have: have(1025, 4)}, ErrTooLarge, "1025 entries"},
		{"over the Bytes cap", syncArgs{Token: "t", Have: have(250, 600)}, ErrTooLarge, "over the method's cap"},
	} {
		err := inv.Invoke(ctxT(t), "chat", "Sync", tc.args, nil)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: got %v, want %v (%s)", tc.name, err, tc.want, tc.why)
		}
	}
}

// TestTooLargeAnsweredWithMethodsError checks that a request over the
// method's cap, or over the transport's, is answered with the error its
// method declares, and that the caller carries on.
func TestTooLargeAnsweredWithMethodsError(t *testing.T) {
	ts := startServer(t, ServerConfig{Limits: Limits{MaxClientRequestBytes: 64 << 10}}, exportChat(t))
	c := dial(t, ts.addr, DialConfig{})
	for _, size := range []int{32 << 10, 1 << 20} { // over the method's cap; over the transport's
		err := c.Invoke(ctxT(t), "chat", "Post", postArgs{Text: strings.Repeat("x", size)}, nil)
		if !errors.Is(err, errTextTooLarge) {
			t.Errorf("post of %d KiB: %v, want %v", size>>10, err, errTextTooLarge)
		}
		if err := c.Invoke(ctxT(t), "chat", "Post", postArgs{Text: "x"}, nil); !errors.Is(err, errNotAttached) {
			t.Errorf("a small post after one of %d KiB: %v", size>>10, err)
		}
	}
}

// TestConnBudgetRefusesWithErrBusy fills one client connection's budget
// with blocked calls: its next call is refused with ErrBusy, while another
// connection is served.
func TestConnBudgetRefusesWithErrBusy(t *testing.T) {
	ts := startServer(t, ServerConfig{Limits: Limits{MaxClientConnBytes: 2*requestOverhead + 1024}}, nil)
	greedy := dial(t, ts.addr, DialConfig{})
	blocked := make(chan error, 2)
	for range 2 {
		go func() { blocked <- greedy.Invoke(ctxT(t), "svc", "Block", EchoArgs{}, nil) }()
		waitChan(t, "Block to start", ts.svc.started)
	}
	err := greedy.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("call over the connection's budget: %v", err)
	}
	var out EchoArgs
	if err := dial(t, ts.addr, DialConfig{}).Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("another connection: %+v %v", out, err)
	}
	close(ts.svc.release)
	for range 2 {
		waitChan(t, "the blocked calls to end", blocked)
	}
	rmitest.WaitFor(t, "the budget to be released", func() bool { return ts.srv.inflight.inUse() == 0 })
	if err := greedy.Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("after the budget was released: %+v %v", out, err)
	}
}

// TestServerBudgetRefusesWithErrBusy fills the whole server's budget from
// one connection: a call on another is refused with ErrBusy, and served
// once the budget is released.
func TestServerBudgetRefusesWithErrBusy(t *testing.T) {
	ts := startServer(t, ServerConfig{Limits: Limits{MaxInflightBytes: 2*requestOverhead + 1024}}, nil)
	greedy := dial(t, ts.addr, DialConfig{})
	blocked := make(chan error, 2)
	for range 2 {
		go func() { blocked <- greedy.Invoke(ctxT(t), "svc", "Block", EchoArgs{}, nil) }()
		waitChan(t, "Block to start", ts.svc.started)
	}
	other := dial(t, ts.addr, DialConfig{})
	if err := other.Invoke(ctxT(t), "svc", "Echo", EchoArgs{}, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("call over the server's budget: %v", err)
	}
	close(ts.svc.release)
	for range 2 {
		if err := waitChan(t, "the blocked calls to end", blocked); err != nil {
			t.Fatalf("blocked call on the other connection: %v", err)
		}
	}
	rmitest.WaitFor(t, "the budget to be released", func() bool { return ts.srv.inflight.inUse() == 0 })
	var out EchoArgs
	if err := other.Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("after the budget was released: %+v %v", out, err)
	}
}

// fillFrom starts n Block calls with arg spread over conns, one at a
// time, and returns how many run (the others must be refused with
// ErrBusy) and the channel their results will come on once
// ts.svc.release is closed.
func fillFrom(t *testing.T, ts *testServer, conns []*Client, n int, arg EchoArgs) (running int, results chan error) {
	t.Helper()
	results = make(chan error, n)
	for i := range n {
		go func() { results <- conns[i%len(conns)].Invoke(ctxT(t), "svc", "Block", arg, nil) }()
		select {
		case <-ts.svc.started:
			running++
		case err := <-results:
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("Block refused with %v, want ErrBusy", err)
			}
		case <-time.After(waitBound):
			t.Fatal("timed out waiting for Block to start or be refused")
		}
	}
	return running, results
}

// A request is charged the buffer its body is read into, which is its
// size rounded up to a power of two (bodyCap), not its size: three calls
// whose bodies of about 4.6 KiB take 8 KiB buffers do not fit in a budget
// their sizes alone would fit in.
func TestBudgetChargesTheBodysBuffer(t *testing.T) {
	const budget = 40 << 10 // 3 x (4.6 KiB + overhead) fit, 3 x (8 KiB + overhead) do not
	ts := startServer(t, ServerConfig{Limits: Limits{MaxClientConnBytes: budget}}, nil)
	c := dial(t, ts.addr, DialConfig{})
	arg := EchoArgs{S: strings.Repeat("x", 4500)}
	if n := len(mustMarshal(t, arg)); 3*(n+requestOverhead) > budget || bodyCap(n+200) != 8<<10 {
		t.Fatalf("the test's sizes are off: an argument of %d bytes", n)
	}
	running, results := fillFrom(t, ts, []*Client{c}, 3, arg)
	if running != 2 {
		t.Fatalf("%d calls of 4.6 KiB run at once in a budget of %d bytes, want 2", running, budget)
	}
	close(ts.svc.release)
	for range running {
		waitChan(t, "the blocked calls to end", results)
	}
}

// TestAddrBudgetSharedByConns: the connections of one address share one
// budget, so opening more connections gets an address no more bytes in
// flight; a cluster peer from that address is not charged to it.
func TestAddrBudgetSharedByConns(t *testing.T) {
	secret := []byte("cluster secret")
	ts := startServer(t, ServerConfig{ClusterSecret: secret, Limits: Limits{MaxAddrBytes: 2*requestOverhead + 1024}}, nil)
	conns := []*Client{dial(t, ts.addr, DialConfig{}), dial(t, ts.addr, DialConfig{}), dial(t, ts.addr, DialConfig{})}
	running, results := fillFrom(t, ts, conns, 3, EchoArgs{})
	if running != 2 {
		t.Fatalf("%d calls from one address run at once over 3 connections, want its budget's 2", running)
	}
	var out EchoArgs
	if err := dial(t, ts.addr, DialConfig{ClusterSecret: secret}).Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("a cluster peer on the full address: %+v %v", out, err)
	}
	close(ts.svc.release)
	for range running {
		waitChan(t, "the blocked calls to end", results)
	}
}

// TestClientsCannotStarveCluster: clients filling all the bytes they may
// hold in flight leave the cluster peers' share free, so a cluster call
// is still served.
func TestClientsCannotStarveCluster(t *testing.T) {
	secret := []byte("cluster secret")
	ts := startServer(t, ServerConfig{ClusterSecret: secret, Limits: Limits{
		MaxInflightBytes:       4*requestOverhead + 4096,
		MaxClientInflightBytes: 2*requestOverhead + 1024,
	}}, nil)
	clients := []*Client{dial(t, ts.addr, DialConfig{}), dial(t, ts.addr, DialConfig{})}
	running, results := fillFrom(t, ts, clients, 4, EchoArgs{})
	var out EchoArgs
	if err := dial(t, ts.addr, DialConfig{ClusterSecret: secret}).Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("a cluster peer while clients fill their share: %+v %v", out, err)
	}
	if running != 2 {
		t.Fatalf("%d client calls run at once, want their share's 2", running)
	}
	close(ts.svc.release)
	for range running {
		waitChan(t, "the blocked calls to end", results)
	}
}

// TestRequestsPerConnCapped fills a connection with the requests it may
// have in flight: its next request waits until one is answered, while
// another connection is served.
func TestRequestsPerConnCapped(t *testing.T) {
	ts := startServer(t, ServerConfig{Limits: Limits{MaxRequestsPerConn: 2}}, nil)
	greedy := dial(t, ts.addr, DialConfig{})
	blocked := make(chan error, 2)
	for range 2 {
		go func() { blocked <- greedy.Invoke(ctxT(t), "svc", "Block", EchoArgs{}, nil) }()
		waitChan(t, "Block to start", ts.svc.started)
	}
	third := make(chan error, 1)
	var out EchoArgs
	go func() { third <- greedy.Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out) }()
	var other EchoArgs
	if err := dial(t, ts.addr, DialConfig{}).Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &other); err != nil || other.N != 2 {
		t.Fatalf("another connection: %+v %v", other, err)
	}
	select {
	case err := <-third:
		t.Fatalf("a third request ran with two in flight, the cap: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(ts.svc.release)
	for range 2 {
		waitChan(t, "the blocked calls to end", blocked)
	}
	if err := waitChan(t, "the third call", third); err != nil || out.N != 2 {
		t.Fatalf("the third call, once the others were answered: %+v %v", out, err)
	}
}

// TestTooLargeRequestsKeepTheConnection sends requests over the size cap
// on one connection: each is read, dropped and answered with ErrTooLarge,
// nothing stays charged, and the connection carries the next request.
func TestTooLargeRequestsKeepTheConnection(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxRequestBytes: 4096}, nil)
	conn := handshaken(t, ts.addr)
	_ = conn.SetDeadline(time.Now().Add(waitBound))
	tooLarge := frame(t, 1, &Request{Object: "svc", Method: "Size", Timeout: int64(time.Minute), Args: mustMarshal(t, make([]byte, 8192))})
	for i := range 3 {
		if _, err := conn.Write(tooLarge); err != nil {
			t.Fatal(err)
		}
		if resp, err := readResponse(conn); err != nil || resp.ErrCode != ErrTooLarge.Code {
			t.Fatalf("request %d: %+v %v", i, resp, err)
		}
	}
	rmitest.WaitFor(t, "the refused requests' bytes to be released", func() bool { return ts.srv.inflight.inUse() == 0 })
	if _, err := conn.Write(frame(t, 2, &Request{Object: "svc", Method: "Echo", Timeout: int64(time.Minute), Args: mustMarshal(t, EchoArgs{N: 1})})); err != nil {
		t.Fatal(err)
	}
	if resp, err := readResponse(conn); err != nil || resp.Failed {
		t.Fatalf("a request after the refused ones: %+v %v", resp, err)
	}
}

func TestConnsPerAddrCapped(t *testing.T) {
	ts := startServer(t, ServerConfig{Limits: Limits{MaxConnsPerAddr: 2}}, nil)
	first := dial(t, ts.addr, DialConfig{})
	dial(t, ts.addr, DialConfig{})
	if c, err := Dial(ctxT(t), ts.addr, DialConfig{Logger: quietLog()}); !errors.Is(err, ErrConnect) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("third connection from one address: %v", err)
	}
	_ = first.Close()
	rmitest.WaitFor(t, "the closed connection to be uncounted", func() bool { return ts.srv.numConns() == 1 })
	var out EchoArgs
	if err := dial(t, ts.addr, DialConfig{}).Invoke(ctxT(t), "svc", "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("a connection after one closed: %+v %v", out, err)
	}
}

func TestConnCounter(t *testing.T) {
	c := newConnCounter(3, 2, 1024)
	var budgets []*byteBudget
	for _, host := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.2"} {
		b, err := c.admit(host)
		if err != nil {
			t.Fatalf("admit %s: %v", host, err)
		}
		budgets = append(budgets, b)
	}
	if budgets[0] != budgets[1] || budgets[0] == budgets[2] {
		t.Fatal("the connections of one address do not share one byte budget, or two addresses do")
	}
	if _, err := c.admit("10.0.0.3"); err == nil {
		t.Fatal("a fourth connection was admitted over the total cap of 3")
	}
	c.leave("10.0.0.2")
	if _, err := c.admit("10.0.0.1"); err == nil {
		t.Fatal("a third connection from one address was admitted over its cap of 2")
	}
	if _, err := c.admit("10.0.0.3"); err != nil {
		t.Fatalf("admit after a leave: %v", err)
	}
}
