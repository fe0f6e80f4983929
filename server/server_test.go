package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

func TestPostReachesMembersOnBothServers(t *testing.T) {
	_, alice, bob := twoServers(t, server.ClockHLC)
	r1 := say(t, alice, "lobby", "m1", "hello")
	r2 := say(t, bob, "lobby", "m2", "hi alice")
	if r1.Stamp.Server != alice.Server || r1.Stamp.Seq != 1 || r2.Stamp.Server != bob.Server || r2.Stamp.Seq != 1 {
		t.Fatalf("stamps %v %v: want each stamped by its first server with seq 1", r1.Stamp, r2.Stamp)
	}
	want := []string{"hello", "hi alice"}
	for _, cl := range []*servertest.RawClient{alice, bob} {
		rmitest.WaitFor(t, cl.User+" receives both", func() bool { return slices.Equal(delivered(cl, "lobby"), want) })
		if got := texts(history(t, cl, "lobby")); !slices.Equal(got, want) {
			t.Fatalf("%s history %q, want %q", cl.User, got, want)
		}
	}
}

func TestForwardOncePerServerNotPerMember(t *testing.T) {
	c := servertest.New(t, servertest.Options{Servers: 2})
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	var cls []*servertest.RawClient
	for _, u := range users {
		c.AddUser(u)
		cls = append(cls, c.Login(u, ""))
	}
	ctx := context.Background()
	if _, err := cls[0].Chat.CreateRoom(ctx, chatapi.RoomArgs{Token: cls[0].Token, Room: "big"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range cls[1:] {
		if _, err := cl.Chat.JoinRoom(ctx, chatapi.RoomArgs{Token: cl.Token, Room: "big"}); err != nil {
			t.Fatal(err)
		}
	}
	poster := cls[0]
	other := "server-1"
	if poster.Server == "server-1" {
		other = "server-2"
	}
	before := c.Forwards(other)
	say(t, poster, "big", "x", "to everyone")
	for _, cl := range cls {
		rmitest.WaitFor(t, cl.User+" receives", func() bool { return len(delivered(cl, "big")) == 1 })
	}
	if n := c.Forwards(other) - before; n != 1 {
		t.Fatalf("%d Forward calls to %s for one post to three members there; want 1", n, other)
	}
}

func TestBadPostsGetClearErrors(t *testing.T) {
	c, alice, _ := twoServers(t, server.ClockHLC)
	c.AddUser("carol")
	carol := c.Login("carol", "")
	ctx := context.Background()
	cases := []struct {
		name string
		cl   *servertest.RawClient
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
			a.Token = tc.cl.Token
			if tc.want == chatapi.ErrNotAttached {
				a.Token = "forged"
			}
			_, err := tc.cl.Chat.Post(ctx, a)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Nothing above was stored, and the room still works.
	say(t, alice, "lobby", "ok", "still works")
	if got := texts(history(t, alice, "lobby")); !slices.Equal(got, []string{"still works"}) {
		t.Fatalf("history %q", got)
	}
	// Non-members cannot read either.
	if _, err := carol.Chat.Sync(ctx, chatapi.SyncArgs{Token: carol.Token, Room: "lobby"}); !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("non-member sync: %v", err)
	}
}

func TestSenderComesFromSession(t *testing.T) {
	_, alice, bob := twoServers(t, server.ClockHLC)
	say(t, alice, "lobby", "1", "who am i")
	rmitest.WaitFor(t, "bob receives", func() bool { return len(delivered(bob, "lobby")) == 1 })
	if h := history(t, bob, "lobby"); h[0].From != "alice" {
		t.Fatalf("from %q, want alice", h[0].From)
	}
}

func TestRetriedPostStoredOnce(t *testing.T) {
	_, alice, bob := twoServers(t, server.ClockHLC)
	r1 := say(t, alice, "lobby", "same-id", "once")
	r2 := say(t, alice, "lobby", "same-id", "once")
	if !r2.Duplicate || r2.Stamp != r1.Stamp || r1.Duplicate {
		t.Fatalf("first %+v, retry %+v: want the retry to return the first stamp as a duplicate", r1, r2)
	}
	say(t, alice, "lobby", "other", "twice?")
	rmitest.WaitFor(t, "bob gets 2", func() bool { return len(delivered(bob, "lobby")) == 2 })
	if got := texts(history(t, bob, "lobby")); !slices.Equal(got, []string{"once", "twice?"}) {
		t.Fatalf("history %q", got)
	}
}

func TestLateJoinerOnThirdServerGetsFullHistory(t *testing.T) {
	// The third server joins the cluster only after the room has a
	// history.
	c := servertest.New(t, servertest.Options{Servers: 3})
	c.Stop("server-3")
	alice, bob := inLobby(t, c)
	var want []string
	for i := 0; i < 25; i++ {
		cl := alice
		if i%2 == 1 {
			cl = bob
		}
		text := fmt.Sprintf("m%02d", i)
		say(t, cl, "lobby", text, text)
		want = append(want, text)
	}
	c.Start("server-3")
	c.AddUser("carol")
	carol := c.Login("carol", "")
	if carol.Server != "server-3" {
		t.Fatalf("carol on %s, want the empty server-3", carol.Server)
	}
	if _, err := carol.Chat.JoinRoom(context.Background(), chatapi.RoomArgs{Token: carol.Token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	got := history(t, carol, "lobby")
	ref := history(t, alice, "lobby")
	if !slices.Equal(texts(got), texts(ref)) || len(got) != len(want) {
		t.Fatalf("late joiner history %q\nwant (alice's) %q", texts(got), texts(ref))
	}
	for i := range got {
		if got[i].Stamp != ref[i].Stamp {
			t.Fatalf("entry %d stamped %v for carol, %v for alice", i, got[i].Stamp, ref[i].Stamp)
		}
	}
	// New posts now reach carol live.
	say(t, bob, "lobby", "after", "after carol joined")
	rmitest.WaitFor(t, "carol gets live post", func() bool {
		d := delivered(carol, "lobby")
		return len(d) > 0 && d[len(d)-1] == "after carol joined"
	})
}

func TestOutboxSurvivesDownPeerAndRestart(t *testing.T) {
	c, alice, bob := twoServers(t, server.ClockHLC)
	// Take bob's server down, post, restart the poster too: the durable
	// outbox must still get the messages to bob's server when it returns.
	c.Crash(bob.Server)
	for i := 0; i < 5; i++ {
		say(t, alice, "lobby", fmt.Sprint(i), fmt.Sprint("while down ", i))
	}
	c.Crash(alice.Server)
	c.Start(alice.Server)
	c.Start(bob.Server)
	bob2 := c.Attach("bob", bob.Token, bob.Server)
	alice2 := c.Attach("alice", alice.Token, alice.Server)
	want := texts(history(t, alice2, "lobby"))
	if len(want) != 5 {
		t.Fatalf("alice's server lost acknowledged posts after restart: %q", want)
	}
	rmitest.WaitFor(t, "bob's server to receive the outbox", func() bool {
		return slices.Equal(texts(history(t, bob2, "lobby")), want)
	})
	// The restarted server continues its sequence.
	if r := say(t, alice2, "lobby", "next", "next"); r.Stamp.Seq != 6 {
		t.Fatalf("seq after restart %d, want 6", r.Stamp.Seq)
	}
}

// slowClientRun attaches a second session of bob on alice's server, with
// a delivery queue bounded to bound, that does not return from Deliver
// until released; alice posts n messages ("0", "1", ...); then the slow
// session is released, and slowClientRun returns once it has been told to
// resync.
func slowClientRun(t *testing.T, bound, n int) (alice, slow *servertest.RawClient) {
	t.Helper()
	c, alice, bob := twoServers(t, server.ClockHLC)
	rep, err := c.Central().Login(context.Background(), centralapi.LoginArgs{User: "bob", Password: c.Password("bob")})
	if err != nil {
		t.Fatal(err)
	}
	c.Server(alice.Server).SetMaxQueue(bound)
	slow = c.Attach("bob", rep.Token, alice.Server)
	release := slow.Hold()
	// alice posts in steps of half the queue's bound, each once the fast
	// clients have the step before it: otherwise, with -race on a loaded
	// machine, alice's own deliveries could fall behind her posts by the
	// bound, and she would be the one told to resync.
	step := bound / 2
	for i := 0; i < n; i++ {
		say(t, alice, "lobby", fmt.Sprint(i), fmt.Sprint(i))
		if i == 0 {
			// The slow client's first Deliver, held, carries the first
			// post alone: the next one is made once it is on its way, so
			// it is queued behind it (a delivery task that started late
			// took the first two, and 52 arrived before the resync).
			rmitest.WaitFor(t, "the slow client's first delivery to be held", func() bool { return slow.Held() == 1 })
		}
		if (i+1)%step != 0 {
			continue
		}
		rmitest.WaitForWhy(t, "fast clients get everything", func() (bool, string) {
			a, b := len(delivered(alice, "lobby")), len(delivered(bob, "lobby"))
			return a == i+1 && b == i+1, fmt.Sprintf("alice has %d, bob %d of %d", a, b, i+1)
		})
	}
	release()
	rmitest.WaitFor(t, "slow client told to resync", func() bool {
		return slices.Contains(slow.Events(), chatapi.Event{Kind: chatapi.EventResync, Room: "lobby"})
	})
	return alice, slow
}

func TestSlowClientDoesNotStallOthers(t *testing.T) {
	const n = 150
	_, slow := slowClientRun(t, 50, n)
	// What it missed is all there for its Sync.
	if got := len(history(t, slow, "lobby")); got != n {
		t.Fatalf("slow client's history has %d messages, want %d", got, n)
	}
}

// A client that falls behind by the queue's bound gets what was queued for
// it, in order, then a resync event, and deliveries resume after it: it is
// not made to fetch a dropped backlog by Sync while new messages keep
// coming as duplicates.
func TestSlowClientGetsItsQueueThenResyncs(t *testing.T) {
	const bound, n = 50, 120
	alice, slow := slowClientRun(t, bound, n)
	got := delivered(slow, "lobby")
	if len(got) < bound || len(got) > bound+1 {
		t.Fatalf("slow client was delivered %d messages before its resync, want the %d queued (and one in flight)", len(got), bound)
	}
	for i, text := range got {
		if text != fmt.Sprint(i) {
			t.Fatalf("slow client's deliveries are not the first of alice's posts in order: %v", got)
		}
	}
	// Deliveries resume once it has caught up.
	say(t, alice, "lobby", "after", "after")
	rmitest.WaitFor(t, "slow client gets a post made after its resync", func() bool {
		return slices.Contains(delivered(slow, "lobby"), "after")
	})
	if got := len(history(t, slow, "lobby")); got != n+1 {
		t.Fatalf("slow client's history has %d messages, want %d", got, n+1)
	}
}

func TestHLCOrdersReplyAfterWhatItAnswers(t *testing.T) {
	for _, mode := range []string{server.ClockWall, server.ClockHLC} {
		t.Run(mode, func(t *testing.T) {
			_, alice, bob := twoServers(t, mode)
			q := say(t, alice, "lobby", "q", "question")
			// A client whose server clock is behind: it has seen a stamp
			// 30s in the future.
			future := chatapi.Stamp{Time: q.Stamp.Time + int64(30*time.Second), Server: "zz", Seq: 1}
			r, err := bob.Chat.Post(context.Background(), chatapi.PostArgs{Token: bob.Token, Room: "lobby", ID: "r", Text: "answer", Seen: future})
			if err != nil {
				t.Fatal(err)
			}
			after := future.Less(r.Stamp)
			if mode == server.ClockHLC && !after {
				t.Fatalf("hlc: reply %v not after seen %v", r.Stamp, future)
			}
			if mode == server.ClockWall && after {
				t.Fatalf("wall: reply %v unexpectedly after seen %v (wall mode ignores Seen)", r.Stamp, future)
			}
		})
	}
}

func TestAttachNeedsCallbackAndValidSession(t *testing.T) {
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{})
	c.AddUser("alice")
	rep, err := c.Central().Login(ctx, centralapi.LoginArgs{User: "alice", Password: c.Password("alice")})
	if err != nil {
		t.Fatal(err)
	}
	// A connection that exports no callbacks.
	plain, err := c.Dial(ctx, c.Addr("server-1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	noCB := chatapi.Stub{Inv: plain}
	if _, err := noCB.Attach(ctx, chatapi.AttachArgs{Token: rep.Token}); !errors.Is(err, chatapi.ErrNoCallback) {
		t.Fatalf("attach without callback: %v", err)
	}
	cl := c.Attach("alice", rep.Token, "server-1")
	if _, err := cl.Chat.Attach(ctx, chatapi.AttachArgs{Token: "forged"}); !errors.Is(err, centralapi.ErrBadSession) {
		t.Fatalf("attach with forged token: %v", err)
	}
	// Peer methods are cluster-only.
	pub := chatapi.PeerStub{Inv: plain}
	if _, err := pub.Forward(ctx, chatapi.ForwardArgs{From: "evil", Messages: []chatapi.Message{{Room: "r", ID: "1", From: "alice", Text: "forged", Stamp: chatapi.Stamp{Time: 1, Server: "evil", Seq: 1}}}}); !errors.Is(err, rmi.ErrUnauthorized) {
		t.Fatalf("forward without cluster secret: %v", err)
	}
	// Closing the connection detaches: the session is no longer attached
	// there, whoever asks.
	if err := noCB.Ping(ctx, chatapi.TokenArgs{Token: rep.Token}); err != nil {
		t.Fatalf("ping while attached: %v", err)
	}
	cl.Conn.Close()
	rmitest.WaitFor(t, "detach on close", func() bool {
		return errors.Is(noCB.Ping(ctx, chatapi.TokenArgs{Token: rep.Token}), chatapi.ErrNotAttached)
	})
}

func TestDirectRoom(t *testing.T) {
	c, alice, bob := twoServers(t, server.ClockHLC)
	c.AddUser("carol")
	carol := c.Login("carol", "")
	ctx := context.Background()
	info, err := alice.Chat.Direct(ctx, chatapi.DirectArgs{Token: alice.Token, Peer: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	say(t, alice, info.Name, "d1", "psst")
	rmitest.WaitFor(t, "bob gets dm", func() bool { return slices.Equal(delivered(bob, info.Name), []string{"psst"}) })
	if _, err := carol.Chat.Sync(ctx, chatapi.SyncArgs{Token: carol.Token, Room: info.Name}); !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("carol reads the dm: %v", err)
	}
	if _, err := carol.Chat.Who(ctx, chatapi.RoomArgs{Token: carol.Token, Room: info.Name}); !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("carol lists the dm: %v", err)
	}
	if len(delivered(carol, info.Name)) != 0 {
		t.Fatal("carol received a dm")
	}
}

func TestCentralRestart(t *testing.T) {
	c, alice, bob := twoServers(t, server.ClockHLC)
	say(t, alice, "lobby", "1", "before")
	rmitest.WaitFor(t, "bob gets first", func() bool { return len(delivered(bob, "lobby")) == 1 })
	c.RestartCentral()
	// The servers find central forgot them, register again with their
	// sessions, and central again knows where everyone is.
	rmitest.WaitFor(t, "central relearns attachments", func() bool {
		info, err := c.Central().Room(context.Background(), centralapi.RoomQuery{Room: "lobby"})
		return err == nil && len(info.Servers) == 2
	})
	// Membership caches may be stale; RoomChanged is not needed for
	// delivery since membership did not change.
	say(t, alice, "lobby", "2", "after")
	rmitest.WaitFor(t, "bob gets second", func() bool { return slices.Equal(delivered(bob, "lobby"), []string{"before", "after"}) })
	// Sessions survived: logging in is not needed to keep posting.
	say(t, bob, "lobby", "3", "bob still here")
}

func TestConcurrentRetriesStoreOnce(t *testing.T) {
	_, alice, _ := twoServers(t, server.ClockHLC)
	for round := 0; round < 20; round++ {
		id := fmt.Sprintf("retry-%d", round)
		var wg sync.WaitGroup
		stamps := make(chan chatapi.Stamp, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := alice.Chat.Post(context.Background(), chatapi.PostArgs{Token: alice.Token, Room: "lobby", ID: id, Text: "once"})
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
	if n := len(history(t, alice, "lobby")); n != 20 {
		t.Fatalf("history has %d messages, want 20 (one per id)", n)
	}
}

func TestMadeUpRoomsLeaveNoState(t *testing.T) {
	c, alice, _ := twoServers(t, server.ClockHLC)
	s := c.Server(alice.Server)
	before := s.RoomEntries()
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		room := fmt.Sprintf("nowhere-%d", i)
		if _, err := alice.Chat.Who(ctx, chatapi.RoomArgs{Token: alice.Token, Room: room}); !errors.Is(err, centralapi.ErrNoSuchRoom) {
			t.Fatalf("who %s: %v", room, err)
		}
		if _, err := alice.Chat.Sync(ctx, chatapi.SyncArgs{Token: alice.Token, Room: room}); !errors.Is(err, centralapi.ErrNoSuchRoom) {
			t.Fatalf("sync %s: %v", room, err)
		}
	}
	if _, err := alice.Chat.Sync(ctx, chatapi.SyncArgs{Token: alice.Token, Room: strings.Repeat("x", 1<<16)}); !errors.Is(err, centralapi.ErrBadName) {
		t.Fatalf("sync with a 64 KiB room name: %v", err)
	}
	if after := s.RoomEntries(); after != before {
		t.Fatalf("room table grew from %d to %d entries on lookups of rooms that do not exist", before, after)
	}
}

func TestSeenIsCapped(t *testing.T) {
	_, alice, _ := twoServers(t, server.ClockHLC)
	// A client claiming to have seen a stamp two hours ahead moves the
	// server's clock by at most MaxFuture.
	now := time.Now().UnixNano()
	far := chatapi.Stamp{Time: now + int64(2*time.Hour), Server: "zz", Seq: 1}
	r, err := alice.Chat.Post(context.Background(), chatapi.PostArgs{Token: alice.Token, Room: "lobby", ID: "far", Text: "x", Seen: far})
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(r.Stamp.Time - now); got > server.MaxFuture+10*time.Second {
		t.Fatalf("stamp %v ahead of now; want at most about %v", got, server.MaxFuture)
	}
}
