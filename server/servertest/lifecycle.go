package servertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/server/chatapi"
)

// Start opens chat server name on its data directory (keeping what it
// stored before a Crash or Stop), serves it and registers it with
// central, which may then place users there. New starts every server.
func (c *Cluster) Start(name string) {
	c.t.Helper()
	c.mu.Lock()
	s := c.mustServer(name)
	running, addr := s.srv != nil, s.addr
	c.mu.Unlock()
	if running {
		c.t.Fatalf("servertest: %s is already running", name)
	}
	var l net.Listener
	if c.opts.TCP {
		// The same port as before, if it had one: the address central
		// and the other servers know stays valid.
		var err error
		if l, err = listenAgain(addr); err != nil {
			c.t.Fatalf("servertest: %s: listen: %v", name, err)
		}
		addr = l.Addr().String()
	}
	srv, err := server.Open(server.Config{
		Name: name, Addr: addr, Dir: c.dir + "/" + name,
		Clock: c.opts.Clock, ClockMode: c.opts.ClockMode, Settled: c.opts.Settled,
		Central:      centralapi.ClusterStub{Inv: &link{c: c, from: name}},
		Connect:      func(to string) rmi.Invoker { return &link{c: c, from: name, to: to} },
		Logger:       c.log,
		WriteFault:   func() error { return c.writeFault(name) },
		VoiceNetwork: c.opts.Voice, VoiceMax: c.opts.VoiceMax, VoiceRing: c.opts.VoiceRing,
	})
	if err != nil {
		c.t.Fatalf("servertest: open %s: %v", name, err)
	}
	table := rmi.NewTable(c.log)
	if err := srv.Export(table); err != nil {
		c.t.Fatalf("servertest: export %s: %v", name, err)
	}
	var rs *rmi.Server
	if l != nil {
		rs = rmi.NewServer(table, rmi.ServerConfig{Clock: c.opts.Clock, Logger: c.log})
		go func() { _ = rs.Serve(l) }()
	}
	c.mu.Lock()
	s.srv, s.table, s.tcp, s.listener, s.addr = srv, table, rs, l, addr
	c.byAddr[addr] = s
	c.mu.Unlock()
	if err := srv.Start(context.Background()); err != nil {
		c.t.Fatalf("servertest: start %s: %v", name, err)
	}
}

// Crash stops chat server name abruptly, as kill -9 would: it stops
// answering, its clients' connections break (their OnClose hooks run) and
// it is closed. Central is not told: it keeps the server as live until
// its lease (LeaseTTL) runs out. What the server acknowledged is durable
// and back after Start.
func (c *Cluster) Crash(name string) {
	c.t.Helper()
	c.mu.Lock()
	s := c.mustServer(name)
	c.mu.Unlock()
	c.takeDown(s)
}

// Stop stops chat server name cleanly, as SIGTERM would: it is closed and
// unregistered at central, so central places no one there, and then its
// clients' connections end.
func (c *Cluster) Stop(name string) {
	c.t.Helper()
	c.mu.Lock()
	s := c.mustServer(name)
	c.mu.Unlock()
	c.takeDown(s, func() {
		if err := c.Central().UnregisterServer(context.Background(), centralapi.UnregisterArgs{Name: name}); err != nil {
			c.t.Errorf("servertest: unregister %s: %v", name, err)
		}
	})
}

// takeDown marks s down, closes it, runs then (if any), and ends the
// connections clients have to it.
func (c *Cluster) takeDown(s *chatServer, then ...func()) {
	c.mu.Lock()
	srv, rs, l := s.srv, s.tcp, s.listener
	s.srv, s.table, s.tcp, s.listener = nil, nil, nil, nil
	var conns []*Conn
	for k := range c.conns {
		if k.server == s {
			conns = append(conns, k)
		}
	}
	c.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	for _, f := range then {
		f()
	}
	for _, k := range conns {
		k.end(true)
	}
	if rs != nil {
		_ = rs.Close()
		// rs closes the listener only if its Serve goroutine has run
		// (else that goroutine closes it when it does, later): close it
		// here, so that the port is free once this returns.
		_ = l.Close()
	}
}

// RestartCentral closes central and opens it again on its data, as after
// a crash: it keeps accounts, sessions and rooms, and forgets which chat
// servers are live and who is attached where until the chat servers, at
// their next lease renewal, register again with their sessions.
func (c *Cluster) RestartCentral() {
	c.t.Helper()
	c.ctable.Unexport(centralapi.ObjectName)
	c.ctable.Unexport(centralapi.ClusterObjectName)
	if err := c.Central().Close(); err != nil {
		c.t.Fatalf("servertest: close central: %v", err)
	}
	c.openCentral()
}

// SetUnreachable makes chat server name unreachable (or reachable again)
// without stopping it, as a network failure would: dialing it fails, calls
// on open connections to it fail as lost (the connections stay open), and
// it can reach neither central nor the other servers nor its clients'
// callbacks. With Options.TCP it affects the in-memory ways only: a
// client connected over TCP still reaches the server.
func (c *Cluster) SetUnreachable(name string, unreachable bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mustServer(name).unreachable = unreachable
}

// Disconnect cuts chat servers a and b off from each other (both ways);
// each still reaches central, the other servers and its clients.
func (c *Cluster) Disconnect(a, b string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mustServer(a)
	c.mustServer(b)
	c.cut[[2]string{a, b}] = true
	c.cut[[2]string{b, a}] = true
}

// LoseSessionPushes makes central's EndSessions calls (its news that
// sessions ended) fail as lost while lose is set, so that the chat servers
// learn of ended sessions only at their lease renewal.
func (c *Cluster) LoseSessionPushes(lose bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nopush = lose
}

// HoldCentral makes chat server name's calls to central wait (hold true),
// as when central is slow or unreachable and the call waits for its
// timeout: each waits until the hold ends, when it goes through, or its
// context ends, when it fails with the context's error. On a mock clock a
// held call's deadline passes only as the test advances the clock.
func (c *Cluster) HoldCentral(name string, hold bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mustServer(name)
	switch {
	case hold && s.centralHold == nil:
		s.centralHold = make(chan struct{})
	case !hold && s.centralHold != nil:
		close(s.centralHold)
		s.centralHold = nil
	}
}

// LoseCentralReplies makes the next n calls of method (a CentralCluster
// method, such as "LeaveRoom") from chat server name to central run at
// central and then fail with rmi.ErrConnLost, as when central dies after
// making the change and before answering.
func (c *Cluster) LoseCentralReplies(name, method string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mustServer(name)
	if s.loseReply == nil {
		s.loseReply = map[string]int{}
	}
	s.loseReply[method] = n
}

// Reconnect undoes Disconnect(a, b).
func (c *Cluster) Reconnect(a, b string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cut, [2]string{a, b})
	delete(c.cut, [2]string{b, a})
}

// Forwards returns how many Forward calls (chatapi.Peer) the other chat
// servers have made to chat server name that reached it, over all its
// restarts: the fan-out sends one per destination server, not one per
// member there.
func (c *Cluster) Forwards(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mustServer(name).forwards
}

// link is how a chat server reaches central (to == "") or another chat
// server (to is its address): in memory, as a cluster member, failing as
// an unreachable host would while either end is down or cut off.
type link struct {
	c        *Cluster
	from, to string // from is a chat server's name, or fromCentral
}

// fromCentral is the from of central's links to chat servers (it tells
// them which sessions ended).
const fromCentral = "central"

// Invoke implements rmi.Invoker.
func (l *link) Invoke(ctx context.Context, object, method string, args, reply any) error {
	c := l.c
	c.mu.Lock()
	from := c.servers[l.from]
	table, dest := c.ctable, "central"
	ok := from.up() || (l.from == fromCentral && !c.nopush)
	var hold chan struct{}
	lose := false
	if l.to == "" && from != nil {
		hold = from.centralHold
		if from.loseReply[method] > 0 {
			from.loseReply[method]--
			lose = true
		}
	}
	if l.to != "" {
		to := c.byAddr[l.to]
		table, dest = nil, l.to
		if to.up() && !c.cut[[2]string{l.from, to.name}] {
			table = to.table
		}
		ok = ok && table != nil
		if ok && object == chatapi.PeerObjectName && method == "Forward" {
			to.forwards++
		}
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("servertest: %s cannot reach %s: %w", l.from, dest, rmi.ErrConnect)
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return fmt.Errorf("servertest: central held for %s: %w", l.from, ctx.Err())
		}
	}
	peer := rmi.NewPeer(c.peerIDs.Add(1), l.from, true, nil)
	err := rmi.Local{Table: table, Peer: peer, Clock: c.opts.Clock}.Invoke(ctx, object, method, args, reply)
	if lose {
		return fmt.Errorf("servertest: %s.%s ran at central, and its reply to %s was lost: %w", object, method, l.from, rmi.ErrConnLost)
	}
	return err
}

// listenAgain listens on addr, where a server of the cluster listened
// before it stopped (or on a new port if addr is empty). The port is in
// the ephemeral range, so meanwhile another process's outgoing connection
// may have been given it, and binding fails until that connection ends:
// it is tried again, for at most five seconds.
func listenAgain(addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
