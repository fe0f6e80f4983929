package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benbjohnson/clock"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv/etcdkv"
	"github.com/distchat/distchat/central/kv/etcdkv/etcdtest"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/rmi/rmitest"
)

// TestAdminMigrateToEtcd: 'admin migrate --to-etcd' copies an embedded
// central's accounts and rooms into etcd, prints the counts and the
// check, changes nothing when run again, and a central on etcd serves
// what was copied.
func TestAdminMigrateToEtcd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := central.Open(central.Config{Dir: dir, Logger: rmitest.QuietLogger(), PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := c.SignUp(ctx, centralapi.SignUpArgs{User: u, Password: "correct horse"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ep := etcdtest.Start(t)
	migrate := func(args ...string) (int, string, string) {
		e, out, errOut := testEnv(nil)
		code := run(ctx, e, append([]string{"admin", "migrate"}, args...))
		return code, out.String(), errOut.String()
	}
	// meta/schema (laid out in etcd first), 2 users, 1 room, 1 member and
	// its index.
	code, out, errOut := migrate("--to-etcd", ep, "--data", dir)
	if code != exitOK || !strings.Contains(out, "6 keys (meta 1, room_members 1, rooms 1, user_rooms 1, users 2)") ||
		!strings.Contains(out, "copied 5, already there 1, conflicting 0") || !strings.Contains(out, "check: all 6 keys match") {
		t.Fatalf("admin migrate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = migrate("--to-etcd", ep, "--data", dir)
	if code != exitOK || !strings.Contains(out, "copied 0, already there 6, conflicting 0") || !strings.Contains(out, "check: all 6 keys match") {
		t.Fatalf("admin migrate, again: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := migrate("--data", dir); code != exitUsage || !strings.Contains(errOut, "--to-etcd is required") {
		t.Fatalf("admin migrate without --to-etcd: exit %d, %s", code, errOut)
	}
	if code, _, errOut := migrate("--to-etcd", ep, "--data", t.TempDir()); code != exitError || !strings.Contains(errOut, "central.db") {
		t.Fatalf("admin migrate of a dir without central.db: exit %d, %s", code, errOut)
	}

	// A central on etcd, started as 'distchat central --etcd' starts it,
	// has the accounts and the room.
	store, err := etcdkv.Open(ctx, etcdkv.Config{Endpoints: []string{ep}})
	if err != nil {
		t.Fatal(err)
	}
	caDir := t.TempDir()
	clk := clock.New()
	ca, _, err := pki.LoadOrCreateCA(caDir, clk)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := startCentral(ctx, centralOptions{dir: caDir, store: store, listen: "127.0.0.1:0",
		secret: []byte("0123456789abcdef0123456789abcdef"), ca: ca, clock: clk, log: rmitest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	ce := cp.c
	r, err := ce.Room(ctx, centralapi.RoomQuery{Room: "lobby"})
	if err != nil || len(r.Members) != 1 || r.Members[0].User != "alice" {
		t.Fatalf("lobby on etcd: %+v, %v", r, err)
	}
	found, err := ce.SearchUsers(ctx, centralapi.SearchArgs{Prefix: ""})
	if err != nil || strings.Join(found.Users, ",") != "alice,bob" {
		t.Fatalf("users on etcd: %v, %v", found.Users, err)
	}
	if _, err := ce.SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: "correct horse"}); !errors.Is(err, centralapi.ErrUserExists) {
		t.Fatalf("signing alice up again on etcd: %v, want ErrUserExists", err)
	}
	if _, err := os.Stat(filepath.Join(caDir, "central.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("central on etcd made a central.db: %v", err)
	}
}

// TestEtcdFlagsBadInput: the etcd flags of central and admin migrate, and
// those of an embedded member, refuse bad input with a clear error.
func TestEtcdFlagsBadInput(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string // in the error; "" for success
	}{
		{[]string{"--etcd", " , "}, nil, "no endpoint"},
		{[]string{"--etcd", "e1:2379", "--etcd-prefix", "distchat"}, nil, "starts and ends with /"},
		{[]string{"--etcd", "e1:2379", "--etcd-cert", "c.pem"}, nil, "give both --etcd-cert and --etcd-key"},
		{[]string{"--etcd", "e1:2379", "--etcd-ca", filepath.Join(dir, "missing.pem")}, nil, "--etcd-ca"},
		{[]string{"--etcd", "e1:2379", "--etcd-ca", pwFile}, nil, "no PEM certificate"},
		{[]string{"--etcd", "e1:2379", "--etcd-user", "root"}, nil, "needs a password"},
		{[]string{"--etcd", "e1:2379", "--etcd-user", "root"}, map[string]string{"DISTCHAT_ETCD_PASSWORD": "pw"}, ""},
		{[]string{"--etcd", "e1:2379,e2:2379", "--etcd-user", "root", "--etcd-password-file", pwFile}, nil, ""},
	} {
		e, _, _ := testEnv(tc.env)
		f := newFlagSet(e, "test", "", "", "")
		ef := addEtcdFlags(f, "etcd", "endpoints")
		if err := f.parse(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := ef.config(e)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one saying %q", tc.args, err, tc.want)
		case tc.want == "" && (cfg.Password == "" || len(cfg.Endpoints) == 0):
			t.Errorf("%v: config %+v lacks the password or endpoints", tc.args, cfg)
		}
	}
	for _, tc := range []struct {
		o    memberOptions
		want string
	}{
		{memberOptions{name: "c9", initialCluster: "c1=http://127.0.0.1:2380", clientURL: "http://127.0.0.1:2379"}, "names no member"},
		{memberOptions{name: "c1", initialCluster: "c1=http://127.0.0.1:2380", clientURL: "http://127.0.0.1:2379", certFile: "m.crt"}, "together"},
		{memberOptions{name: "c1", initialCluster: "c1=http://127.0.0.1:2380", clientURL: "http://127.0.0.1:2379", dir: dir}, ""},
	} {
		_, err := memberConfig(tc.o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.o, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one saying %q", tc.o, err, tc.want)
		}
	}
}
