package client

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/servertest"
)

func TestSayRetriesWithSameIDAfterServerDies(t *testing.T) {
	ctx := context.Background()
	w, ann, annRec, bob, bobRec := annAndBobInRoom(t)

	// server-1 stores the post (durably: it acknowledges only then), then
	// dies before its reply gets out, and before it could forward the post
	// (cut off from server-2).
	w.Disconnect("server-1", "server-2")
	w.loseReply("ann", "Post", func() { w.Crash("server-1") })
	m, err := ann.Say(ctx, "r", "hello")
	if err != nil {
		t.Fatalf("Say across a failover: %v", err)
	}
	if ann.Server() != "server-2" || m.Stamp.Server != "server-2" {
		t.Fatalf("after failover: server %q, stamp %v", ann.Server(), m.Stamp)
	}
	if n := w.count("ann", "central", "Reassign"); n != 1 {
		t.Fatalf("Reassign called %d times", n)
	}
	if got := w.posted("ann"); len(got) != 2 || got[0] != m.ID || got[1] != m.ID {
		t.Fatalf("Post attempts with ids %v, want two with %q", got, m.ID)
	}
	// server-1 comes back and forwards its copy: the post now exists twice,
	// with two stamps. Every client shows it once, at the smaller
	// (server-1's) stamp.
	w.Reconnect("server-1", "server-2")
	w.Start("server-1")
	for name, c := range map[string]*Client{"ann": ann, "bob": bob} {
		rmitest.WaitForWhy(t, name+" to see server-1's copy", func() (bool, string) {
			got := c.View("r")
			return len(got) == 1 && got[0].Stamp.Server == "server-1", fmtTexts(got)
		})
		if got := c.View("r"); got[0].ID != m.ID {
			t.Fatalf("%s's view: %+v", name, got)
		}
		if st, _ := c.ViewStats("r"); st.Collapsed != 1 {
			t.Fatalf("%s's stats: %+v", name, st)
		}
	}
	for name, rec := range map[string]*recorder{"ann": annRec, "bob": bobRec} {
		if got := rec.messages(); len(got) != 1 {
			t.Fatalf("%s's OnMessage reported the post %d times", name, len(got))
		}
	}
}

func TestFailoverCatchesUpWithoutGapOrDuplicate(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 3)
	for i, u := range []string{"ann", "bob", "cy"} {
		w.AddUser(u)
		w.Place(u, w.Servers()[i])
	}
	ann, annRec := login(t, w, "ann")
	bob, _ := login(t, w, "bob")
	cy, _ := login(t, w, "cy")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{bob, cy} {
		if _, err := c.JoinRoom(ctx, "r"); err != nil {
			t.Fatal(err)
		}
	}

	say(t, bob, "r", "b1")
	say(t, cy, "r", "c1")
	say(t, ann, "r", "a1")
	for _, c := range []*Client{ann, bob, cy} {
		waitView(t, c, "r", 3) // a1 left server-1 before it dies
	}

	// ann's server dies; the room goes on without her.
	w.Crash("server-1")
	say(t, bob, "r", "b2")
	say(t, cy, "r", "c2")
	say(t, bob, "r", "b3")

	// She notices the lost connection, moves to another server and
	// catches up from her views' heads. The clock does not move: time
	// passing would time out the failover's calls, whose deadlines are on
	// this clock, and leave her to wait for her next ping.
	rmitest.WaitFor(t, "the failover", func() bool {
		w.clk.Add(0) // runs the timers due now: the lost connection's probe
		return ann.Server() != "" && ann.Server() != "server-1" && len(ann.View("r")) == 6
	})
	waitView(t, bob, "r", 6)
	if got, want := ann.View("r"), bob.View("r"); !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("ann's log %v != bob's %v", texts(got), texts(want))
	}
	seen := map[string]int{}
	for _, m := range annRec.messages() {
		seen[m.ID]++
	}
	if len(seen) != 6 {
		t.Fatalf("ann was told of %d messages, want 6", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %s reported %d times", id, n)
		}
	}
	say(t, ann, "r", "a2")
	for _, c := range []*Client{ann, bob, cy} {
		waitView(t, c, "r", 7)
		if got := c.View("r"); !sortedByStamp(got) || !slices.Equal(ids(got), ids(ann.View("r"))) {
			t.Fatalf("%s's final log %v", c.User(), texts(got))
		}
	}
}

func TestFailoverLogsInAgainWhenSessionExpired(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.AddUser("ann")
	w.Place("ann", "server-1")
	ann, _ := login(t, w, "ann")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	w.Place("ann", "server-2")
	old := ann.token

	// Central forgets the session, and ann's server dies. The logout is
	// also pushed to server-1, which may tell ann's client before it dies
	// (then the client would rightly stop, as a logged-out one does);
	// this test is about the other case, so that notice is lost.
	w.mu.Lock()
	w.loseEnded["ann"] = true
	w.mu.Unlock()
	if err := w.Central().Logout(ctx, centralapi.LogoutArgs{Token: old}); err != nil {
		t.Fatal(err)
	}
	w.Crash("server-1")
	say(t, ann, "r", "still here")
	if ann.token == old || w.count("ann", "central", "Login") != 2 || ann.Server() != "server-2" {
		t.Fatalf("token %q (was %q), logins %d, server %q", ann.token, old, w.count("ann", "central", "Login"), ann.Server())
	}
}

func TestFailoverFailureIsRetried(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.AddUser("ann")
	w.Place("ann", "server-1")
	ann, rec := login(t, w, "ann")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	// Both servers stop, so central knows there is none to place her on.
	w.Stop("server-1")
	w.Stop("server-2")
	_, err := ann.Say(ctx, "r", "nobody home")
	if !errors.Is(err, centralapi.ErrNoServers) || !rmi.IsUnreachable(err) {
		t.Fatalf("Say with every server down: %v", err)
	}
	if ann.Server() != "" {
		t.Fatalf("Server() = %q with none attached", ann.Server())
	}
	w.Start("server-2")
	// The next ping tries again, and the next, until one gets through
	// (the first may come before central sees server-2 live).
	rmitest.WaitFor(t, "the reconnect", func() bool {
		if ann.Server() == "server-2" {
			return true
		}
		w.clk.Add(10 * time.Second)
		return false
	})
	say(t, ann, "r", "back")
	// One outage, however many attempts: one Lost, one Back.
	// Back is reported once the failover returns, which may be just after
	// the client is usable again.
	rmitest.WaitFor(t, "the Back status", func() bool { return len(rec.status()) >= 2 })
	st := rec.status()
	if len(st) != 2 || st[0].Kind != Lost || st[0].Server != "server-1" || !rmi.IsUnreachable(st[0].Err) ||
		st[1].Kind != Back || st[1].Server != "server-2" || st[1].Err != nil {
		t.Fatalf("statuses %+v", st)
	}
}

func TestFailoverOnConnectionLoss(t *testing.T) {
	w, ann, rec, bob, _ := annAndBobInRoom(t)
	say(t, bob, "r", "one")
	w.Crash("server-1")
	say(t, bob, "r", "two")
	// No ping is due: the lost connection alone moves ann at once.
	w.clk.Add(0)
	rmitest.WaitFor(t, "the failover", func() bool { return ann.Server() == "server-2" && len(ann.View("r")) == 2 })
	if n := w.count("ann", "server-1", "Ping"); n != 0 {
		t.Fatalf("%d pings reached server-1", n)
	}
	// Back is reported once the failover returns, which may be just after
	// the client is usable again.
	rmitest.WaitFor(t, "the Back status", func() bool { return len(rec.status()) >= 2 })
	st := rec.status()
	if len(st) != 2 || st[0] != (Status{Kind: Lost, Server: "server-1", Err: st[0].Err}) || st[1] != (Status{Kind: Back, Server: "server-2"}) {
		t.Fatalf("statuses %+v", st)
	}
}

func TestFailoverWhenServerUnreachable(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.AddUser("ann")
	w.Place("ann", "server-1")
	ann, rec := login(t, w, "ann")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "ann's joined event", func() bool { return len(rec.joinedEvents("ann")) == 1 })
	caughtUp(t, w, ann)
	// The server keeps running, but the way to it is gone: the connection
	// stays open, and only the next ping finds out.
	w.SetUnreachable("server-1", true)
	w.clk.Add(0)
	if ann.Server() != "server-1" || len(rec.status()) != 0 {
		t.Fatalf("moved before the ping was due: %q, %+v", ann.Server(), rec.status())
	}
	w.clk.Add(10 * time.Second)
	rmitest.WaitFor(t, "the failover", func() bool { return ann.Server() == "server-2" })
	say(t, ann, "r", "over here")
	// Back is reported once the failover returns, which may be just after
	// the client is usable again.
	rmitest.WaitFor(t, "the Back status", func() bool { return len(rec.status()) >= 2 })
	if st := rec.status(); len(st) != 2 || st[0].Kind != Lost || st[1].Kind != Back {
		t.Fatalf("statuses %+v", st)
	}
}

func TestOverTCP(t *testing.T) {
	ctx := context.Background()
	w := newWorldWith(t, servertest.Options{Servers: 2, TCP: true})
	w.AddUser("ann")
	w.AddUser("bob")
	w.Place("ann", "server-1")
	w.Place("bob", "server-2")
	logins := map[string]*Client{}
	recs := map[string]*recorder{}
	for _, u := range []string{"ann", "bob"} {
		rec := &recorder{}
		cfg := w.cfg(u)
		cfg.Central = w.RegistryAddr()
		cfg.Dial = nil // the default: rmi.Dial over TCP
		cfg.OnMessage = rec.onMessage
		c, err := Login(ctx, cfg)
		if err != nil {
			t.Fatalf("Login(%s) over TCP: %v", u, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		logins[u], recs[u] = c, rec
	}
	ann, bob := logins["ann"], logins["bob"]
	if _, err := bob.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.JoinRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	m := say(t, bob, "r", "over the wire")
	// The callback came back over ann's own connection.
	waitView(t, ann, "r", 1)
	if got := ann.View("r"); got[0].ID != m.ID {
		t.Fatalf("ann's view %v", got)
	}

	// server-1 goes away: ann's connection ends, and she moves to server-2.
	w.Crash("server-1")
	say(t, bob, "r", "while ann moves")
	rmitest.WaitFor(t, "the failover over TCP", func() bool {
		w.clk.Add(0)
		return ann.Server() == "server-2" && len(ann.View("r")) == 2
	})
	say(t, ann, "r", "back")
	waitView(t, bob, "r", 3)
	if got, want := ann.View("r"), bob.View("r"); len(got) != 3 || !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("ann %v, bob %v", texts(got), texts(want))
	}
	if n := len(recs["ann"].messages()); n != 3 {
		t.Fatalf("ann was told of %d messages", n)
	}
}
