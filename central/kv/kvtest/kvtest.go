// Package kvtest is the conformance suite of kv.Store: the same tests run
// against every implementation (boltkv on a mock clock, etcdkv on an etcd
// member embedded in the test process), so that central behaves the same
// on either.
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/rmi/rmitest"
)

// Harness is what the suite needs of an implementation.
type Harness struct {
	// Open returns a fresh, empty store, closed at the test's end.
	Open func(t *testing.T) kv.Store
	// TTL is the lease TTL the lease tests use (etcd's shortest is about
	// a second).
	TTL time.Duration
	// Pass makes d of the store's time pass: a mock clock moves; a store
	// on real time leaves it nil and the tests wait.
	Pass func(d time.Duration)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Revisions", testRevisions},
		{"CreateIfAbsent", testCreateIfAbsent},
		{"CompareAllOrNothing", testCompareAllOrNothing},
		{"RangePrefixLimit", testRangePrefixLimit},
		{"ViewGetAndKeys", testViewGetAndKeys},
		{"TooManyOps", testTooManyOps},
		{"UpdateRetriesOnConflict", testUpdateRetries},
		{"UpdateReadsItsWrites", testUpdateReadsItsWrites},
		{"Leases", testLeases},
		{"LeaseExpires", testLeaseExpires},
		{"Watch", testWatch},
		{"WatchFromRevision", testWatchFromRevision},
		{"WatchEndsWithContext", testWatchEndsWithContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

var ctx = context.Background()

func put(t *testing.T, s kv.Store, ops ...kv.Op) int64 {
	t.Helper()
	ok, rev, err := s.Txn(ctx, nil, ops)
	if err != nil || !ok {
		t.Fatalf("Txn(%v): ok %v, err %v", ops, ok, err)
	}
	return rev
}

func get(t *testing.T, s kv.Store, key string) (kv.KeyValue, bool) {
	t.Helper()
	got, ok, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return got, ok
}

func revision(t *testing.T, s kv.Store) int64 {
	t.Helper()
	_, rev, err := s.Range(ctx, "", 1)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	return rev
}

// Every writing transaction takes exactly one new revision, shared by all
// its keys; a key keeps its CreateRev; a transaction that changes nothing
// takes none.
func testRevisions(t *testing.T, h Harness) {
	s := h.Open(t)
	r0 := revision(t, s)
	r1 := put(t, s, kv.Put("a", []byte("1")), kv.Put("b", []byte("2")))
	if r1 != r0+1 {
		t.Fatalf("revision after first write %d, want %d", r1, r0+1)
	}
	a, ok := get(t, s, "a")
	if !ok || string(a.Value) != "1" || a.CreateRev != r1 || a.ModRev != r1 || a.Lease != 0 {
		t.Fatalf("a = %+v (found %v), want value 1 at revision %d", a, ok, r1)
	}
	r2 := put(t, s, kv.Put("a", []byte("one")))
	a, _ = get(t, s, "a")
	if r2 != r1+1 || a.CreateRev != r1 || a.ModRev != r2 || string(a.Value) != "one" {
		t.Fatalf("after rewrite: revision %d, a = %+v; want revision %d, created %d", r2, a, r1+1, r1)
	}
	if b, _ := get(t, s, "b"); b.ModRev != r1 {
		t.Fatalf("b.ModRev = %d, want %d (untouched)", b.ModRev, r1)
	}
	if rev := put(t, s, kv.Delete("absent")); rev != r2 {
		t.Fatalf("deleting an absent key moved the revision to %d, want %d", rev, r2)
	}
	r3 := put(t, s, kv.Delete("b"))
	if _, ok := get(t, s, "b"); ok || r3 != r2+1 {
		t.Fatalf("after delete: b found %v, revision %d (want gone, %d)", ok, r3, r2+1)
	}
	r4 := put(t, s, kv.Put("b", nil))
	b, ok := get(t, s, "b")
	if !ok || len(b.Value) != 0 || b.CreateRev != r4 {
		t.Fatalf("re-created b = %+v (found %v), want empty value created at %d", b, ok, r4)
	}
}

// A compare on ModRev 0 creates a key only if it is absent.
func testCreateIfAbsent(t *testing.T, h Harness) {
	s := h.Open(t)
	ok, rev, err := s.Txn(ctx, []kv.Cmp{kv.Absent("k")}, []kv.Op{kv.Put("k", []byte("first"))})
	if err != nil || !ok {
		t.Fatalf("first create: ok %v, err %v", ok, err)
	}
	ok, rev2, err := s.Txn(ctx, []kv.Cmp{kv.Absent("k")}, []kv.Op{kv.Put("k", []byte("second"))})
	if err != nil || ok {
		t.Fatalf("second create: ok %v, err %v; want a failed compare", ok, err)
	}
	if rev2 != rev {
		t.Fatalf("a failed transaction moved the revision from %d to %d", rev, rev2)
	}
	if k, _ := get(t, s, "k"); string(k.Value) != "first" {
		t.Fatalf("k = %q, want first", k.Value)
	}
}

// A transaction over several keys writes all of them only if every
// compare holds.
func testCompareAllOrNothing(t *testing.T, h Harness) {
	s := h.Open(t)
	put(t, s, kv.Put("x", []byte("x0")), kv.Put("y", []byte("y0")))
	x, _ := get(t, s, "x")
	y, _ := get(t, s, "y")
	put(t, s, kv.Put("y", []byte("y1"))) // y moves on
	cmps := []kv.Cmp{kv.Unchanged(x), kv.Unchanged(y)}
	ops := []kv.Op{kv.Put("x", []byte("x2")), kv.Delete("y"), kv.Put("z", []byte("z2"))}
	if ok, _, err := s.Txn(ctx, cmps, ops); err != nil || ok {
		t.Fatalf("stale compare: ok %v, err %v", ok, err)
	}
	if x2, _ := get(t, s, "x"); string(x2.Value) != "x0" {
		t.Fatalf("x = %q after a failed transaction", x2.Value)
	}
	if _, ok := get(t, s, "z"); ok {
		t.Fatal("z was written by a failed transaction")
	}
	y, _ = get(t, s, "y")
	if ok, _, err := s.Txn(ctx, []kv.Cmp{kv.Unchanged(x), kv.Unchanged(y)}, ops); err != nil || !ok {
		t.Fatalf("fresh compare: ok %v, err %v", ok, err)
	}
	x2, _ := get(t, s, "x")
	z, _ := get(t, s, "z")
	if _, ok := get(t, s, "y"); ok || string(x2.Value) != "x2" || x2.ModRev != z.ModRev {
		t.Fatalf("after the transaction: y found %v, x = %+v, z = %+v", ok, x2, z)
	}
}

// Range returns a prefix's keys in order, up to a limit, at the store's
// revision.
func testRangePrefixLimit(t *testing.T, h Harness) {
	s := h.Open(t)
	rev := put(t, s, kv.Put("room/b", nil), kv.Put("room/a", []byte("A")), kv.Put("roomy", nil),
		kv.Put("room/c", nil), kv.Put("rom", nil))
	kvs, rrev, err := s.Range(ctx, "room/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(kvs); !slices.Equal(got, []string{"room/a", "room/b", "room/c"}) || rrev != rev {
		t.Fatalf("Range(room/) = %v at %d, want [room/a room/b room/c] at %d", got, rrev, rev)
	}
	if string(kvs[0].Value) != "A" || kvs[0].ModRev != rev {
		t.Fatalf("room/a = %+v", kvs[0])
	}
	kvs, _, err = s.Range(ctx, "room", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(kvs); !slices.Equal(got, []string{"room/a", "room/b"}) {
		t.Fatalf("Range(room, limit 2) = %v", got)
	}
	if kvs, _, err := s.Range(ctx, "nothing/", 0); err != nil || len(kvs) != 0 {
		t.Fatalf("Range(nothing/) = %v, %v", kvs, err)
	}
}

// A View reads values and lists the keys under a prefix (in one snapshot
// on a kv.Reader, key by key on another store); the values it returns stay
// valid after it, and only a View may list keys.
func testViewGetAndKeys(t *testing.T, h Harness) {
	s := h.Open(t)
	put(t, s, kv.Put("room/b", nil), kv.Put("room/a", []byte("A")), kv.Put("roomy", nil),
		kv.Put("room/c", nil), kv.Put("rom", nil))
	var a []byte
	var aOK, zOK bool
	var sub, none []string
	err := kv.View(ctx, s, func(tx *kv.Tx) (err error) {
		if a, aOK, err = tx.Get("room/a"); err != nil {
			return err
		}
		if _, zOK, err = tx.Get("room/z"); err != nil {
			return err
		}
		if sub, err = tx.Keys("room/"); err != nil {
			return err
		}
		none, err = tx.Keys("nothing/")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !aOK || string(a) != "A" || zOK {
		t.Fatalf("Get: room/a = %q, %v; room/z present %v", a, aOK, zOK)
	}
	if !slices.Equal(sub, []string{"a", "b", "c"}) || len(none) != 0 {
		t.Fatalf("Keys(room/) = %q, Keys(nothing/) = %q", sub, none)
	}
	put(t, s, kv.Put("room/a", []byte("B")))
	if string(a) != "A" {
		t.Fatalf("a value read in a View changed to %q after it", a)
	}
	_, err = kv.Update(ctx, s, func(tx *kv.Tx) error {
		_, err := tx.Keys("room/")
		return err
	})
	if err == nil {
		t.Fatal("Keys in an Update: no error")
	}
}

func keys(kvs []kv.KeyValue) []string {
	var out []string
	for _, p := range kvs {
		out = append(out, p.Key)
	}
	return out
}

// Both stores refuse a transaction larger than etcd's default limit.
func testTooManyOps(t *testing.T, h Harness) {
	s := h.Open(t)
	var ops []kv.Op
	for i := range kv.MaxTxnOps {
		ops = append(ops, kv.Put(fmt.Sprintf("k%03d", i), nil))
	}
	put(t, s, ops...)
	_, _, err := s.Txn(ctx, []kv.Cmp{kv.Absent("other")}, ops)
	if !errors.Is(err, kv.ErrTooManyOps) {
		t.Fatalf("Txn with %d operations: %v, want ErrTooManyOps", kv.MaxTxnOps+1, err)
	}
}

// Update runs its function again when a key it read changed before it
// committed, and then sees the new value.
func testUpdateRetries(t *testing.T, h Harness) {
	s := h.Open(t)
	put(t, s, kv.Put("n", []byte("1")))
	runs := 0
	_, err := kv.Update(ctx, s, func(tx *kv.Tx) error {
		runs++
		v, ok, err := tx.Get("n")
		if err != nil || !ok {
			return fmt.Errorf("get n: %v, %w", ok, err)
		}
		if runs == 1 {
			put(t, s, kv.Put("n", []byte("5"))) // a concurrent writer
		}
		tx.Put("n", append(v, '0'))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := get(t, s, "n"); runs != 2 || string(n.Value) != "50" {
		t.Fatalf("after %d runs n = %q, want 2 runs and 50", runs, n.Value)
	}
	// An error from the function writes nothing.
	boom := errors.New("boom")
	_, err = kv.Update(ctx, s, func(tx *kv.Tx) error { tx.Put("n", []byte("lost")); return boom })
	if n, _ := get(t, s, "n"); !errors.Is(err, boom) || string(n.Value) != "50" {
		t.Fatalf("failed Update: err %v, n = %q", err, n.Value)
	}
}

// A Tx sees its own writes and deletes; an absent key read stays a
// condition (create-if-absent through Update).
func testUpdateReadsItsWrites(t *testing.T, h Harness) {
	s := h.Open(t)
	put(t, s, kv.Put("gone", []byte("x")))
	_, err := kv.Update(ctx, s, func(tx *kv.Tx) error {
		if _, ok, _ := tx.Get("new"); ok {
			return errors.New("new exists")
		}
		tx.Put("new", []byte("v"))
		tx.Delete("gone")
		if v, ok, _ := tx.Get("new"); !ok || string(v) != "v" {
			return fmt.Errorf("own put not seen: %q %v", v, ok)
		}
		if _, ok, _ := tx.Get("gone"); ok {
			return errors.New("own delete not seen")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	_, err = kv.Update(ctx, s, func(tx *kv.Tx) error {
		runs++
		if _, ok, _ := tx.Get("late"); ok {
			return errors.New("late exists")
		}
		if runs == 1 {
			put(t, s, kv.Put("late", []byte("other")))
		}
		tx.Put("late", []byte("mine"))
		return nil
	})
	if err == nil || runs != 2 {
		t.Fatalf("create-if-absent racing a writer: err %v after %d runs, want the second run to see the key", err, runs)
	}
	if l, _ := get(t, s, "late"); string(l.Value) != "other" {
		t.Fatalf("late = %q, want other", l.Value)
	}
}

// Keys bound to a lease go with it; a lease that ended cannot be used.
func testLeases(t *testing.T, h Harness) {
	s := h.Open(t)
	id, err := s.Grant(ctx, h.TTL)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, kv.PutLease("srv/a", []byte("a"), id), kv.PutLease("srv/b", []byte("b"), id), kv.Put("other", nil))
	if a, _ := get(t, s, "srv/a"); a.Lease != id {
		t.Fatalf("srv/a lease %x, want %x", a.Lease, id)
	}
	if err := s.KeepAlive(ctx, id); err != nil {
		t.Fatalf("KeepAlive: %v", err)
	}
	// A key put again without the lease is no longer the lease's.
	put(t, s, kv.Put("srv/b", []byte("b2")))
	if err := s.Revoke(ctx, id); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, ok := get(t, s, "srv/a"); ok {
		t.Fatal("srv/a outlived its revoked lease")
	}
	if b, ok := get(t, s, "srv/b"); !ok || string(b.Value) != "b2" {
		t.Fatalf("srv/b (rewritten without the lease) = %+v, found %v", b, ok)
	}
	if _, ok := get(t, s, "other"); !ok {
		t.Fatal("a key without a lease was deleted")
	}
	if err := s.KeepAlive(ctx, id); !errors.Is(err, kv.ErrLeaseNotFound) {
		t.Fatalf("KeepAlive after Revoke: %v, want ErrLeaseNotFound", err)
	}
	if err := s.Revoke(ctx, id); !errors.Is(err, kv.ErrLeaseNotFound) {
		t.Fatalf("second Revoke: %v, want ErrLeaseNotFound", err)
	}
	_, _, err = s.Txn(ctx, nil, []kv.Op{kv.PutLease("srv/c", nil, id)})
	if !errors.Is(err, kv.ErrLeaseNotFound) {
		t.Fatalf("put with a revoked lease: %v, want ErrLeaseNotFound", err)
	}
	if _, ok := get(t, s, "srv/c"); ok {
		t.Fatal("srv/c written with a revoked lease")
	}
}

// A lease not kept alive ends after its TTL, and its keys with it; a
// watch sees them deleted.
func testLeaseExpires(t *testing.T, h Harness) {
	s := h.Open(t)
	id, err := s.Grant(ctx, h.TTL)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := s.Grant(ctx, 100*h.TTL)
	if err != nil {
		t.Fatal(err)
	}
	rev := put(t, s, kv.PutLease("srv/dead", []byte("x"), id), kv.PutLease("srv/kept", nil, kept))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := s.Watch(wctx, "srv/", rev+1)
	if h.Pass != nil {
		h.Pass(h.TTL / 2)
		if _, ok := get(t, s, "srv/dead"); !ok {
			t.Fatal("srv/dead gone at half its lease")
		}
		if err := s.KeepAlive(ctx, id); err != nil {
			t.Fatal(err)
		}
		h.Pass(h.TTL * 3 / 4) // past the first deadline, not the renewed one
		if _, ok := get(t, s, "srv/dead"); !ok {
			t.Fatal("srv/dead gone although its lease was kept alive")
		}
		h.Pass(h.TTL)
	}
	rmitest.WaitFor(t, "the lease to expire", func() bool { _, ok := get(t, s, "srv/dead"); return !ok })
	resp := <-w
	if resp.Err != nil || len(resp.Events) != 1 || resp.Events[0].Type != kv.EventDelete ||
		resp.Events[0].KV.Key != "srv/dead" || resp.Events[0].KV.Lease != id {
		t.Fatalf("watch after expiry: %+v, want the delete of srv/dead (lease %x)", resp, id)
	}
	if err := s.KeepAlive(ctx, id); !errors.Is(err, kv.ErrLeaseNotFound) {
		t.Fatalf("KeepAlive of an expired lease: %v, want ErrLeaseNotFound", err)
	}
	if _, ok := get(t, s, "srv/kept"); !ok {
		t.Fatal("srv/kept went with another lease")
	}
}

// A watch reports every change under its prefix, one response per
// revision, in order.
func testWatch(t *testing.T, h Harness) {
	s := h.Open(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rev := put(t, s, kv.Put("w/x", []byte("0")))
	w := s.Watch(wctx, "w/", rev+1)
	r1 := put(t, s, kv.Put("w/a", []byte("1")), kv.Put("elsewhere", nil), kv.Put("w/b", []byte("2")))
	put(t, s, kv.Put("elsewhere", []byte("again")))
	r2 := put(t, s, kv.Delete("w/a"))
	want := []string{fmt.Sprintf("%d put w/a=1 w/b=2", r1), fmt.Sprintf("%d delete w/a", r2)}
	var got []string
	for len(got) < len(want) {
		resp, ok := <-w
		if !ok || resp.Err != nil {
			t.Fatalf("watch ended: %v (got %v)", resp.Err, got)
		}
		got = append(got, describe(resp.Events))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("watch saw %q, want %q", got, want)
	}
}

func describe(evs []kv.Event) string {
	s := fmt.Sprint(evs[0].KV.ModRev)
	for i, ev := range evs {
		if i == 0 || ev.Type != evs[i-1].Type {
			s += map[kv.EventType]string{kv.EventPut: " put", kv.EventDelete: " delete"}[ev.Type]
		}
		s += " " + ev.KV.Key
		if ev.Type == kv.EventPut {
			s += "=" + string(ev.KV.Value)
		}
	}
	return s
}

// A watch from an earlier revision first replays what happened since.
func testWatchFromRevision(t *testing.T, h Harness) {
	s := h.Open(t)
	r1 := put(t, s, kv.Put("h/1", []byte("a")))
	r2 := put(t, s, kv.Put("h/2", []byte("b")))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := s.Watch(wctx, "h/", r1)
	r3 := put(t, s, kv.Put("h/3", []byte("c")))
	want := []string{fmt.Sprintf("%d put h/1=a", r1), fmt.Sprintf("%d put h/2=b", r2), fmt.Sprintf("%d put h/3=c", r3)}
	var got []string
	for len(got) < len(want) {
		resp, ok := <-w
		if !ok || resp.Err != nil {
			t.Fatalf("watch ended: %v (got %v)", resp.Err, got)
		}
		got = append(got, describe(resp.Events))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("watch from %d saw %q, want %q", r1, got, want)
	}
}

// Ending the context closes the watch's channel.
func testWatchEndsWithContext(t *testing.T, h Harness) {
	s := h.Open(t)
	wctx, cancel := context.WithCancel(ctx)
	w := s.Watch(wctx, "", 0)
	cancel()
	for resp := range w {
		if resp.Err == nil && len(resp.Events) > 0 {
			t.Fatalf("events after cancel: %+v", resp)
		}
	}
}
