//go:build unix

package voice

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"
)

// envelope is one line between BenchmarkSFU and its peers' process: a
// join, or a signal for or from one participant. It is JSON, as a
// WebSocket would carry it.
type envelope struct {
	Op      string `json:"op"` // "join" or "signal"
	Channel string `json:"channel"`
	ID      string `json:"id"`
	Signal  Signal `json:"signal"`
}

// benchChildEnv names the channel count the helper process runs peers
// for; the helper runs only when it is set.
const benchChildEnv = "VOICE_BENCH_CHANNELS"

// BenchmarkSFU measures the SFU's CPU per forwarded stream: it runs
// three-person voice channels whose Go peers live in another process (this
// test binary, run as TestBenchPeers), so that the CPU time this process
// uses is the SFU's alone. One op is one second of every participant
// sending 50 Opus packets (20 ms each) and receiving the other two's.
// Metrics: ns of SFU CPU per forwarded packet, % of one core per forwarded
// stream, and three-person channels that two cores carry at 100%.
func BenchmarkSFU(b *testing.B) {
	channels := 10
	if n, err := strconv.Atoi(os.Getenv("VOICE_BENCH_N")); err == nil && n > 0 {
		channels = n
	}
	sfu, err := New(Config{Network: loopback, Logger: rmitest.QuietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer sfu.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchPeers$", "-test.count=1")
	child.Env = append(os.Environ(), fmt.Sprintf("%s=%d", benchChildEnv, channels))
	child.Stderr = os.Stderr
	toChild, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	fromChild, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	var writeMu sync.Mutex
	enc := json.NewEncoder(toChild)
	sendTo := func(ch, id string) func(Signal) {
		return func(sig Signal) {
			writeMu.Lock()
			defer writeMu.Unlock()
			_ = enc.Encode(envelope{Op: "signal", Channel: ch, ID: id, Signal: sig})
		}
	}
	go func() {
		lines := bufio.NewScanner(fromChild)
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			var e envelope
			if json.Unmarshal(lines.Bytes(), &e) != nil {
				continue // the test framework's own output
			}
			switch e.Op {
			case "join":
				if err := sfu.Join(ctx, e.Channel, e.ID, sendTo(e.Channel, e.ID)); err != nil {
					b.Error(err)
				}
			case "signal":
				_ = sfu.HandleSignal(ctx, e.Channel, e.ID, e.Signal)
			}
		}
	}()
	defer func() {
		toChild.Close() // the helper closes its peers and exits
		if err := child.Wait(); err != nil {
			b.Errorf("peers' process: %v", err)
		}
	}()

	// Wait for every participant to be connected and sending.
	rmitest.WaitForWhy(b, "every participant sending", func() (bool, string) {
		n := 0
		for _, ch := range sfu.Channels() {
			for _, p := range sfu.Participants(ch) {
				if p.Connected && p.Packets > 0 {
					n++
				}
			}
		}
		return n == 3*channels, fmt.Sprintf("%d of %d", n, 3*channels)
	})
	received := func() uint64 {
		var n uint64
		for _, ch := range sfu.Channels() {
			for _, p := range sfu.Participants(ch) {
				n += p.Packets
			}
		}
		return n
	}

	b.ResetTimer()
	cpu0, in0, start := cpuTime(b), received(), time.Now()
	for range b.N {
		time.Sleep(time.Second) // the op is one second of live media
	}
	cpu, in, wall := cpuTime(b)-cpu0, received()-in0, time.Since(start)
	b.StopTimer()

	forwarded := 2 * in // each packet goes to the two others
	streams := float64(6 * channels)
	coreShare := cpu.Seconds() / wall.Seconds() // cores busy
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(forwarded), "ns-cpu/fwd-pkt")
	b.ReportMetric(100*coreShare/streams, "%core/fwd-stream")
	b.ReportMetric(2/(coreShare/float64(channels)), "3p-channels/2cores")
	b.ReportMetric(float64(forwarded)/wall.Seconds(), "fwd-pkt/s")
}

// cpuTime is the CPU time this process used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBenchPeers is BenchmarkSFU's other process, not a test: it runs
// three Go peers in each of $VOICE_BENCH_CHANNELS channels, joins them
// through stdout and takes their signals from stdin, until stdin closes.
func TestBenchPeers(t *testing.T) {
	channels, err := strconv.Atoi(os.Getenv(benchChildEnv))
	if err != nil {
		t.Skip("the helper process of BenchmarkSFU")
	}
	var writeMu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	write := func(e envelope) {
		writeMu.Lock()
		defer writeMu.Unlock()
		_ = enc.Encode(e)
	}
	ctx := t.Context()
	peers := map[string]*Peer{}
	tones := []string{"tone_a.ogg", "tone_b.ogg", "tone_c.ogg"}
	for c := range channels {
		ch := fmt.Sprintf("ch%d", c)
		for i, tone := range tones {
			id := fmt.Sprintf("p%d", i)
			p, err := NewPeer(ctx, PeerConfig{Network: loopback, Audio: mediaFile(tone), Loop: true,
				Logger: rmitest.QuietLogger(),
				Send:   func(sig Signal) { write(envelope{Op: "signal", Channel: ch, ID: id, Signal: sig}) }})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			peers[ch+"/"+id] = p
			write(envelope{Op: "join", Channel: ch, ID: id})
		}
	}
	dec := json.NewDecoder(os.Stdin)
	for {
		var e envelope
		if err := dec.Decode(&e); err == io.EOF {
			return
		} else if err != nil {
			t.Fatal(err)
		}
		if p := peers[e.Channel+"/"+e.ID]; p != nil {
			// Answering waits for nothing remote, so in line is fine.
			if err := p.HandleSignal(ctx, e.Signal); err != nil {
				t.Log(err)
			}
		}
	}
}
