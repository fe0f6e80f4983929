package central

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/central/kv/boltkv"
	"github.com/distchat/distchat/central/kv/etcdkv"
	"github.com/distchat/distchat/central/kv/etcdkv/etcdtest"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
)

// keepOpen is a store that Close leaves open: several front-ends share it.
type keepOpen struct{ kv.Store }

func (keepOpen) Close() error { return nil }

// sharedHarness is a store two front-ends share, and how time passes
// for it.
type sharedHarness struct {
	store kv.Store
	clk   clock.Clock
	ttl   time.Duration
	// pass makes d pass on the mock clock; nil on real time.
	pass func(d time.Duration)
}

// Two central front-ends on one store serve one cluster: a chat server
// registered at either is live at both, renews at either, and leaves both
// when its lease ends; a session logged in at one and attached through the
// other is seen attached at both, until it ends.
func TestSharedRegistry(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) {
		clk := clocktest.New()
		clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
		s, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), boltkv.Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		testSharedRegistry(t, sharedHarness{store: s, clk: clk, ttl: 10 * time.Second, pass: clk.Add})
	})
	t.Run("etcd", func(t *testing.T) {
		s, err := etcdkv.Open(context.Background(), etcdkv.Config{Endpoints: []string{etcdtest.Start(t)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		testSharedRegistry(t, sharedHarness{store: s, clk: clock.New(), ttl: 2 * time.Second})
	})
}

func testSharedRegistry(t *testing.T, h sharedHarness) {
	open := func(name string) *Central {
		c, err := Open(Config{Store: keepOpen{h.store}, Clock: h.clk, Logger: rmitest.QuietLogger(),
			PasswordCost: bcrypt.MinCost, ServerLeaseTTL: h.ttl})
		if err != nil {
			t.Fatalf("open front-end %s: %v", name, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	fe1, fe2 := open("1"), open("2")
	live := func(c *Central) string {
		c.mu.Lock()
		defer c.mu.Unlock()
		var names []string
		for _, s := range c.serverList() {
			names = append(names, fmt.Sprintf("%s:%d", s.Name, s.Sessions))
		}
		return fmt.Sprint(names)
	}
	waitLive := func(want string) {
		t.Helper()
		rmitest.WaitForWhy(t, "both front-ends to list "+want, func() (bool, string) {
			a, b := live(fe1), live(fe2)
			return a == want && b == want, fmt.Sprintf("front-end 1 lists %s, 2 lists %s", a, b)
		})
	}
	register := func(c *Central, name string) {
		t.Helper()
		if _, err := c.RegisterServer(ctx, centralapi.RegisterArgs{Name: name, Addr: "127.0.0.1:7000"}); err != nil {
			t.Fatalf("RegisterServer(%s): %v", name, err)
		}
	}
	renew := func(c *Central, name string) error {
		_, err := c.RenewServer(ctx, centralapi.RenewArgs{Name: name})
		return err
	}
	register(fe1, "s1")
	register(fe2, "s2")
	waitLive("[s1:0 s2:0]")

	if _, err := fe1.SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := fe2.CreateRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	l, err := fe2.Login(ctx, centralapi.LoginArgs{User: "alice", Password: pw})
	if err != nil {
		t.Fatalf("login at front-end 2: %v", err)
	}
	if l.Server.Name != "s1" {
		t.Fatalf("alice placed on %s, want s1 (ties go to the first name)", l.Server.Name)
	}
	// The chat server checks the session at the other front-end.
	if _, err := fe1.CheckSession(ctx, centralapi.SessionArgs{Token: l.Token, Server: "s1"}); err != nil {
		t.Fatal(err)
	}
	waitLive("[s1:1 s2:0]")
	rmitest.WaitFor(t, "front-end 2 to see alice on s1 in the room", func() bool {
		r, err := fe2.Room(ctx, centralapi.RoomQuery{Room: "lobby"})
		return err == nil && len(r.Members) == 1 && slices.Equal(r.Members[0].Servers, []string{"s1"})
	})
	// Renewals at either front-end keep a lease.
	for _, c := range []*Central{fe1, fe2} {
		for _, s := range []string{"s1", "s2"} {
			if err := renew(c, s); err != nil {
				t.Fatalf("renewing %s: %v", s, err)
			}
		}
	}

	// A web login ticket issued at one front-end is redeemed at the
	// other, once.
	ticket, err := fe1.IssueTicket(l.Token, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := fe2.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: ticket, Server: "s1"}); err != nil || r.User != "alice" || r.Token != l.Token {
		t.Fatalf("redeeming at the other front-end: %+v, %v", r, err)
	}
	if _, err := fe1.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: ticket, Server: "s1"}); !errors.Is(err, centralapi.ErrBadTicket) {
		t.Fatalf("redeeming the ticket twice: %v, want ErrBadTicket", err)
	}
	// Both front-ends name the same voice host for a room.
	v1, err := fe1.VoiceHost(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	if v2, err := fe2.VoiceHost(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil || v2.Server.Name != v1.Server.Name {
		t.Fatalf("voice host at front-end 2: %+v, %v; front-end 1 chose %s", v2, err, v1.Server.Name)
	}
	if v1.Server.Name != "s2" {
		t.Fatalf("voice host %s, want the least loaded, s2", v1.Server.Name)
	}

	// s2 stops renewing; s1 goes on (at front-end 2): s2's lease ends.
	start := time.Now()
	if h.pass != nil {
		h.pass(h.ttl / 2)
		if err := renew(fe2, "s1"); err != nil {
			t.Fatal(err)
		}
		h.pass(h.ttl/2 + time.Second)
	}
	rmitest.WaitForWhy(t, "s2's lease to end at both front-ends", func() (bool, string) {
		if err := renew(fe2, "s1"); err != nil {
			return false, fmt.Sprintf("renewing s1: %v", err)
		}
		a, b := live(fe1), live(fe2)
		return a == "[s1:1]" && b == "[s1:1]", fmt.Sprintf("front-end 1 lists %s, 2 lists %s", a, b)
	})
	if h.pass == nil {
		t.Logf("s2 left both front-ends %v after its last renewal (lease %v)", time.Since(start).Round(10*time.Millisecond), h.ttl)
	}
	if err := renew(fe1, "s2"); !errors.Is(err, centralapi.ErrUnknownServer) {
		t.Fatalf("renewing s2 after its lease ended: %v, want ErrUnknownServer", err)
	}

	// The voice channel moves off the dead host, for both front-ends.
	if v, err := fe2.VoiceHost(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil || v.Server.Name != "s1" {
		t.Fatalf("voice host after s2 died: %+v, %v", v, err)
	}
	if v, err := fe1.VoiceHost(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil || v.Server.Name != "s1" {
		t.Fatalf("voice host at front-end 1 after s2 died: %+v, %v", v, err)
	}

	// Logging out at front-end 2 detaches the session at both.
	if err := fe2.Logout(ctx, centralapi.LogoutArgs{Token: l.Token}); err != nil {
		t.Fatal(err)
	}
	waitLive("[s1:0]")
	// Unregistering at one front-end removes the server from both.
	if err := fe1.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: "s1"}); err != nil {
		t.Fatal(err)
	}
	waitLive("[]")
	// A third front-end started now reads the registry as it is.
	register(fe2, "s3")
	fe3 := open("3")
	if got := live(fe3); got != "[s3:0]" {
		t.Fatalf("a new front-end lists %s, want [s3:0]", got)
	}
}
