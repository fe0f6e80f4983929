package rmi

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/distchat/distchat/rmi/clocktest"
)

// Fuzz targets for every decoder of untrusted input in this package: the
// handshake (both sides), the frames a peer sends on a connection, and Table.Handle.
// Run one with: go test -run '^$' -fuzz '^FuzzConnFrames$' -fuzztime 10s ./rmi

// FuzzServerHandshake feeds arbitrary bytes to the server side of the
// handshake: it must fail or succeed without panicking, and never grant
// cluster rights (the random nonce makes a valid proof unguessable).
func FuzzServerHandshake(f *testing.F) {
	f.Add([]byte(protoMagic+"\x00"+strings.Repeat("n", nonceLen)), false)
	f.Add([]byte(protoMagic+"\x03"+strings.Repeat("n", nonceLen)+strings.Repeat("m", macLen)), true)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, withSecret bool) {
		var secret []byte
		if withSecret {
			secret = []byte("cluster secret")
		}
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(data), io.Discard}
		res, err := serverHandshake(rw, secret, nil, false)
		if err == nil && res.cluster {
			t.Fatalf("handshake of %q granted cluster rights", data)
		}
	})
}

// FuzzClientHandshake feeds arbitrary bytes, as a server's answer, to the
// client side of the handshake: it must not panic, and with a secret it
// must never accept a server that did not prove it.
func FuzzClientHandshake(f *testing.F) {
	f.Add([]byte(protoMagic+"\x00"+strings.Repeat("n", nonceLen)+"OK\n"), false)
	f.Add([]byte(protoMagic+"\x02"+strings.Repeat("n", nonceLen)+strings.Repeat("m", macLen)+"OK\n"), true)
	f.Add([]byte("ERR not an rmi peer\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, withSecret bool) {
		var secret []byte
		if withSecret {
			secret = []byte("cluster secret")
		}
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(data), io.Discard}
		if _, err := clientHandshake(rw, secret, false, nil); err == nil && withSecret {
			t.Fatalf("client accepted %q as proof of the secret", data)
		}
	})
}

// FuzzConnFrames feeds arbitrary bytes, as what a peer sends after the
// handshake, to the serving end of a connection over a table with a
// chat-like object: nothing may panic or hang (whatever lengths the frames
// declare, the bytes end), and once the connection has ended every byte
// charged to the budgets must have been released.
func FuzzConnFrames(f *testing.F) {
	f.Add(frame(f, 1, &Request{Object: "chat", Method: "Sync", Timeout: int64(time.Second),
		Args: mustMarshal(f, syncArgs{Token: "t", Room: "lobby", Have: map[string]uint64{"s1": 3}})}))
	f.Add(append(frame(f, 1, &Request{Object: "chat", Method: "Post", Args: mustMarshal(f, postArgs{Text: "hi"})}),
		frame(f, 2, &Request{Object: "chat", Method: "Post", Args: mustMarshal(f, postArgs{Text: strings.Repeat("x", 20<<10)})})...))
	f.Add(frame(f, 7, &Request{Object: "chat", Method: "Nope", Args: []byte{0xc0}}))
	f.Add(append(append(pingFrame[:], pongFrame[:]...), frameResponse, 0, 0, 0, 3, 0x82, 0xa1, 'x'))
	f.Add([]byte{frameRequest, 0xff, 0xff, 0xff, 0xff, 0x82})
	f.Add([]byte{frameResponse, 0x04, 0, 0, 0})
	f.Add([]byte{9, 0, 0, 0, 0})
	tab := NewTable(quietLog())
	exportChat(f)(tab)
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := connLimits{
			clk:         clocktest.New(), // no timer fires: the connection ends by EOF
			timeout:     time.Minute,
			maxBytes:    16 << 10,
			maxRequests: 2,
			budgets:     budgets{newByteBudget("this connection", 64<<10), newByteBudget("the server", 64<<10)},
		}
		client, ended := serveFrames(t, tab, lim)
		go func() {
			_, _ = client.Write(data)
			_ = client.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		select {
		case <-ended:
		case <-time.After(waitBound):
			buf := make([]byte, 1<<20)
			t.Fatalf("the bytes %x were not served to their end:\n%s", data, buf[:runtime.Stack(buf, true)])
		}
		if n := lim.budgets[0].inUse(); n != 0 {
			t.Fatalf("%d bytes still charged to the connection's budget", n)
		}
		if n := lim.budgets[1].inUse(); n != 0 {
			t.Fatalf("%d bytes still charged to the server's budget", n)
		}
	})
}

// FuzzTableHandle hands arbitrary arguments to Table.Handle for each
// method of a chat-like object: decoding and the limits must refuse what
// they cannot take without panicking.
func FuzzTableHandle(f *testing.F) {
	f.Add("Sync", mustMarshal(f, syncArgs{Token: "t", Have: map[string]uint64{"s1": 1}}))
	f.Add("Post", mustMarshal(f, postArgs{Token: "t", Text: "hello"}))
	f.Add("Sync", []byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	tab := NewTable(quietLog())
	exportChat(f)(tab)
	f.Fuzz(func(t *testing.T, method string, args []byte) {
		resp := tab.Handle(context.Background(), clock.New(), DefaultMaxClientRequestBytes,
			&Request{Object: "chat", Method: method, Timeout: int64(time.Minute), Args: args})
		if resp.ErrCode == ErrPanic.Code {
			t.Fatalf("%s(%x) panicked: %s", method, args, resp.ErrMsg)
		}
	})
}
