package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// Config configures a client. Central and User are required.
type Config struct {
	// Central is the host:port of the central server's registry; the port
	// defaults to rmi.DefaultPort (1099). An rmi://host:port/name URL names
	// the registry entry to look up as well (default central.ObjectName).
	// It may list several central servers of one cluster, comma-separated
	// ("a:1099,b:1099" or "rmi://a,b/CentralServer"; see
	// rmi.ParseAddrList): calls go to one, and to the next when it cannot
	// be reached (rmi.Failover); OnStatus hears of a move (CentralMoved).
	Central string
	// CentralIdle is how long the connection to central stays open with
	// no call on it; the next call connects again. Default
	// DefaultCentralIdle; negative: never closed for idleness.
	CentralIdle time.Duration
	// User and Password are the account's credentials. The password is
	// kept to log in again if the session expires.
	User, Password string
	// Clock is the only source of time; default clock.New().
	Clock clock.Clock
	// Dial opens connections; default TCPDialer(rmi.DialConfig{Clock: Clock,
	// Logger: Logger}), which is plaintext: distchat's servers speak only
	// TLS, so give a TLSDialer for them (the plaintext default serves
	// tests and in-process servers).
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
	// the terminal's Feed does).
	OnMessage func(chatapi.Message)
	// OnEvent is called, like OnMessage, with each event the chat server
	// delivers (joined, left, resync).
	OnEvent func(chatapi.Event)
	// OnStatus is called, like OnMessage, when the connection to the chat
	// server changes after Login returned: once with Lost when the chat
	// server is lost, and once with Back when the client is attached
	// again and caught up, however many attempts that took; and with
	// CentralMoved when it moved to another central server of its list.
	OnStatus func(Status)
	// OnVoice is called with each signal of the SFU hosting a room's
	// voice channel that this client joined (VoiceJoin): its offers, to
	// answer with VoiceSignal, and a bye when the client was removed.
	// Calls come in the order the SFU sent them and are serialized with
	// the callbacks above; like them, it must not block for long nor make
	// remote calls itself (hand the signal to another goroutine).
	OnVoice func(room string, s chatapi.VoiceSignal)
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
// DefaultCentralIdle is Config.CentralIdle's default: an idle client
// holds a connection only to its chat server.
const DefaultCentralIdle = 30 * time.Second

const (
	defaultPingInterval = 10 * time.Second
	minPingInterval     = 10 * time.Millisecond
	defaultGapSyncDelay = 2 * time.Second
	defaultCallTimeout  = 10 * time.Second
	retrySyncDelay      = 2 * time.Second
	moveDelay           = 500 * time.Millisecond // from a move event to the probe of the server
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
	return cfg.applyDefaults(), nil
}

// applyDefaults fills in the optional fields.
func (cfg Config) applyDefaults() Config {
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
	if cfg.CentralIdle == 0 {
		cfg.CentralIdle = DefaultCentralIdle
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
	return cfg
}
