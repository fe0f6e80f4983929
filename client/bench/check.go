package bench

import (
	"fmt"
	"github.com/distchat/distchat/server/chatapi"
	"time"

	"github.com/distchat/distchat/client"
)

// report builds the run's report from the ledger and m, with the
// exactly-once check (the order check needs the clients: sameOrder).
func (l *ledger) report(m measured) Report {
	cfg := l.cfg
	r := Report{
		RunID: cfg.RunID, Room: cfg.room(), Clients: cfg.Clients, Messages: cfg.Messages,
		Size: cfg.Size, Inflight: cfg.Inflight, Rate: cfg.Rate,
		Posts: m.posted, PostErrors: m.failed, Seconds: m.elapsed.Seconds(),
		Ack: latency(m.acks),
	}
	r.Checks.Posted = Check{OK: m.failed == 0}
	if m.firstErr != nil {
		r.Checks.Posted.Detail = fmt.Sprintf("%d posts failed, the first with: %v", m.failed, m.firstErr)
	}
	var lat []time.Duration
	var missing, dups, foreign int64
	firstBad := ""
	for rcv, mem := range l.mem {
		mem.mu.Lock()
		for i, n := range mem.got {
			sender, seq := i/cfg.Messages, i%cfg.Messages
			if n >= 1 && sender != rcv {
				r.Deliveries++
			}
			if n == 1 {
				continue
			}
			if n == 0 {
				missing++
			} else {
				dups += int64(n - 1)
			}
			if firstBad == "" {
				firstBad = fmt.Sprintf("%s received message %s of %s %d times", l.users[rcv], id(sender, seq), l.users[sender], n)
			}
		}
		lat = append(lat, mem.lat...)
		r.OutOfSenderOrder += int64(mem.outOfOrder)
		foreign += int64(mem.foreign)
		mem.mu.Unlock()
	}
	r.Checks.ExactlyOnce = Check{OK: missing == 0 && dups == 0 && foreign == 0}
	if !r.Checks.ExactlyOnce.OK {
		r.Checks.ExactlyOnce.Detail = fmt.Sprintf("%d missing, %d duplicates, %d foreign messages; %s", missing, dups, foreign, firstBad)
	}
	r.Latency = latency(lat)
	if s := m.elapsed.Seconds(); s > 0 {
		r.PostsPerSec = float64(m.posted) / s
		r.DeliveriesPerSec = float64(r.Deliveries) / s
	}
	perDelivery := func(d time.Duration) *float64 {
		v := 0.0
		if r.Deliveries > 0 {
			v = float64(d) / float64(time.Microsecond) / float64(r.Deliveries)
		}
		return &v
	}
	if m.selfKnown {
		r.LoadCPUPerDelivery = perDelivery(m.selfCPU)
	}
	syscalls := func(reads, writes int64) *Syscalls {
		s := Syscalls{}
		if r.Deliveries > 0 {
			s.Reads, s.Writes = float64(reads)/float64(r.Deliveries), float64(writes)/float64(r.Deliveries)
		}
		return &s
	}
	if m.selfIOKnown {
		r.LoadSyscallsPerDelivery = syscalls(m.selfReads, m.selfWrites)
	}
	r.DiskSync = m.disk
	if m.serverKnown {
		r.ServerCPUPerDelivery = perDelivery(m.serverAfter.CPU - m.serverBefore.CPU)
		r.ServerRSS, r.ServerPeakRSS = &m.serverAfter.RSS, &m.serverAfter.PeakRSS
		if m.serverBefore.SyscallsKnown && m.serverAfter.SyscallsKnown {
			r.ServerSyscallsPerDelivery = syscalls(m.serverAfter.Reads-m.serverBefore.Reads, m.serverAfter.Writes-m.serverBefore.Writes)
		}
	}
	return r
}

// sameOrder checks that every client's view of room is the identical
// sequence of messages (by stamp, sender and id).
func sameOrder(room string, users []string, clients []*client.Client) Check {
	want := clients[0].View(room)
	for i, c := range clients[1:] {
		got := c.View(room)
		for j := range max(len(got), len(want)) {
			if j >= len(got) || j >= len(want) {
				return Check{Detail: fmt.Sprintf("%s holds %d messages, %s %d", users[i+1], len(got), users[0], len(want))}
			}
			a, b := got[j], want[j]
			if a.Stamp != b.Stamp || a.From != b.From || a.ID != b.ID {
				return Check{Detail: fmt.Sprintf("at position %d %s holds %s's %s, %s holds %s's %s",
					j, users[i+1], a.From, a.ID, users[0], b.From, b.ID)}
			}
		}
	}
	return Check{OK: true}
}

// senderOrder checks that in view (any member's, as they are the same)
// each sender's messages stand in the order they were sent.
func senderOrder(l *ledger, view []chatapi.Message) Check {
	last := map[int]int{}
	for _, m := range view {
		sender, seq, ok := l.index(m)
		if !ok {
			continue
		}
		if prev, seen := last[sender]; seen && seq < prev {
			return Check{Detail: fmt.Sprintf("%s's message %d stands after their message %d", m.From, seq, prev)}
		}
		last[sender] = seq
	}
	return Check{OK: true}
}
