package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"sync/atomic"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// The --netrpc mode measures the floor under rmi: the design card's own
// stack with nothing of rmi's on it, Go's net/rpc with go-msgpack's GoRpc
// codec over plain TCP, a bufio.Reader under the codec as rmi has. No
// registry, frames, deadlines, limits or worker pool: what an empty call
// costs before rmi adds any of them.

// netrpcPinger is the net/rpc form of the Pinger.
type netrpcPinger struct{ calls *atomic.Int64 }

// Ping does nothing but count the call.
func (p netrpcPinger) Ping(_ PingArgs, _ *PingArgs) error {
	p.calls.Add(1)
	return nil
}

// bufConn is a connection read through a bufio.Reader.
type bufConn struct {
	io.Reader
	io.WriteCloser
}

func newBufConn(c net.Conn) bufConn { return bufConn{bufio.NewReader(c), c} }

// serveNetrpc serves a netrpcPinger counting into calls on l until l is
// closed.
func serveNetrpc(l net.Listener, calls *atomic.Int64) error {
	s := rpc.NewServer()
	if err := s.RegisterName(objectName, netrpcPinger{calls}); err != nil {
		return err
	}
	h := &codec.MsgpackHandle{}
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go s.ServeCodec(codec.GoRpc.ServerCodec(newBufConn(c), h))
	}
}

// dialNetrpc connects to a netrpc server at addr and returns the client
// and its Ping.
func dialNetrpc(ctx context.Context, addr string) (*rpc.Client, func(context.Context) error, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	cl := rpc.NewClientWithCodec(codec.GoRpc.ClientCodec(newBufConn(c), &codec.MsgpackHandle{}))
	ping := func(context.Context) error {
		if err := cl.Call(objectName+".Ping", PingArgs{}, &PingArgs{}); err != nil {
			return fmt.Errorf("net/rpc ping: %w", err)
		}
		return nil
	}
	return cl, ping, nil
}
