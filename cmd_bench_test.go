package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// TestBenchCommand runs "distchat bench" end to end: it starts its own
// cluster (up, as a child), runs, and prints a JSON report.
func TestBenchCommand(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.CommandContext(t.Context(), bin, "bench", "--clients", "3", "--messages", "5", "--servers", "2", "--json")
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	var rep struct {
		Clients, Messages, Size int
		Posts, Deliveries       int64
		DeliveriesPerSec        float64 `json:"deliveries_per_sec"`
		Placement               map[string]int
		Latency                 struct{ N int }                  `json:"latency_ms"`
		ServerCPUPerDelivery    *float64                         `json:"server_cpu_per_delivery_us"`
		ServerRSS               *int64                           `json:"server_rss_bytes"`
		LoadCPUPerDelivery      *float64                         `json:"load_cpu_per_delivery_us"`
		ServerSyscalls          *struct{ Reads, Writes float64 } `json:"server_syscalls_per_delivery"`
		LoadSyscalls            *struct{ Reads, Writes float64 } `json:"load_syscalls_per_delivery"`
		Checks                  map[string]struct{ OK bool }
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if rep.Clients != 3 || rep.Messages != 5 || rep.Size != 64 || rep.Posts != 15 || rep.Deliveries != 15*2 || rep.Latency.N != 30 {
		t.Fatalf("report %s", out)
	}
	placed := 0
	for _, n := range rep.Placement {
		placed += n
	}
	if placed != 3 || len(rep.Placement) < 1 || len(rep.Placement) > 2 {
		t.Fatalf("placement %v over 2 servers", rep.Placement)
	}
	if rep.DeliveriesPerSec <= 0 || rep.LoadCPUPerDelivery == nil {
		t.Fatalf("figures missing: %s", out)
	}
	if runtime.GOOS == "linux" && (rep.ServerCPUPerDelivery == nil || rep.ServerRSS == nil || *rep.ServerRSS <= 0 ||
		rep.ServerSyscalls == nil || rep.ServerSyscalls.Reads <= 0 || rep.ServerSyscalls.Writes <= 0 ||
		rep.LoadSyscalls == nil || rep.LoadSyscalls.Reads <= 0 || rep.LoadSyscalls.Writes <= 0) {
		t.Fatalf("no server figures from /proc: %s", out)
	}
	for _, name := range []string{"posted", "exactly_once", "same_order"} {
		if c, ok := rep.Checks[name]; !ok || !c.OK {
			t.Errorf("check %s: %+v (present %v)", name, c, ok)
		}
	}
}

// TestBenchIdleCommand runs "distchat bench --idle" end to end: it starts
// its own cluster, logs idle clients in, and reports their memory.
func TestBenchIdleCommand(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the servers' memory from /proc")
	}
	bin := buildBinary(t)
	cmd := exec.CommandContext(t.Context(), bin, "bench", "--idle", "4", "--servers", "2", "--json")
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("bench --idle: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	var rep struct {
		Clients   int
		Placement map[string]int
		Before    int64 `json:"server_rss_before_bytes"`
		After     int64 `json:"server_rss_after_bytes"`
		PerClient int64 `json:"server_bytes_per_idle_client"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	placed := 0
	for _, n := range rep.Placement {
		placed += n
	}
	if rep.Clients != 4 || placed != 4 || rep.Before <= 0 || rep.After <= 0 || rep.PerClient != (rep.After-rep.Before)/4 {
		t.Fatalf("report %s", out)
	}
}

func TestBenchCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--clients", "0"},
		{"bench", "--servers", "0"},
		{"bench", "--size", "0"},
		{"bench", "--rate", "-1"},
		{"bench", "stray"},
		{"bench", "--idle", "-1"},
		{"bench", "--idle", "5000"},
		{"bench", "--idle", "10", "--central", "127.0.0.1:1099"},
	} {
		e, _, errOut := testEnv(nil)
		if code := run(context.Background(), e, args); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
	}
}

func TestProcUsage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	u, err := procUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.PeakRSS < u.RSS || !u.SyscallsKnown || u.Reads <= 0 {
		t.Fatalf("usage of this process: %+v", u)
	}
}
