package kv

import (
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
}

// Get returns key's value as this transaction sees it.
func (t *Tx) Get(key string) (value []byte, ok bool, err error) {
	if op, w := t.writes[key]; w {
		return op.Value, op.Kind == OpPut, nil
	}
	if kv, r := t.reads[key]; r {
		return kv.Value, kv.ModRev != 0, nil
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

// View runs fn once on a Tx that only reads: each Get reads the store as
// it is then, with no check that the reads agree with each other (use
// Update for that). Writes in fn are an error.
func View(ctx context.Context, s Store, fn func(*Tx) error) error {
	t := &Tx{ctx: ctx, s: s, view: true}
	if err := fn(t); err != nil {
		return err
	}
	if len(t.order) > 0 {
		return fmt.Errorf("kv: View wrote %q", t.order[0])
	}
	return nil
}
