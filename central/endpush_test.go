package central

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// pushLog records the EndSessions calls central makes, by address.
type pushLog struct {
	mu    sync.Mutex
	got   []string // "addr method id"
	fail  bool
	calls int // EndSessions calls, failed ones included
}

func (p *pushLog) setFail(fail bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = fail
}

func (p *pushLog) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func (p *pushLog) connect(addr string) rmi.Invoker {
	return invokerFunc(func(ctx context.Context, object, method string, args, reply any) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if method == "EndSessions" {
			p.calls++
		}
		if p.fail {
			return fmt.Errorf("%s: %w", addr, rmi.ErrConnect)
		}
		if a, ok := args.(chatapi.EndSessionsArgs); ok && object == chatapi.PeerObjectName {
			for _, id := range a.Sessions {
				p.got = append(p.got, addr+" "+method+" "+id)
			}
		}
		return nil
	})
}

// invokerFunc adapts a function to rmi.Invoker.
type invokerFunc func(ctx context.Context, object, method string, args, reply any) error

func (f invokerFunc) Invoke(ctx context.Context, object, method string, args, reply any) error {
	return f(ctx, object, method, args, reply)
}

func (p *pushLog) has(entry string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.got, entry)
}

// TestSessionEndIsPushedToItsServer: logout, password reset and expiry each
// tell the chat server the session is attached to, by session id.
func TestSessionEndIsPushedToItsServer(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(e *env, r centralapi.LoginReply, code string)
	}{
		{"logout", func(e *env, r centralapi.LoginReply, _ string) {
			wantErr(e.t, "Logout", e.c.Logout(ctx, centralapi.LogoutArgs{Token: r.Token}), nil)
		}},
		{"reset", func(e *env, r centralapi.LoginReply, code string) {
			_, err := e.c.ResetPassword(ctx, centralapi.ResetArgs{User: "alice", RecoveryCode: code, NewPassword: "new password"})
			wantErr(e.t, "ResetPassword", err, nil)
		}},
		{"expiry", func(e *env, r centralapi.LoginReply, _ string) {
			e.clk.Add(time.Hour) // the sweep runs
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log pushLog
			e := newEnvWith(t, func(c *Config) {
				c.Connect, c.SessionTTL, c.ServerLeaseTTL = log.connect, time.Hour, 2*time.Hour
			})
			codes := e.signUp("alice")
			_, err := e.c.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s1", Addr: "s1:7000"})
			wantErr(t, "RegisterServer", err, nil)
			r := e.connect("alice")
			tt.end(e, r, codes[0])
			want := "s1:7000 EndSessions " + centralapi.SessionID(r.Token)
			rmitest.WaitFor(t, "push of the ended session", func() bool {
				// The push runs as a task on the clock, queued by the
				// sweep's own task in the expiry case.
				e.clk.Add(0)
				return log.has(want)
			})
		})
	}
}

// TestRenewNamesEndedSessions: the lease renewal is the backstop for a lost
// push: it names the presented sessions that ended, and extends those in
// use.
func TestRenewNamesEndedSessions(t *testing.T) {
	log := pushLog{fail: true}
	e := newEnvWith(t, func(c *Config) {
		c.Connect, c.SessionTTL, c.ServerLeaseTTL = log.connect, time.Hour, 2*time.Hour
	})
	e.signUp("alice", "bob")
	_, err := e.c.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s1", Addr: "s1:7000"})
	wantErr(t, "RegisterServer", err, nil)
	alice, bob := e.connect("alice"), e.connect("bob")
	wantErr(t, "Logout", e.c.Logout(ctx, centralapi.LogoutArgs{Token: alice.Token}), nil)
	e.clk.Add(40 * time.Minute) // past half of bob's session
	ids := []string{centralapi.SessionID(alice.Token), centralapi.SessionID(bob.Token), "garbage"}
	rep, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: "s1", Sessions: ids})
	wantErr(t, "RenewServer", err, nil)
	want := []string{ids[0], "garbage"}
	slices.Sort(want)
	if !slices.Equal(rep.Ended, want) {
		t.Fatalf("Ended = %q, want %q", rep.Ended, want)
	}
	// Bob's session, in use, was extended: it outlives its first hour.
	e.clk.Add(40 * time.Minute)
	_, err = e.c.CheckSession(ctx, centralapi.SessionArgs{Token: bob.Token, Server: "s1"})
	wantErr(t, "CheckSession after the extension", err, nil)
}

// pushEnv is a Central with chat server s1 registered at s1:7000 and
// alice logged in and attached there, whose pushes go to log.
func pushEnv(t *testing.T, log *pushLog) (*env, centralapi.LoginReply) {
	t.Helper()
	e := newEnvWith(t, func(c *Config) {
		c.Connect, c.SessionTTL, c.ServerLeaseTTL = log.connect, time.Hour, 2*time.Hour
	})
	e.signUp("alice")
	_, err := e.c.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s1", Addr: "s1:7000"})
	wantErr(t, "RegisterServer", err, nil)
	return e, e.connect("alice")
}

// waitLog waits, running the clock's due tasks, until central's log has
// line.
func waitLog(t *testing.T, e *env, line string) {
	t.Helper()
	rmitest.WaitFor(t, "log line "+line, func() bool {
		e.clk.Add(0)
		return strings.Contains(e.log.String(), line)
	})
}

const pushWarning = `level=WARN msg="telling a chat server that sessions ended failed"`

// A chat server that unregistered before the push ran is not called: its
// sessions were detached when it left. (A server shutting down closes
// first and unregisters after, so this is the common end of a push that
// raced a shutdown.)
func TestPushSkipsAServerThatLeft(t *testing.T) {
	var log pushLog
	log.setFail(true)
	e, r := pushEnv(t, &log)
	wantErr(t, "Logout", e.c.Logout(ctx, centralapi.LogoutArgs{Token: r.Token}), nil)
	wantErr(t, "UnregisterServer", e.c.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: "s1"}), nil)
	waitLog(t, e, "a chat server left before it was told that sessions ended")
	if n := log.callCount(); n != 0 {
		t.Fatalf("%d EndSessions calls to a server that left; want 0", n)
	}
	if strings.Contains(e.log.String(), "level=WARN") {
		t.Fatalf("a warning for a server that left:\n%s", e.log.String())
	}
}

// failedPush is pushEnv with alice logged out and the push of her ended
// session failed once, its retry scheduled.
func failedPush(t *testing.T, log *pushLog) (*env, centralapi.LoginReply) {
	t.Helper()
	log.setFail(true)
	e, r := pushEnv(t, log)
	wantErr(t, "Logout", e.c.Logout(ctx, centralapi.LogoutArgs{Token: r.Token}), nil)
	waitLog(t, e, "telling a chat server that sessions ended failed; will retry")
	return e, r
}

// A push that fails is retried once, pushRetry later, without a warning;
// the retry delivers it.
func TestFailedPushIsRetriedOnce(t *testing.T) {
	var log pushLog
	e, r := failedPush(t, &log)
	log.setFail(false)
	want := "s1:7000 EndSessions " + centralapi.SessionID(r.Token)
	e.clk.Add(pushRetry - time.Millisecond)
	if log.has(want) {
		t.Fatal("the retry ran before pushRetry had passed")
	}
	rmitest.WaitFor(t, "the retried push", func() bool {
		e.clk.Add(time.Millisecond)
		return log.has(want)
	})
	if n := log.callCount(); n != 2 {
		t.Fatalf("%d EndSessions calls; want 2 (the failure, the retry)", n)
	}
	if strings.Contains(e.log.String(), pushWarning) {
		t.Fatalf("a warning for a push its retry delivered:\n%s", e.log.String())
	}
}

// A push that fails twice is logged as a warning, once, and left to the
// lease renewal (TestRenewNamesEndedSessions).
func TestPushFailingTwiceWarns(t *testing.T) {
	var log pushLog
	e, _ := failedPush(t, &log)
	e.clk.Add(pushRetry)
	waitLog(t, e, pushWarning)
	e.clk.Add(time.Hour)
	if n := log.callCount(); n != 2 {
		t.Fatalf("%d EndSessions calls; want 2 (no retry after the second failure)", n)
	}
	if n := strings.Count(e.log.String(), pushWarning); n != 1 {
		t.Fatalf("%d warnings; want 1:\n%s", n, e.log.String())
	}
}
