package client

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// TestSessionEndedStopsClient: when the session ends at central (here a
// logout from elsewhere), the client reports Ended, fails every later call
// with chatapi.ErrSessionEnded, and does not fail over or log in again;
// whether it learns it from the server's last delivery or from a call the
// server refuses.
func TestSessionEndedStopsClient(t *testing.T) {
	for _, tt := range []struct {
		name      string
		loseEvent bool
	}{{"told by the server", false}, {"refused on a call", true}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, 2)
			w.AddUser("ann")
			c, rec := login(t, w, "ann")
			if _, err := c.CreateRoom(ctx, "lobby"); err != nil {
				t.Fatal(err)
			}
			w.mu.Lock()
			w.loseEnded["ann"] = tt.loseEvent
			w.mu.Unlock()
			c.mu.Lock()
			token, server := c.token, c.srvName
			c.mu.Unlock()
			if err := w.Central().Logout(ctx, centralapi.LogoutArgs{Token: token}); err != nil {
				t.Fatal(err)
			}
			ended := func() bool {
				return slices.ContainsFunc(rec.status(), func(s Status) bool { return s.Kind == Ended })
			}
			if tt.loseEvent {
				rmitest.WaitFor(t, "the server to refuse the session", func() bool {
					_, err := c.Say(ctx, "lobby", "after the end")
					return errors.Is(err, chatapi.ErrSessionEnded)
				})
			}
			rmitest.WaitFor(t, "an Ended status", ended)
			st := rec.status()
			if last := st[len(st)-1]; last.Kind != Ended || last.Server != server || !errors.Is(last.Err, chatapi.ErrSessionEnded) {
				t.Fatalf("last status = %+v, want Ended on %s", last, server)
			}
			if _, err := c.Say(ctx, "lobby", "still after"); !errors.Is(err, chatapi.ErrSessionEnded) {
				t.Fatalf("Say after the end: %v", err)
			}
			w.clk.Add(defaultPingInterval) // no ping, no failover
			if n := w.count("ann", "central", "Reassign") + w.count("ann", "central", "Login"); n != 1 {
				t.Fatalf("the client went to central %d times (Login, Reassign); want only its first Login", n)
			}
			for _, s := range rec.status() {
				if s.Kind == Lost {
					t.Fatalf("the client reported %+v: it must not fail over", s)
				}
			}
		})
	}
}
