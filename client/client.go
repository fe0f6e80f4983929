package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
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

// Config configures a client. Central and User are required.
type Config struct {
	// Central is the host:port of the central server's registry; the port
	// defaults to rmi.DefaultPort (1099). An rmi://host:port/name URL names
	// the registry entry to look up as well (default central.ObjectName).
	Central string
	// User and Password are the account's credentials. The password is
	// kept to log in again if the session expires.
	User, Password string
	// Clock is the only source of time; default clock.New().
	Clock clock.Clock
	// Dial opens connections; default TCPDialer(rmi.DialConfig{Clock: Clock, Logger: Logger}).
	Dial Dialer
	// Logger receives the client's logs; default slog.Default().
	Logger *slog.Logger
	// OnMessage is called with each message newly added to a room view
	// (after duplicates are dropped; a post stamped twice is reported
	// once), in arrival order: live deliveries, messages fetched by a
	// Sync (history at login and on joining, catch-up after a failover),
	// and the client's own posts when acknowledged. Calls are serialized.
	// It must not block for long nor call the Client's methods that make
	// remote calls (hand the message to another goroutine instead, as
	// [Feed] does).
	OnMessage func(chatapi.Message)
	// OnEvent is called, like OnMessage, with each event the chat server
	// delivers (joined, left, resync).
	OnEvent func(chatapi.Event)
	// PingInterval is how often the client pings its chat server to renew
	// its attachment; default a third of the attachment's lease TTL.
	PingInterval time.Duration
	// Rand is the source of message ids; default crypto/rand.Reader. A
	// simulator passes a seeded source for reproducible ids.
	Rand io.Reader
	// CallTimeout bounds each remote call made without a deadline of its
	// own; default 10s.
	CallTimeout time.Duration
	// GapSyncDelay is how long a hole in a room (a message from an origin
	// server arrived before an earlier one of the same origin) may stay
	// open before the client syncs the room; default 2s, negative disables.
	GapSyncDelay time.Duration
}

// Defaults.
const (
	defaultPingInterval = 10 * time.Second
	minPingInterval     = 10 * time.Millisecond
	defaultGapSyncDelay = 2 * time.Second
	defaultCallTimeout  = 10 * time.Second
	retrySyncDelay      = 2 * time.Second
)

// Errors of the client itself.
var (
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("client: closed")
	// ErrReconnecting is returned (wrapping the original failure) by a call
	// that found its chat server unreachable while another call was already
	// moving the client to another server. Retrying later is safe; a Say
	// retried this way is a new post, with a new id.
	ErrReconnecting = errors.New("client: reconnecting to another chat server; try again")
	// errNoServer is the failure of a call made while the client has no
	// chat server (a failover failed); it triggers another failover.
	errNoServer = fmt.Errorf("client: not connected to a chat server: %w", rmi.ErrConnect)
)

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Central == "" {
		return cfg, errors.New("client: no central server address")
	}
	if cfg.User == "" {
		return cfg, errors.New("client: no user name")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dial == nil {
		cfg.Dial = TCPDialer(rmi.DialConfig{Clock: cfg.Clock, Logger: cfg.Logger})
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.GapSyncDelay == 0 {
		cfg.GapSyncDelay = defaultGapSyncDelay
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = defaultCallTimeout
	}
	dial, clk, d := cfg.Dial, cfg.Clock, cfg.CallTimeout
	cfg.Dial = func(ctx context.Context, addr string, callbacks *rmi.Table) (Conn, error) {
		conn, err := dial(ctx, addr, callbacks)
		if err != nil {
			return nil, err
		}
		return &boundedConn{Conn: conn, clk: clk, d: d}, nil
	}
	return cfg, nil
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

// centralTarget returns the registry address and the name to look up.
func centralTarget(s string) (addr, name string, err error) {
	if strings.HasPrefix(s, "rmi://") {
		addr, name, err = rmi.ParseURL(s)
		if err != nil {
			return "", "", fmt.Errorf("central server URL %q: %w", s, err)
		}
	} else {
		addr = s
	}
	if name == "" {
		name = centralapi.ObjectName
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		addr = net.JoinHostPort(host, strconv.Itoa(rmi.DefaultPort))
	}
	return addr, name, nil
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

// centralLink is a connection to the central server.
type centralLink struct {
	conn Conn
	inv  rmi.Invoker // conn, calling the looked-up object name
	host string      // host part of the address dialed
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

// dialCentral connects to the central server's registry, looks up the
// central server and, if it lives elsewhere, connects there.
func dialCentral(ctx context.Context, cfg Config) (*centralLink, error) {
	addr, name, err := centralTarget(cfg.Central)
	if err != nil {
		return nil, err
	}
	conn, err := cfg.Dial(ctx, addr, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to central server at %s: %w", addr, err)
	}
	ref, err := rmi.RegistryStub{Inv: conn}.Lookup(ctx, name)
	if err != nil {
		_ = conn.Close()
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

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// SignUp creates the account cfg.User with cfg.Password and returns its
// recovery code, the only way to reset a forgotten password.
func SignUp(ctx context.Context, cfg Config) (recoveryCode string, err error) {
	err = withCentral(ctx, cfg, func(st centralapi.Stub, cfg Config) error {
		r, err := st.SignUp(ctx, centralapi.SignUpArgs{User: cfg.User, Password: cfg.Password})
		if err != nil {
			return fmt.Errorf("sign up %s: %w", cfg.User, err)
		}
		recoveryCode = r.RecoveryCode
		return nil
	})
	return recoveryCode, err
}

// ResetPassword sets cfg.User's password to newPassword using a recovery
// code, and returns the next recovery code (the old one is spent).
func ResetPassword(ctx context.Context, cfg Config, recoveryCode, newPassword string) (newCode string, err error) {
	err = withCentral(ctx, cfg, func(st centralapi.Stub, cfg Config) error {
		r, err := st.ResetPassword(ctx, centralapi.ResetArgs{
			User: cfg.User, RecoveryCode: recoveryCode, NewPassword: newPassword,
		})
		if err != nil {
			return fmt.Errorf("reset password of %s: %w", cfg.User, err)
		}
		newCode = r.RecoveryCode
		return nil
	})
	return newCode, err
}

// withCentral runs fn on a connection to the central server that cfg (with
// its defaults applied) names, closed afterwards: for the account calls
// made without logging in.
func withCentral(ctx context.Context, cfg Config, fn func(centralapi.Stub, Config) error) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	l, err := dialCentral(ctx, cfg)
	if err != nil {
		return err
	}
	defer l.conn.Close()
	return fn(centralapi.Stub{Inv: l.inv}, cfg)
}

// Client is a logged-in distchat user attached to a chat server. Its
// methods are safe for concurrent use, and deliveries from the chat server
// arrive concurrently with them.
type Client struct {
	cfg    Config
	clk    clock.Clock
	log    *slog.Logger
	calls  *rmi.Table // exports the callback object on chat server connections
	bg     context.Context
	cancel context.CancelFunc

	// cbMu serializes inserting into views together with the OnMessage
	// and OnEvent calls, so those see messages in arrival order. It is
	// never held across a remote call.
	cbMu sync.Mutex

	mu          sync.Mutex
	closed      bool
	user, token string
	central     *centralLink
	srv         Conn   // current chat server connection; nil while there is none
	srvName     string // its name
	gen         uint64 // incremented on each successful attach
	failing     bool   // a failover is in progress
	lease       time.Duration
	pingTimer   *clock.Timer
	rooms       map[string]bool // rooms the user is a member of
	unsynced    map[string]bool // rooms whose catch-up Sync has not completed
	left        map[string]bool // rooms left in this session (late deliveries dropped)
	views       map[string]*View
	pendingFull map[string]bool // rooms with a full sync scheduled
	pendingGap  map[string]bool // rooms with a gap check scheduled
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
	l, err := dialCentral(ctx, cfg)
	if err != nil {
		return nil, err
	}
	lr, err := centralapi.Stub{Inv: l.inv}.Login(ctx, centralapi.LoginArgs{User: cfg.User, Password: cfg.Password})
	if err != nil {
		_ = l.conn.Close()
		return nil, fmt.Errorf("log in as %s: %w", cfg.User, err)
	}
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
		central:     l,
		rooms:       map[string]bool{},
		left:        map[string]bool{},
		views:       map[string]*View{},
		pendingFull: map[string]bool{},
		pendingGap:  map[string]bool{},
	}
	if err := rmi.Export[chatapi.Callback](c.calls, chatapi.CallbackObjectName, &callbackObject{c: c}); err != nil {
		cancel()
		_ = l.conn.Close()
		return nil, fmt.Errorf("export callback object: %w", err)
	}
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
	c.armPingLocked()
	c.mu.Unlock()
	return c, nil
}

// attach connects to the chat server of lr, attaches the session, installs
// the connection and catches every room of the user up.
func (c *Client) attach(ctx context.Context, lr centralapi.LoginReply) error {
	c.mu.Lock()
	host := ""
	if c.central != nil {
		host = c.central.host
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
	for room := range c.views {
		c.markUnsyncedLocked(room)
	}
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
	c.rooms = map[string]bool{}
	for _, r := range ar.Rooms {
		c.rooms[r] = true
		c.markUnsyncedLocked(r)
		delete(c.left, r)
		c.viewLocked(r)
	}
	rooms := c.roomsLocked()
	gen := c.gen
	c.mu.Unlock()
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
// client must be placed on a (possibly other) chat server again.
func needsFailover(err error) bool {
	return err != nil && (rmi.IsUnreachable(err) ||
		errors.Is(err, chatapi.ErrShuttingDown) ||
		errors.Is(err, chatapi.ErrNotAttached) ||
		errors.Is(err, centralapi.ErrBadSession))
}

// failedServer names the server to report to central as lost, if err says
// it is unreachable rather than merely not holding our session.
//
// A call made while the client has no server at all (an earlier failover
// failed) names none: the server it last had was reported already, and
// naming it again would make central refuse the only live server forever.
func failedServer(err error, name string) string {
	if errors.Is(err, errNoServer) {
		return ""
	}
	if rmi.IsUnreachable(err) || errors.Is(err, chatapi.ErrShuttingDown) {
		return name
	}
	return ""
}

// failover moves the client to another chat server after a call on the
// attachment of generation gen failed with cause: Reassign at central (or a
// new Login if the session is gone), attach, catch up every room. It does
// nothing if the attachment changed since gen.
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
	old, tok := c.srv, c.token
	c.srv = nil
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.failing = false
		c.mu.Unlock()
	}()
	if old != nil {
		_ = old.Close()
	}
	c.log.Warn("client: lost chat server; asking central for another", "server", failed, "err", cause)
	var lr centralapi.LoginReply
	err := c.centralCall(ctx, func(s centralapi.Stub) (err error) {
		lr, err = s.Reassign(ctx, centralapi.ReassignArgs{Token: tok, Failed: failed})
		return err
	})
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
	return c.attach(ctx, lr)
}

// centralCall runs fn on the central server, reconnecting once if the
// connection turns out to be broken.
func (c *Client) centralCall(ctx context.Context, fn func(centralapi.Stub) error) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	link := c.central
	c.mu.Unlock()
	var err error
	if link != nil {
		err = fn(centralapi.Stub{Inv: link.inv})
		if !rmi.IsUnreachable(err) || ctx.Err() != nil {
			return err
		}
	}
	nl, derr := dialCentral(ctx, c.cfg)
	if derr != nil {
		if err != nil {
			return fmt.Errorf("%w (reconnecting: %w)", err, derr)
		}
		return derr
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nl.conn.Close()
		return ErrClosed
	}
	if c.central != link {
		// Someone else reconnected meanwhile: use theirs.
		cur := c.central
		c.mu.Unlock()
		_ = nl.conn.Close()
		nl = cur
	} else {
		c.central = nl
		c.mu.Unlock()
		if link != nil {
			_ = link.conn.Close()
		}
	}
	return fn(centralapi.Stub{Inv: nl.inv})
}

// withServer runs fn against the current chat server. If it fails because
// the server is unreachable (or lost the session), it fails over and runs
// fn once more against the new server.
func (c *Client) withServer(ctx context.Context, fn func(st chatapi.Stub, token string) error) error {
	conn, tok, gen, name, err := c.current()
	if err != nil {
		return err
	}
	if conn == nil {
		err = errNoServer
	} else {
		err = fn(chatapi.Stub{Inv: conn}, tok)
	}
	if !needsFailover(err) || ctx.Err() != nil {
		return err
	}
	if ferr := c.failover(ctx, gen, failedServer(err, name), err); ferr != nil {
		if errors.Is(ferr, ErrReconnecting) || errors.Is(ferr, ErrClosed) {
			return fmt.Errorf("%w: %w", ferr, err)
		}
		return fmt.Errorf("%w (failover: %w)", err, ferr)
	}
	conn, tok, _, _, err = c.current()
	if err != nil {
		return err
	}
	if conn == nil {
		return errNoServer
	}
	return fn(chatapi.Stub{Inv: conn}, tok)
}

// current returns the chat server connection and session.
func (c *Client) current() (conn Conn, token string, gen uint64, name string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, "", 0, "", ErrClosed
	}
	return c.srv, c.token, c.gen, c.srvName, nil
}

// syncRoom fetches what room's view lacks, page by page, from st.
func (c *Client) syncRoom(ctx context.Context, st chatapi.Stub, token, room string) error {
	v := c.view(room)
	for {
		r, err := st.Sync(ctx, chatapi.SyncArgs{Token: token, Room: room, Have: v.Have()})
		if err != nil {
			return err
		}
		fresh := c.insert(v, r.Messages)
		if !r.More || fresh == 0 {
			c.mu.Lock()
			delete(c.unsynced, room)
			c.mu.Unlock()
			return nil
		}
	}
}

// markUnsyncedLocked records that room must complete a Sync before
// settled notices count for it. Callers hold c.mu.
func (c *Client) markUnsyncedLocked(room string) {
	if c.unsynced == nil {
		c.unsynced = map[string]bool{}
	}
	c.unsynced[room] = true
}

// sortedRooms returns the keys of a per-room map, sorted.
func sortedRooms(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// existingView returns room's view, or nil when the client has none
// (unlike view, it does not create one).
func (c *Client) existingView(room string) *View {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.views[room]
}

// Settled returns the stamp time up to which room is settled at this
// client (0: nothing yet): messages at or below it are final.
func (c *Client) Settled(room string) int64 {
	v := c.existingView(room)
	if v == nil {
		return 0
	}
	return v.Settled()
}

// FirstSettledViolation returns the first message that arrived inside
// room's settled prefix (there should be none).
func (c *Client) FirstSettledViolation(room string) (SettledViolation, bool) {
	v := c.existingView(room)
	if v == nil {
		return SettledViolation{}, false
	}
	return v.FirstSettledViolation()
}

// insert adds msgs to v, calling OnMessage for each newly shown message,
// and returns how many were not duplicates.
func (c *Client) insert(v *View, msgs []chatapi.Message) (fresh int) {
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	for _, m := range msgs {
		if m.Room == "" {
			m.Room = v.Room()
		}
		switch v.Insert(m) {
		case Added:
			fresh++
			if c.cfg.OnMessage != nil {
				c.cfg.OnMessage(m)
			}
		case Collapsed, Replaced:
			fresh++
		}
	}
	return fresh
}

// view returns room's view, creating it if needed.
func (c *Client) view(room string) *View {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.viewLocked(room)
}

func (c *Client) viewLocked(room string) *View {
	v := c.views[room]
	if v == nil {
		v = NewView(room)
		c.views[room] = v
	}
	return v
}

// joined records that the user is a member of room and returns its view.
func (c *Client) joined(room string) *View {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rooms[room] = true
	delete(c.left, room)
	return c.viewLocked(room)
}

func (c *Client) roomsLocked() []string {
	rooms := make([]string, 0, len(c.rooms))
	for r := range c.rooms {
		rooms = append(rooms, r)
	}
	sort.Strings(rooms)
	return rooms
}

// callbackObject is the remote object a chat server calls back (exported
// as server.CallbackObjectName). Its only remote method is Deliver.
type callbackObject struct{ c *Client }

// Deliver implements server.Callback: it inserts the messages into their
// rooms' views and hands events on; see Client.deliver.
func (o *callbackObject) Deliver(ctx context.Context, args chatapi.DeliverArgs) error {
	o.c.deliver(args)
	return nil
}

var _ chatapi.Callback = (*callbackObject)(nil)

// deliver handles a delivery from a chat server. It makes no remote call:
// syncs it needs (a hole in a room, a resync event for one room or, with
// no room, for all, a room seen for the first time) are scheduled on the
// clock.
func (c *Client) deliver(args chatapi.DeliverArgs) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	var gaps, full []string
	resyncAll := false
	c.cbMu.Lock()
	for _, m := range args.Messages {
		if m.Room == "" {
			continue
		}
		v, isNew := c.deliveryView(m.Room)
		if v == nil {
			continue // a late delivery to a room we left
		}
		if isNew {
			full = append(full, m.Room)
		}
		if v.Insert(m) == Added && c.cfg.OnMessage != nil {
			c.cfg.OnMessage(m)
		}
		if v.Head(m.Stamp.Server) < m.Stamp.Seq {
			gaps = append(gaps, m.Room)
		}
	}
	for _, e := range args.Events {
		if c.cfg.OnEvent != nil {
			c.cfg.OnEvent(e)
		}
		switch {
		case e.Kind == chatapi.EventResync && e.Room != "":
			full = append(full, e.Room)
		case e.Kind == chatapi.EventResync:
			resyncAll = true
		case e.Kind == chatapi.EventJoined && e.User == c.User() && e.Room != "":
			c.joined(e.Room)
			full = append(full, e.Room)
		case e.Kind == chatapi.EventLeft && e.User == c.User() && e.Room != "":
			c.forget(e.Room)
		}
	}
	c.mu.Lock()
	for _, r := range full {
		c.markUnsyncedLocked(r)
	}
	if resyncAll {
		for r := range c.rooms {
			c.markUnsyncedLocked(r)
		}
	}
	c.mu.Unlock()
	// Settled notices count only for a room the client has fully synced
	// and holds without holes: the server's promise covers what it
	// delivered, and a Sync under way may still bring older messages.
	for _, room := range sortedRooms(args.Settled) {
		c.mu.Lock()
		v, pending := c.views[room], c.unsynced[room]
		c.mu.Unlock()
		if v != nil && !pending && !v.Gaps() {
			v.Settle(args.Settled[room])
		}
	}
	c.cbMu.Unlock()
	if resyncAll {
		full = c.Rooms()
	}
	for _, r := range full {
		c.scheduleSync(r, false)
	}
	for _, r := range gaps {
		c.scheduleSync(r, true)
	}
}

// deliveryView returns the view a delivered message of room goes to, and
// whether the room was unknown until now (then it is recorded as joined:
// the server delivers only to members). It returns nil for a room left in
// this session.
func (c *Client) deliveryView(room string) (v *View, isNew bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left[room] {
		return nil, false
	}
	if !c.rooms[room] {
		c.rooms[room] = true
		isNew = true
	}
	return c.viewLocked(room), isNew
}

// forget records that the user left room. Its view is kept (frozen: late
// deliveries are dropped), so that rejoining catches up from where it
// stopped and reports no message twice.
func (c *Client) forget(room string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rooms, room)
	c.left[room] = true
}

// scheduleSync arranges for room to be synced in the background: at once
// for a full sync, or after GapSyncDelay if gapOnly (and then only if the
// room still has a hole).
func (c *Client) scheduleSync(room string, gapOnly bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if !gapOnly {
		c.markUnsyncedLocked(room)
	}
	pending, delay := c.pendingFull, time.Duration(0)
	if gapOnly {
		if c.cfg.GapSyncDelay < 0 {
			return
		}
		pending, delay = c.pendingGap, c.cfg.GapSyncDelay
	}
	if pending[room] {
		return
	}
	pending[room] = true
	c.clk.AfterFunc(delay, func() { c.backgroundSync(room, gapOnly) })
}

// backgroundSync is a scheduled sync of room.
func (c *Client) backgroundSync(room string, gapOnly bool) {
	c.mu.Lock()
	if gapOnly {
		delete(c.pendingGap, room)
	} else {
		delete(c.pendingFull, room)
	}
	closed, member, v := c.closed, c.rooms[room], c.views[room]
	c.mu.Unlock()
	if closed || !member || v == nil || (gapOnly && !v.Gaps()) {
		return
	}
	err := c.withServer(c.bg, func(st chatapi.Stub, token string) error {
		return c.syncRoom(c.bg, st, token, room)
	})
	if err != nil && c.bg.Err() == nil {
		c.log.Warn("client: background sync failed; will retry", "room", room, "err", err)
		// Try again later: until it succeeds the room may miss messages
		// (and its settled notices are ignored).
		c.clk.AfterFunc(retrySyncDelay, func() { c.scheduleSync(room, gapOnly) })
	}
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
	if c.closed || c.pingTimer != nil {
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
	case needsFailover(err):
		if ferr := c.failover(c.bg, gen, failedServer(err, name), err); ferr != nil && !errors.Is(ferr, ErrClosed) {
			c.log.Warn("client: failover failed; will retry", "err", ferr)
		}
	default:
		c.log.Warn("client: ping failed", "server", name, "err", err)
	}
}

// newID returns a fresh message id: 16 random bytes in hex.
func (c *Client) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("client: message id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// seen returns the largest stamp in any view.
func (c *Client) seen() chatapi.Stamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s chatapi.Stamp
	for _, v := range c.views {
		if m := v.Max(); s.Less(m) {
			s = m
		}
	}
	return s
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
	return c.roomsLocked()
}

// View returns a snapshot of room's log in stamp order, or nil if the
// client has no view of room. Views of rooms the user left are kept, no
// longer updated.
func (c *Client) View(room string) []chatapi.Message {
	v := c.existingView(room)
	if v == nil {
		return nil
	}
	return v.Messages()
}

// Last returns the latest message (by stamp) of room's view, if any,
// without copying the view.
func (c *Client) Last(room string) (chatapi.Message, bool) {
	v := c.existingView(room)
	if v == nil {
		return chatapi.Message{}, false
	}
	return v.Last()
}

// ViewStats returns the insertion counters of room's view, and whether the
// client has one.
func (c *Client) ViewStats(room string) (ViewStats, bool) {
	v := c.existingView(room)
	if v == nil {
		return ViewStats{}, false
	}
	return v.Stats(), true
}

// CreateRoom creates a room with the user as its first member.
func (c *Client) CreateRoom(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	var info centralapi.RoomInfo
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		info, err = st.CreateRoom(ctx, chatapi.RoomArgs{Token: token, Room: room})
		return err
	})
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("create room %s: %w", room, err)
	}
	c.joined(room)
	return info, nil
}

// JoinRoom joins an existing room and fetches its history.
func (c *Client) JoinRoom(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	// Until its history is in, the room's settled notices do not count.
	c.mu.Lock()
	c.markUnsyncedLocked(room)
	c.mu.Unlock()
	var info centralapi.RoomInfo
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		info, err = st.JoinRoom(ctx, chatapi.RoomArgs{Token: token, Room: room})
		return err
	})
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("join room %s: %w", room, err)
	}
	c.joined(room)
	if err := c.sync(ctx, room); err != nil {
		return info, fmt.Errorf("join room %s: fetch history: %w", room, err)
	}
	return info, nil
}

// LeaveRoom leaves a room. The client keeps the room's view as it was
// (View still returns it), so rejoining later fetches only what is new.
func (c *Client) LeaveRoom(ctx context.Context, room string) error {
	c.mu.Lock()
	wasMember := c.rooms[room]
	c.mu.Unlock()
	attempts := 0
	err := c.withServer(ctx, func(st chatapi.Stub, token string) error {
		attempts++
		err := st.LeaveRoom(ctx, chatapi.RoomArgs{Token: token, Room: room})
		if (attempts > 1 || wasMember) && errors.Is(err, centralapi.ErrNotMember) {
			// An earlier attempt, or a duplicate of this request the
			// network delivered, went through: the user is out, as asked.
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("leave room %s: %w", room, err)
	}
	c.forget(room)
	return nil
}

// ListRooms lists the public rooms and the user's direct rooms.
func (c *Client) ListRooms(ctx context.Context) (centralapi.ListReply, error) {
	var r centralapi.ListReply
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		r, err = st.ListRooms(ctx, chatapi.TokenArgs{Token: token})
		return err
	})
	if err != nil {
		return centralapi.ListReply{}, fmt.Errorf("list rooms: %w", err)
	}
	return r, nil
}

// Who returns a room's members and the servers they are on.
func (c *Client) Who(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	var info centralapi.RoomInfo
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		info, err = st.Who(ctx, chatapi.RoomArgs{Token: token, Room: room})
		return err
	})
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("who is in %s: %w", room, err)
	}
	return info, nil
}

// Direct returns the name of the user's direct room with peer (created on
// first use), with its history synced into a view.
func (c *Client) Direct(ctx context.Context, peer string) (string, error) {
	c.mu.Lock()
	c.markUnsyncedLocked(centralapi.DirectRoomName(c.user, peer))
	c.mu.Unlock()
	var info centralapi.RoomInfo
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		info, err = st.Direct(ctx, chatapi.DirectArgs{Token: token, Peer: peer})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("direct room with %s: %w", peer, err)
	}
	c.joined(info.Name)
	if err := c.sync(ctx, info.Name); err != nil {
		return info.Name, fmt.Errorf("direct room with %s: fetch history: %w", peer, err)
	}
	return info.Name, nil
}

// Say posts text to room and returns the message as acknowledged (durable
// at its first server). The message gets a fresh random id; if the chat
// server is lost, the client fails over and posts again with the same id,
// so the post is stored once.
func (c *Client) Say(ctx context.Context, room, text string) (chatapi.Message, error) {
	switch {
	case text == "":
		return chatapi.Message{}, fmt.Errorf("say in %s: %w", room, chatapi.ErrEmpty)
	case len(text) > chatapi.MaxText:
		return chatapi.Message{}, fmt.Errorf("say in %s: %d bytes: %w", room, len(text), chatapi.ErrTooLarge)
	}
	id, err := c.newID()
	if err != nil {
		return chatapi.Message{}, err
	}
	var reply chatapi.PostReply
	err = c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		reply, err = st.Post(ctx, chatapi.PostArgs{Token: token, Room: room, ID: id, Text: text, Seen: c.seen()})
		return err
	})
	if err != nil {
		return chatapi.Message{}, fmt.Errorf("say in %s: %w", room, err)
	}
	m := chatapi.Message{Room: room, ID: id, From: c.User(), Text: text, Stamp: reply.Stamp}
	c.insert(c.joined(room), []chatapi.Message{m})
	return m, nil
}

// Msg sends text to user in their direct room.
func (c *Client) Msg(ctx context.Context, user, text string) (chatapi.Message, error) {
	room, err := c.Direct(ctx, user)
	if err != nil {
		return chatapi.Message{}, err
	}
	return c.Say(ctx, room, text)
}

// History syncs room to completion and returns its log in stamp order.
func (c *Client) History(ctx context.Context, room string) ([]chatapi.Message, error) {
	if err := c.sync(ctx, room); err != nil {
		return nil, fmt.Errorf("history of %s: %w", room, err)
	}
	return c.view(room).Messages(), nil
}

// Sync fetches what the client lacks of room from its chat server.
func (c *Client) Sync(ctx context.Context, room string) error {
	if err := c.sync(ctx, room); err != nil {
		return fmt.Errorf("sync %s: %w", room, err)
	}
	return nil
}

func (c *Client) sync(ctx context.Context, room string) error {
	return c.withServer(ctx, func(st chatapi.Stub, token string) error {
		return c.syncRoom(ctx, st, token, room)
	})
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
	srv, link, tok := c.srv, c.central, c.token
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
	if link != nil {
		if logout {
			if lerr := (centralapi.Stub{Inv: link.inv}).Logout(ctx, centralapi.LogoutArgs{Token: tok}); lerr != nil {
				err = fmt.Errorf("log out: %w", lerr)
			}
		}
		_ = link.conn.Close()
	}
	return err
}
