package boltkv

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/distchat/distchat/central/kv"
)

// Grant implements kv.Store. A lease ends ttl after it was granted or last
// kept alive, on the Store's clock.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (kv.LeaseID, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("boltkv: grant: ttl %v is not positive", ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, kv.ErrClosed
	}
	s.nextLease++
	id := s.nextLease
	s.leases[id] = &lease{
		ttl:     ttl,
		expires: s.clk.Now().Add(ttl),
		timer:   s.clk.AfterFunc(ttl, func() { s.expire(id) }),
		keys:    map[string]struct{}{},
	}
	return id, nil
}

// KeepAlive implements kv.Store.
func (s *Store) KeepAlive(ctx context.Context, id kv.LeaseID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return kv.ErrClosed
	}
	l := s.leases[id]
	if l == nil {
		return fmt.Errorf("boltkv: keep lease %x alive: %w", id, kv.ErrLeaseNotFound)
	}
	l.expires = s.clk.Now().Add(l.ttl)
	l.timer.Reset(l.ttl)
	return nil
}

// Revoke implements kv.Store.
func (s *Store) Revoke(ctx context.Context, id kv.LeaseID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return kv.ErrClosed
	}
	if s.leases[id] == nil {
		return fmt.Errorf("boltkv: revoke lease %x: %w", id, kv.ErrLeaseNotFound)
	}
	if err := s.endLease(id); err != nil {
		return fmt.Errorf("boltkv: revoke lease %x: %w", id, err)
	}
	return nil
}

// expire is a lease timer's callback: the lease ends unless it was kept
// alive in the meantime (the timer then fired for an old deadline).
func (s *Store) expire(id kv.LeaseID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leases[id]
	if s.closed || l == nil || s.clk.Now().Before(l.expires) {
		return
	}
	// A failed write leaves the keys; the next opening deletes them, as
	// keys of a lease of an earlier run.
	_ = s.endLease(id)
}

// endLease forgets lease id and deletes its keys in one transaction.
// s.mu must be held.
func (s *Store) endLease(id kv.LeaseID) error {
	l := s.leases[id]
	l.timer.Stop()
	delete(s.leases, id)
	var ops []kv.Op
	for _, key := range slices.Sorted(maps.Keys(l.keys)) {
		ops = append(ops, kv.Delete(key))
	}
	if len(ops) == 0 {
		return nil
	}
	// A key put again without this lease is no longer its key; compares
	// cannot say "bound to lease id", so check before deleting.
	var keep []kv.Op
	for _, op := range ops {
		cur, ok, err := s.Get(context.Background(), op.Key)
		if err != nil {
			return err
		}
		if ok && cur.Lease == id {
			keep = append(keep, op)
		}
	}
	_, events, err := s.apply(nil, keep)
	if err != nil {
		return err
	}
	s.published(events)
	return nil
}
