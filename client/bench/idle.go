package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/client"
)

// IdleReport is the outcome of Idle: what K idle logged-in clients cost
// the servers' process in resident memory. Its JSON form is what
// "distchat bench --idle K --json" prints.
type IdleReport struct {
	RunID   string `json:"run_id"`
	Clients int    `json:"clients"`
	// Placement counts the clients per chat server, as central placed them.
	Placement map[string]int `json:"placement"`
	// RSSBefore is the servers' resident memory with the users signed up
	// but none logged in; RSSAfter with all of them logged in and idle.
	RSSBefore int64 `json:"server_rss_before_bytes"`
	RSSAfter  int64 `json:"server_rss_after_bytes"`
	// BytesPerClient is (RSSAfter − RSSBefore) / Clients.
	BytesPerClient int64 `json:"server_bytes_per_idle_client"`
}

// idleCentral is the idle clients' client.Config.CentralIdle: they let
// their connection to central go soon after logging in, as every client
// does after client.DefaultCentralIdle.
const idleCentral = 100 * time.Millisecond

// Idle measures what an idle logged-in client costs the servers: it signs
// Config.Clients users up, reads Config.ServerUsage, logs every user in
// and leaves them idle until they hold only their connection to their
// chat server (their connection to central closes when idle, here after
// idleCentral), reads ServerUsage again, and logs them out. Central, Dial, Clients, ServerUsage (required here),
// SetupParallel, CallTimeout, Logger and RunID are used; the fields of
// the load are not.
func Idle(ctx context.Context, cfg Config) (IdleReport, error) {
	if cfg.ServerUsage == nil {
		return IdleReport{}, errors.New("bench: idle: no server usage to measure (Config.ServerUsage)")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return IdleReport{}, err
	}
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return IdleReport{}, fmt.Errorf("bench: password: %w", err)
	}
	ccfg := func(i int) client.Config {
		return client.Config{
			Central: cfg.Central, User: cfg.user(i), Password: hex.EncodeToString(pw[:]),
			Dial: cfg.Dial, Logger: cfg.Logger, CallTimeout: cfg.CallTimeout,
			CentralIdle: idleCentral,
		}
	}
	if err := signUpAll(ctx, cfg, ccfg); err != nil {
		return IdleReport{}, err
	}

	rep := IdleReport{RunID: cfg.RunID, Clients: cfg.Clients, Placement: map[string]int{}}
	before, err := cfg.ServerUsage()
	if err != nil {
		return IdleReport{}, fmt.Errorf("bench: server usage: %w", err)
	}
	clients := make([]*client.Client, cfg.Clients)
	defer logoutAll(clients, cfg.SetupParallel)
	if err := loginAll(ctx, cfg, ccfg, clients); err != nil {
		return IdleReport{}, err
	}
	if err := idleWait(ctx, cfg.Clock, clients); err != nil {
		return IdleReport{}, err
	}
	after, err := cfg.ServerUsage()
	if err != nil {
		return IdleReport{}, fmt.Errorf("bench: server usage: %w", err)
	}
	for _, c := range clients {
		rep.Placement[c.Server()]++
	}
	rep.RSSBefore, rep.RSSAfter = before.RSS, after.RSS
	rep.BytesPerClient = (after.RSS - before.RSS) / int64(cfg.Clients)
	return rep, nil
}

// WriteText writes the report for a person to read.
func (r IdleReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "distchat bench --idle: %d idle logged-in clients (each connected to its chat server)\n", r.Clients)
	var place []string
	for _, s := range slices.Sorted(maps.Keys(r.Placement)) {
		place = append(place, fmt.Sprintf("%s %d", s, r.Placement[s]))
	}
	fmt.Fprintf(w, "  clients per server  %s\n", strings.Join(place, ", "))
	fmt.Fprintf(w, "  server RSS          %.1f MiB before the logins, %.1f MiB after\n", mib(r.RSSBefore), mib(r.RSSAfter))
	fmt.Fprintf(w, "  per idle client     %.1f KiB of server RSS (central and chat servers together)\n", float64(r.BytesPerClient)/1024)
}

// idleWait waits until no client holds a connection to central, for at
// most a minute.
func idleWait(ctx context.Context, clk clock.Clock, clients []*client.Client) error {
	ctx, cancel := clk.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := clk.Ticker(idleCentral / 4)
	defer tick.Stop()
	for {
		held := 0
		for _, c := range clients {
			if c.CentralConnected() {
				held++
			}
		}
		if held == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("bench: %d clients still hold their connection to central: %w", held, ctx.Err())
		}
	}
}
