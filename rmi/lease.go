package rmi

import (
	"fmt"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// Leases tracks leases on remote references, the way Java's distributed
// garbage collector does: a holder must renew its lease before it runs out,
// and when one runs out the owner learns that the holder is gone. Expiry is
// driven by clock.AfterFunc on the injected clock; Leases starts no
// goroutines of its own. It is safe for concurrent use.
type Leases struct {
	clk      clock.Clock
	onExpire func(id string)

	mu     sync.Mutex
	leases map[string]*lease
	gen    uint64
	closed bool
}

type lease struct {
	gen   uint64 // identifies the timer that may expire it
	until time.Time
	timer *clock.Timer
}

// NewLeases returns an empty lease table. onExpire (which may be nil) is
// called, outside any lock, with the id of each lease that runs out; it is
// not called for revoked leases or after Close.
func NewLeases(clk clock.Clock, onExpire func(id string)) *Leases {
	return &Leases{clk: clk, onExpire: onExpire, leases: map[string]*lease{}}
}

// Grant gives id a lease of ttl, replacing any lease it holds.
func (l *Leases) Grant(id string, ttl time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.arm(id, ttl)
}

// arm (re)starts id's lease; l.mu must be held.
func (l *Leases) arm(id string, ttl time.Duration) {
	if old := l.leases[id]; old != nil {
		old.timer.Stop()
	}
	l.gen++
	gen := l.gen
	l.leases[id] = &lease{
		gen:   gen,
		until: l.clk.Now().Add(ttl),
		timer: l.clk.AfterFunc(ttl, func() { l.expire(id, gen) }),
	}
}

// Renew extends id's lease to ttl from now. It fails, wrapping
// ErrLeaseExpired, if id holds no lease or its lease has run out.
func (l *Leases) Renew(id string, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	le := l.leases[id]
	if l.closed || le == nil || !l.clk.Now().Before(le.until) {
		return fmt.Errorf("lease %q: %w", id, ErrLeaseExpired)
	}
	l.arm(id, ttl)
	return nil
}

// Revoke ends id's lease without calling onExpire. It reports whether id
// held a lease that had not run out.
func (l *Leases) Revoke(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	le := l.leases[id]
	if le == nil {
		return false
	}
	le.timer.Stop()
	delete(l.leases, id)
	return l.clk.Now().Before(le.until)
}

// Held reports whether id holds a lease that has not run out.
func (l *Leases) Held(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	le := l.leases[id]
	return le != nil && l.clk.Now().Before(le.until)
}

func (l *Leases) expire(id string, gen uint64) {
	l.mu.Lock()
	le := l.leases[id]
	if l.closed || le == nil || le.gen != gen {
		l.mu.Unlock()
		return
	}
	delete(l.leases, id)
	l.mu.Unlock()
	if l.onExpire != nil {
		l.onExpire(id)
	}
}

// Close stops every lease timer; no lease expires after it.
func (l *Leases) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for id, le := range l.leases {
		le.timer.Stop()
		delete(l.leases, id)
	}
}
