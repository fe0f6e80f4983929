package central

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/central/kv/boltkv"
)

// Migrate copies every key, twice changes nothing, and a central on the
// destination serves the same accounts, sessions and rooms. (The
// destination here is another boltkv store; the distchat command's test
// migrates into etcd.)
func TestMigrate(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob")
	e.register("s1")
	l := e.login("alice")
	if _, err := e.c.CreateRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: "bob", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	dst, err := boltkv.Open(filepath.Join(t.TempDir(), "dst.db"), boltkv.Options{Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Migrate(ctx, e.dir, dst)
	if err != nil {
		t.Fatalf("Migrate: %v\n%s", err, rep)
	}
	// meta/schema (already there: the destination was laid out first),
	// 2 users, 1 session (+ its index), 1 room, 2 members (+ their index).
	if rep.Total != 10 || rep.Copied != 9 || rep.Present != 1 || rep.Verified != 10 || len(rep.Conflicts) != 0 ||
		rep.Kinds["users"] != 2 || rep.Kinds["room_members"] != 2 {
		t.Fatalf("first migration:\n%s(%+v)", rep, rep)
	}
	_, rev1, _ := dst.Range(ctx, "", 1)
	again, err := Migrate(ctx, e.dir, dst)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	_, rev2, _ := dst.Range(ctx, "", 1)
	if again.Copied != 0 || again.Present != 10 || again.Verified != 10 || rev2 != rev1 {
		t.Fatalf("second migration wrote (revision %d -> %d):\n%s", rev1, rev2, again)
	}
	if !strings.Contains(again.String(), "check: all 10 keys match") {
		t.Fatalf("report does not state the check:\n%s", again)
	}

	// A key changed in the destination is a conflict: kept, reported.
	if _, _, err := dst.Txn(ctx, nil, []kv.Op{kv.Put(prefixRoomMembers+"lobby/alice", []byte("x"))}); err != nil {
		t.Fatal(err)
	}
	bad, err := Migrate(ctx, e.dir, dst)
	if !errors.Is(err, ErrMigrationIncomplete) || len(bad.Conflicts) != 1 || bad.Verified != 9 {
		t.Fatalf("migration onto a conflicting key: %v\n%s", err, bad)
	}
	if got, _, _ := dst.Get(ctx, prefixRoomMembers+"lobby/alice"); string(got.Value) != "x" {
		t.Fatalf("conflicting key overwritten with %q", got.Value)
	}
	if _, _, err := dst.Txn(ctx, nil, []kv.Op{kv.Put(prefixRoomMembers+"lobby/alice", nil)}); err != nil {
		t.Fatal(err)
	}

	// A central on the destination has it all.
	cfg := e.config()
	cfg.Dir, cfg.Store = "", dst
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s1", Addr: "127.0.0.1:7000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckSession(ctx, centralapi.SessionArgs{Token: l.Token, Server: "s1"}); err != nil {
		t.Fatalf("alice's session after the migration: %v", err)
	}
	if _, err := c.Login(ctx, centralapi.LoginArgs{User: "bob", Password: pw}); err != nil {
		t.Fatalf("bob's login after the migration: %v", err)
	}
	r, err := c.Room(ctx, centralapi.RoomQuery{Room: "lobby"})
	if err != nil || len(r.Members) != 2 {
		t.Fatalf("lobby after the migration: %+v, %v", r, err)
	}
}

// Migrating a directory without a central.db fails, and creates nothing.
func TestMigrateNoSource(t *testing.T) {
	dir := t.TempDir()
	dst, err := boltkv.Open(filepath.Join(t.TempDir(), "dst.db"), boltkv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := Migrate(ctx, dir, dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Migrate of an empty dir: %v, want not-exist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, dbFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Migrate created %s", dbFile)
	}
}
