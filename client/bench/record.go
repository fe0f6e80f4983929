package bench

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distchat/distchat/server/chatapi"
)

// ledger accounts for every message of a run: when each post started, and
// what each member received. Message i is sender*M+seq.
type ledger struct {
	cfg   Config
	room  string // cfg.room(), made once: index reads it for every arrival
	users []string
	base  time.Time      // the run's clock: times are durations since base
	start []atomic.Int64 // per message: when its post started
	mem   []*member      // per client

	expected int64         // C*C*M: first arrivals, at every member
	waiting  atomic.Int64  // members that lack some message
	done     chan struct{} // closed when waiting reaches 0
}

// member is what one client received. The client serializes its
// OnMessage calls; mu orders them before the final reading.
type member struct {
	mu         sync.Mutex
	got        []uint32        // per message: how many times it arrived
	lat        []time.Duration // post start to arrival, of others' messages
	next       []int           // per sender: one more than the highest seq arrived
	outOfOrder int             // arrivals of a seq lower than one of the same sender before it
	foreign    int             // messages in the room that are none of the run's
	// arrived counts first arrivals, and last is when the latest came.
	// They are the member's own, not the ledger's: a counter that every
	// client's OnMessage wrote, on both CPUs, moved its cache line between
	// them for every arrival.
	arrived int
	last    time.Duration
}

// newLedger returns an empty ledger for cfg's run.
func newLedger(cfg Config, users []string) *ledger {
	n := cfg.Clients * cfg.Messages
	l := &ledger{
		cfg: cfg, room: cfg.room(), users: users, base: cfg.Clock.Now(), start: make([]atomic.Int64, n),
		expected: int64(cfg.Clients) * int64(n), done: make(chan struct{}),
	}
	l.waiting.Store(int64(cfg.Clients))
	for range cfg.Clients {
		// Room for the latency of every other sender's message at once:
		// grown by appends, copying it as it doubled was half of what
		// the ledger cost the load process (whose CPU bench reports as
		// the clients').
		l.mem = append(l.mem, &member{
			got: make([]uint32, n), next: make([]int, cfg.Clients),
			lat: make([]time.Duration, 0, (cfg.Clients-1)*cfg.Messages),
		})
	}
	return l
}

// now returns the time on the run's clock.
func (l *ledger) now() time.Duration { return l.cfg.Clock.Since(l.base) }

// id returns the message id of sender's post seq.
func id(sender, seq int) string { return strconv.Itoa(sender) + "." + strconv.Itoa(seq) }

// index returns the ledger index of m, if m is a message of the run.
func (l *ledger) index(m chatapi.Message) (sender, seq int, ok bool) {
	a, b, found := strings.Cut(m.ID, ".")
	if !found || m.Room != l.room {
		return 0, 0, false
	}
	sender, err1 := strconv.Atoi(a)
	seq, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || sender < 0 || sender >= l.cfg.Clients || seq < 0 || seq >= l.cfg.Messages || m.From != l.users[sender] {
		return 0, 0, false
	}
	return sender, seq, true
}

// posting records that sender's post seq starts now.
func (l *ledger) posting(sender, seq int) {
	l.start[sender*l.cfg.Messages+seq].Store(int64(l.now()))
}

// started returns when sender's post seq started.
func (l *ledger) started(sender, seq int) time.Duration {
	return time.Duration(l.start[sender*l.cfg.Messages+seq].Load())
}

// receive is client r's OnMessage.
func (l *ledger) receive(r int, m chatapi.Message) {
	t := l.now()
	if l.cfg.drop != nil && l.cfg.drop(r, m) {
		return
	}
	mem := l.mem[r]
	sender, seq, ok := l.index(m)
	mem.mu.Lock()
	if !ok {
		mem.foreign++
		mem.mu.Unlock()
		return
	}
	i := sender*l.cfg.Messages + seq
	mem.got[i]++
	complete := false
	if mem.got[i] == 1 {
		if sender != r {
			mem.lat = append(mem.lat, t-l.started(sender, seq))
		}
		if seq < mem.next[sender] {
			mem.outOfOrder++
		} else {
			mem.next[sender] = seq + 1
		}
		mem.arrived++
		mem.last = t
		complete = mem.arrived == len(mem.got)
	}
	mem.mu.Unlock()
	if complete && l.waiting.Add(-1) == 0 {
		close(l.done)
	}
}

// arrived returns how many first arrivals there were, at every member,
// and when the latest came.
func (l *ledger) arrived() (n int64, last time.Duration) {
	for _, mem := range l.mem {
		mem.mu.Lock()
		n += int64(mem.arrived)
		last = max(last, mem.last)
		mem.mu.Unlock()
	}
	return n, last
}
