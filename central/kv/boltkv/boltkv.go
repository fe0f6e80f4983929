// Package boltkv is the kv.Store of one process: a bbolt file. It is
// central's default store, and the one the simulator runs.
//
// Layout: bucket "kv" maps each key to its record (create revision, mod
// revision and lease, 8 bytes each, big-endian, then the value); bucket
// "kv_meta" holds the store's revision under "rev". Leases live in memory
// (with the injected clock), as etcd's would in a cluster that restarts
// from nothing: a key bound to a lease of an earlier run is deleted when
// the file is opened. Watch history is kept in memory too, from the
// opening on (a watch from an earlier revision gets kv.ErrCompacted).
package boltkv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	bolt "go.etcd.io/bbolt"

	"github.com/distchat/distchat/central/kv"
)

var (
	bucketKV   = []byte("kv")
	bucketMeta = []byte("kv_meta")
	keyRev     = []byte("rev")
)

// recordHeader is the size of a record's revisions and lease.
const recordHeader = 24

// DefaultHistory is how many recent events a Store keeps for watches that
// start from an earlier revision.
const DefaultHistory = 10000

// Options configure Open.
type Options struct {
	// Clock times the leases; nil means clock.New().
	Clock clock.Clock
	// LockTimeout bounds the wait for another process's lock on the file;
	// zero waits 2 s.
	LockTimeout time.Duration
	// History is how many events are kept for watches; zero means
	// DefaultHistory.
	History int
	// Legacy, if set, is called once, inside the transaction that lays out
	// a file without the kv buckets, to carry an older layout's data over:
	// it calls put for each key (all at the first revision) and may delete
	// the old buckets. An error aborts the opening and changes nothing.
	Legacy func(tx *bolt.Tx, put func(key string, value []byte) error) error
}

// Store is a kv.Store on a bbolt file.
type Store struct {
	db      *bolt.DB
	clk     clock.Clock
	history int

	// mu serialises the writes, and guards the state below and the
	// events' order.
	mu        sync.Mutex
	closed    bool
	rev       int64 // the store's revision, as in the file
	nextLease kv.LeaseID
	leases    map[kv.LeaseID]*lease
	events    []revEvents // history, oldest first
	compacted int64       // the newest revision not in events (history starts after it)
	watchers  map[*watcher]struct{}
}

// lease is a live lease and the keys bound to it.
type lease struct {
	ttl     time.Duration
	expires time.Time
	timer   *clock.Timer
	keys    map[string]struct{}
}

// revEvents are the events of one revision.
type revEvents struct {
	rev    int64
	events []kv.Event
}

// Open opens (creating if needed) the store in the bbolt file at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, fmt.Errorf("boltkv: open %s: %w", path, err)
	}
	s := &Store{db: db, clk: opts.Clock, history: opts.History,
		leases: map[kv.LeaseID]*lease{}, watchers: map[*watcher]struct{}{}}
	if err := db.Update(func(tx *bolt.Tx) error { return s.layout(tx, opts.Legacy) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltkv: %s: %w", path, err)
	}
	s.compacted = s.rev
	return s, nil
}

// layout creates the buckets (carrying legacy data over), reads the
// revision, and deletes the keys of leases of an earlier run.
func (s *Store) layout(tx *bolt.Tx, legacy func(*bolt.Tx, func(string, []byte) error) error) error {
	if tx.Bucket(bucketKV) == nil {
		b, err := tx.CreateBucket(bucketKV)
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if legacy != nil {
			put := func(key string, value []byte) error {
				s.rev = 1
				return b.Put([]byte(key), encode(record{createRev: 1, modRev: 1, value: value}))
			}
			if err := legacy(tx, put); err != nil {
				return fmt.Errorf("carrying the older layout over: %w", err)
			}
		}
		return meta.Put(keyRev, u64(s.rev))
	}
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return errors.New("bucket kv without kv_meta")
	}
	raw := meta.Get(keyRev)
	if len(raw) != 8 {
		return errors.New("corrupt revision in kv_meta")
	}
	s.rev = int64(binary.BigEndian.Uint64(raw))
	b := tx.Bucket(bucketKV)
	var stale [][]byte
	err := b.ForEach(func(k, v []byte) error {
		r, err := decode(v)
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		if r.lease != 0 {
			stale = append(stale, k)
		}
		return nil
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	s.rev++
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return meta.Put(keyRev, u64(s.rev))
}

// Close releases the store: the leases stop (their keys stay until the
// next opening deletes them) and the watches end with kv.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, l := range s.leases {
		l.timer.Stop()
	}
	ws := s.watchers
	s.watchers = nil
	s.mu.Unlock()
	for w := range ws {
		w.end(kv.ErrClosed)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltkv: close: %w", err)
	}
	return nil
}

// Get implements kv.Store.
func (s *Store) Get(ctx context.Context, key string) (kv.KeyValue, bool, error) {
	var out kv.KeyValue
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketKV).Get([]byte(key))
		if raw == nil {
			return nil
		}
		r, err := decode(raw)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		out, ok = r.keyValue(key), true
		return nil
	})
	if err != nil {
		return kv.KeyValue{}, false, fmt.Errorf("boltkv: get: %w", err)
	}
	return out, ok, nil
}

// Range implements kv.Store.
func (s *Store) Range(ctx context.Context, prefix string, limit int) ([]kv.KeyValue, int64, error) {
	var out []kv.KeyValue
	var rev int64
	err := s.db.View(func(tx *bolt.Tx) error {
		rev = int64(binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keyRev)))
		c := tx.Bucket(bucketKV).Cursor()
		p := []byte(prefix)
		// Count first, so that the result and its keys take two
		// allocations, not a few per key (a room's members are read
		// this way on every fan-out lookup).
		n, size := 0, 0
		for k, _ := c.Seek(p); k != nil && hasPrefix(k, p) && (limit <= 0 || n < limit); k, _ = c.Next() {
			n++
			size += len(k)
		}
		out = make([]kv.KeyValue, 0, n)
		buf := make([]byte, 0, size)
		k, _ := c.Seek(p)
		for i := 0; i < n; i++ {
			buf = append(buf, k...)
			k, _ = c.Next()
		}
		keys, off := string(buf), 0
		for k, v := c.Seek(p); len(out) < n; k, v = c.Next() {
			r, err := decode(v)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			out = append(out, r.keyValue(keys[off:off+len(k)]))
			off += len(k)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("boltkv: range: %w", err)
	}
	return out, rev, nil
}

// Read implements kv.Reader: fn reads in one bbolt read transaction.
func (s *Store) Read(ctx context.Context, fn func(kv.Snapshot) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(snapshot{tx.Bucket(bucketKV)}) })
}

// snapshot is a kv.Snapshot on a bbolt read transaction.
type snapshot struct{ b *bolt.Bucket }

func (sn snapshot) Get(key string) ([]byte, bool, error) {
	raw := sn.b.Get([]byte(key))
	if raw == nil {
		return nil, false, nil
	}
	if len(raw) < recordHeader {
		return nil, false, fmt.Errorf("boltkv: key %q: record of %d bytes, want at least %d", key, len(raw), recordHeader)
	}
	return raw[recordHeader:], true, nil
}

func (sn snapshot) Keys(prefix string, fn func(key []byte) error) error {
	p := []byte(prefix)
	c := sn.b.Cursor()
	for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Txn implements kv.Store.
func (s *Store) Txn(ctx context.Context, cmps []kv.Cmp, ops []kv.Op) (bool, int64, error) {
	if len(cmps)+len(ops) > kv.MaxTxnOps {
		return false, 0, fmt.Errorf("boltkv: %d compares and %d writes: %w", len(cmps), len(ops), kv.ErrTooManyOps)
	}
	if err := ctx.Err(); err != nil {
		return false, 0, fmt.Errorf("boltkv: txn: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, 0, kv.ErrClosed
	}
	for _, op := range ops {
		if op.Kind == kv.OpPut && op.Lease != 0 && s.leases[op.Lease] == nil {
			return false, 0, fmt.Errorf("boltkv: put %q with lease %x: %w", op.Key, op.Lease, kv.ErrLeaseNotFound)
		}
	}
	ok, events, err := s.apply(cmps, ops)
	if err != nil {
		return false, 0, fmt.Errorf("boltkv: txn: %w", err)
	}
	s.published(events)
	return ok, s.rev, nil
}

// apply runs one transaction in bbolt and returns its events (none if it
// changed nothing). s.mu must be held.
func (s *Store) apply(cmps []kv.Cmp, ops []kv.Op) (ok bool, events []kv.Event, err error) {
	next := s.rev + 1
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV)
		for _, c := range cmps {
			var mod int64
			if raw := b.Get([]byte(c.Key)); raw != nil {
				r, err := decode(raw)
				if err != nil {
					return fmt.Errorf("key %q: %w", c.Key, err)
				}
				mod = r.modRev
			}
			if mod != c.ModRev {
				return nil
			}
		}
		ok = true
		events = nil
		for _, op := range ops {
			ev, err := applyOp(b, op, next)
			if err != nil {
				return err
			}
			if ev != nil {
				events = append(events, *ev)
			}
		}
		if len(events) == 0 {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(keyRev, u64(next))
	})
	if err != nil {
		return false, nil, err
	}
	if len(events) > 0 {
		s.rev = next
	}
	return ok, events, nil
}

// applyOp writes one op at revision rev and returns its event, or nil if
// it changed nothing (deleting an absent key).
func applyOp(b *bolt.Bucket, op kv.Op, rev int64) (*kv.Event, error) {
	key := []byte(op.Key)
	raw := b.Get(key)
	var old record
	if raw != nil {
		var err error
		if old, err = decode(raw); err != nil {
			return nil, fmt.Errorf("key %q: %w", op.Key, err)
		}
	}
	switch op.Kind {
	case kv.OpPut:
		r := record{createRev: rev, modRev: rev, lease: op.Lease, value: op.Value}
		if raw != nil {
			r.createRev = old.createRev
		}
		if err := b.Put(key, encode(r)); err != nil {
			return nil, err
		}
		return &kv.Event{Type: kv.EventPut, KV: r.keyValue(op.Key)}, nil
	case kv.OpDelete:
		if raw == nil {
			return nil, nil
		}
		if err := b.Delete(key); err != nil {
			return nil, err
		}
		return &kv.Event{Type: kv.EventDelete, KV: kv.KeyValue{Key: op.Key, ModRev: rev, Lease: old.lease}}, nil
	}
	return nil, fmt.Errorf("key %q: unknown op kind %d", op.Key, op.Kind)
}

// published records a transaction's events: the leases' key sets, the
// history, and the watches. s.mu must be held.
func (s *Store) published(events []kv.Event) {
	if len(events) == 0 {
		return
	}
	for _, ev := range events {
		if ev.KV.Lease == 0 {
			continue
		}
		if l := s.leases[ev.KV.Lease]; l != nil {
			if ev.Type == kv.EventPut {
				l.keys[ev.KV.Key] = struct{}{}
			} else {
				delete(l.keys, ev.KV.Key)
			}
		}
	}
	// A put that moved a key off a lease leaves it in the old lease's set;
	// expiring that lease checks the key's current lease (expire).
	s.events = append(s.events, revEvents{rev: s.rev, events: events})
	if len(s.events) > s.history {
		s.compacted = s.events[0].rev
		s.events = s.events[1:]
	}
	for w := range s.watchers {
		w.send(s.rev, events)
	}
}

// record is a key's stored form.
type record struct {
	createRev, modRev int64
	lease             kv.LeaseID
	value             []byte
}

func (r record) keyValue(key string) kv.KeyValue {
	return kv.KeyValue{Key: key, Value: r.value, CreateRev: r.createRev, ModRev: r.modRev, Lease: r.lease}
}

func encode(r record) []byte {
	out := make([]byte, recordHeader+len(r.value))
	binary.BigEndian.PutUint64(out[0:], uint64(r.createRev))
	binary.BigEndian.PutUint64(out[8:], uint64(r.modRev))
	binary.BigEndian.PutUint64(out[16:], uint64(r.lease))
	copy(out[recordHeader:], r.value)
	return out
}

func decode(raw []byte) (record, error) {
	if len(raw) < recordHeader {
		return record{}, fmt.Errorf("record of %d bytes, want at least %d", len(raw), recordHeader)
	}
	return record{
		createRev: int64(binary.BigEndian.Uint64(raw[0:])),
		modRev:    int64(binary.BigEndian.Uint64(raw[8:])),
		lease:     kv.LeaseID(binary.BigEndian.Uint64(raw[16:])),
		// bbolt's memory is valid only inside the transaction.
		value: append([]byte(nil), raw[recordHeader:]...),
	}, nil
}

func u64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}
