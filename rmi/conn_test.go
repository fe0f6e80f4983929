package rmi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/distchat/distchat/rmi/rmitest"
)

// TestOldProtocolPeerIsTold: a client of protocol version 1 is told, in
// the server's ERR line, which version the server speaks.
func TestOldProtocolPeerIsTold(t *testing.T) {
	ts := startServer(t, ServerConfig{}, nil)
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("distchat-rmi/1\n\x00" + strings.Repeat("n", nonceLen))); err != nil {
		t.Fatal(err)
	}
	line := string(readUntilClosed(t, conn))
	if !strings.HasPrefix(line, "ERR ") || !strings.Contains(line, "distchat-rmi/1") || !strings.Contains(line, strings.TrimSpace(protoMagic)) {
		t.Fatalf("a version 1 client was told %q", line)
	}
}

// TestOldProtocolServerIsNamed: a client that meets a server of another
// version fails its handshake with an error naming both versions.
func TestOldProtocolServerIsNamed(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		hello := make([]byte, len(protoMagic)+1+nonceLen)
		if _, err := server.Read(hello); err != nil {
			return
		}
		_, _ = server.Write([]byte("distchat-rmi/1\n\x00" + strings.Repeat("n", nonceLen)))
	}()
	_, err := clientHandshake(client, nil, false, nil)
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "distchat-rmi/1") || !strings.Contains(err.Error(), strings.TrimSpace(protoMagic)) {
		t.Fatalf("handshake with a version 1 server: %v", err)
	}
}

// TestResponseOverCapEndsConn: a response frame declaring more than the
// connection's cap ends the connection before a byte of its body is
// read, and the call in flight fails with ErrConnLost.
func TestResponseOverCapEndsConn(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := newConn(client, connConfig{clk: clock.New(), log: quietLog(), remote: "pipe", idle: time.Minute, maxResponse: 100})
	c.start()
	defer c.Close()
	go func() {
		var hdr [frameHeaderLen]byte
		if _, n, err := readFrameHeader(server, &hdr); err == nil {
			_, _ = io.ReadFull(server, make([]byte, n))
		}
		_, _ = server.Write([]byte{frameResponse, 0, 0, 0, 101})
	}()
	_, err := c.RoundTrip(ctxT(t), &Request{Object: "svc", Method: "Echo"})
	if !errors.Is(err, ErrConnLost) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a call answered over the cap: %v", err)
	}
	rmitest.WaitFor(t, "the connection to end", c.isDone)
}

// TestClientResponseCapAtServer: a client's answer to a callback may be no
// larger than its requests may be; a larger one ends its connection.
func TestClientResponseCapAtServer(t *testing.T) {
	ts := startServer(t, ServerConfig{Limits: Limits{MaxClientRequestBytes: 1024}}, nil)
	conn := handshakenWith(t, ts.addr, true)
	_ = conn.SetDeadline(time.Now().Add(waitBound))
	if _, err := conn.Write(frame(t, 1, &Request{Object: "svc", Method: "CallBack", Timeout: int64(time.Minute), Args: mustMarshal(t, NotifyArgs{Text: "x"})})); err != nil {
		t.Fatal(err)
	}
	var hdr [frameHeaderLen]byte
	kind, n, err := readFrameHeader(conn, &hdr)
	if err != nil || kind != frameRequest {
		t.Fatalf("waiting for the callback: kind %d, %v", kind, err)
	}
	if _, err := io.ReadFull(conn, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte{0xc0}, 2048)
	answer := append([]byte{frameResponse, 0, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	_, _ = conn.Write(answer)
	readUntilClosed(t, conn)
}

// TestBlockedWriteReleasedAtDeadline: the other end never reads, so a
// call's write blocks; the call returns at its deadline, and so does a
// second call waiting to write behind it (or it finds the connection
// ended: the first had written part of its frame).
func TestBlockedWriteReleasedAtDeadline(t *testing.T) {
	client, server := net.Pipe() // a write blocks until the other end reads
	defer server.Close()
	c := newConn(client, connConfig{clk: clock.New(), log: quietLog(), remote: "pipe", idle: time.Hour})
	c.start()
	defer c.Close()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := c.RoundTrip(ctx, &Request{Object: "svc", Method: "Echo"})
			errs <- err
		}()
	}
	timedOut := 0
	for range 2 {
		// The one that waited to write may find the connection ended.
		switch err := waitChan(t, "a blocked call to return", errs); {
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		case !errors.Is(err, ErrConnect):
			t.Fatalf("a blocked call: %v", err)
		}
	}
	if timedOut == 0 {
		t.Fatal("no call timed out")
	}
	rmitest.WaitFor(t, "the connection to end", c.isDone)
}
