package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// cluster starts an in-process cluster of n chat servers and returns a
// Config aimed at it.
func cluster(t *testing.T, n int) Config {
	c := servertest.New(t, servertest.Options{Servers: n})
	return Config{
		Central: c.RegistryAddr(),
		Dial: func(ctx context.Context, addr string, cb *rmi.Table) (client.Conn, error) {
			return c.Dial(ctx, addr, cb)
		},
		Logger: rmitest.QuietLogger(),
	}
}

func TestRunCountsAndChecks(t *testing.T) {
	cfg := cluster(t, 2)
	cfg.Clients, cfg.Messages, cfg.Size, cfg.Inflight = 4, 6, 10, 2
	cfg.DiskProbe = t.TempDir()
	var progressed atomic.Int64
	cfg.Progress = func(p Progress) {
		if p.Posts != 24 || p.Deliveries != 4*24 {
			t.Errorf("progress %+v: want 24 posts and 96 deliveries to make", p)
		}
		progressed.Add(1)
	}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("checks failed: %+v", rep.Checks)
	}
	if rep.Posts != 24 || rep.PostErrors != 0 || rep.Deliveries != 24*3 {
		t.Fatalf("posts %d (errors %d), deliveries %d: want 24, 0, 72", rep.Posts, rep.PostErrors, rep.Deliveries)
	}
	if rep.Latency.N != 72 || rep.Ack.N != 24 || rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 || rep.Latency.P99 < rep.Latency.P50 {
		t.Fatalf("latency %+v, ack %+v", rep.Latency, rep.Ack)
	}
	placed := 0
	for s, n := range rep.Placement {
		if !strings.HasPrefix(s, "server-") {
			t.Errorf("placement names %q", s)
		}
		placed += n
	}
	if placed != 4 {
		t.Fatalf("placement %v: want 4 clients", rep.Placement)
	}
	if rep.ServerCPUPerDelivery != nil || rep.ServerRSS != nil {
		t.Fatal("server figures without Config.ServerUsage")
	}
	if rep.Seconds <= 0 || rep.DeliveriesPerSec <= 0 || rep.PostsPerSec <= 0 {
		t.Fatalf("rates %+v", rep)
	}
	if progressed.Load() < 1 {
		t.Fatal("Progress was never called")
	}
	if rep.DiskSync == nil {
		t.Fatal("no disk sync figures with Config.DiskProbe")
	}
	wantText(t, rep, "each message once at every member ok", "server CPU          n/a", "syncs of 128 B, one every 50ms")
}

// TestDiskProbe: the probe appends and syncs once per 50 ms of its clock,
// in a file of its own in the directory, which it removes when finished,
// and reports as many syncs.
func TestDiskProbe(t *testing.T) {
	dir := t.TempDir()
	clk := clocktest.New()
	p, err := startDiskProbe(dir, clk)
	if err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("the probe's directory holds %v (%v), want its one file", files, err)
	}
	probed := filepath.Join(dir, files[0].Name())
	for i := 1; i <= 3; i++ {
		clk.Add(probeEvery)
		rmitest.WaitFor(t, fmt.Sprintf("probe write %d", i), func() bool {
			fi, err := os.Stat(probed)
			return err == nil && fi.Size() == int64(i*probeBytes)
		})
	}
	d, err := p.finish()
	if err != nil || d.N != 3 {
		t.Fatalf("finish: %+v, %v; want 3 syncs", d, err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("after finish the directory still holds %v", files)
	}
}

// wantText fails the test unless rep's text report has every line.
func wantText(t *testing.T, rep interface{ WriteText(io.Writer) }, lines ...string) {
	t.Helper()
	var text strings.Builder
	rep.WriteText(&text)
	for _, line := range lines {
		if !strings.Contains(text.String(), line) {
			t.Errorf("text report without %q:\n%s", line, text.String())
		}
	}
}

func TestRunServerUsage(t *testing.T) {
	cfg := cluster(t, 1)
	cfg.Clients, cfg.Messages = 2, 3
	calls := 0
	cfg.ServerUsage = func() (ServerUsage, error) {
		calls++
		return ServerUsage{CPU: time.Duration(calls) * time.Microsecond, RSS: 1 << 20, PeakRSS: 2 << 20,
			Reads: int64(12 * calls), Writes: int64(3 * calls), SyscallsKnown: true}, nil
	}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 1 µs of CPU over 6 deliveries.
	if calls != 2 || rep.ServerCPUPerDelivery == nil || *rep.ServerCPUPerDelivery != 1.0/6 || *rep.ServerRSS != 1<<20 || *rep.ServerPeakRSS != 2<<20 {
		t.Fatalf("%d calls; server figures %v %v %v", calls, rep.ServerCPUPerDelivery, rep.ServerRSS, rep.ServerPeakRSS)
	}
	// 12 reads and 3 writes over 6 deliveries.
	if s := rep.ServerSyscallsPerDelivery; s == nil || s.Reads != 2 || s.Writes != 0.5 {
		t.Fatalf("server syscalls %v", s)
	}
	wantText(t, rep, "server syscalls     2.00 reads, 0.50 writes per delivery")
}

// Servers whose system calls are not known have no syscall figures.
func TestRunServerSyscallsUnknown(t *testing.T) {
	cfg := cluster(t, 1)
	cfg.Clients, cfg.Messages = 2, 1
	cfg.ServerUsage = func() (ServerUsage, error) { return ServerUsage{CPU: time.Microsecond}, nil }
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ServerCPUPerDelivery == nil || rep.ServerSyscallsPerDelivery != nil {
		t.Fatalf("server figures %v, syscalls %v", rep.ServerCPUPerDelivery, rep.ServerSyscallsPerDelivery)
	}
	wantText(t, rep, "server syscalls     n/a")
}

func TestReadProcIO(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "rchar: 1\nwchar: 2\nsyscr: 345\nsyscw: 67\nread_bytes: 0\n")
	if r, w, err := ReadProcIO(good); err != nil || r != 345 || w != 67 {
		t.Fatalf("ReadProcIO(good) = %d, %d, %v; want 345, 67", r, w, err)
	}
	for name, text := range map[string]string{
		"missing": "rchar: 1\nsyscr: 3\n",
		"garbled": "syscr: three\nsyscw: 4\n",
		"empty":   "",
	} {
		if _, _, err := ReadProcIO(write(name, text)); err == nil {
			t.Errorf("ReadProcIO(%s): no error", name)
		}
	}
	if _, _, err := ReadProcIO(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadProcIO(absent) = %v, want fs.ErrNotExist", err)
	}
	if runtime.GOOS == "linux" {
		if r, _, err := ReadProcIO("/proc/self/io"); err != nil || r <= 0 {
			t.Errorf("ReadProcIO(/proc/self/io) = %d reads, %v", r, err)
		}
	}
}

func TestRunDroppedDeliveryFails(t *testing.T) {
	cfg := cluster(t, 2)
	cfg.Clients, cfg.Messages, cfg.RunID = 3, 4, "drop"
	// The lost delivery never comes: the run stops waiting for it once
	// no delivery has come for Stall, on the run's clock, which the test
	// moves on once every other delivery is in.
	clk := clocktest.New()
	cfg.Clock, cfg.Stall = clk, time.Minute
	var arrived atomic.Int64
	cfg.drop = func(member int, m chatapi.Message) bool {
		arrived.Add(1)
		return member == 2 && m.ID == id(0, 1)
	}
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(t.Context(), cfg)
		done <- result{rep, err}
	}()
	rmitest.WaitFor(t, "every delivery but the lost one", func() bool { return arrived.Load() == 3*3*4 })
	var res result
	rmitest.WaitFor(t, "the run to give up on the lost delivery", func() bool {
		select {
		case res = <-done:
			return true
		default:
			clk.Add(15 * time.Second)
			return false
		}
	})
	rep, err := res.rep, res.err
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Checks.ExactlyOnce.OK {
		t.Fatalf("a lost delivery passed the check: %+v", rep.Checks)
	}
	want := "received message 0.1 of " + cfg.user(0) + " 0 times"
	if !strings.Contains(rep.Checks.ExactlyOnce.Detail, want) || !strings.HasPrefix(rep.Checks.ExactlyOnce.Detail, "1 missing, 0 duplicates") {
		t.Fatalf("detail %q: want one missing, %q", rep.Checks.ExactlyOnce.Detail, want)
	}
	if !rep.Checks.SameOrder.OK || rep.Deliveries != 3*4*2-1 {
		t.Fatalf("the views (the client has the message) differ, or %d deliveries: %+v", rep.Deliveries, rep.Checks)
	}
}

// TestSenderOrderCheck: the check fails when one sender's messages stand
// out of the order they were sent, and passes when they interleave with
// others' in order.
func TestSenderOrderCheck(t *testing.T) {
	cfg := Config{Clients: 2, Messages: 3, RunID: "x", Clock: clocktest.New()}
	l := newLedger(cfg, []string{"a", "b"})
	msg := func(sender, seq int) chatapi.Message {
		return chatapi.Message{Room: cfg.room(), From: []string{"a", "b"}[sender], ID: id(sender, seq)}
	}
	if c := senderOrder(l, []chatapi.Message{msg(0, 0), msg(1, 0), msg(0, 1), msg(1, 1), msg(0, 2)}); !c.OK {
		t.Fatalf("in order: %+v", c)
	}
	if c := senderOrder(l, []chatapi.Message{msg(0, 0), msg(1, 1), msg(0, 1), msg(1, 0)}); c.OK {
		t.Fatal("b's 1 before b's 0 passed the check")
	}
}

// TestLedgerDoneWhenEveryMemberHasAll: the ledger is done at the first
// arrival that completes the last member, not before (a duplicate counts
// once), and it reports how many first arrivals came and when the latest
// did, whichever member had it.
func TestLedgerDoneWhenEveryMemberHasAll(t *testing.T) {
	clk := clocktest.New()
	cfg := Config{Clients: 2, Messages: 2, RunID: "x", Clock: clk}
	l := newLedger(cfg, []string{"a", "b"})
	msg := func(sender, seq int) chatapi.Message {
		return chatapi.Message{Room: cfg.room(), From: []string{"a", "b"}[sender], ID: id(sender, seq)}
	}
	done := func() bool {
		select {
		case <-l.done:
			return true
		default:
			return false
		}
	}
	// Member 1 gets everything first, member 0 all but b's 1, twice a.0.
	steps := []struct{ member, sender, seq int }{
		{1, 0, 0}, {1, 0, 1}, {1, 1, 0}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {0, 0, 1}, {0, 1, 0},
	}
	for i, st := range steps {
		clk.Add(time.Millisecond)
		l.receive(st.member, msg(st.sender, st.seq))
		if done() {
			t.Fatalf("done after arrival %d of %d, with member 0 lacking b's 1", i+1, len(steps))
		}
	}
	if n, last := l.arrived(); n != 7 || last != 8*time.Millisecond {
		t.Fatalf("arrived() = %d, %v; want 7 first arrivals, the latest at 8ms", n, last)
	}
	clk.Add(time.Millisecond)
	l.receive(0, msg(1, 1))
	if !done() {
		t.Fatal("not done once every member has every message")
	}
	if n, last := l.arrived(); n != 8 || last != 9*time.Millisecond {
		t.Fatalf("arrived() = %d, %v; want 8, the latest at 9ms", n, last)
	}
}

// TestPacedClientsAreSpread checks that paced clients start at even
// offsets within one interval, so posts arrive evenly, not all at once.
func TestPacedClientsAreSpread(t *testing.T) {
	cfg := Config{Clients: 4, Rate: 10}
	for i, want := range []time.Duration{0, 25 * time.Millisecond, 50 * time.Millisecond, 75 * time.Millisecond} {
		if got := offset(cfg, i); got != want {
			t.Errorf("client %d of 4 at 10 posts/s starts at %v, want %v", i, got, want)
		}
	}
	cfg.Rate = 0
	if got := offset(cfg, 3); got != 0 {
		t.Errorf("unpaced client 3 starts at %v, want 0", got)
	}
}
