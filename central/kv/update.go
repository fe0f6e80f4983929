package kv

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
)

// MaxAttempts is how many times Update runs its function before it gives
// up on a key that keeps changing under it.
const MaxAttempts = 16

// Tx is an optimistic transaction, run by Update: Get reads through to the
// store and remembers each key's ModRev; Put and Delete are buffered and
// seen by later Gets of the same Tx. Nothing is written until the
// function returns.
type Tx struct {
	ctx    context.Context
	s      Store
	reads  map[string]KeyValue // ModRev 0: read as absent (nil in a View)
	writes map[string]Op       // made at the first write
	order  []string            // keys of writes, in the order first written
	view   bool                // a View: reads are not remembered
	snap   Snapshot            // a View on a Reader: reads go here
}

// Get returns key's value as this transaction sees it.
func (t *Tx) Get(key string) (value []byte, ok bool, err error) {
	if op, w := t.writes[key]; w {
		return op.Value, op.Kind == OpPut, nil
	}
	if kv, r := t.reads[key]; r {
		return kv.Value, kv.ModRev != 0, nil
	}
	if t.snap != nil {
		v, ok, err := t.snap.Get(key)
		if err != nil || !ok {
			return nil, false, err
		}
		return bytes.Clone(v), true, nil
	}
	kv, ok, err := t.s.Get(t.ctx, key)
	if err != nil {
		return nil, false, err
	}
	if t.view {
		return kv.Value, ok, nil
	}
	if !ok {
		kv = KeyValue{Key: key}
	}
	t.reads[key] = kv
	return kv.Value, ok, nil
}

// Use calls use with key's value as this transaction sees it, if key is
// present, and reports whether it was. The value is valid only during the
// call (it may be the store's own memory): decode it there, or copy it.
func (t *Tx) Use(key string, use func(value []byte) error) (ok bool, err error) {
	if t.snap != nil && t.writes == nil {
		v, ok, err := t.snap.Get(key)
		if err != nil || !ok {
			return false, err
		}
		return true, use(v)
	}
	v, ok, err := t.Get(key)
	if err != nil || !ok {
		return false, err
	}
	return true, use(v)
}

// Keys returns what follows prefix in each key that starts with it, in key
// order. Only a View may list keys: an Update could not check at commit
// that no key was added or removed under the prefix since.
func (t *Tx) Keys(prefix string) ([]string, error) {
	if !t.view {
		return nil, fmt.Errorf("kv: Keys(%q) in an Update", prefix)
	}
	if t.snap == nil {
		kvs, _, err := t.s.Range(t.ctx, prefix, 0)
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(kvs))
		for _, p := range kvs {
			out = append(out, p.Key[len(prefix):])
		}
		return out, nil
	}
	// The suffixes go into one buffer, made one string: a few
	// allocations in all, not one per key (a room's members are listed
	// this way on every fan-out lookup).
	buf := make([]byte, 0, 1024)
	ends := make([]int, 0, 64)
	if err := t.snap.Keys(prefix, func(k []byte) error {
		buf = append(buf, k[len(prefix):]...)
		ends = append(ends, len(buf))
		return nil
	}); err != nil {
		return nil, err
	}
	all, out, start := string(buf), make([]string, len(ends)), 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out, nil
}

// Put sets key to value when the transaction commits.
func (t *Tx) Put(key string, value []byte) { t.write(Put(key, value)) }

// PutLease sets key to value, bound to lease, when the transaction commits.
func (t *Tx) PutLease(key string, value []byte, lease LeaseID) {
	t.write(PutLease(key, value, lease))
}

// Delete deletes key when the transaction commits.
func (t *Tx) Delete(key string) { t.write(Delete(key)) }

func (t *Tx) write(op Op) {
	if t.writes == nil {
		t.writes = map[string]Op{}
	}
	if _, ok := t.writes[op.Key]; !ok {
		t.order = append(t.order, op.Key)
	}
	t.writes[op.Key] = op
}

// Update runs fn in a Tx and commits its writes in one Txn whose
// conditions are that no key fn read has changed since. If one has, it
// runs fn again on fresh reads, up to MaxAttempts times (then
// ErrConflict). fn may run more than once, so it must have no effect
// other than through the Tx (results it sets in variables of the caller
// are those of the last run). An error from fn ends Update with that
// error and writes nothing. A fn that only reads still has its reads
// checked, so that they are one consistent view. It returns the revision
// of the commit.
func Update(ctx context.Context, s Store, fn func(*Tx) error) (int64, error) {
	for range MaxAttempts {
		t := &Tx{ctx: ctx, s: s, reads: map[string]KeyValue{}}
		if err := fn(t); err != nil {
			return 0, err
		}
		cmps := make([]Cmp, 0, len(t.reads))
		for _, k := range slices.Sorted(maps.Keys(t.reads)) {
			cmps = append(cmps, Unchanged(t.reads[k]))
		}
		ops := make([]Op, 0, len(t.order))
		for _, k := range t.order {
			ops = append(ops, t.writes[k])
		}
		ok, rev, err := s.Txn(ctx, cmps, ops)
		if err != nil {
			return 0, err
		}
		if ok {
			return rev, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%d attempts: %w", MaxAttempts, ErrConflict)
}

// View runs fn once on a Tx that only reads. On a store that is a Reader
// the reads are one snapshot; on another, each Get and Keys reads the
// store as it is then, with no check that the reads agree with each other
// (use Update for that). Writes in fn are an error.
func View(ctx context.Context, s Store, fn func(*Tx) error) error {
	t := &Tx{ctx: ctx, s: s, view: true}
	if r, ok := s.(Reader); ok {
		return r.Read(ctx, func(snap Snapshot) error {
			t.snap = snap
			defer func() { t.snap = nil }() // it is valid only inside Read
			return t.runView(fn)
		})
	}
	return t.runView(fn)
}

// runView runs fn on t, a View's Tx, and refuses what it wrote.
func (t *Tx) runView(fn func(*Tx) error) error {
	if err := fn(t); err != nil {
		return err
	}
	if len(t.order) > 0 {
		return fmt.Errorf("kv: View wrote %q", t.order[0])
	}
	return nil
}
