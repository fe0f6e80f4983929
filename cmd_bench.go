package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/client/bench"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
)

const benchDescription = `Measures fan-out, in the spirit of "nats bench": C clients (real clients,
over TLS, as "distchat client" is) join one room and each posts M messages
of S bytes, every message delivered to every member. It prints deliveries
and posts per second, the latency from a post's start to its delivery at
another member (both measured in this process), the servers' CPU per
delivery and memory, this process's CPU per delivery, the read and write
system calls per delivery of the servers and of this process (Linux's
/proc), and four checks: every post was acknowledged, every message
arrived exactly once at every member, every member ends with the
identical room log, and each sender's messages stand in it in the order
sent. The exit status is 1 if a check fails.

By default it starts a cluster of its own ("distchat up" with --servers
chat servers, in a child process, on a temporary data directory), signs
the users up, runs, and stops the cluster; the server figures are the
child's (central and the chat servers together). With --central (and
--ca) it runs against a running cluster instead, with users
bench-RUNID-I signed up there; the server figures are then n/a.

--inflight K keeps K posts in flight per client (default 1: post, wait for
the durable acknowledgement, post the next). --rate R paces each client at
R posts/s, the clients' schedules spread evenly over each 1/R seconds (so
C×R posts/s arrive evenly, as from independent users, not C at once). A
progress bar goes to stderr on a terminal, a line per second
otherwise.

--idle K measures memory instead of fan-out: it starts a cluster, signs K
users up, logs all K in and leaves them idle (each holds a connection to
central and one to its chat server), and prints the servers' resident
memory (central and the chat servers, one process) before and after the
logins, and the difference per idle client.`

// upStartTimeout bounds starting the cluster child; upStopTimeout its
// stop after SIGTERM, before it is killed.
const (
	upStartTimeout = 60 * time.Second
	upStopTimeout  = 10 * time.Second
)

// runBench is the "bench" subcommand.
func runBench(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "bench", "[--clients C] [--messages M] [--servers N] [flags]", benchDescription, "warn")
	clients := f.IntP("clients", "c", 10, "run `C` clients")
	messages := f.IntP("messages", "m", 100, "each client posts `M` messages")
	size := f.IntP("size", "s", 64, "message text of `S` bytes")
	servers := f.Int("servers", 3, "start `N` chat servers (without --central)")
	inflight := f.Int("inflight", 1, "keep `K` posts in flight per client")
	rate := f.Float64("rate", 0, "pace each client at `R` posts/s (0: as fast as allowed)")
	centralFlag := f.String("central", "", "run against the central server at `HOST:PORT` (or several of one cluster, comma-separated) instead of starting a cluster")
	idle := f.Int("idle", 0, "measure the servers' memory per idle logged-in client, with `K` clients (no load)")
	stall := f.Duration("stall", 30*time.Second, "stop waiting for missing deliveries after `D` without one")
	jsonOut := f.Bool("json", false, "print the report as one JSON object")
	tf := addTrustFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	switch {
	case *clients < 1 || *messages < 1 || *inflight < 1:
		return usagef("--clients, --messages and --inflight must be at least 1")
	case *size < 1:
		return usagef("--size %d: want at least 1", *size)
	case *servers < 1 || *servers > maxUpServers:
		return usagef("--servers %d: want 1 to %d", *servers, maxUpServers)
	case *rate < 0:
		return usagef("--rate %g: want 0 or more", *rate)
	case *idle < 0 || *idle > maxIdleClients(*servers):
		return usagef("--idle %d: want 1 to %d (central serves at most %d connections)", *idle, maxIdleClients(*servers), rmi.DefaultMaxConns)
	case *idle > 0 && *centralFlag != "":
		return usagef("--idle measures a cluster started here: it cannot take --central")
	}
	log, err := f.logger()
	if err != nil {
		return err
	}
	// Each client holds a connection to central and one to its chat
	// server, all from this one address, as do the chat servers of a
	// cluster started here: a cluster started here allows that many; a
	// running one must allow it itself (--max-conns-per-addr).
	connsNeeded := max(*clients, *idle) + *servers + 8
	if *centralFlag != "" && *clients > rmi.DefaultMaxConnsPerAddr-*servers {
		fmt.Fprintf(e.stderr, "%s bench: warning: %d clients from one address: unless the cluster runs with --max-conns-per-addr %d or more, logins beyond about %d will fail\n",
			e.prog, *clients, connsNeeded, rmi.DefaultMaxConnsPerAddr-*servers)
	}

	cfg := bench.Config{
		Clients: *clients, Messages: *messages, Size: *size, Inflight: *inflight, Rate: *rate,
		Stall: *stall, Logger: log, Progress: progressPrinter(e.stderr),
	}
	clk := clock.New()
	var trust *pki.ClientTrust
	if *centralFlag != "" {
		caddrs, err := centralAddrs(*centralFlag)
		if err != nil {
			return usagef("--central: %v", err)
		}
		if trust, err = tf.trust(e, caddrs); err != nil {
			return err
		}
		cfg.Central = strings.Join(caddrs, ",")
	} else {
		up, err := startUp(ctx, e, clk, *servers, connsNeeded)
		if err != nil {
			return err
		}
		defer up.stop()
		trust, err = pki.NewClientTrust(pki.TrustOptions{CAFile: up.ca})
		if err != nil {
			return err
		}
		cfg.Central, cfg.ServerUsage, cfg.DiskProbe = up.central, up.usage, up.dir
	}
	cfg.Dial = client.TLSDialer(rmi.DialConfig{Clock: clk, Logger: log}, trust.ClientConfig)
	if *idle > 0 {
		cfg.Clients = *idle
		return runIdle(ctx, e, cfg, *jsonOut)
	}

	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(e.stdout)
	}
	if !rep.OK() {
		return errShown // the report says which check failed
	}
	return nil
}

// maxIdleClients is the most idle clients "bench --idle" can log in to a
// cluster of n chat servers: central serves at most rmi.DefaultMaxConns
// connections, the chat servers' among them.
func maxIdleClients(n int) int { return rmi.DefaultMaxConns - n - 8 }

// runIdle runs "bench --idle" on the cluster cfg names and prints its
// report.
func runIdle(ctx context.Context, e *env, cfg bench.Config, jsonOut bool) error {
	rep, err := bench.Idle(ctx, cfg)
	if err != nil {
		return err
	}
	if jsonOut {
		return json.NewEncoder(e.stdout).Encode(rep)
	}
	rep.WriteText(e.stdout)
	return nil
}

// progressPrinter returns a bench.Config.Progress that draws a progress
// bar on w if it is a terminal, and prints a plain line otherwise.
func progressPrinter(w io.Writer) func(bench.Progress) {
	tty := isTerminal(w)
	return func(p bench.Progress) {
		done := float64(p.Delivered) / float64(max(p.Deliveries, 1))
		line := fmt.Sprintf("%5.1fs  posts %d/%d  arrivals %d/%d", p.Elapsed.Seconds(), p.Posted, p.Posts, p.Delivered, p.Deliveries)
		if !tty {
			fmt.Fprintf(w, "bench: %s\n", line)
			return
		}
		const width = 30
		n := int(done * width)
		fmt.Fprintf(w, "\r[%s%s] %3.0f%%  %s", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*done, line)
		if p.Delivered == p.Deliveries {
			fmt.Fprintln(w)
		}
	}
}

// upChild is a cluster that "distchat bench" started: "distchat up" in a
// child process.
type upChild struct {
	cmd     *exec.Cmd
	dir     string // its data directory, removed by stop
	central string // central's address
	ca      string // the cluster CA's file
	cancel  context.CancelFunc
	exited  chan error
}

// startUp starts "distchat up" with n chat servers on a temporary data
// directory (this very binary, run again) and waits until it is up.
func startUp(ctx context.Context, e *env, clk clock.Clock, n, connsPerAddr int) (*upChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	dir, err := os.MkdirTemp("", "distchat-bench-")
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cmd := exec.CommandContext(cctx, exe, "up", "--data", dir, "--servers", strconv.Itoa(n),
		"--listen", "127.0.0.1:0", "--http", "", "--server-web=false", "--log-level", "warn",
		"--max-conns-per-addr", strconv.Itoa(max(connsPerAddr, rmi.DefaultMaxConnsPerAddr)))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = upStopTimeout
	cmd.Stderr = e.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("start cluster: %w", err), os.RemoveAll(dir))
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("start cluster: %w", err), os.RemoveAll(dir))
	}
	u := &upChild{cmd: cmd, dir: dir, cancel: cancel, exited: make(chan error, 1)}
	ready := make(chan error, 1)
	go func() {
		ready <- u.readSummary(out)
		_, _ = io.Copy(io.Discard, out) // the child must never block on its stdout
		u.exited <- cmd.Wait()
	}()
	timer := clk.Timer(upStartTimeout)
	defer timer.Stop()
	select {
	case err = <-ready:
	case <-timer.C:
		err = fmt.Errorf("not up after %v", upStartTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		u.stop()
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	return u, nil
}

// readSummary reads up's output until its summary has named the central
// server's address and the CA file.
func (u *upChild) readSummary(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "central server ") && len(fields) >= 3:
			u.central = fields[2]
		case strings.HasPrefix(line, "cluster CA ") && len(fields) >= 4:
			u.ca = strings.Trim(fields[len(fields)-1], "()")
		}
		if u.central != "" && u.ca != "" {
			return nil
		}
	}
	return fmt.Errorf("up exited before printing its addresses (%v)", sc.Err())
}

// stop stops the child (SIGTERM, then SIGKILL after upStopTimeout) and
// removes its data.
func (u *upChild) stop() {
	u.cancel()
	<-u.exited
	_ = os.RemoveAll(u.dir)
}

// usage reads the child's CPU time and memory from /proc.
func (u *upChild) usage() (bench.ServerUsage, error) {
	return procUsage(u.cmd.Process.Pid)
}

// clockTicks is the unit of /proc/PID/stat's times: USER_HZ, 100 on every
// Linux platform Go supports.
const clockTicks = 100

// procUsage returns process pid's CPU time (utime+stime, from
// /proc/PID/stat), its resident memory now and at its peak (VmRSS and
// VmHWM, from /proc/PID/status), and its read and write system calls
// (from /proc/PID/io, when it may be read).
func procUsage(pid int) (bench.ServerUsage, error) {
	var u bench.ServerUsage
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return u, err
	}
	// The command name, in parentheses, may hold spaces: count the
	// fields after its closing parenthesis. utime and stime are fields
	// 14 and 15 of the line, 12 and 13 after the name.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return u, fmt.Errorf("%s/stat: unexpected format", proc)
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return u, fmt.Errorf("%s/stat: unexpected format", proc)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return u, fmt.Errorf("%s/stat: %w", proc, err)
		}
		ticks += n
	}
	u.CPU = time.Duration(ticks) * time.Second / clockTicks
	status, err := os.ReadFile(filepath.Join(proc, "status"))
	if err != nil {
		return u, err
	}
	if u.Reads, u.Writes, err = bench.ReadProcIO(filepath.Join(proc, "io")); err == nil {
		u.SyscallsKnown = true
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || key != "VmRSS" && key != "VmHWM" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return u, fmt.Errorf("%s/status: %s: %w", proc, key, err)
		}
		if key == "VmRSS" {
			u.RSS = kb << 10
		} else {
			u.PeakRSS = kb << 10
		}
	}
	return u, nil
}
