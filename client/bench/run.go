package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/server/chatapi"
)

// logoutTimeout bounds logging the clients out after the run.
const logoutTimeout = 10 * time.Second

// Run signs the users up, logs them in, puts them in one room, runs the
// load, waits until every message has arrived at every member (or until
// deliveries stall for Config.Stall), checks, and logs the users out. An
// error means the run could not be made (a sign-up or login failed, ctx
// ended); a run whose checks fail returns its report without an error:
// Report.OK says.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return Report{}, fmt.Errorf("bench: password: %w", err)
	}
	users := make([]string, cfg.Clients)
	for i := range users {
		users[i] = cfg.user(i)
	}
	l := newLedger(cfg, users)
	ccfg := func(i int) client.Config {
		return client.Config{
			Central: cfg.Central, User: users[i], Password: hex.EncodeToString(pw[:]),
			Dial: cfg.Dial, Logger: cfg.Logger, CallTimeout: cfg.CallTimeout,
			OnMessage: func(m chatapi.Message) { l.receive(i, m) },
		}
	}

	if err := signUpAll(ctx, cfg, ccfg); err != nil {
		return Report{}, err
	}
	clients := make([]*client.Client, cfg.Clients)
	defer logoutAll(clients, cfg.SetupParallel)
	if err := loginAll(ctx, cfg, ccfg, clients); err != nil {
		return Report{}, err
	}
	if _, err := clients[0].CreateRoom(ctx, cfg.room()); err != nil {
		return Report{}, fmt.Errorf("bench: %w", err)
	}
	err = forEach(ctx, cfg.Clients-1, cfg.SetupParallel, func(i int) error {
		_, err := clients[i+1].JoinRoom(ctx, cfg.room())
		return err
	})
	if err != nil {
		return Report{}, fmt.Errorf("bench: %w", err)
	}

	m, err := load(ctx, cfg, l, clients)
	if err != nil {
		return Report{}, err
	}
	rep := l.report(m)
	rep.Placement = map[string]int{}
	for _, c := range clients {
		rep.Placement[c.Server()]++
	}
	rep.Checks.SameOrder = sameOrder(cfg.room(), users, clients)
	rep.Checks.SenderOrder = senderOrder(l, clients[0].View(cfg.room()))
	return rep, nil
}

// measured is what load measured besides the ledger.
type measured struct {
	elapsed        time.Duration
	posted, failed int64
	firstErr       error
	acks           []time.Duration
	serverBefore   ServerUsage
	serverAfter    ServerUsage
	serverKnown    bool
	selfCPU        time.Duration
	selfKnown      bool
	selfReads      int64 // this process's read and write system calls over the run
	selfWrites     int64
	selfIOKnown    bool
	disk           *Latency // the disk probe's syncs; nil without one
}

// load runs the posts and waits for their deliveries.
func load(ctx context.Context, cfg Config, l *ledger, clients []*client.Client) (measured, error) {
	var m measured
	var err error
	if cfg.ServerUsage != nil {
		if m.serverBefore, err = cfg.ServerUsage(); err != nil {
			return m, fmt.Errorf("bench: server usage: %w", err)
		}
	}
	var probe *diskProbe
	if cfg.DiskProbe != "" {
		if probe, err = startDiskProbe(cfg.DiskProbe, cfg.Clock); err != nil {
			return m, err
		}
	}
	cpu0, ok0 := selfCPU()
	reads0, writes0, io0 := selfSyscalls()
	t0 := l.now()

	var posted, failed atomic.Int64
	var errOnce sync.Once
	acks := make([][]time.Duration, cfg.Clients)
	text := strings.Repeat("x", cfg.Size)
	var wg sync.WaitGroup
	for i, c := range clients {
		// Each client sends its messages in order through one Sender,
		// keeping up to Inflight unacknowledged: they are stamped in
		// the order sent (Checks.SenderOrder), however many are in
		// flight.
		sender := c.NewSender()
		acks[i] = make([]time.Duration, 0, cfg.Messages)
		wg.Go(func() {
			post := func(seq int) waiter {
				if !pace(ctx, cfg, l, t0+offset(cfg, i), seq) {
					return nil
				}
				l.posting(i, seq)
				return sender.Send(l.room, id(i, seq), text)
			}
			postInOrder(ctx, cfg.Messages, cfg.Inflight, post, func(seq int, err error) {
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { m.firstErr = err })
					return
				}
				acks[i] = append(acks[i], l.now()-l.started(i, seq))
				posted.Add(1)
			})
		})
	}
	stopProgress := progress(cfg, l, t0, &posted)
	wg.Wait()
	postsEnd := l.now()
	err = l.wait(ctx, postsEnd)
	stopProgress()
	if probe != nil {
		d, perr := probe.finish()
		if perr != nil {
			cfg.Logger.Warn("the disk probe stopped; the report leaves the disk out", "err", perr)
		} else {
			m.disk = &d
		}
	}
	if err != nil {
		return m, err
	}

	_, last := l.arrived()
	end := max(last, postsEnd)
	m.elapsed = end - t0
	m.posted, m.failed = posted.Load(), failed.Load()
	for _, a := range acks {
		m.acks = append(m.acks, a...)
	}
	if cpu1, ok1 := selfCPU(); ok0 && ok1 {
		m.selfCPU, m.selfKnown = cpu1-cpu0, true
	}
	if reads1, writes1, io1 := selfSyscalls(); io0 && io1 {
		m.selfReads, m.selfWrites, m.selfIOKnown = reads1-reads0, writes1-writes0, true
	}
	if cfg.ServerUsage != nil {
		if m.serverAfter, err = cfg.ServerUsage(); err != nil {
			return m, fmt.Errorf("bench: server usage: %w", err)
		}
		m.serverKnown = true
	}
	return m, nil
}

// waiter is a post on its way (a *client.Pending).
type waiter interface {
	Wait(context.Context) (chatapi.Message, error)
}

// postInOrder makes posts 0 to n-1 with post, keeping at most inflight
// of them unacknowledged, and hands each outcome to done in that order.
// post returns nil to stop (its pacing saw ctx end). The posts must be
// acknowledged in the order made, as a client.Sender's are: one goroutine
// waits for them in turn. (A goroutine per post, as before, cost the load
// process a stack for each post in flight: at C=20×M=200 with 64 in
// flight, faulting in those stacks' pages was 5% of its CPU.)
func postInOrder(ctx context.Context, n, inflight int, post func(seq int) waiter, done func(seq int, err error)) {
	window := make(chan struct{}, inflight)
	made := make(chan waiter, inflight) // never full: window bounds it
	go func() {
		defer close(made)
		for seq := range n {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			p := post(seq)
			if p == nil {
				return
			}
			made <- p
		}
	}()
	seq := 0
	for p := range made {
		_, err := p.Wait(ctx)
		<-window
		done(seq, err)
		seq++
	}
}

// pace waits until post seq is due (Config.Rate), counting from start;
// it reports false if ctx ended first.
func pace(ctx context.Context, cfg Config, l *ledger, start time.Duration, seq int) bool {
	if cfg.Rate <= 0 {
		return ctx.Err() == nil
	}
	due := start + time.Duration(float64(seq)/cfg.Rate*float64(time.Second))
	wait := due - l.now()
	if wait <= 0 {
		return ctx.Err() == nil
	}
	t := cfg.Clock.Timer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// offset is when paced client i starts, after the run's start: the
// clients' schedules are spread evenly over one interval 1/Rate, so that
// the posts arrive at an even C×Rate per second, as from many
// independent users, rather than C at once every interval (a burst that
// measures how fast the servers drain it, not their latency under the
// offered load).
func offset(cfg Config, i int) time.Duration {
	if cfg.Rate <= 0 {
		return 0
	}
	return time.Duration(float64(i) / float64(cfg.Clients) / cfg.Rate * float64(time.Second))
}

// wait waits until every message has arrived at every member, or until
// none has arrived for Config.Stall (counted from postsEnd at the
// earliest), or ctx ends (an error).
func (l *ledger) wait(ctx context.Context, postsEnd time.Duration) error {
	tick := l.cfg.Clock.Ticker(min(l.cfg.Stall/4, 250*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("bench: waiting for deliveries: %w", ctx.Err())
		case <-tick.C:
			if _, last := l.arrived(); l.now()-max(last, postsEnd) > l.cfg.Stall {
				return nil
			}
		}
	}
}

// progress calls Config.Progress every ProgressEvery until the returned
// function is called, which reports once more and returns.
func progress(cfg Config, l *ledger, t0 time.Duration, posted *atomic.Int64) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	report := func() {
		delivered, _ := l.arrived()
		cfg.Progress(Progress{
			Elapsed: l.now() - t0, Posted: posted.Load(), Posts: int64(cfg.Clients * cfg.Messages),
			Delivered: delivered, Deliveries: l.expected,
		})
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := cfg.Clock.Ticker(cfg.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				report()
			case <-quit:
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
		report()
	}
}

// forEach runs fn(0) … fn(n-1), at most parallel at once, and returns
// the first error (the calls not started by then are skipped).
func forEach(ctx context.Context, n, parallel int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// signUpAll signs up the users of ccfg(0) to ccfg(cfg.Clients-1).
func signUpAll(ctx context.Context, cfg Config, ccfg func(int) client.Config) error {
	err := forEach(ctx, cfg.Clients, cfg.SetupParallel, func(i int) error {
		_, err := client.SignUp(ctx, ccfg(i))
		return err
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// loginAll logs the users of ccfg in, clients[i] as ccfg(i); the caller
// logs out those that got in (logoutAll), even after an error.
func loginAll(ctx context.Context, cfg Config, ccfg func(int) client.Config, clients []*client.Client) error {
	err := forEach(ctx, cfg.Clients, cfg.SetupParallel, func(i int) error {
		c, err := client.Login(ctx, ccfg(i))
		clients[i] = c
		return err
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// logoutAll logs out the clients that logged in (closing those whose
// logout fails).
func logoutAll(clients []*client.Client, parallel int) {
	ctx, cancel := context.WithTimeout(context.Background(), logoutTimeout)
	defer cancel()
	_ = forEach(ctx, len(clients), parallel, func(i int) error {
		if c := clients[i]; c != nil {
			if err := c.Logout(ctx); err != nil {
				_ = c.Close()
			}
		}
		return nil // one failed logout does not skip the others
	})
}
