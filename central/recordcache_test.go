package central

import (
	"path/filepath"
	"testing"

	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/central/kv/boltkv"
	"github.com/distchat/distchat/rmi/clocktest"
)

// The record cache returns what the store holds now, whoever wrote it: a
// record whose bytes changed is decoded again, one deleted is absent, and
// a corrupt one is an error, each time it is read.
func TestRecordCacheIsNeverStale(t *testing.T) {
	s, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), boltkv.Options{Clock: clocktest.New()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rc recordCache[roomRecord]
	read := func() (roomRecord, bool, error) {
		var rec roomRecord
		var ok bool
		err := kv.View(ctx, s, func(tx *kv.Tx) (err error) {
			rec, ok, err = rc.get(tx, "rooms/r")
			return err
		})
		return rec, ok, err
	}
	write := func(op kv.Op) {
		t.Helper()
		if _, _, err := s.Txn(ctx, nil, []kv.Op{op}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := read(); ok || err != nil {
		t.Fatalf("absent record: ok %v, %v", ok, err)
	}
	write(kv.Put("rooms/r", []byte(`{"creator":"ann"}`)))
	for range 2 { // decoded, then from the cache
		if rec, ok, err := read(); !ok || err != nil || rec.Creator != "ann" {
			t.Fatalf("read %+v, %v, %v; want ann's room", rec, ok, err)
		}
	}
	write(kv.Put("rooms/r", []byte(`{"creator":"bob","direct":true}`))) // as another front-end would
	if rec, ok, err := read(); !ok || err != nil || rec.Creator != "bob" || !rec.Direct {
		t.Fatalf("read %+v, %v, %v after the record changed; want bob's direct room", rec, ok, err)
	}
	write(kv.Put("rooms/r", []byte(`{"creator":`)))
	if _, _, err := read(); err == nil {
		t.Fatal("corrupt record read without error")
	}
	write(kv.Delete("rooms/r"))
	if _, ok, err := read(); ok || err != nil {
		t.Fatalf("deleted record: ok %v, %v", ok, err)
	}
	rc.forget("rooms/r")
	if len(rc.m) != 0 {
		t.Fatalf("%d records cached after forget", len(rc.m))
	}
}
