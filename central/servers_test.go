package central

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/distchat/distchat/central/centralapi"
)

func TestRegisterServer(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args centralapi.RegisterArgs
		want error
	}{
		{"ok", centralapi.RegisterArgs{Name: "s1", Addr: "10.0.0.1:1099", HTTP: "10.0.0.1:8081"}, nil},
		{"no http", centralapi.RegisterArgs{Name: "s2", Addr: "host.lan:2000"}, nil},
		{"ipv6", centralapi.RegisterArgs{Name: "s3", Addr: "[::1]:2000"}, nil},
		{"again", centralapi.RegisterArgs{Name: "s1", Addr: "10.0.0.1:1099", HTTP: "10.0.0.1:8081"}, nil},
		{"bad name", centralapi.RegisterArgs{Name: "s#1", Addr: "h:1"}, centralapi.ErrBadName},
		{"empty name", centralapi.RegisterArgs{Name: "", Addr: "h:1"}, centralapi.ErrBadName},
		{"no port", centralapi.RegisterArgs{Name: "s4", Addr: "host"}, centralapi.ErrBadAddress},
		{"port zero", centralapi.RegisterArgs{Name: "s4", Addr: "host:0"}, centralapi.ErrBadAddress},
		{"port too big", centralapi.RegisterArgs{Name: "s4", Addr: "host:65536"}, centralapi.ErrBadAddress},
		{"no host", centralapi.RegisterArgs{Name: "s4", Addr: ":1099"}, centralapi.ErrBadAddress},
		{"unspecified host", centralapi.RegisterArgs{Name: "s4", Addr: "0.0.0.0:1099"}, centralapi.ErrBadAddress},
		{"unspecified ipv6 host", centralapi.RegisterArgs{Name: "s4", Addr: "[::]:1099"}, centralapi.ErrBadAddress},
		{"empty addr", centralapi.RegisterArgs{Name: "s4"}, centralapi.ErrBadAddress},
		{"bad http", centralapi.RegisterArgs{Name: "s4", Addr: "h:1", HTTP: "h"}, centralapi.ErrBadAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.RegisterServer(ctx, tt.args)
			wantErr(t, "RegisterServer", err, tt.want)
			if err != nil {
				return
			}
			if r.LeaseTTL != DefaultServerLeaseTTL {
				t.Fatalf("LeaseTTL %v", r.LeaseTTL)
			}
			found := false
			for i, s := range r.Servers {
				if i > 0 && r.Servers[i-1].Name >= s.Name {
					t.Fatalf("servers not sorted: %+v", r.Servers)
				}
				if s.Name == tt.args.Name {
					found = s.Addr == tt.args.Addr && s.HTTP == tt.args.HTTP
				}
			}
			if !found {
				t.Fatalf("registered server missing from %+v", r.Servers)
			}
		})
	}
	if got := e.liveServers(); !reflect.DeepEqual(got, []string{"s1", "s2", "s3"}) {
		t.Fatalf("live servers %v", got)
	}
}

func TestRenewServer(t *testing.T) {
	e := newEnv(t)
	e.register("s1", "s2")
	tests := []struct {
		name string
		want error
	}{
		{"s1", nil},
		{"s2", nil},
		{"s3", centralapi.ErrUnknownServer},
		{"bad name!", centralapi.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: tt.name})
			wantErr(t, "RenewServer", err, tt.want)
			if err == nil && (r.LeaseTTL != DefaultServerLeaseTTL || len(r.Servers) != 2 ||
				r.Servers[0].Name != "s1" || r.Servers[1].Name != "s2") {
				t.Fatalf("RenewServer = %+v", r)
			}
		})
	}
}

func TestUnregisterServer(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1", "s2")
	r := e.connect("alice")
	tests := []struct {
		name string
		want error
	}{
		{r.Server.Name, nil},
		{r.Server.Name, nil}, // again: not an error
		{"nope", nil},
		{"", centralapi.ErrBadName},
	}
	for _, tt := range tests {
		wantErr(t, "UnregisterServer "+tt.name, e.c.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: tt.name}), tt.want)
	}
	if got := e.liveServers(); len(got) != 1 || got[0] == r.Server.Name {
		t.Fatalf("live servers %v after unregistering %s", got, r.Server.Name)
	}
	_, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: r.Server.Name})
	wantErr(t, "RenewServer after Unregister", err, centralapi.ErrUnknownServer)
	if on := e.c.userServersLocked("alice"); len(on) != 0 {
		t.Fatalf("alice attached at %v after her server left", on)
	}
}

func TestLeaseExpiry(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob")
	e.register("s1", "s2")
	a := e.connect("alice")
	b := e.connect("bob")
	if a.Server.Name != "s1" || b.Server.Name != "s2" {
		t.Fatalf("placed on %s and %s, want s1 and s2", a.Server.Name, b.Server.Name)
	}
	if _, err := e.c.CreateRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: "bob", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	want := centralapi.RoomInfo{Name: "lobby", Members: []centralapi.Member{{User: "alice", Servers: []string{"s1"}}, {User: "bob", Servers: []string{"s2"}}},
		Servers: []centralapi.ServerInfo{
			{Name: "s1", Addr: "127.0.0.1:7000", HTTP: "127.0.0.1:8000", Sessions: 1},
			{Name: "s2", Addr: "127.0.0.1:7000", HTTP: "127.0.0.1:8000", Sessions: 1},
		}}
	if got := e.room("lobby"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Room = %+v\nwant %+v", got, want)
	}

	// s2 keeps renewing; s1 goes silent.
	for i := 0; i < 4; i++ {
		e.clk.Add(4 * time.Second)
		if _, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: "s2"}); err != nil {
			t.Fatalf("renew s2 at step %d: %v", i, err)
		}
	}
	rmitest.WaitFor(t, "s1's lease to expire", func() bool {
		return reflect.DeepEqual(e.liveServers(), []string{"s2"})
	})
	_, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: "s1"})
	wantErr(t, "RenewServer after expiry", err, centralapi.ErrUnknownServer)
	_, err = e.c.CheckSession(ctx, centralapi.SessionArgs{Token: a.Token, Server: "s1"})
	wantErr(t, "CheckSession at expired server", err, centralapi.ErrUnknownServer)
	want.Members[0].Servers = nil
	want.Servers = want.Servers[1:]
	if got := e.room("lobby"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Room after expiry = %+v\nwant %+v", got, want)
	}
	// Placement skips the dead server; the session is still valid.
	if r, err := e.c.Reassign(ctx, centralapi.ReassignArgs{Token: a.Token, Failed: "s1"}); err != nil || r.Server.Name != "s2" {
		t.Fatalf("Reassign = %+v, %v; want s2", r, err)
	}
	if r := e.login("alice"); r.Server.Name != "s2" {
		t.Fatalf("Login placed on %s, want s2", r.Server.Name)
	}

	// s1 comes back, presenting the session it still holds: alice is
	// attached there again; a logged-out token is rejected.
	gone := e.login("bob")
	if err := e.c.Logout(ctx, centralapi.LogoutArgs{Token: gone.Token}); err != nil {
		t.Fatal(err)
	}
	r, err := e.c.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s1", Addr: "127.0.0.1:7000", HTTP: "127.0.0.1:8000",
		Sessions: []string{a.Token, gone.Token, "garbage"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Rejected, []string{gone.Token, "garbage"}) {
		t.Fatalf("Rejected = %q", r.Rejected)
	}
	if got := e.room("lobby").Members[0]; !reflect.DeepEqual(got, centralapi.Member{User: "alice", Servers: []string{"s1"}}) {
		t.Fatalf("alice after s1 re-registered: %+v", got)
	}
}

func TestReRegisterReplacesSessions(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1")
	e.connect("alice")
	if n := e.serverLoad("s1"); n != 1 {
		t.Fatalf("load %d", n)
	}
	// A restarted s1 (same name) has no sessions.
	e.register("s1")
	if n := e.serverLoad("s1"); n != 0 {
		t.Fatalf("load %d after re-registering with no sessions", n)
	}
	if on := e.c.userServersLocked("alice"); len(on) != 0 {
		t.Fatalf("alice attached at %v", on)
	}
	// The old registration's lease expiring later must not remove the new one.
	e.clk.Add(6 * time.Second)
	if _, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: "s1"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(6 * time.Second)
	if _, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: "s1"}); err != nil {
		t.Fatalf("renew after the replaced lease's deadline: %v", err)
	}
}

func TestPlacementBalances(t *testing.T) {
	e := newEnv(t)
	var users []string
	for i := 0; i < 9; i++ {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	e.signUp(users...)
	e.register("s3", "s1", "s2")
	count := map[string]int{}
	var order []string
	for _, u := range users {
		r := e.connect(u)
		count[r.Server.Name]++
		order = append(order, r.Server.Name)
	}
	if !reflect.DeepEqual(count, map[string]int{"s1": 3, "s2": 3, "s3": 3}) {
		t.Fatalf("placement %v", count)
	}
	if strings.Join(order[:3], ",") != "s1,s2,s3" {
		t.Fatalf("ties not broken by name: %v", order)
	}
	// s1 restarts and drops to 0 sessions: the next logins go there
	// until it catches up.
	e.register("s1")
	for i := 0; i < 3; i++ {
		if r := e.connect("u0"); r.Server.Name != "s1" {
			t.Fatalf("login %d placed on %s, want the emptied s1", i, r.Server.Name)
		}
	}
	if r := e.connect("u0"); r.Server.Name != "s1" {
		t.Fatalf("tie (3,3,3) placed on %s, want s1", r.Server.Name)
	}
}

func TestPlacementCountsPendingLogins(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1", "s2", "s3")
	// A burst of logins that have not reached their server yet spreads.
	var got []string
	for i := 0; i < 6; i++ {
		got = append(got, e.login("alice").Server.Name)
	}
	if strings.Join(got, ",") != "s1,s2,s3,s1,s2,s3" {
		t.Fatalf("burst placed on %v", got)
	}
	// Placements that never attach stop counting after the grace period.
	for waited := time.Duration(0); waited < placementGrace; waited += 5 * time.Second {
		e.clk.Add(5 * time.Second)
		e.renew("s1", "s2", "s3")
	}
	if r := e.login("alice"); r.Server.Name != "s1" {
		t.Fatalf("after grace, placed on %s, want s1", r.Server.Name)
	}
}

func (e *env) renew(names ...string) {
	e.t.Helper()
	for _, n := range names {
		if _, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: n}); err != nil {
			e.t.Fatalf("RenewServer(%s): %v", n, err)
		}
	}
}

func TestPreferPlacesUserOnChosenServer(t *testing.T) {
	e := newEnvWith(t, func(c *Config) {
		c.Prefer = func(user string) string {
			if user == "alice" {
				return "s3"
			}
			return "s9" // not live: least-loaded instead
		}
	})
	e.signUp("alice", "bob")
	e.register("s1", "s2", "s3")
	for i := 0; i < 3; i++ {
		if r := e.login("alice"); r.Server.Name != "s3" {
			t.Fatalf("alice placed on %s, want preferred s3", r.Server.Name)
		}
	}
	if r := e.login("bob"); r.Server.Name != "s1" {
		t.Fatalf("bob placed on %s, want least-loaded s1", r.Server.Name)
	}
	// Failing over from the preferred server goes elsewhere.
	r := e.login("alice")
	r2, err := e.c.Reassign(context.Background(), centralapi.ReassignArgs{Token: r.Token, Failed: "s3"})
	if err != nil || r2.Server.Name == "s3" {
		t.Fatalf("reassign from s3: %v on %s", err, r2.Server.Name)
	}
}
