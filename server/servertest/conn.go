package servertest

import (
	"context"
	"fmt"
	"sync"

	"github.com/distchat/distchat/rmi"
)

// Dial connects a client to the process at addr: the registry, central or
// a chat server. If callbacks is not nil, its objects are exported on the
// connection: the process reaches them through the caller's rmi.Peer.Back,
// as over a real connection, until the connection ends. Dialing a chat
// server that is down or unreachable fails with rmi.ErrConnect.
//
// Its signature is that of a client.Dialer but for the concrete result.
func (c *Cluster) Dial(ctx context.Context, addr string, callbacks *rmi.Table) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("servertest: dial %s: %w (%w)", addr, rmi.ErrConnect, err)
	}
	k := &Conn{c: c, addr: addr}
	c.mu.Lock()
	switch addr {
	case c.regAddr:
		k.table = c.rtable
	case c.cenAddr:
		k.table = c.ctable
	default:
		if s := c.byAddr[addr]; s.up() {
			k.server, k.table = s, s.table
		}
	}
	if k.table != nil {
		c.conns[k] = true
	}
	c.mu.Unlock()
	if k.table == nil {
		return nil, fmt.Errorf("servertest: dial %s: %w", addr, rmi.ErrConnect)
	}
	var back rmi.Invoker
	if callbacks != nil {
		back = callbackLink{k: k, table: callbacks}
	}
	k.peer = rmi.NewPeer(c.peerIDs.Add(1), "client", false, back)
	return k, nil
}

// Conn is a client's connection to a process of the cluster, made by
// [Cluster.Dial]. Like *rmi.Client it is an rmi.Invoker with Close and
// OnClose. It ends when the client closes it or when its chat server is
// crashed or stopped; a call in flight then fails with rmi.ErrConnLost, as
// its reply is lost.
type Conn struct {
	c      *Cluster
	addr   string
	server *chatServer // nil for the registry and central
	table  *rmi.Table
	peer   *rmi.Peer

	mu     sync.Mutex
	closed bool // closed by the client
	broken bool // ended by its chat server going down
	hooks  []func()
}

// Invoke implements rmi.Invoker.
func (k *Conn) Invoke(ctx context.Context, object, method string, args, reply any) error {
	if err := k.failure(object, method); err != nil {
		return err
	}
	err := rmi.Local{Table: k.table, Peer: k.peer, Clock: k.c.opts.ClientClock, CalleeClock: k.c.opts.Clock}.Invoke(ctx, object, method, args, reply)
	if ferr := k.failure(object, method); ferr != nil {
		return ferr // the connection ended during the call: its reply is lost
	}
	return err
}

// failure returns the error a call on k fails with now, or nil.
func (k *Conn) failure(object, method string) error {
	k.mu.Lock()
	closed, broken := k.closed, k.broken
	k.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("servertest: %s.%s at %s: %w", object, method, k.addr, rmi.ErrClosed)
	case broken:
		return fmt.Errorf("servertest: %s.%s at %s: %w", object, method, k.addr, rmi.ErrConnLost)
	}
	if k.server != nil {
		k.c.mu.Lock()
		unreachable := k.server.unreachable
		k.c.mu.Unlock()
		if unreachable {
			return fmt.Errorf("servertest: %s.%s at %s: unreachable: %w", object, method, k.addr, rmi.ErrConnLost)
		}
	}
	return nil
}

// Close ends the connection; the process sees it end (its rmi.Peer's
// OnClose hooks run), and so do k's own.
func (k *Conn) Close() error {
	k.end(false)
	return nil
}

// OnClose registers f to run when the connection ends, as
// rmi.Client.OnClose does; at once if it has ended.
func (k *Conn) OnClose(f func()) {
	k.mu.Lock()
	if k.closed || k.broken {
		k.mu.Unlock()
		f()
		return
	}
	k.hooks = append(k.hooks, f)
	k.mu.Unlock()
}

// end ends the connection, by the client (broken false) or because its
// chat server went down, and runs the hooks of both ends once.
func (k *Conn) end(broken bool) {
	k.mu.Lock()
	if k.closed || k.broken {
		k.mu.Unlock()
		return
	}
	if broken {
		k.broken = true
	} else {
		k.closed = true
	}
	hooks := k.hooks
	k.hooks = nil
	k.mu.Unlock()
	k.c.mu.Lock()
	delete(k.c.conns, k)
	k.c.mu.Unlock()
	k.peer.Close()
	for _, f := range hooks {
		f()
	}
}

// ended reports whether the connection has ended.
func (k *Conn) ended() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.closed || k.broken
}

// callbackLink is how a process calls back the objects a client exported
// on its connection.
type callbackLink struct {
	k     *Conn
	table *rmi.Table
}

// Invoke implements rmi.Invoker.
func (b callbackLink) Invoke(ctx context.Context, object, method string, args, reply any) error {
	if b.k.ended() {
		return fmt.Errorf("servertest: callback %s.%s: %w", object, method, rmi.ErrConnLost)
	}
	if s := b.k.server; s != nil {
		b.k.c.mu.Lock()
		unreachable := s.unreachable
		b.k.c.mu.Unlock()
		if unreachable {
			return fmt.Errorf("servertest: callback %s.%s from %s: unreachable: %w", object, method, s.name, rmi.ErrConnLost)
		}
	}
	return rmi.Local{Table: b.table, Clock: b.k.c.opts.Clock, CalleeClock: b.k.c.opts.ClientClock}.Invoke(ctx, object, method, args, reply)
}
