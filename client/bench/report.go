package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of a run. Its JSON form is what "distchat bench
// --json" prints; figures that could not be measured are null.
type Report struct {
	RunID    string  `json:"run_id"`
	Room     string  `json:"room"`
	Clients  int     `json:"clients"`
	Messages int     `json:"messages"` // per client
	Size     int     `json:"size"`
	Inflight int     `json:"inflight"`
	Rate     float64 `json:"rate"` // posts/s per client; 0: unpaced
	// Placement counts the clients per chat server, as central placed them.
	Placement map[string]int `json:"placement"`

	// Posts counts the posts acknowledged; PostErrors those that failed.
	Posts      int64 `json:"posts"`
	PostErrors int64 `json:"post_errors"`
	// Deliveries counts the messages that arrived at a member other than
	// their sender (first arrivals only).
	Deliveries int64 `json:"deliveries"`
	// Seconds is the measured time: from the first post's start to the
	// last delivery.
	Seconds          float64 `json:"seconds"`
	PostsPerSec      float64 `json:"posts_per_sec"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	// Latency is from a post's start to its arrival at another member;
	// Ack from a post's start to its acknowledgement.
	Latency Latency `json:"latency_ms"`
	Ack     Latency `json:"ack_ms"`
	// OutOfSenderOrder counts arrivals of a message after a later message
	// of the same sender had arrived at the same member.
	OutOfSenderOrder int64 `json:"out_of_sender_order"`

	// ServerCPUPerDelivery is the servers' CPU time over the run divided
	// by Deliveries, in µs; the RSS fields are the servers' resident
	// memory after the run and at its peak. Null without
	// Config.ServerUsage.
	ServerCPUPerDelivery *float64 `json:"server_cpu_per_delivery_us"`
	ServerRSS            *int64   `json:"server_rss_bytes"`
	ServerPeakRSS        *int64   `json:"server_peak_rss_bytes"`
	// LoadCPUPerDelivery is this process's CPU time over the run divided
	// by Deliveries, in µs (null where the system does not tell).
	LoadCPUPerDelivery *float64 `json:"load_cpu_per_delivery_us"`
	// ServerSyscallsPerDelivery and LoadSyscallsPerDelivery are the read
	// and write system calls of the servers (with Config.ServerUsage) and
	// of this process over the run, per delivery; null where the system
	// does not tell. On one machine a system call costs a few µs with its
	// wake-ups, so they say where the CPU per delivery goes.
	ServerSyscallsPerDelivery *Syscalls `json:"server_syscalls_per_delivery"`
	LoadSyscallsPerDelivery   *Syscalls `json:"load_syscalls_per_delivery"`
	// DiskSync is how long the probe's append-and-sync of a few bytes
	// took on the servers' disk during the load, one every 50 ms, beside
	// the servers' own group commits; null without Config.DiskProbe.
	DiskSync *Latency `json:"disk_sync_ms"`

	Checks Checks `json:"checks"`
}

// Syscalls are read and write system calls per delivery.
type Syscalls struct {
	Reads  float64 `json:"reads"`
	Writes float64 `json:"writes"`
}

// String formats s for the text report ("n/a" when nil).
func (s *Syscalls) String() string {
	if s == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f reads, %.2f writes per delivery", s.Reads, s.Writes)
}

// Latency is a latency distribution, in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Checks are the run's correctness checks.
type Checks struct {
	// Posted: every post was acknowledged.
	Posted Check `json:"posted"`
	// ExactlyOnce: every message arrived exactly once at every member
	// (its sender included), and nothing else arrived in the room.
	ExactlyOnce Check `json:"exactly_once"`
	// SameOrder: every member's final view of the room is the identical
	// sequence of messages.
	SameOrder Check `json:"same_order"`
	// SenderOrder: in that order, each sender's messages stand in the
	// order they were sent, however many it kept in flight.
	SenderOrder Check `json:"sender_order"`
}

// Check is one check's outcome; Detail says what failed first.
type Check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// OK reports whether every check passed.
func (r Report) OK() bool {
	return r.Checks.Posted.OK && r.Checks.ExactlyOnce.OK && r.Checks.SameOrder.OK && r.Checks.SenderOrder.OK
}

// latency returns the distribution of ds, which it sorts.
func latency(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Latency{N: len(ds), P50: ms(at(0.50)), P99: ms(at(0.99)), Max: ms(ds[len(ds)-1])}
}

// WriteText writes the report for a person to read.
func (r Report) WriteText(w io.Writer) {
	pace := "unpaced"
	if r.Rate > 0 {
		pace = fmt.Sprintf("paced at %g posts/s per client", r.Rate)
	}
	fmt.Fprintf(w, "distchat bench: %d clients × %d messages of %d B, %d in flight, %s (room %s)\n",
		r.Clients, r.Messages, r.Size, r.Inflight, pace, r.Room)
	var place []string
	for _, s := range slices.Sorted(maps.Keys(r.Placement)) {
		place = append(place, fmt.Sprintf("%s %d", s, r.Placement[s]))
	}
	fmt.Fprintf(w, "  clients per server  %s\n", strings.Join(place, ", "))
	fmt.Fprintf(w, "  posts               %d in %.2f s: %.0f/s (ack p50 %.2f ms, p99 %.2f ms, max %.2f ms)\n",
		r.Posts, r.Seconds, r.PostsPerSec, r.Ack.P50, r.Ack.P99, r.Ack.Max)
	fmt.Fprintf(w, "  deliveries          %d in %.2f s: %.0f/s\n", r.Deliveries, r.Seconds, r.DeliveriesPerSec)
	fmt.Fprintf(w, "  post → delivery     p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", r.Latency.P50, r.Latency.P99, r.Latency.Max)
	if r.ServerCPUPerDelivery != nil {
		fmt.Fprintf(w, "  server CPU          %.2f µs per delivery\n", *r.ServerCPUPerDelivery)
	} else {
		fmt.Fprintf(w, "  server CPU          n/a\n")
	}
	if r.ServerRSS != nil && r.ServerPeakRSS != nil {
		fmt.Fprintf(w, "  server RSS          %.1f MiB (peak %.1f MiB)\n", mib(*r.ServerRSS), mib(*r.ServerPeakRSS))
	} else {
		fmt.Fprintf(w, "  server RSS          n/a\n")
	}
	fmt.Fprintf(w, "  server syscalls     %s\n", r.ServerSyscallsPerDelivery)
	if r.LoadCPUPerDelivery != nil {
		fmt.Fprintf(w, "  load CPU            %.2f µs per delivery (this process)\n", *r.LoadCPUPerDelivery)
	} else {
		fmt.Fprintf(w, "  load CPU            n/a\n")
	}
	fmt.Fprintf(w, "  load syscalls       %s\n", r.LoadSyscallsPerDelivery)
	if d := r.DiskSync; d != nil {
		fmt.Fprintf(w, "  disk sync (probe)   p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d syncs of %d B, one every %v)\n",
			d.P50, d.P99, d.Max, d.N, probeBytes, probeEvery)
	} else {
		fmt.Fprintf(w, "  disk sync (probe)   n/a\n")
	}
	fmt.Fprintf(w, "  out of sender order %d\n", r.OutOfSenderOrder)
	for _, c := range []struct {
		name string
		c    Check
	}{{"every post acknowledged", r.Checks.Posted}, {"each message once at every member", r.Checks.ExactlyOnce}, {"identical order at every member", r.Checks.SameOrder}, {"each sender's messages in the order sent", r.Checks.SenderOrder}} {
		verdict := "ok"
		if !c.c.OK {
			verdict = "FAILED: " + c.c.Detail
		}
		fmt.Fprintf(w, "  check: %-33s %s\n", c.name, verdict)
	}
}

// mib returns n bytes in MiB.
func mib(n int64) float64 { return float64(n) / (1 << 20) }
