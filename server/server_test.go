package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// twoServers sets up servers a and b with alice on a and bob on b, both in
// room "lobby".
func twoServers(t *testing.T, mode string) (*testCluster, *testClient, *testClient) {
	c := newTestCluster(t)
	c.startServer("a", mode)
	c.startServer("b", mode)
	c.signup("alice")
	c.signup("bob")
	alice := c.login("alice")
	bob := c.login("bob")
	if alice.server == bob.server {
		t.Fatalf("both placed on %s; central should balance", alice.server)
	}
	if _, err := alice.chat.CreateRoom(context.Background(), chatapi.RoomArgs{Token: alice.token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.chat.JoinRoom(context.Background(), chatapi.RoomArgs{Token: bob.token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	return c, alice, bob
}

func TestPostReachesMembersOnBothServers(t *testing.T) {
	c, alice, bob := twoServers(t, ClockHLC)
	r1 := alice.say("lobby", "m1", "hello")
	r2 := bob.say("lobby", "m2", "hi alice")
	if r1.Stamp.Server != alice.server || r1.Stamp.Seq != 1 || r2.Stamp.Server != bob.server || r2.Stamp.Seq != 1 {
		t.Fatalf("stamps %v %v: want each stamped by its first server with seq 1", r1.Stamp, r2.Stamp)
	}
	want := []string{"hello", "hi alice"}
	for _, cl := range []*testClient{alice, bob} {
		rmitest.WaitFor(t, cl.user+" receives both", func() bool { return equal(cl.delivered("lobby"), want) })
		if got := texts(cl.history("lobby")); !equal(got, want) {
			t.Fatalf("%s history %q, want %q", cl.user, got, want)
		}
	}
	_ = c
}

func TestForwardOncePerServerNotPerMember(t *testing.T) {
	c := newTestCluster(t)
	c.startServer("a", ClockHLC)
	c.startServer("b", ClockHLC)
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	var cls []*testClient
	for _, u := range users {
		c.signup(u)
		cls = append(cls, c.login(u))
	}
	ctx := context.Background()
	if _, err := cls[0].chat.CreateRoom(ctx, chatapi.RoomArgs{Token: cls[0].token, Room: "big"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range cls[1:] {
		if _, err := cl.chat.JoinRoom(ctx, chatapi.RoomArgs{Token: cl.token, Room: "big"}); err != nil {
			t.Fatal(err)
		}
	}
	poster := cls[0]
	other := "a"
	if poster.server == "a" {
		other = "b"
	}
	before := c.forwards(other)
	poster.say("big", "x", "to everyone")
	for _, cl := range cls {
		rmitest.WaitFor(t, cl.user+" receives", func() bool { return len(cl.delivered("big")) == 1 })
	}
	if n := c.forwards(other) - before; n != 1 {
		t.Fatalf("%d Forward calls to %s for one post to three members there; want 1", n, other)
	}
}

func TestBadPostsGetClearErrors(t *testing.T) {
	c, alice, _ := twoServers(t, ClockHLC)
	c.signup("carol")
	carol := c.login("carol")
	ctx := context.Background()
	cases := []struct {
		name string
		cl   *testClient
		args chatapi.PostArgs
		want error
	}{
		{"not a member", carol, chatapi.PostArgs{Room: "lobby", ID: "1", Text: "x"}, centralapi.ErrNotMember},
		{"unknown room", alice, chatapi.PostArgs{Room: "nowhere", ID: "1", Text: "x"}, centralapi.ErrNoSuchRoom},
		{"too large", alice, chatapi.PostArgs{Room: "lobby", ID: "1", Text: strings.Repeat("x", 1<<20)}, chatapi.ErrTooLarge},
		{"empty", alice, chatapi.PostArgs{Room: "lobby", ID: "1", Text: ""}, chatapi.ErrEmpty},
		{"bad utf-8", alice, chatapi.PostArgs{Room: "lobby", ID: "1", Text: "\xff"}, chatapi.ErrBadText},
		{"no id", alice, chatapi.PostArgs{Room: "lobby", Text: "x"}, chatapi.ErrBadID},
		{"long id", alice, chatapi.PostArgs{Room: "lobby", ID: strings.Repeat("i", chatapi.MaxID+1), Text: "x"}, chatapi.ErrBadID},
		{"bad token", alice, chatapi.PostArgs{Room: "lobby", ID: "1", Text: "x"}, chatapi.ErrNotAttached},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.args
			a.Token = tc.cl.token
			if tc.want == chatapi.ErrNotAttached {
				a.Token = "forged"
			}
			_, err := tc.cl.chat.Post(ctx, a)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Nothing above was stored, and the room still works.
	alice.say("lobby", "ok", "still works")
	if got := texts(alice.history("lobby")); !equal(got, []string{"still works"}) {
		t.Fatalf("history %q", got)
	}
	// Non-members cannot read either.
	if _, err := carol.chat.Sync(ctx, chatapi.SyncArgs{Token: carol.token, Room: "lobby"}); !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("non-member sync: %v", err)
	}
}

func TestSenderComesFromSession(t *testing.T) {
	_, alice, bob := twoServers(t, ClockHLC)
	alice.say("lobby", "1", "who am i")
	rmitest.WaitFor(t, "bob receives", func() bool { return len(bob.delivered("lobby")) == 1 })
	if h := bob.history("lobby"); h[0].From != "alice" {
		t.Fatalf("from %q, want alice", h[0].From)
	}
}

func TestRetriedPostStoredOnce(t *testing.T) {
	_, alice, bob := twoServers(t, ClockHLC)
	r1 := alice.say("lobby", "same-id", "once")
	r2 := alice.say("lobby", "same-id", "once")
	if !r2.Duplicate || r2.Stamp != r1.Stamp || r1.Duplicate {
		t.Fatalf("first %+v, retry %+v: want the retry to return the first stamp as a duplicate", r1, r2)
	}
	alice.say("lobby", "other", "twice?")
	rmitest.WaitFor(t, "bob gets 2", func() bool { return len(bob.delivered("lobby")) == 2 })
	if got := texts(bob.history("lobby")); !equal(got, []string{"once", "twice?"}) {
		t.Fatalf("history %q", got)
	}
}

func TestLateJoinerOnThirdServerGetsFullHistory(t *testing.T) {
	c, alice, bob := twoServers(t, ClockHLC)
	var want []string
	for i := 0; i < 25; i++ {
		cl := alice
		if i%2 == 1 {
			cl = bob
		}
		text := fmt.Sprintf("m%02d", i)
		cl.say("lobby", text, text)
		want = append(want, text)
	}
	c.startServer("c", ClockHLC)
	c.signup("carol")
	carol := c.login("carol")
	if carol.server != "c" {
		t.Fatalf("carol on %s, want the empty server c", carol.server)
	}
	if _, err := carol.chat.JoinRoom(context.Background(), chatapi.RoomArgs{Token: carol.token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	got := carol.history("lobby")
	ref := alice.history("lobby")
	if !equal(texts(got), texts(ref)) || len(got) != len(want) {
		t.Fatalf("late joiner history %q\nwant (alice's) %q", texts(got), texts(ref))
	}
	for i := range got {
		if got[i].Stamp != ref[i].Stamp {
			t.Fatalf("entry %d stamped %v for carol, %v for alice", i, got[i].Stamp, ref[i].Stamp)
		}
	}
	// New posts now reach carol live.
	bob.say("lobby", "after", "after carol joined")
	rmitest.WaitFor(t, "carol gets live post", func() bool {
		d := carol.delivered("lobby")
		return len(d) > 0 && d[len(d)-1] == "after carol joined"
	})
}

func TestOutboxSurvivesDownPeerAndRestart(t *testing.T) {
	c, alice, bob := twoServers(t, ClockHLC)
	// Take bob's server down, post, restart the poster too: the durable
	// outbox must still get the messages to bob's server when it returns.
	c.crash(bob.server)
	for i := 0; i < 5; i++ {
		alice.say("lobby", fmt.Sprint(i), fmt.Sprint("while down ", i))
	}
	c.crash(alice.server)
	c.startServer(alice.server, ClockHLC)
	c.startServer(bob.server, ClockHLC)
	bob2 := c.attach("bob", bob.token, bob.server)
	alice2 := c.attach("alice", alice.token, alice.server)
	want := texts(alice2.history("lobby"))
	if len(want) != 5 {
		t.Fatalf("alice's server lost acknowledged posts after restart: %q", want)
	}
	rmitest.WaitFor(t, "bob's server to receive the outbox", func() bool {
		return equal(texts(bob2.history("lobby")), want)
	})
	// The restarted server continues its sequence.
	if r := alice2.say("lobby", "next", "next"); r.Stamp.Seq != 6 {
		t.Fatalf("seq after restart %d, want 6", r.Stamp.Seq)
	}
}

func TestSlowClientDoesNotStallOthers(t *testing.T) {
	c, alice, bob := twoServers(t, ClockHLC)
	// A second session of bob on alice's server that never returns from
	// Deliver until released.
	rep, err := c.central.Login(context.Background(), centralapi.LoginArgs{User: "bob", Password: "password-bob"})
	if err != nil {
		t.Fatal(err)
	}
	c.servers[alice.server].mu.Lock()
	c.servers[alice.server].maxQueue = 50
	c.servers[alice.server].mu.Unlock()
	slow := c.attach("bob", rep.Token, alice.server)
	release := make(chan struct{})
	slow.mu.Lock()
	slow.block = release
	slow.mu.Unlock()
	n := 150
	for i := 0; i < n; i++ {
		alice.say("lobby", fmt.Sprint(i), fmt.Sprint(i))
	}
	rmitest.WaitFor(t, "fast clients get everything", func() bool {
		return len(alice.delivered("lobby")) == n && len(bob.delivered("lobby")) == n
	})
	close(release)
	rmitest.WaitFor(t, "slow client told to resync", func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		for _, e := range slow.events {
			if e.Kind == chatapi.EventResync && e.Room == "lobby" {
				return true
			}
		}
		return false
	})
	// And what it missed is all there for its Sync.
	if got := len(slow.history("lobby")); got != n {
		t.Fatalf("slow client's history has %d messages, want %d", got, n)
	}
}

func TestHLCOrdersReplyAfterWhatItAnswers(t *testing.T) {
	for _, mode := range []string{ClockWall, ClockHLC} {
		t.Run(mode, func(t *testing.T) {
			_, alice, bob := twoServers(t, mode)
			q := alice.say("lobby", "q", "question")
			// A client whose server clock is behind: it has seen a stamp
			// 30s in the future.
			future := chatapi.Stamp{Time: q.Stamp.Time + int64(30*time.Second), Server: "zz", Seq: 1}
			r, err := bob.chat.Post(context.Background(), chatapi.PostArgs{Token: bob.token, Room: "lobby", ID: "r", Text: "answer", Seen: future})
			if err != nil {
				t.Fatal(err)
			}
			after := future.Less(r.Stamp)
			if mode == ClockHLC && !after {
				t.Fatalf("hlc: reply %v not after seen %v", r.Stamp, future)
			}
			if mode == ClockWall && after {
				t.Fatalf("wall: reply %v unexpectedly after seen %v (wall mode ignores Seen)", r.Stamp, future)
			}
		})
	}
}

func TestAttachNeedsCallbackAndValidSession(t *testing.T) {
	c := newTestCluster(t)
	c.startServer("a", ClockHLC)
	c.signup("alice")
	rep, err := c.central.Login(context.Background(), centralapi.LoginArgs{User: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	table := c.tables["a:1"]
	c.mu.Unlock()
	noCB := chatapi.Stub{Inv: rmi.Local{Table: table, Peer: rmi.NewPeer(99, "x", false, nil)}}
	if _, err := noCB.Attach(context.Background(), chatapi.AttachArgs{Token: rep.Token}); !errors.Is(err, chatapi.ErrNoCallback) {
		t.Fatalf("attach without callback: %v", err)
	}
	cl := c.attach("alice", rep.Token, "a")
	if _, err := cl.chat.Attach(context.Background(), chatapi.AttachArgs{Token: "forged"}); !errors.Is(err, centralapi.ErrBadSession) {
		t.Fatalf("attach with forged token: %v", err)
	}
	// Peer methods are cluster-only.
	pub := chatapi.PeerStub{Inv: rmi.Local{Table: table, Peer: rmi.NewPeer(100, "x", false, nil)}}
	if _, err := pub.Forward(context.Background(), chatapi.ForwardArgs{From: "evil", Messages: []chatapi.Message{{Room: "r", ID: "1", From: "alice", Text: "forged", Stamp: chatapi.Stamp{Time: 1, Server: "evil", Seq: 1}}}}); !errors.Is(err, rmi.ErrUnauthorized) {
		t.Fatalf("forward without cluster secret: %v", err)
	}
	// Closing the connection detaches.
	cl.peer.Close()
	rmitest.WaitFor(t, "detach on close", func() bool { _, err := c.servers["a"].attached(rep.Token); return err != nil })
}

func TestDirectRoom(t *testing.T) {
	c, alice, bob := twoServers(t, ClockHLC)
	c.signup("carol")
	carol := c.login("carol")
	ctx := context.Background()
	info, err := alice.chat.Direct(ctx, chatapi.DirectArgs{Token: alice.token, Peer: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	alice.say(info.Name, "d1", "psst")
	rmitest.WaitFor(t, "bob gets dm", func() bool { return equal(bob.delivered(info.Name), []string{"psst"}) })
	if _, err := carol.chat.Sync(ctx, chatapi.SyncArgs{Token: carol.token, Room: info.Name}); !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("carol reads the dm: %v", err)
	}
	if _, err := carol.chat.Who(ctx, chatapi.RoomArgs{Token: carol.token, Room: info.Name}); !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("carol lists the dm: %v", err)
	}
	if len(carol.delivered(info.Name)) != 0 {
		t.Fatal("carol received a dm")
	}
}

func TestCentralRestart(t *testing.T) {
	c, alice, bob := twoServers(t, ClockHLC)
	alice.say("lobby", "1", "before")
	rmitest.WaitFor(t, "bob gets first", func() bool { return len(bob.delivered("lobby")) == 1 })
	c.restartCentral()
	// The servers find central forgot them, register again with their
	// sessions, and central again knows where everyone is.
	rmitest.WaitFor(t, "central relearns attachments", func() bool {
		info, err := c.central.Room(context.Background(), centralapi.RoomQuery{Room: "lobby"})
		return err == nil && len(info.Servers) == 2
	})
	// Membership caches may be stale; RoomChanged is not needed for
	// delivery since membership did not change.
	alice.say("lobby", "2", "after")
	rmitest.WaitFor(t, "bob gets second", func() bool { return equal(bob.delivered("lobby"), []string{"before", "after"}) })
	// Sessions survived: logging in is not needed to keep posting.
	bob.say("lobby", "3", "bob still here")
}

func TestConcurrentRetriesStoreOnce(t *testing.T) {
	_, alice, _ := twoServers(t, ClockHLC)
	for round := 0; round < 20; round++ {
		id := fmt.Sprintf("retry-%d", round)
		var wg sync.WaitGroup
		stamps := make(chan chatapi.Stamp, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := alice.chat.Post(context.Background(), chatapi.PostArgs{Token: alice.token, Room: "lobby", ID: id, Text: "once"})
				if err == nil {
					stamps <- r.Stamp
				} else if !errors.Is(err, chatapi.ErrInProgress) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		close(stamps)
		var first chatapi.Stamp
		for s := range stamps {
			if first.IsZero() {
				first = s
			} else if s != first {
				t.Fatalf("round %d: one id acknowledged with two stamps, %v and %v", round, first, s)
			}
		}
	}
	if n := len(alice.history("lobby")); n != 20 {
		t.Fatalf("history has %d messages, want 20 (one per id)", n)
	}
}

func TestMadeUpRoomsLeaveNoState(t *testing.T) {
	c, alice, _ := twoServers(t, ClockHLC)
	s := c.servers[alice.server]
	s.mu.Lock()
	before := len(s.rooms)
	s.mu.Unlock()
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		room := fmt.Sprintf("nowhere-%d", i)
		if _, err := alice.chat.Who(ctx, chatapi.RoomArgs{Token: alice.token, Room: room}); !errors.Is(err, centralapi.ErrNoSuchRoom) {
			t.Fatalf("who %s: %v", room, err)
		}
		if _, err := alice.chat.Sync(ctx, chatapi.SyncArgs{Token: alice.token, Room: room}); !errors.Is(err, centralapi.ErrNoSuchRoom) {
			t.Fatalf("sync %s: %v", room, err)
		}
	}
	if _, err := alice.chat.Sync(ctx, chatapi.SyncArgs{Token: alice.token, Room: strings.Repeat("x", 1<<16)}); !errors.Is(err, centralapi.ErrBadName) {
		t.Fatalf("sync with a 64 KiB room name: %v", err)
	}
	s.mu.Lock()
	after := len(s.rooms)
	s.mu.Unlock()
	if after != before {
		t.Fatalf("room table grew from %d to %d entries on lookups of rooms that do not exist", before, after)
	}
}

func TestSeenIsCapped(t *testing.T) {
	_, alice, _ := twoServers(t, ClockHLC)
	// A client claiming to have seen a stamp two hours ahead moves the
	// server's clock by at most maxFuture.
	now := time.Now().UnixNano()
	far := chatapi.Stamp{Time: now + int64(2*time.Hour), Server: "zz", Seq: 1}
	r, err := alice.chat.Post(context.Background(), chatapi.PostArgs{Token: alice.token, Room: "lobby", ID: "far", Text: "x", Seen: far})
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(r.Stamp.Time - now); got > maxFuture+10*time.Second {
		t.Fatalf("stamp %v ahead of now; want at most about %v", got, maxFuture)
	}
}
