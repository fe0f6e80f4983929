package central

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/clocktest"
)

// env is a Central under test with a mock clock.
type env struct {
	t   testing.TB
	dir string
	clk *clocktest.Mock
	c   *Central
	log *rmitest.SyncBuffer
	mod func(*Config) // applied to every config, if set
}

func newEnv(t testing.TB) *env { t.Helper(); return newEnvWith(t, nil) }

func newEnvWith(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clk: clocktest.New(), log: &rmitest.SyncBuffer{}, mod: mod}
	e.clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	e.open()
	return e
}

func (e *env) config() Config {
	cfg := Config{
		Dir:          e.dir,
		Clock:        e.clk,
		Logger:       slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PasswordCost: bcrypt.MinCost,
	}
	if e.mod != nil {
		e.mod(&cfg)
	}
	return cfg
}

// open (re)opens the Central on e.dir.
func (e *env) open() {
	e.t.Helper()
	c, err := Open(e.config())
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.c = c
	e.t.Cleanup(func() { c.Close() })
}

// reopen closes and opens the Central again on the same directory.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.c.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	e.open()
}

var ctx = context.Background()

const pw = "correct horse"

// signUp creates users with password pw and returns their recovery codes.
func (e *env) signUp(users ...string) []string {
	e.t.Helper()
	var codes []string
	for _, u := range users {
		r, err := e.c.SignUp(ctx, centralapi.SignUpArgs{User: u, Password: pw})
		if err != nil {
			e.t.Fatalf("SignUp(%s): %v", u, err)
		}
		codes = append(codes, r.RecoveryCode)
	}
	return codes
}

func (e *env) register(names ...string) {
	e.t.Helper()
	for _, n := range names {
		if _, err := e.c.RegisterServer(ctx, centralapi.RegisterArgs{Name: n, Addr: "127.0.0.1:7000", HTTP: "127.0.0.1:8000"}); err != nil {
			e.t.Fatalf("RegisterServer(%s): %v", n, err)
		}
	}
}

func (e *env) login(user string) centralapi.LoginReply {
	e.t.Helper()
	r, err := e.c.Login(ctx, centralapi.LoginArgs{User: user, Password: pw})
	if err != nil {
		e.t.Fatalf("Login(%s): %v", user, err)
	}
	return r
}

// connect logs user in and presents the session at its assigned server.
func (e *env) connect(user string) centralapi.LoginReply {
	e.t.Helper()
	r := e.login(user)
	if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: r.Token, Server: r.Server.Name}); err != nil {
		e.t.Fatalf("CheckSession(%s@%s): %v", user, r.Server.Name, err)
	}
	return r
}

func (e *env) room(name string) centralapi.RoomInfo {
	e.t.Helper()
	r, err := e.c.Room(ctx, centralapi.RoomQuery{Room: name})
	if err != nil {
		e.t.Fatalf("Room(%s): %v", name, err)
	}
	return r
}

// liveServers returns the live servers' names, sorted.
func (e *env) liveServers() []string {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	var out []string
	for _, s := range e.c.serverList() {
		out = append(out, s.Name)
	}
	return out
}

// countSessions returns the number of stored sessions.
func (e *env) countSessions() int {
	e.t.Helper()
	kvs, _, err := e.c.store.Range(ctx, prefixSessions, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(kvs)
}

// wantErr checks err against want (nil means success expected).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}
