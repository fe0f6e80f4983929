package central

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/distchat/distchat/central/centralapi"
)

// legacyToken is the session token in testdata/v1/central.db: the fixture
// was written with a random source of only 7s.
var legacyToken = strings.Repeat("07", 32)

// A data directory written by the bbolt layout before the kv store
// (testdata/v1/central.db, schema 1: made by that code, with users alice,
// bob and carol, rooms lobby (alice, bob) and empty (no one), the direct
// room of alice and bob, and one session of alice's) opens, keeps every
// account, room, member and session, and is carried over once.
func TestLegacyDataDirOpens(t *testing.T) {
	e := newEnv(t)
	// newEnv opened a fresh file: put the fixture in its place.
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/v1/central.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, dbFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // carried over, then opened as it is
		e.open()
		e.register("s1")
		for _, u := range []string{"alice", "bob", "carol"} {
			e.login(u)
		}
		if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: legacyToken, Server: "s1"}); err != nil {
			t.Fatalf("round %d: the fixture's session: %v", round, err)
		}
		if got := memberNames(e.room("lobby")); !slices.Equal(got, []string{"alice", "bob"}) {
			t.Fatalf("round %d: lobby members %v", round, got)
		}
		if got := memberNames(e.room("empty")); len(got) != 0 {
			t.Fatalf("round %d: empty has members %v", round, got)
		}
		if got := memberNames(e.room(centralapi.DirectRoomName("alice", "bob"))); !slices.Equal(got, []string{"alice", "bob"}) {
			t.Fatalf("round %d: direct room members %v", round, got)
		}
		list, err := e.c.ListRooms(ctx, centralapi.UserArgs{User: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range list.Rooms {
			names = append(names, r.Name)
		}
		if want := []string{"dm:alice:bob", "empty", "lobby"}; !slices.Equal(names, want) {
			t.Fatalf("round %d: alice's rooms %v, want %v", round, names, want)
		}
		if err := e.c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The old buckets are gone: the file holds one layout only.
	db, err := bolt.Open(filepath.Join(e.dir, dbFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		for _, lb := range legacyBuckets {
			if tx.Bucket([]byte(lb.name)) != nil {
				t.Errorf("bucket %s still there", lb.name)
			}
		}
		// An older distchat reads this and refuses the file.
		if v := string(tx.Bucket([]byte("meta")).Get([]byte("schema"))); v != schemaVersion {
			t.Errorf("meta schema %q, want %q", v, schemaVersion)
		}
		return nil
	})
}

// A bbolt file of an unknown older schema is refused, untouched.
func TestLegacyUnknownSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, dbFile)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema"), []byte("0"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(Config{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), `schema version "0"`) {
		t.Fatalf("Open of a schema-0 file: %v, want a schema error", err)
	}
}
