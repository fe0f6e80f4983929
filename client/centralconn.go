package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
)

// This file holds the client's connection to the central servers:
// Config.Central names one or several (of one cluster, sharing one
// state); calls go to one of them through an rmi.Failover, which moves to
// the next when the current one cannot be reached. A session is valid at
// any of them. The calls made on it are in central.go.

// centralTargets returns the registry addresses of Config.Central and the
// name to look up.
func centralTargets(s string) (addrs []string, name string, err error) {
	addrs, name, err = rmi.ParseAddrList(s)
	if err != nil {
		return nil, "", fmt.Errorf("central server address: %w", err)
	}
	if name == "" {
		name = centralapi.ObjectName
	}
	return addrs, name, nil
}

// centralSet is the client's connection to the central servers: a
// Failover over one centralEndpoint per address.
type centralSet struct {
	inv  *rmi.Failover
	name string                      // the registry name of the central server
	ends map[string]*centralEndpoint // by registry address
}

// newCentralSet returns the central servers of cfg.Central, not connected
// yet. With several addresses, onLost (if not nil) hears of a connection
// to one that closed by itself, and onMove of each move to another; with
// one address there is nowhere to move and neither is called.
func newCentralSet(cfg Config, onLost func(), onMove func(from, to string, cause error)) (*centralSet, error) {
	addrs, name, err := centralTargets(cfg.Central)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 1 {
		onLost, onMove = nil, nil
	}
	s := &centralSet{name: name, ends: map[string]*centralEndpoint{}}
	s.inv, err = rmi.NewFailover(addrs, rmi.FailoverConfig{
		Connect: func(addr string) rmi.Invoker {
			e := &centralEndpoint{cfg: cfg, addr: addr, name: name, onLost: onLost, sem: make(chan struct{}, 1)}
			s.ends[addr] = e
			return e
		},
		OnMove: onMove,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// stub returns the central server's stub.
func (s *centralSet) stub() centralapi.Stub { return centralapi.Stub{Inv: s.inv} }

// host returns the host of the central server in use: the host to put in
// a chat server address that names none (see fixAddr).
func (s *centralSet) host() string { return s.ends[s.inv.Current()].host() }

// Close closes the connections.
func (s *centralSet) Close() error { return s.inv.Close() }

// connected reports whether a connection to any central server is open.
func (s *centralSet) connected() bool {
	for _, e := range s.ends {
		e.mu.Lock()
		open := e.link != nil
		e.mu.Unlock()
		if open {
			return true
		}
	}
	return false
}

// centralLink is a connection to the central server.
type centralLink struct {
	conn Conn
	inv  rmi.Invoker // conn, calling the looked-up object name
	host string      // host part of the address dialed
}

// centralEndpoint is the central server of one registry address: it
// connects (looking the central server up in the registry there) at the
// first call, and again at the call after the connection was lost.
type centralEndpoint struct {
	cfg    Config
	addr   string // the registry's address
	name   string // the name to look up there
	onLost func() // nil: connections that close are noticed at the next call

	sem    chan struct{} // held (one slot) while a caller connects
	mu     sync.Mutex
	link   *centralLink // nil before the first call and after a loss
	closed bool
	busy   int          // calls in flight on link
	idle   *clock.Timer // closes link once it has been idle CentralIdle
}

// Invoke implements rmi.Invoker.
func (e *centralEndpoint) Invoke(ctx context.Context, object, method string, args, reply any) error {
	for attempt := 0; ; attempt++ {
		l, fresh, err := e.get(ctx)
		if err != nil {
			return err
		}
		e.begin()
		err = l.inv.Invoke(ctx, object, method, args, reply)
		e.end(l)
		if !rmi.IsUnreachable(err) {
			return err
		}
		e.drop(l)
		// ErrConnect means the call was not sent: if the connection had
		// died before it, one fresh connection is safe.
		if attempt == 0 && !fresh && errors.Is(err, rmi.ErrConnect) {
			continue
		}
		return err
	}
}

// get returns the connection, connecting if there is none; fresh reports
// that it was made for this call.
func (e *centralEndpoint) get(ctx context.Context) (l *centralLink, fresh bool, err error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("%w: waiting for the connection to central server at %s: %w", rmi.ErrConnect, e.addr, ctx.Err())
	}
	defer func() { <-e.sem }()
	e.mu.Lock()
	l, closed := e.link, e.closed
	e.mu.Unlock()
	switch {
	case closed:
		return nil, false, rmi.ErrClosed
	case l != nil:
		return l, false, nil
	}
	if l, err = dialCentral(ctx, e.cfg, e.addr, e.name); err != nil {
		return nil, false, err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = l.conn.Close()
		return nil, false, rmi.ErrClosed
	}
	e.link = l
	e.mu.Unlock()
	if oc, ok := l.conn.(interface{ OnClose(func()) }); ok && e.onLost != nil {
		oc.OnClose(func() { e.lost(l) })
	}
	return l, true, nil
}

// begin counts a call starting on the connection.
func (e *centralEndpoint) begin() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.busy++
	if e.idle != nil {
		e.idle.Stop()
		e.idle = nil
	}
}

// end counts a call on l ending. Once no call is left, l is closed if no
// other starts within cfg.CentralIdle: an idle client holds no connection
// to central, which needs it only for logins and room changes (a
// connection costs central some tens of KB), and the next call connects
// again.
func (e *centralEndpoint) end(l *centralLink) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.busy--
	if e.busy > 0 || e.link != l || e.closed || e.cfg.CentralIdle < 0 {
		return
	}
	var t *clock.Timer
	t = e.cfg.Clock.AfterFunc(e.cfg.CentralIdle, func() {
		e.mu.Lock()
		if e.idle != t || e.link != l {
			e.mu.Unlock()
			return
		}
		e.idle, e.link = nil, nil // forgotten first: not reported as lost
		e.mu.Unlock()
		_ = l.conn.Close()
	})
	e.idle = t
}

// lost is the OnClose hook of connection l: unless the client closed it
// on purpose, it is forgotten and onLost is told.
func (e *centralEndpoint) lost(l *centralLink) {
	e.mu.Lock()
	mine := e.link == l && !e.closed
	if mine {
		e.link = nil
	}
	e.mu.Unlock()
	if mine {
		e.onLost()
	}
}

// drop forgets connection l, which failed, and closes it.
func (e *centralEndpoint) drop(l *centralLink) {
	e.mu.Lock()
	if e.link == l {
		e.link = nil
	}
	e.mu.Unlock()
	_ = l.conn.Close()
}

// host returns the host of the central server's address (after the
// registry's redirect), or of the registry's before the first connection.
func (e *centralEndpoint) host() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.link != nil {
		return e.link.host
	}
	return hostOf(e.addr)
}

// Close closes the connection; later calls fail with rmi.ErrClosed.
func (e *centralEndpoint) Close() error {
	e.mu.Lock()
	l := e.link
	e.link, e.closed = nil, true
	if e.idle != nil {
		e.idle.Stop()
		e.idle = nil
	}
	e.mu.Unlock()
	if l != nil {
		return l.conn.Close()
	}
	return nil
}

// fixAddr replaces an unspecified host in addr (":7000", "0.0.0.0:7000")
// with host, the central server's host: a server that listens on all
// interfaces may advertise such an address.
func fixAddr(addr, host string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return addr
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort(host, p)
	}
	return addr
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// aliasInvoker sends calls for object from to object to.
type aliasInvoker struct {
	inv      rmi.Invoker
	from, to string
}

// Invoke implements rmi.Invoker.
func (a aliasInvoker) Invoke(ctx context.Context, object, method string, args, reply any) error {
	if object == a.from {
		object = a.to
	}
	return a.inv.Invoke(ctx, object, method, args, reply)
}

// dialCentral connects to the registry at addr, looks up the central
// server (name) and, if it lives elsewhere, connects there. Failing to
// reach the central server is an rmi.ErrConnect: no call was sent.
func dialCentral(ctx context.Context, cfg Config, addr, name string) (*centralLink, error) {
	conn, err := cfg.Dial(ctx, addr, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to central server at %s: %w", addr, err)
	}
	ref, err := rmi.RegistryStub{Inv: conn}.Lookup(ctx, name)
	if err != nil {
		_ = conn.Close()
		if rmi.IsUnreachable(err) && !errors.Is(err, rmi.ErrConnect) {
			err = fmt.Errorf("%w: %w", rmi.ErrConnect, err)
		}
		return nil, fmt.Errorf("look up %s in the registry at %s: %w", name, addr, err)
	}
	if ref.Addr != "" && ref.Addr != addr {
		if other := fixAddr(ref.Addr, hostOf(addr)); other != addr {
			_ = conn.Close()
			if conn, err = cfg.Dial(ctx, other, nil); err != nil {
				return nil, fmt.Errorf("connect to central server at %s (from the registry at %s): %w", other, addr, err)
			}
			addr = other
		}
	}
	l := &centralLink{conn: conn, inv: conn, host: hostOf(addr)}
	if ref.Object != "" && ref.Object != centralapi.ObjectName {
		l.inv = aliasInvoker{inv: conn, from: centralapi.ObjectName, to: ref.Object}
	}
	return l, nil
}

// CentralConnected reports whether the client holds a connection to a
// central server: from its first call there until the connection has
// been idle for Config.CentralIdle.
func (c *Client) CentralConnected() bool {
	c.mu.Lock()
	cs := c.central
	c.mu.Unlock()
	return cs != nil && cs.connected()
}
