package central

import (
	"errors"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
)

// A chat server whose storage fails is placed on by no one (logins,
// reassignments, preferred placement) until it reports it works again;
// it stays live for the others.
func TestPlacementSkipsServerWithFailingStorage(t *testing.T) {
	e := newEnvWith(t, func(c *Config) {
		c.Prefer = func(user string) string {
			if user == "carol" {
				return "s1"
			}
			return ""
		}
	})
	e.signUp("alice", "bob", "carol")
	e.register("s1", "s2")
	a := e.connect("alice")
	if a.Server.Name != "s1" {
		t.Fatalf("alice placed on %s, want s1 (ties go to the first name)", a.Server.Name)
	}

	failing := func(name string, failing bool) {
		t.Helper()
		if _, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: name, StorageFailing: failing}); err != nil {
			t.Fatalf("RenewServer(%s, failing %v): %v", name, failing, err)
		}
	}
	failing("s2", true)
	// s2 is the least loaded, but its storage fails.
	for _, u := range []string{"bob", "carol"} {
		if r := e.login(u); r.Server.Name != "s1" {
			t.Fatalf("%s placed on %s while s2's storage fails", u, r.Server.Name)
		}
	}
	if got := e.liveServers(); len(got) != 2 {
		t.Fatalf("live servers %v: s2 should stay live", got)
	}
	// Moving alice off s1 finds no server that can take her.
	_, err := e.c.Reassign(ctx, centralapi.ReassignArgs{Token: a.Token, Failed: "s1"})
	if !errors.Is(err, centralapi.ErrNoServers) {
		t.Fatalf("Reassign away from s1 with s2 failing: %v, want ErrNoServers", err)
	}
	// Now s1's storage fails too (and carol's preferred s1 is no choice).
	failing("s1", true)
	if _, err := e.c.Login(ctx, centralapi.LoginArgs{User: "carol", Password: pw}); !errors.Is(err, centralapi.ErrNoServers) {
		t.Fatalf("login with every server's storage failing: %v, want ErrNoServers", err)
	}
	// s2 recovers: placed on again; a registration carries the state too.
	failing("s2", false)
	if r := e.login("bob"); r.Server.Name != "s2" {
		t.Fatalf("bob placed on %s after s2 recovered", r.Server.Name)
	}
	if _, err := e.c.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s2", Addr: "127.0.0.1:7000", StorageFailing: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Login(ctx, centralapi.LoginArgs{User: "bob", Password: pw}); !errors.Is(err, centralapi.ErrNoServers) {
		t.Fatalf("login after s2 registered with failing storage: %v, want ErrNoServers", err)
	}
}
