package bench

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/server/chatapi"
)

// Config describes one benchmark run. Central and Dial are required.
type Config struct {
	// Central is the central server's registry address, as in
	// client.Config.
	Central string
	// Dial opens the clients' connections (client.TLSDialer for a real
	// cluster).
	Dial client.Dialer
	// Clients is the number of clients, C; default 10.
	Clients int
	// Messages is the number of messages each client posts, M; default 100.
	Messages int
	// Size is each message's text length in bytes, S; default 64.
	Size int
	// Inflight is how many posts each client keeps in flight, K; default
	// 1: post, wait for the durable acknowledgement, post the next.
	Inflight int
	// Rate paces each client at this many posts per second, the clients'
	// schedules spread evenly over one interval; 0 posts as fast as
	// Inflight allows.
	Rate float64
	// RunID names the run: the users are bench-RUNID-I and the room
	// bench-RUNID. Default: 8 random hex digits.
	RunID string
	// Stall is how long Run keeps waiting for deliveries after the last
	// one arrived (or the last post was acknowledged) when some are still
	// missing; the missing ones then fail the check. Default 30s.
	Stall time.Duration
	// Progress, if set, is called about every ProgressEvery (default 1s)
	// while the load runs, and once at its end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// ServerUsage, if set, returns the servers' cumulative CPU time and
	// current memory; Run calls it before and after the load. Without it
	// the report says the server figures are not known.
	ServerUsage func() (ServerUsage, error)
	// DiskProbe, if set, is a directory on the servers' disk: while the
	// load runs, Run appends a few bytes to a file there and syncs it
	// every 50 ms, and reports how long those syncs took
	// (Report.DiskSync), beside which a run's latency tail can be read.
	DiskProbe string
	// SetupParallel is how many sign-ups and logins run at once; default
	// 4 (central queues password checks beyond its CPU count).
	SetupParallel int
	// CallTimeout is each client's client.Config.CallTimeout; default 30s
	// (a loaded cluster is slow, not dead).
	CallTimeout time.Duration
	// Logger receives the clients' logs; default slog.Default().
	Logger *slog.Logger
	// Clock times the run (latencies, pacing, the stall, progress);
	// default clock.New(). Latencies are real only on the real clock.
	Clock clock.Clock

	// drop, a test hook, loses a delivery before the bench accounts for
	// it when it returns true: member is the receiving client's index.
	drop func(member int, m chatapi.Message) bool
}

// ServerUsage is what the servers have used so far.
type ServerUsage struct {
	// CPU is the servers' CPU time (user and system) since they started.
	CPU time.Duration
	// RSS is the servers' resident memory now, and PeakRSS its peak, in
	// bytes.
	RSS, PeakRSS int64
	// Reads and Writes count the servers' read and write system calls
	// since they started (see ReadProcIO); SyscallsKnown says the system
	// told them.
	Reads, Writes int64
	SyscallsKnown bool
}

// Progress is how far a run has got.
type Progress struct {
	Elapsed    time.Duration
	Posted     int64 // posts acknowledged
	Posts      int64 // posts to make
	Delivered  int64 // first arrivals at every member, the sender included (its own post counts when acknowledged)
	Deliveries int64 // arrivals expected
}

// Defaults.
const (
	defaultClients  = 10
	defaultMessages = 100
	defaultSize     = 64
	defaultStall    = 30 * time.Second
	defaultEvery    = time.Second
	defaultParallel = 4
	defaultTimeout  = 30 * time.Second
)

// withDefaults checks cfg and fills in what was left out.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Central == "" {
		return cfg, errors.New("bench: no central server address")
	}
	if cfg.Dial == nil {
		return cfg, errors.New("bench: no dialer")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.Clients, defaultClients)
	def(&cfg.Messages, defaultMessages)
	def(&cfg.Size, defaultSize)
	def(&cfg.Inflight, 1)
	def(&cfg.SetupParallel, defaultParallel)
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	switch {
	case cfg.Clients < 1:
		return cfg, fmt.Errorf("bench: %d clients: want at least 1", cfg.Clients)
	case cfg.Messages < 1:
		return cfg, fmt.Errorf("bench: %d messages: want at least 1", cfg.Messages)
	case cfg.Size < 1 || cfg.Size > chatapi.MaxText:
		return cfg, fmt.Errorf("bench: size %d: want 1 to %d bytes", cfg.Size, chatapi.MaxText)
	case cfg.Inflight < 1:
		return cfg, fmt.Errorf("bench: %d in flight: want at least 1", cfg.Inflight)
	case cfg.Rate < 0:
		return cfg, fmt.Errorf("bench: rate %g: want 0 (unpaced) or more", cfg.Rate)
	}
	if cfg.Stall <= 0 {
		cfg.Stall = defaultStall
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = defaultEvery
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = defaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RunID == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return cfg, fmt.Errorf("bench: run id: %w", err)
		}
		cfg.RunID = hex.EncodeToString(b[:])
	}
	return cfg, nil
}

// user returns the name of client i.
func (cfg Config) user(i int) string { return fmt.Sprintf("bench-%s-%d", cfg.RunID, i) }

// room returns the name of the run's room.
func (cfg Config) room() string { return "bench-" + cfg.RunID }
