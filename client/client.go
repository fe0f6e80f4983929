package client

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// Client is a logged-in distchat user attached to a chat server. Its
// methods are safe for concurrent use, and deliveries from the chat server
// arrive concurrently with them.
//
// Its files follow the jobs: login and failover (failover.go), the
// operations a user makes (ops.go), deliveries and catch-up (deliver.go),
// and the rooms' ordered views, the pure core they all update (view.go).
type Client struct {
	cfg    Config
	clk    clock.Clock
	log    *slog.Logger
	calls  *rmi.Table // exports the callback object on chat server connections
	bg     context.Context
	cancel context.CancelFunc

	// cbMu serializes updating the views together with the OnMessage,
	// OnEvent and OnStatus calls, so those see what happened in order. It
	// is taken before mu, and never held across a remote call.
	cbMu sync.Mutex

	mu          sync.Mutex
	closed      bool
	loggedIn    bool // Login has returned: connection changes are reported
	lost        bool // a Lost status was reported and no Back yet
	user, token string
	central     *centralSet   // nil until the first call to central (Attach)
	centralDown bool          // the central server's connection closed; not connected again yet
	centralWait time.Duration // recheckCentral's current backoff
	centralTmr  *clock.Timer  // the next recheckCentral, while one is scheduled
	srv         Conn          // current chat server connection; nil while there is none
	srvName     string        // its name
	gen         uint64        // incremented on each successful attach
	failing     bool          // a failover is in progress
	ended       bool          // the session ended: every call fails (sessionEnded)
	lease       time.Duration
	pingTimer   *clock.Timer
	rooms       *roomSet              // membership and views: the core
	pendingFull map[string]bool       // rooms with a full sync scheduled
	pendingGap  map[string]bool       // rooms with a gap check scheduled
	voiceCalls  map[string]*VoiceCall // by room (voicecall.go)
}

// Login logs cfg.User in at the central server, follows the redirect to
// the chat server it chose, attaches there with a callback object, and
// syncs every room of the user. The Client then pings its chat server and
// fails over to another one when it becomes unreachable.
func Login(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c, err := newClient(cfg, centralapi.LoginReply{User: cfg.User})
	if err != nil {
		return nil, err
	}
	if c.central, err = c.newCentralSet(); err != nil {
		_ = c.Close()
		return nil, err
	}
	lr, err := c.central.stub().Login(ctx, centralapi.LoginArgs{User: cfg.User, Password: cfg.Password})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("log in as %s: %w", cfg.User, err)
	}
	c.mu.Lock()
	c.user, c.token = lr.User, lr.Token
	c.mu.Unlock()
	if err := c.attach(ctx, lr); err != nil {
		// Central may have placed us on a server that just died.
		if !needsFailover(err) || ctx.Err() != nil {
			_ = c.Close()
			return nil, err
		}
		_, _, gen, _, _ := c.current()
		if ferr := c.failover(ctx, gen, failedServer(err, lr.Server.Name), err); ferr != nil {
			_ = c.Close()
			return nil, fmt.Errorf("%w (trying another server: %w)", err, ferr)
		}
	}
	c.mu.Lock()
	c.loggedIn = true
	c.armPingLocked()
	c.mu.Unlock()
	return c, nil
}

// newClient returns a Client for the session lr, with its callback object
// exported, not attached yet, and no connection to central (see
// centralCall).
func newClient(cfg Config, lr centralapi.LoginReply) (*Client, error) {
	bg, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:         cfg,
		clk:         cfg.Clock,
		log:         cfg.Logger.With("user", lr.User),
		calls:       rmi.NewTable(cfg.Logger),
		bg:          bg,
		cancel:      cancel,
		user:        lr.User,
		token:       lr.Token,
		rooms:       newRoomSet(),
		pendingFull: map[string]bool{},
		pendingGap:  map[string]bool{},
		voiceCalls:  map[string]*VoiceCall{},
	}
	// A Deliver's messages borrow the request's bytes (see
	// callbackObject.Deliver): every message is decoded by every member,
	// and the views keep it in a form of their own anyway.
	if err := rmi.Export[chatapi.Callback](c.calls, chatapi.CallbackObjectName, &callbackObject{c: c}, rmi.BorrowArgs()); err != nil {
		cancel()
		return nil, fmt.Errorf("export callback object: %w", err)
	}
	return c, nil
}

// User returns the logged-in user's name.
func (c *Client) User() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// Server returns the name of the chat server the client is attached to,
// or "" while it has none (after a failed failover).
func (c *Client) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return ""
	}
	return c.srvName
}

// Rooms returns the rooms the user is a member of, sorted.
func (c *Client) Rooms() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms.names()
}

// View returns a snapshot of room's log in stamp order, or nil if the
// client has no view of room. Views of rooms the user left are kept, no
// longer updated.
func (c *Client) View(room string) []chatapi.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.rooms.views[room]; v != nil {
		return v.Messages()
	}
	return nil
}

// Each calls fn with each message of room's view in stamp order, as View
// lists them, without copying the log: for a checker that reads every
// client's whole log (the simulator's). The client is locked while fn
// runs, so fn must not call the client.
func (c *Client) Each(room string, fn func(chatapi.Message)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.rooms.views[room]; v != nil {
		for m := range v.All() {
			fn(m)
		}
	}
}

// Last returns the latest message (by stamp) of room's view, if any,
// without copying the view.
func (c *Client) Last(room string) (chatapi.Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.rooms.views[room]; v != nil {
		return v.Last()
	}
	return chatapi.Message{}, false
}

// Page returns up to n messages of room's view that come just before
// stamp before, in stamp order (a zero before: the newest n); see
// [View.Page].
func (c *Client) Page(room string, before chatapi.Stamp, n int) []chatapi.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.rooms.views[room]; v != nil {
		return v.Page(before, n)
	}
	return nil
}

// Next returns the message of room's view that comes right after stamp s,
// if any: where a message stamped s is shown (before it, or last).
func (c *Client) Next(room string, s chatapi.Stamp) (chatapi.Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.rooms.views[room]; v != nil {
		return v.Next(s)
	}
	return chatapi.Message{}, false
}

// ViewStats returns the insertion counters of room's view, and whether the
// client has one.
func (c *Client) ViewStats(room string) (ViewStats, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.rooms.views[room]; v != nil {
		return v.Stats(), true
	}
	return ViewStats{}, false
}

// Settled returns the stamp time up to which room is settled at this
// client (0: nothing yet): messages at or below it are final.
func (c *Client) Settled(room string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.rooms.views[room]; v != nil {
		return v.Settled()
	}
	return 0
}

// FirstSettledViolation returns the first message that arrived inside
// room's settled prefix (there should be none).
func (c *Client) FirstSettledViolation(room string) (SettledViolation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.rooms.views[room]; v != nil {
		return v.FirstSettledViolation()
	}
	return SettledViolation{}, false
}

// Close detaches from the chat server and closes the client's connections.
// The session stays valid at central (see Logout). It is safe to call from
// any goroutine, and more than once.
func (c *Client) Close() error {
	return c.shutdown(c.bg, false)
}

// Logout ends the session at central and closes the client.
func (c *Client) Logout(ctx context.Context) error {
	return c.shutdown(ctx, true)
}

func (c *Client) shutdown(ctx context.Context, logout bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		if logout {
			return ErrClosed
		}
		return nil
	}
	c.closed = true
	if c.pingTimer != nil {
		c.pingTimer.Stop()
		c.pingTimer = nil
	}
	if c.centralTmr != nil {
		c.centralTmr.Stop()
		c.centralTmr = nil
	}
	srv, cen, tok := c.srv, c.central, c.token
	c.srv, c.central = nil, nil
	c.mu.Unlock()
	defer c.cancel()
	if srv != nil {
		if err := (chatapi.Stub{Inv: srv}).Detach(ctx, chatapi.TokenArgs{Token: tok}); err != nil {
			c.log.Debug("client: detach failed", "err", err)
		}
		_ = srv.Close()
	}
	var err error
	if cen != nil {
		if logout {
			if lerr := cen.stub().Logout(ctx, centralapi.LogoutArgs{Token: tok}); lerr != nil {
				err = fmt.Errorf("log out: %w", lerr)
			}
		}
		_ = cen.Close()
	}
	return err
}
