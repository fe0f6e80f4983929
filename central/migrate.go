package central

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/central/kv/boltkv"
)

// MigrateReport is what Migrate did and found.
type MigrateReport struct {
	// Source is the bbolt file read.
	Source string
	// Kinds counts the source's keys by kind (users, sessions, rooms...).
	Kinds map[string]int
	// Total is the number of keys in the source.
	Total int
	// Copied keys were absent from the destination and are now there;
	// Present keys were there already with the same value.
	Copied, Present int
	// Conflicts are keys the destination holds with another value: they
	// are left as they are (the destination may be in use and newer).
	Conflicts []string
	// Verified is the number of source keys found in the destination
	// with the same value, after the copy; Total when all are.
	Verified int
}

// String is the report as the operator reads it.
func (r MigrateReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %s: %d keys", r.Source, r.Total)
	for i, k := range slices.Sorted(maps.Keys(r.Kinds)) {
		sep := ", "
		if i == 0 {
			sep = " ("
		}
		fmt.Fprintf(&b, "%s%s %d", sep, k, r.Kinds[k])
	}
	if len(r.Kinds) > 0 {
		b.WriteString(")")
	}
	fmt.Fprintf(&b, "\ncopied %d, already there %d, conflicting %d\n", r.Copied, r.Present, len(r.Conflicts))
	for _, k := range r.Conflicts {
		fmt.Fprintf(&b, "  conflict: %s holds another value; left as it is\n", k)
	}
	if r.Verified == r.Total {
		fmt.Fprintf(&b, "check: all %d keys match in the destination\n", r.Total)
	} else {
		fmt.Fprintf(&b, "check FAILED: %d of %d keys match in the destination\n", r.Verified, r.Total)
	}
	return b.String()
}

// ErrMigrationIncomplete: after Migrate some source key is not in the
// destination with its value (a conflict).
var ErrMigrationIncomplete = errors.New("central: migration incomplete")

// migrateBatch is how many keys one transaction of Migrate creates: a
// compare and a put each.
const migrateBatch = kv.MaxTxnOps / 2

// Migrate copies the state of the embedded central in data directory dir
// (its central.db, carried over to the current layout first if it is of
// an older one) into dst, an etcd store, and checks that every key
// arrived. It creates only keys that dst lacks, so running it twice
// changes nothing the second time, and a key dst holds with another
// value is reported, never overwritten. Central must not be running on
// dir (the file is locked). It fails with ErrMigrationIncomplete if a key
// did not arrive.
func Migrate(ctx context.Context, dir string, dst kv.Store) (MigrateReport, error) {
	rep := MigrateReport{Source: filepath.Join(dir, dbFile), Kinds: map[string]int{}}
	if _, err := os.Stat(rep.Source); err != nil {
		return rep, fmt.Errorf("central: migrate: %w", err)
	}
	src, err := boltkv.Open(rep.Source, boltkv.Options{LockTimeout: dbLockTimeout, Legacy: carryLegacy})
	if err != nil {
		return rep, fmt.Errorf("central: migrate (is central still running on %s?): %w", dir, err)
	}
	defer src.Close()
	if err := initSchema(ctx, src); err != nil {
		return rep, fmt.Errorf("central: migrate from %s: %w", rep.Source, err)
	}
	if err := initSchema(ctx, dst); err != nil {
		return rep, fmt.Errorf("central: migrate: destination: %w", err)
	}
	kvs, _, err := src.Range(ctx, "", 0)
	if err != nil {
		return rep, fmt.Errorf("central: migrate: %w", err)
	}
	var todo []kv.KeyValue
	for _, p := range kvs {
		if p.Lease != 0 {
			continue // lives only with its lease
		}
		rep.Total++
		kind, _, _ := strings.Cut(p.Key, "/")
		rep.Kinds[kind]++
		cur, ok, err := dst.Get(ctx, p.Key)
		switch {
		case err != nil:
			return rep, fmt.Errorf("central: migrate: %w", err)
		case !ok:
			todo = append(todo, p)
		case bytes.Equal(cur.Value, p.Value):
			rep.Present++
		default:
			rep.Conflicts = append(rep.Conflicts, p.Key)
		}
	}
	for batch := range slices.Chunk(todo, migrateBatch) {
		copied, present, conflicts, err := createAbsent(ctx, dst, batch)
		if err != nil {
			return rep, fmt.Errorf("central: migrate: %w", err)
		}
		rep.Copied += copied
		rep.Present += present
		rep.Conflicts = append(rep.Conflicts, conflicts...)
	}
	slices.Sort(rep.Conflicts)
	for _, p := range kvs {
		if p.Lease != 0 {
			continue
		}
		cur, ok, err := dst.Get(ctx, p.Key)
		if err != nil {
			return rep, fmt.Errorf("central: migrate: check: %w", err)
		}
		if ok && bytes.Equal(cur.Value, p.Value) {
			rep.Verified++
		}
	}
	if rep.Verified != rep.Total {
		return rep, fmt.Errorf("%d of %d keys differ in the destination: %w", rep.Total-rep.Verified, rep.Total, ErrMigrationIncomplete)
	}
	return rep, nil
}

// createAbsent creates the keys of batch in dst, in one transaction if
// none was created meanwhile, else one by one, and returns how many it
// created, how many it found created with the same value, and the keys
// found created with another value.
func createAbsent(ctx context.Context, dst kv.Store, batch []kv.KeyValue) (copied, present int, conflicts []string, err error) {
	cmps := make([]kv.Cmp, 0, len(batch))
	ops := make([]kv.Op, 0, len(batch))
	for _, p := range batch {
		cmps = append(cmps, kv.Absent(p.Key))
		ops = append(ops, kv.Put(p.Key, p.Value))
	}
	ok, _, err := dst.Txn(ctx, cmps, ops)
	if err != nil || ok {
		return len(batch), 0, nil, err
	}
	for i, p := range batch {
		ok, _, err := dst.Txn(ctx, cmps[i:i+1], ops[i:i+1])
		if err != nil {
			return copied, present, conflicts, err
		}
		if ok {
			copied++
			continue
		}
		cur, found, err := dst.Get(ctx, p.Key)
		if err != nil {
			return copied, present, conflicts, err
		}
		if found && bytes.Equal(cur.Value, p.Value) {
			present++
		} else {
			conflicts = append(conflicts, p.Key)
		}
	}
	return copied, present, conflicts, nil
}
