//go:build linux

// Command vmcost measures what this machine charges for the operations
// distchat's hot paths are made of, so that a benchmark figure can be set
// against what no design can go below here:
//
//	vmcost [--n N] [--gap D] [--dir DIR]
//
// It times, each N times:
//
//   - syscall: a system call that does nothing (getppid), in a tight loop;
//   - wake: a goroutine waking another that waits on a channel, and being
//     woken back (one hand-off each way, across threads);
//   - tcp: a 200-byte round trip on a loopback TCP connection to an echo
//     goroutine (a write and a read at each end, and two wake-ups);
//   - fdatasync: appending 200 bytes to a file in DIR and calling
//     fdatasync, as a group commit does; also the CPU time each costs.
//
// wake, tcp and fdatasync are timed twice: back to back (busy), and each
// after an idle pause of D (idle), as when users post a few times a
// second. On a virtual machine the second is much slower: the virtual CPU
// that halted while idle has to be woken by the host. One line per
// figure, "op=… mode=… n=… p50_us=… p90_us=…" (and cpu_us for
// fdatasync). bench/README.md shows the figures of the machine the
// project is measured on, and what they mean for issue 10's targets.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/benbjohnson/clock"
)

func main() {
	clk := clock.New()
	if err := run(os.Args[1:], os.Stdout, clk, clk.Sleep); err != nil {
		fmt.Fprintln(os.Stderr, "vmcost:", err)
		os.Exit(1)
	}
}

// errUsage is the error of a command line vmcost cannot run.
var errUsage = errors.New("usage: vmcost [--n N] [--gap D] [--dir DIR]")

// run parses args and prints every figure to out, timed on clk; pause
// makes the idle gap before each idle measurement (clk.Sleep, or a
// stand-in in tests).
func run(args []string, out io.Writer, clk clock.Clock, pause func(time.Duration)) error {
	f := flag.NewFlagSet("vmcost", flag.ContinueOnError)
	f.SetOutput(io.Discard)
	n := f.Int("n", 2000, "time each operation `N` times")
	gap := f.Duration("gap", 20*time.Millisecond, "idle pause `D` before each idle measurement")
	dir := f.String("dir", ".", "write the fdatasync test file in `DIR` (the disk a chat server's data is on)")
	if err := f.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(out, errUsage)
		f.SetOutput(out)
		f.PrintDefaults()
		return nil
	} else if err != nil {
		return fmt.Errorf("%w: %w", err, errUsage)
	}
	if f.NArg() > 0 || *n < 1 || *gap < 0 {
		return errUsage
	}
	m := &meter{out: out, clk: clk, n: *n}
	if err := m.syscalls(); err != nil {
		return err
	}
	idle := func() { pause(*gap) }
	busy := func() {}
	for _, mode := range []struct {
		name   string
		before func()
	}{{"busy", busy}, {"idle", idle}} {
		if err := m.wake(mode.name, mode.before); err != nil {
			return err
		}
		if err := m.tcp(mode.name, mode.before); err != nil {
			return err
		}
		if err := m.fdatasync(mode.name, mode.before, *dir); err != nil {
			return err
		}
	}
	return nil
}

// meter times operations and prints their figures.
type meter struct {
	out io.Writer
	clk clock.Clock
	n   int
}

// timed runs op n times, calling before ahead of each, and returns the
// durations of op, sorted.
func (m *meter) timed(before func(), op func() error) ([]time.Duration, error) {
	ds := make([]time.Duration, m.n)
	for i := range ds {
		before()
		t0 := m.clk.Now()
		if err := op(); err != nil {
			return nil, err
		}
		ds[i] = m.clk.Since(t0)
	}
	slices.Sort(ds)
	return ds, nil
}

// print writes one figure's line; extra is appended as is.
func (m *meter) print(op, mode string, sorted []time.Duration, extra string) error {
	at := func(q float64) float64 {
		return float64(sorted[int(q*float64(len(sorted)-1))]) / float64(time.Microsecond)
	}
	_, err := fmt.Fprintf(m.out, "op=%s mode=%s n=%d p50_us=%.2f p90_us=%.2f%s\n", op, mode, len(sorted), at(0.5), at(0.9), extra)
	return err
}

// syscalls times getppid in a loop of n calls, ten times, and prints the
// per-call time of each loop as the distribution.
func (m *meter) syscalls() error {
	loops := make([]time.Duration, 10)
	for i := range loops {
		t0 := m.clk.Now()
		for range m.n {
			syscall.Getppid()
		}
		loops[i] = m.clk.Since(t0) / time.Duration(m.n)
	}
	slices.Sort(loops)
	return m.print("syscall", "busy", loops, "")
}

// wake times a round of hand-offs between two goroutines.
func (m *meter) wake(mode string, before func()) error {
	ping, pong := make(chan struct{}), make(chan struct{})
	go func() {
		for range ping {
			pong <- struct{}{}
		}
	}()
	defer close(ping)
	ds, err := m.timed(before, func() error {
		ping <- struct{}{}
		<-pong
		return nil
	})
	if err != nil {
		return err
	}
	return m.print("wake", mode, ds, "")
}

// tcp times round trips to an echo goroutine over loopback TCP.
func (m *meter) tcp(mode string, before func()) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("tcp: %w", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("tcp: %w", err)
	}
	defer c.Close()
	b := make([]byte, 200)
	ds, err := m.timed(before, func() error {
		if _, err := c.Write(b); err != nil {
			return fmt.Errorf("tcp: %w", err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return fmt.Errorf("tcp: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return m.print("tcp", mode, ds, "")
}

// fdatasync times appends of 200 bytes, each made durable, to a new file
// in dir, and the CPU time (user and system, of the whole process) they
// cost on average.
func (m *meter) fdatasync(mode string, before func(), dir string) error {
	f, err := os.CreateTemp(dir, "vmcost-*.dat")
	if err != nil {
		return fmt.Errorf("fdatasync: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	b := make([]byte, 200)
	off := int64(0)
	var cpu time.Duration
	ds, err := m.timed(before, func() error {
		c0 := cpuTime()
		if _, err := f.WriteAt(b, off); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
		off += int64(len(b))
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
		cpu += cpuTime() - c0
		return nil
	})
	if err != nil {
		return err
	}
	return m.print("fdatasync", mode, ds, fmt.Sprintf(" cpu_us=%.1f", float64(cpu)/float64(m.n)/float64(time.Microsecond)))
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}
