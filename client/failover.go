package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// StatusKind says what happened to a client's chat server connection.
type StatusKind int

// The kinds of [Status].
const (
	// Lost: the chat server became unreachable (or stopped holding the
	// session); the client is moving to another one.
	Lost StatusKind = iota + 1
	// Back: the client is attached to a chat server again, caught up.
	Back
	// Ended: the session ended at central (logged out, password reset,
	// expired) and the chat server refused it. The client stopped (no
	// failover, no pings): every later call fails with
	// chatapi.ErrSessionEnded. Log in again to go on.
	Ended
	// CentralMoved: the central server the client used (LostCentral) was
	// lost and another of Config.Central's addresses (Central) answered;
	// the session holds there. Server is the chat server, unchanged.
	CentralMoved
)

// String names the kind.
func (k StatusKind) String() string {
	switch k {
	case Lost:
		return "lost"
	case Back:
		return "back"
	case Ended:
		return "ended"
	case CentralMoved:
		return "central"
	}
	return "unknown"
}

// Status is a change of the client's chat server connection, reported to
// Config.OnStatus.
type Status struct {
	Kind StatusKind
	// Server is the chat server lost (Lost), now attached (Back) or that
	// refused the session (Ended).
	Server string
	// Err is why the server was given up (Lost), or why the session ended
	// (Ended: it wraps chatapi.ErrSessionEnded).
	Err error
	// Central is the central server address now used, and LostCentral the
	// one lost (CentralMoved).
	Central, LostCentral string
}

// report hands st to Config.OnStatus, in order with the deliveries.
func (c *Client) report(st Status) {
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	if c.cfg.OnStatus != nil {
		c.cfg.OnStatus(st)
	}
}

// attach connects to the chat server of lr, attaches the session, installs
// the connection and catches every room of the user up.
func (c *Client) attach(ctx context.Context, lr centralapi.LoginReply) error {
	c.mu.Lock()
	host := ""
	if c.central != nil {
		host = c.central.host()
	}
	c.mu.Unlock()
	name := lr.Server.Name
	addr := fixAddr(lr.Server.Addr, host)
	conn, err := c.cfg.Dial(ctx, addr, c.calls)
	if err != nil {
		return fmt.Errorf("connect to chat server %s at %s: %w", name, addr, err)
	}
	st := chatapi.Stub{Inv: conn}
	// From the moment the server accepts the attachment it may send
	// settled notices, which count only once each room is synced again.
	c.mu.Lock()
	c.rooms.markAllUnsynced()
	c.mu.Unlock()
	ar, err := st.Attach(ctx, chatapi.AttachArgs{Token: lr.Token})
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("attach to chat server %s at %s: %w", name, addr, err)
	}
	if ar.Server != "" {
		name = ar.Server
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = conn.Close()
		return ErrClosed
	}
	c.srv, c.srvName, c.token, c.lease = conn, name, lr.Token, ar.LeaseTTL
	c.gen++
	if ar.User != "" {
		c.user = ar.User
	}
	c.rooms.attached(ar.Rooms)
	rooms := c.rooms.names()
	gen := c.gen
	var calls []*VoiceCall
	if gen > 1 {
		calls = slices.Collect(maps.Values(c.voiceCalls))
	}
	c.mu.Unlock()
	for _, v := range calls {
		v.moved() // its signalling went through the old server
	}
	if oc, ok := conn.(interface{ OnClose(func()) }); ok {
		oc.OnClose(func() { c.connLost(conn, gen) })
	}
	c.log.Info("client: attached to chat server", "server", name, "addr", addr, "rooms", len(rooms))
	for i, room := range rooms {
		if err := c.syncRoom(ctx, st, lr.Token, room); err != nil {
			if needsFailover(err) || ctx.Err() != nil {
				// The rooms not caught up yet are synced in the
				// background (retried until they are), wherever the
				// client ends up.
				for _, r := range rooms[i:] {
					c.scheduleSync(r, false)
				}
				return fmt.Errorf("catch up room %s on chat server %s: %w", room, name, err)
			}
			c.log.Warn("client: catch-up failed; will retry", "room", room, "server", name, "err", err)
			c.scheduleSync(room, false)
		}
	}
	return nil
}

// needsFailover reports whether err from a chat server call means the
// client must be placed on a (possibly other) chat server again. A server
// whose storage fails cannot take posts, so the client moves away from it.
func needsFailover(err error) bool {
	return err != nil && (rmi.IsUnreachable(err) ||
		errors.Is(err, chatapi.ErrShuttingDown) ||
		errors.Is(err, chatapi.ErrStorage) ||
		errors.Is(err, chatapi.ErrNotAttached) ||
		errors.Is(err, centralapi.ErrBadSession))
}

// failedServer names the server to report to central as lost, if err says
// it is unreachable or cannot store (rather than merely not holding our
// session).
//
// A call made while the client has no server at all (an earlier failover
// failed) names none: the server it last had was reported already, and
// naming it again would make central refuse the only live server forever.
func failedServer(err error, name string) string {
	if errors.Is(err, errNoServer) {
		return ""
	}
	if rmi.IsUnreachable(err) || errors.Is(err, chatapi.ErrShuttingDown) || errors.Is(err, chatapi.ErrStorage) {
		return name
	}
	return ""
}

// failover moves the client to another chat server after a call on the
// attachment of generation gen failed with cause: Reassign at central (or a
// new Login if the session is gone), attach, catch up every room. It does
// nothing if the attachment changed since gen.
//
// After Login, the first failover of an outage reports Lost to OnStatus
// and the one that succeeds reports Back; the details go to the log at
// debug level.
func (c *Client) failover(ctx context.Context, gen uint64, failed string, cause error) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.gen != gen:
		c.mu.Unlock()
		return nil
	case c.failing:
		c.mu.Unlock()
		return ErrReconnecting
	}
	c.failing = true
	old, tok, oldName := c.srv, c.token, c.srvName
	c.srv = nil
	reportLost := c.loggedIn && !c.lost
	if reportLost {
		c.lost = true
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.failing = false
		c.mu.Unlock()
	}()
	if old != nil {
		_ = old.Close()
	}
	if reportLost {
		c.report(Status{Kind: Lost, Server: oldName, Err: cause})
	}
	c.log.Debug("client: lost chat server; asking central for another", "server", failed, "err", cause)
	var lr centralapi.LoginReply
	err := c.centralCall(ctx, func(s centralapi.Stub) (err error) {
		lr, err = s.Reassign(ctx, centralapi.ReassignArgs{Token: tok, Failed: failed})
		return err
	})
	if errors.Is(err, centralapi.ErrBadSession) && c.cfg.Password == "" {
		// Attached with a token only (Attach): no way to log in again.
		c.sessionEnded(fmt.Errorf("%w: %w", chatapi.ErrSessionEnded, err))
		return err
	}
	if errors.Is(err, centralapi.ErrBadSession) {
		c.log.Info("client: session expired; logging in again")
		err = c.centralCall(ctx, func(s centralapi.Stub) (err error) {
			lr, err = s.Login(ctx, centralapi.LoginArgs{User: c.cfg.User, Password: c.cfg.Password})
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("get a chat server from central: %w", err)
	}
	if err := c.attach(ctx, lr); err != nil {
		c.mu.Lock()
		attached := c.gen != gen && c.srv != nil
		c.mu.Unlock()
		if !attached {
			return err
		}
		// Attached, but catching a room up failed (say its messages'
		// origin server is down too): attach left those rooms to the
		// background sync. The client is back all the same; were the new
		// server itself unreachable, losing its connection fails over
		// again. Returning the error would report Back never: no later
		// failover of this attachment would run.
		c.log.Debug("client: attached; some rooms catch up in the background", "err", err)
	}
	c.mu.Lock()
	back, name := c.lost, c.srvName
	c.lost = false
	c.mu.Unlock()
	if back {
		c.report(Status{Kind: Back, Server: name})
	}
	return nil
}

// pingIntervalLocked returns the ping period.
func (c *Client) pingIntervalLocked() time.Duration {
	d := c.cfg.PingInterval
	if d <= 0 {
		d = defaultPingInterval
		if c.lease > 0 {
			d = c.lease / 3
		}
	}
	return max(d, minPingInterval)
}

// armPingLocked schedules the next ping unless one is scheduled.
func (c *Client) armPingLocked() {
	if c.closed || c.ended || c.pingTimer != nil {
		return
	}
	c.pingTimer = c.clk.AfterFunc(c.pingIntervalLocked(), c.pingTick)
}

// pingTick pings the chat server, fails over if it is unreachable, and
// re-arms itself.
func (c *Client) pingTick() {
	c.mu.Lock()
	c.pingTimer = nil
	c.mu.Unlock()
	c.probe()
	c.mu.Lock()
	c.armPingLocked()
	c.mu.Unlock()
}

// connLost is the OnClose hook of the chat server connection of
// attachment gen: unless the client closed it on purpose, it schedules a
// probe, which fails over.
func (c *Client) connLost(conn Conn, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.failing || c.gen != gen || c.srv != conn {
		return
	}
	c.clk.AfterFunc(0, func() {
		c.mu.Lock()
		stale := c.closed || c.failing || c.gen != gen
		c.mu.Unlock()
		if !stale {
			c.probe()
		}
	})
}

// probe pings the chat server and fails over if it is unreachable.
func (c *Client) probe() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	conn, tok, gen, name := c.srv, c.token, c.gen, c.srvName
	c.mu.Unlock()
	err := errNoServer
	if conn != nil {
		// A ping that takes longer than the interval between pings is as
		// good as lost: the server or the way to it is not healthy.
		c.mu.Lock()
		wait := c.pingIntervalLocked()
		c.mu.Unlock()
		ctx, cancel := c.clk.WithTimeout(c.bg, wait)
		err = chatapi.Stub{Inv: conn}.Ping(ctx, chatapi.TokenArgs{Token: tok})
		cancel()
	}
	switch {
	case err == nil || c.bg.Err() != nil:
	case errors.Is(err, chatapi.ErrSessionEnded):
		c.sessionEnded(err)
	case needsFailover(err):
		if ferr := c.failover(c.bg, gen, failedServer(err, name), err); ferr != nil && !errors.Is(ferr, ErrClosed) {
			c.log.Debug("client: failover failed; will retry", "err", ferr)
		}
	default:
		c.log.Warn("client: ping failed", "server", name, "err", err)
	}
}

// sessionEnded stops the client after its chat server said the session
// ended (cause wraps chatapi.ErrSessionEnded): no failover (logging in
// again would need a password that may just have changed, and a user who
// logged out meant it), no more pings, the connection closed; every later
// call fails with chatapi.ErrSessionEnded. It reports Ended, once.
func (c *Client) sessionEnded(cause error) {
	c.mu.Lock()
	if c.closed || c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	if c.pingTimer != nil {
		c.pingTimer.Stop()
		c.pingTimer = nil
	}
	srv, name := c.srv, c.srvName
	c.srv = nil
	c.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	c.log.Debug("client: session ended; log in again", "server", name, "err", cause)
	c.report(Status{Kind: Ended, Server: name, Err: cause})
}
