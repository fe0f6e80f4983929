package client

import (
	"context"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/rmi"
)

// Conn is a connection to a remote process: an [rmi.Invoker] that can be
// closed. [*rmi.Client] is one. If a Conn also has a method
// OnClose(func()) (as *rmi.Client does), the client registers a hook
// there to notice at once that its chat server connection was lost,
// rather than at the next ping.
type Conn interface {
	rmi.Invoker
	Close() error
}

// Dialer opens a connection to addr. If callbacks is not nil, its objects
// are exported over the new connection, so the remote side can call them
// back (rmi.Peer.Back) even when this process accepts no connections.
type Dialer func(ctx context.Context, addr string, callbacks *rmi.Table) (Conn, error)

// TCPDialer returns a Dialer that connects with [rmi.Dial] using cfg, with
// cfg.Callbacks set to each call's callbacks table.
func TCPDialer(cfg rmi.DialConfig) Dialer {
	return func(ctx context.Context, addr string, callbacks *rmi.Table) (Conn, error) {
		dc := cfg
		dc.Callbacks = callbacks
		c, err := rmi.Dial(ctx, addr, dc)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// boundedConn gives every call made without a deadline one of d, so a
// lost or unanswered call is noticed (and failed over) in bounded time.
type boundedConn struct {
	Conn
	clk clock.Clock
	d   time.Duration
}

// Invoke implements rmi.Invoker.
func (b *boundedConn) Invoke(ctx context.Context, object, method string, args, reply any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = b.clk.WithTimeout(ctx, b.d)
		defer cancel()
	}
	return b.Conn.Invoke(ctx, object, method, args, reply)
}

// OnClose passes the hook to the underlying connection, if it has them.
func (b *boundedConn) OnClose(f func()) {
	if oc, ok := b.Conn.(interface{ OnClose(func()) }); ok {
		oc.OnClose(f)
	}
}
