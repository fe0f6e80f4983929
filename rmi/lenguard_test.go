package rmi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/rpc"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/distchat/distchat/rmi/clocktest"
)

func TestLenGuard(t *testing.T) {
	const max = 1000
	cases := []struct {
		name string
		in   []byte
		want int // index of the refused byte, or len(in)
	}{
		{"a request within the cap", frameBody(t, 1, &Request{Object: "chat", Method: "Post", Args: mustMarshal(t, postArgs{Text: strings.Repeat("x", 500)})}), -1},
		{"every scalar type", mustMarshal(t, []any{nil, true, false, 1, -1, 200, -200, 70000, -70000, 1 << 40, -(1 << 40), 1.5, float32(2.5), "s", []byte("b")}), -1},
		{"fixext and small ext", []byte{0xd4, 1, 2, 0xd8, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0xc7, 2, 5, 'a', 'b', 0x01}, -1},
		{"an ext32 of 808 MB (the fuzzer's find)", []byte{0x82, 0xa3, '0', '0', '0', 0xc9, 0x30, 0x30, 0xd5, 0x80, 0xff}, 9},
		{"an ext16 just over the cap", []byte{0xc8, 0x03, 0xe9, 1}, 2},
		{"an ext16 at the cap", append([]byte{0xc8, 0x03, 0xe8, 1}, make([]byte, 1000)...), -1},
		{"a str32 of 4 GiB", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, 4},
		{"a bin16 over the cap", []byte{0xc5, 0x04, 0x00}, 2},
		{"an array32 of 4 billion", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, 4},
		{"a map16 of 501 pairs", []byte{0xde, 0x01, 0xf5}, 2},
		{"a map16 of 500 pairs", []byte{0xde, 0x01, 0xf4}, -1},
		{"a refused prefix inside a string's payload is just bytes", []byte{0xa5, 0xdb, 0xff, 0xff, 0xff, 0xff}, -1},
	}
	for _, c := range cases {
		want := c.want
		if want < 0 {
			want = len(c.in)
		}
		g := lenGuard{max: max}
		if got := g.feed(c.in); got != want {
			t.Errorf("%s: feed stops at %d, want %d", c.name, got, want)
		}
		// The stream arrives in pieces of any size: byte by byte, the guard
		// must stop at the same byte.
		g = lenGuard{max: max}
		got := len(c.in)
		for i := range c.in {
			if g.feed(c.in[i:i+1]) == 0 {
				got = i
				break
			}
		}
		if got != want {
			t.Errorf("%s, byte by byte: stops at %d, want %d", c.name, got, want)
		}
	}
}

// serveFrames runs a serving conn (a server's end, with lim) on one end
// of a pipe and returns the other end; the conn ends when that end is
// closed, and then closes the returned channel.
func serveFrames(t testing.TB, tab *Table, lim connLimits) (net.Conn, chan struct{}) {
	t.Helper()
	client, server := net.Pipe()
	ended := make(chan struct{})
	c := newConn(server, connConfig{
		clk: lim.clk, log: quietLog(), remote: "pipe", idle: time.Minute,
		serve: newRPCServer(tab), ctx: context.Background(), lim: lim,
		done: func() { close(ended) },
	})
	c.start()
	return client, ended
}

// TestHugeDeclaredLengthAllocatesNothing sends a request whose Request is
// 27 bytes declaring an 808 MB time extension under an unknown field.
// The decoder allocates such an extension's declared length before
// reading it; the server must refuse the request as too large without
// having allocated anything near that.
func TestHugeDeclaredLengthAllocatesNothing(t *testing.T) {
	data := []byte("\x82\xa3000\xdd0000\xdd000M0\xd5000\xc900Հ\xff0")
	tab := NewTable(quietLog())
	exportChat(t)(tab)
	lim := connLimits{
		clk: clocktest.New(), timeout: time.Minute, maxBytes: 16 << 10, maxRequests: 1,
		budgets: budgets{newByteBudget("this connection", 64<<10), newByteBudget("the server", 64<<10)},
	}
	client, ended := serveFrames(t, tab, lim)
	defer client.Close()
	body := append(mustMarshal(t, rpc.Request{ServiceMethod: serviceMethod, Seq: 1}), data...)
	hdr := []byte{frameRequest, 0, 0, 0, byte(len(body))}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() { _, _ = client.Write(append(hdr, body...)) }()
	resp, err := readResponse(client)
	runtime.ReadMemStats(&after)
	if err != nil || resp.ErrCode != ErrTooLarge.Code {
		t.Fatalf("the request was answered %+v (%v), want ErrTooLarge", resp, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Fatalf("reading the request allocated %d MB", n>>20)
	}
	_ = client.Close()
	waitChan(t, "the connection to end", ended)
}

// TestLenGuardPassesWholeRequests runs the guard, with a cap that fits
// each request, over a stream of requests: it must accept every byte.
func TestLenGuardPassesWholeRequests(t *testing.T) {
	var stream bytes.Buffer
	for i, args := range []any{
		syncArgs{Token: "t", Room: "lobby", Have: map[string]uint64{"s1": 3, "s2": 1 << 40}},
		postArgs{Text: strings.Repeat("é", 5000)},
		postArgs{Text: ""},
	} {
		stream.Write(frameBody(t, uint64(i), &Request{Object: "chat", Method: "Sync", Timeout: int64(time.Second), Args: mustMarshal(t, args)}))
	}
	g := lenGuard{max: 11000}
	b, _ := io.ReadAll(&stream)
	if got := g.feed(b); got != len(b) {
		t.Fatalf("the guard refused byte %d of %d", got, len(b))
	}
}

// TestClientRefusesHugeResponse has a made-up server answer a call with a
// response declaring a 1 GiB string: the call fails at once as too large
// and the client allocates nothing near that.
func TestClientRefusesHugeResponse(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := newConn(client, connConfig{clk: clock.New(), log: quietLog(), remote: "pipe", idle: time.Minute})
	c.start()
	defer c.Close()
	go func() {
		// The request, then the response.
		_, _, _ = readFrameHeader(server, new([frameHeaderLen]byte))
		_, _ = io.Copy(io.Discard, server)
	}()
	body := append(mustMarshal(t, rpc.Response{ServiceMethod: serviceMethod, Seq: 0}), 0x81, 0xa1, 'x', 0xc9, 0x40, 0, 0, 0, 0xff)
	hdr := []byte{frameResponse, 0, 0, 0, byte(len(body))}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := &reply{}
	call := c.rc.Go(serviceMethod, &Request{Object: "chat", Method: "Sync"}, r, nil)
	go func() { _, _ = server.Write(append(hdr, body...)) }()
	<-call.Done
	runtime.ReadMemStats(&after)
	if call.Error == nil || !errors.Is(r.decodeErr, ErrTooLarge) {
		t.Fatalf("the call ended with %v (%v), want a response too large", call.Error, r.decodeErr)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Fatalf("reading the response allocated %d MB", n>>20)
	}
}
