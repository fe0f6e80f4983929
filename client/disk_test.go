package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// When a chat server's disk fills, its clients move to another server and
// keep posting, nothing acknowledged is lost, and once space is freed the
// server takes users again without a restart.
func TestClientsMoveWhenServerDiskFills(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	for _, u := range []string{"ann", "bob", "cy", "dan"} {
		w.AddUser(u)
	}
	w.Place("ann", "server-1")
	w.Place("cy", "server-1")
	w.Place("bob", "server-2")
	ann, _ := login(t, w, "ann")
	bob, _ := login(t, w, "bob")
	// cy never pings: only the server's move event can move her.
	cyRec := &recorder{}
	cfg := w.cfg("cy")
	cfg.PingInterval = time.Hour
	cfg.OnStatus = cyRec.onStatus
	cy, err := Login(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cy.Close() })
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{bob, cy} {
		if _, err := c.JoinRoom(ctx, "r"); err != nil {
			t.Fatal(err)
		}
	}
	say(t, ann, "r", "before")

	// server-1's disk fills. ann's next post is refused there (not
	// acknowledged), and she moves to server-2 and posts there.
	w.DiskFull("server-1", true)
	m := say(t, ann, "r", "while full")
	if ann.Server() != "server-2" || m.Stamp.Server != "server-2" {
		t.Fatalf("after the disk filled: ann on %q, stamp %v", ann.Server(), m.Stamp)
	}
	if n := w.count("ann", "central", "Reassign"); n != 1 {
		t.Fatalf("Reassign called %d times", n)
	}
	// cy posts nothing: the server's move event moves her, shortly after
	// (though central would prefer server-1 for her).
	rmitest.WaitFor(t, "cy's move", func() bool {
		w.clk.Add(moveDelay)
		return cy.Server() == "server-2" && len(cyRec.status()) == 2
	})
	st := cyRec.status()
	if len(st) != 2 || st[0].Kind != Lost || st[0].Server != "server-1" || !errors.Is(st[0].Err, chatapi.ErrStorage) ||
		st[1] != (Status{Kind: Back, Server: "server-2"}) {
		t.Fatalf("cy's statuses %+v", st)
	}
	for _, c := range []*Client{ann, bob, cy} {
		waitView(t, c, "r", 2)
	}

	// Space is freed: server-1 finds out by itself, and central places
	// users there again.
	w.DiskFull("server-1", false)
	rmitest.WaitFor(t, "server-1's recovery", func() bool { return w.Server("server-1").StorageErr() == nil })
	w.Place("dan", "server-1")
	rmitest.WaitFor(t, "server-1 placeable again", func() bool {
		lr, err := w.Central().Login(ctx, centralapi.LoginArgs{User: "dan", Password: w.Password("dan")})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Central().Logout(ctx, centralapi.LogoutArgs{Token: lr.Token}); err != nil {
			t.Fatal(err)
		}
		return lr.Server.Name == "server-1"
	})
	dan, _ := login(t, w, "dan")
	if _, err := dan.JoinRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if m := say(t, dan, "r", "after"); m.Stamp.Server != "server-1" {
		t.Fatalf("dan's post stamped by %s, want server-1", m.Stamp.Server)
	}
	for _, c := range []*Client{ann, bob, cy, dan} {
		waitView(t, c, "r", 3)
		if got := texts(c.View("r")); got[0] != "before" || got[1] != "while full" || got[2] != "after" {
			t.Fatalf("%s's log %v", c.User(), got)
		}
	}
}
