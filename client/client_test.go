package client

import (
	"context"
	"errors"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// login logs user in with a recorder wired to OnMessage, OnEvent and
// OnStatus.
func login(t *testing.T, w *world, user string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := w.cfg(user)
	cfg.OnMessage = rec.onMessage
	cfg.OnEvent = rec.onEvent
	cfg.OnStatus = rec.onStatus
	c, err := Login(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Login(%s): %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, rec
}

// say posts text to room as c, failing the test on error.
func say(t *testing.T, c *Client, room, text string) chatapi.Message {
	t.Helper()
	m, err := c.Say(context.Background(), room, text)
	if err != nil {
		t.Fatalf("%s says %q in %s: %v", c.User(), text, room, err)
	}
	return m
}

// waitView waits until c's view of room holds n messages.
func waitView(t *testing.T, c *Client, room string, n int) {
	t.Helper()
	rmitest.WaitForWhy(t, c.User()+"'s view of "+room, func() (bool, string) {
		got := c.View(room)
		return len(got) == n, "has " + fmtTexts(got)
	})
}

func fmtTexts(msgs []chatapi.Message) string { return "[" + strings.Join(texts(msgs), " ") + "]" }

// caughtUp lets c finish the syncs it has scheduled: it runs what is due
// on the clients' clock and waits until no room waits for a sync.
func caughtUp(t *testing.T, w *world, c *Client) {
	t.Helper()
	w.clk.Add(0)
	rmitest.WaitFor(t, c.User()+" to catch up", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pendingFull) == 0 && len(c.rooms.unsynced) == 0
	})
}

// joinedEvents returns the rooms rec was told user joined.
func (r *recorder) joinedEvents(user string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rooms []string
	for _, e := range r.events {
		if e.Kind == chatapi.EventJoined && e.User == user {
			rooms = append(rooms, e.Room)
		}
	}
	return rooms
}

func ids(msgs []chatapi.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func texts(msgs []chatapi.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

func sortedByStamp(msgs []chatapi.Message) bool {
	return slices.IsSortedFunc(msgs, func(a, b chatapi.Message) int { return a.Stamp.Compare(b.Stamp) })
}

func TestLoginFollowsRegistryAndRedirect(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 3)
	w.AddUser("ann")
	w.AddUser("bob")
	w.Place("ann", "server-2")
	w.Place("bob", "server-2")
	bob, _ := login(t, w, "bob")
	if _, err := bob.CreateRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	var hist []chatapi.Message
	for _, text := range []string{"one", "two", "three", "four", "five"} {
		hist = append(hist, say(t, bob, "lobby", text))
	}
	if _, err := w.Central().JoinRoom(ctx, centralapi.RoomArgs{User: "ann", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	w.syncLimit = 2 // history comes in pages

	c, rec := login(t, w, "ann")
	if got, want := w.dialed("ann"), []string{"registry:1099", w.CentralAddr(), w.Addr("server-2")}; !slices.Equal(got, want) {
		t.Fatalf("dialed %v, want the registry (default port), then the central server it names, then the chat server: %v", got, want)
	}
	if c.User() != "ann" || c.Server() != "server-2" {
		t.Fatalf("User, Server = %q, %q", c.User(), c.Server())
	}
	if got := c.Rooms(); !slices.Equal(got, []string{"lobby"}) {
		t.Fatalf("Rooms = %v", got)
	}
	if got := c.View("lobby"); !slices.Equal(ids(got), ids(hist)) {
		t.Fatalf("history after login = %v, want %v", texts(got), texts(hist))
	}
	if n := w.count("ann", "server-2", "Sync"); n < 3 {
		t.Fatalf("5 messages in pages of 2 took %d Sync calls", n)
	}
	if got := rec.messages(); len(got) != len(hist) {
		t.Fatalf("OnMessage saw %d messages, want %d", len(got), len(hist))
	}
	if _, err := Login(ctx, func() Config { c := w.cfg("ann"); c.Password = "wrong password"; return c }()); !errors.Is(err, centralapi.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := w.count("ann", "server-2", "Detach"); n != 1 {
		t.Fatalf("Close detached %d times", n)
	}
	if _, err := c.Say(ctx, "lobby", "after close"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Say after Close: %v", err)
	}
}

func TestSignUpAndReset(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1)
	cfg := w.cfg("zed")
	code, err := SignUp(ctx, cfg)
	if err != nil || code == "" {
		t.Fatalf("SignUp = %q, %v", code, err)
	}
	if _, err := SignUp(ctx, cfg); !errors.Is(err, centralapi.ErrUserExists) {
		t.Fatalf("second SignUp: %v", err)
	}
	if _, err := ResetPassword(ctx, cfg, "nope", "new-password"); !errors.Is(err, centralapi.ErrBadRecoveryCode) {
		t.Fatalf("reset with a wrong code: %v", err)
	}
	next, err := ResetPassword(ctx, cfg, code, "new-password")
	if err != nil || next == "" || next == code {
		t.Fatalf("ResetPassword = %q, %v (the code was %q)", next, err, code)
	}
	if _, err := Login(ctx, cfg); !errors.Is(err, centralapi.ErrBadCredentials) {
		t.Fatalf("login with the old password: %v", err)
	}
	cfg.Password = "new-password"
	c, err := Login(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok := c.token
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Central().Reassign(ctx, centralapi.ReassignArgs{Token: tok}); !errors.Is(err, centralapi.ErrBadSession) {
		t.Fatalf("the session after Logout: %v", err)
	}
}

func TestRoomsAndDirect(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.AddUser("ann")
	w.AddUser("bob")
	w.Place("ann", "server-1")
	w.Place("bob", "server-2")
	ann, _ := login(t, w, "ann")
	bob, bobRec := login(t, w, "bob")

	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.CreateRoom(ctx, "r"); !errors.Is(err, centralapi.ErrRoomExists) {
		t.Fatalf("second CreateRoom: %v", err)
	}
	first := say(t, ann, "r", "before bob")
	info, err := bob.JoinRoom(ctx, "r")
	if err != nil || len(info.Members) != 2 {
		t.Fatalf("JoinRoom = %+v, %v", info, err)
	}
	if got := bob.View("r"); len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("bob's history after join: %v", got)
	}
	if _, err := bob.Say(ctx, "nope", "x"); !errors.Is(err, centralapi.ErrNoSuchRoom) {
		t.Fatalf("Say to unknown room: %v", err)
	}
	if _, err := bob.Say(ctx, "r", ""); !errors.Is(err, chatapi.ErrEmpty) {
		t.Fatalf("empty Say: %v", err)
	}
	if _, err := bob.Say(ctx, "r", string(make([]byte, chatapi.MaxText+1))); !errors.Is(err, chatapi.ErrTooLarge) {
		t.Fatalf("huge Say: %v", err)
	}
	list, err := bob.ListRooms(ctx)
	if err != nil || len(list.Rooms) != 1 || !list.Rooms[0].Joined {
		t.Fatalf("ListRooms = %+v, %v", list, err)
	}
	who, err := ann.Who(ctx, "r")
	if err != nil || len(who.Members) != 2 {
		t.Fatalf("Who = %+v, %v", who, err)
	}

	m, err := ann.Msg(ctx, "bob", "psst")
	if err != nil {
		t.Fatal(err)
	}
	if m.Room != "dm:ann:bob" || m.From != "ann" {
		t.Fatalf("Msg returned %+v", m)
	}
	// Bob had no view of the direct room: the delivery creates it.
	waitView(t, bob, "dm:ann:bob", 1)
	if got := bob.View("dm:ann:bob"); got[0].Text != "psst" {
		t.Fatalf("bob's direct room: %v", got)
	}
	if !slices.Contains(bob.Rooms(), "dm:ann:bob") {
		t.Fatalf("bob's rooms: %v", bob.Rooms())
	}
	if got := bobRec.messages(); len(got) != 2 || got[1].Text != "psst" {
		t.Fatalf("bob's OnMessage: %v", texts(got))
	}

	if err := bob.LeaveRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(bob.Rooms(), "r") {
		t.Fatal("r still listed after LeaveRoom")
	}
	if _, err := bob.History(ctx, "r"); !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("History after leaving: %v", err)
	}
	say(t, ann, "r", "bob is gone")
	hist, err := ann.History(ctx, "r")
	if err != nil || len(hist) != 2 {
		t.Fatalf("History = %v, %v", texts(hist), err)
	}
	// Bob's view stayed as it was; rejoining fetches only what is new, and
	// reports no message twice.
	if got := bob.View("r"); len(got) != 1 {
		t.Fatalf("bob's view after leaving: %v", texts(got))
	}
	if _, err := bob.JoinRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if got := bob.View("r"); !slices.Equal(ids(got), ids(hist)) {
		t.Fatalf("bob's view after rejoining: %v", texts(got))
	}
	seen := map[string]int{}
	for _, m := range bobRec.messages() {
		seen[m.ID]++
		if seen[m.ID] > 1 {
			t.Fatalf("bob was told of %q twice", m.Text)
		}
	}
}

func TestSayIsInsertedOnceAndDelivered(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.AddUser("ann")
	w.AddUser("bob")
	w.Place("ann", "server-1")
	w.Place("bob", "server-2")
	ann, annRec := login(t, w, "ann")
	bob, bobRec := login(t, w, "bob")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}

	var sent []chatapi.Message
	for _, text := range []string{"a", "b", "c"} {
		m := say(t, ann, "r", text)
		if m.From != "ann" || m.Stamp.Server != "server-1" || m.ID == "" {
			t.Fatalf("Say returned %+v", m)
		}
		sent = append(sent, m)
	}
	// The server delivers ann's own posts to her as well: each is shown
	// and reported once.
	rmitest.WaitFor(t, "ann's own posts delivered back", func() bool {
		st, _ := ann.ViewStats("r")
		return st.Duplicates == len(sent)
	})
	if got := ann.View("r"); !slices.Equal(ids(got), ids(sent)) {
		t.Fatalf("ann's view %v, want %v", texts(got), texts(sent))
	}
	if got := annRec.messages(); !slices.Equal(ids(got), ids(sent)) {
		t.Fatalf("ann's OnMessage %v", texts(got))
	}
	waitView(t, bob, "r", len(sent))
	if got := bob.View("r"); !slices.Equal(ids(got), ids(sent)) {
		t.Fatalf("bob's view %v", texts(got))
	}
	if got := bobRec.messages(); !slices.Equal(ids(got), ids(sent)) {
		t.Fatalf("bob's OnMessage %v", texts(got))
	}
	// Each post carries Seen, so a reply orders after what its author saw.
	m := say(t, bob, "r", "reply")
	if !sent[2].Stamp.Less(m.Stamp) {
		t.Fatalf("reply %v ordered before %v", m.Stamp, sent[2].Stamp)
	}
}

// TestSeenIsCappedAtAMinute: a post's Seen moves the server's clock at most
// a minute ahead, so a reply to a message stamped further in the future
// (a server with a clock far ahead) is ordered before it.
func TestSeenIsCappedAtAMinute(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1)
	w.AddUser("ann")
	ann, _ := login(t, w, "ann")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	ahead := time.Now().Add(time.Hour).UnixNano()
	w.deliver("ann", chatapi.DeliverArgs{Messages: []chatapi.Message{{Room: "r", ID: "far", From: "bob", Text: "from the future",
		Stamp: chatapi.Stamp{Time: ahead, Server: "elsewhere", Seq: 1}}}})
	if ann.seen().Time != ahead {
		t.Fatalf("Seen = %v, want the delivered stamp", ann.seen())
	}
	before := time.Now()
	m := say(t, ann, "r", "reply")
	if limit := time.Now().Add(time.Minute).UnixNano(); m.Stamp.Time > limit || m.Stamp.Time < before.UnixNano() {
		t.Fatalf("stamp %v: want it between now and a minute ahead", time.Unix(0, m.Stamp.Time))
	}
	if got := ann.View("r"); len(got) != 2 || got[0].ID != m.ID {
		t.Fatalf("the reply should order before the message from the future: %v", texts(got))
	}
}

func TestSayRetriesWithSameIDAfterServerDies(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.AddUser("ann")
	w.AddUser("bob")
	w.Place("ann", "server-1")
	w.Place("bob", "server-2")
	ann, annRec := login(t, w, "ann")
	bob, bobRec := login(t, w, "bob")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}

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

func TestDeliverOutOfOrderAndGapSync(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 3)
	w.AddUser("ann")
	w.AddUser("cy")
	// Both on server-1: what cy posts is stored there, where ann syncs
	// from, before Say returns.
	w.Place("ann", "server-1")
	w.Place("cy", "server-1")
	ann, rec := login(t, w, "ann")
	cy, _ := login(t, w, "cy")
	for _, room := range []string{"r", "q"} {
		if _, err := ann.CreateRoom(ctx, room); err != nil {
			t.Fatal(err)
		}
		if _, err := cy.JoinRoom(ctx, room); err != nil {
			t.Fatal(err)
		}
	}

	// The chat server tells ann she joined each room (and her client syncs
	// them): let that happen first, so that only what follows schedules
	// syncs.
	rmitest.WaitFor(t, "ann's joined events", func() bool { return len(rec.joinedEvents("ann")) == 2 })
	caughtUp(t, w, ann)

	// Messages from two origins, delivered one at a time, shuffled, some
	// twice, as servers could.
	var msgs []chatapi.Message
	for i := range 10 {
		srv := []string{"s1", "s2"}[i%2]
		msgs = append(msgs, chatapi.Message{Room: "r", ID: string(rune('a' + i)), From: "bob", Text: string(rune('A' + i)),
			Stamp: chatapi.Stamp{Time: int64(1000 + i), Server: srv, Seq: uint64(i/2 + 1)}})
	}
	shuffled := slices.Clone(msgs)
	rand.New(rand.NewSource(1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, m := range append(shuffled, shuffled[:3]...) {
		w.deliver("ann", chatapi.DeliverArgs{Messages: []chatapi.Message{m}})
	}
	got := ann.View("r")
	if !slices.Equal(ids(got), ids(msgs)) {
		t.Fatalf("view %v, want %v", ids(got), ids(msgs))
	}
	if st, _ := ann.ViewStats("r"); st.Reordered == 0 || st.Duplicates != 3 {
		t.Fatalf("stats %+v", st)
	}
	if arrived := rec.messages(); !slices.Equal(ids(arrived), ids(shuffled)) {
		t.Fatalf("OnMessage order %v, want arrival order %v", ids(arrived), ids(shuffled))
	}

	// A hole: cy's first message in q is lost on its way to ann, the second
	// arrives. After GapSyncDelay the client syncs the room and fills it.
	w.loseDeliveries("ann", func(m chatapi.Message) bool { return m.Text == "first" })
	held := []chatapi.Message{say(t, cy, "q", "first"), say(t, cy, "q", "second")}
	waitView(t, ann, "q", 1)
	w.clk.Add(defaultGapSyncDelay / 2)
	if got := ann.View("q"); len(got) != 1 || got[0].Text != "second" {
		t.Fatalf("view of q before the gap delay: %v", texts(got))
	}
	w.clk.Add(defaultGapSyncDelay / 2)
	waitView(t, ann, "q", 2)
	if got := ann.View("q"); !slices.Equal(ids(got), ids(held)) {
		t.Fatalf("view of q %v", texts(got))
	}

	// A resync event for a room makes the client sync it; one without a
	// room, every room.
	w.loseDeliveries("ann", func(m chatapi.Message) bool { return m.Text == "missed" || m.Text == "missed too" })
	extra := say(t, cy, "r", "missed")
	w.deliver("ann", chatapi.DeliverArgs{Events: []chatapi.Event{{Kind: chatapi.EventResync, Room: "r"}}})
	w.clk.Add(0)
	waitView(t, ann, "r", len(msgs)+1)
	if got := ann.View("r"); got[len(got)-1].ID != extra.ID || !sortedByStamp(got) {
		t.Fatalf("after resync: %v", ids(got))
	}
	more := say(t, cy, "q", "missed too")
	w.deliver("ann", chatapi.DeliverArgs{Events: []chatapi.Event{{Kind: chatapi.EventResync}}})
	w.clk.Add(0)
	waitView(t, ann, "q", 3)
	if got := ann.View("q"); got[2].ID != more.ID {
		t.Fatalf("after resync: %v", texts(got))
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

	// She notices (the lost connection, or her next ping), moves to
	// another server and catches up from her views' heads.
	w.clk.Add(10 * time.Second) // the lease is 30s: pings every 10s
	rmitest.WaitFor(t, "the failover", func() bool {
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

	// Central forgets the session, and ann's server dies.
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
	// The next ping tries again.
	w.clk.Add(10 * time.Second)
	rmitest.WaitFor(t, "the reconnect", func() bool { return ann.Server() == "server-2" })
	say(t, ann, "r", "back")
	// One outage, however many attempts: one Lost, one Back.
	st := rec.status()
	if len(st) != 2 || st[0].Kind != Lost || st[0].Server != "server-1" || !rmi.IsUnreachable(st[0].Err) ||
		st[1].Kind != Back || st[1].Server != "server-2" || st[1].Err != nil {
		t.Fatalf("statuses %+v", st)
	}
}

func TestFailoverOnConnectionLoss(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.AddUser("ann")
	w.AddUser("bob")
	w.Place("ann", "server-1")
	w.Place("bob", "server-2")
	ann, rec := login(t, w, "ann")
	bob, _ := login(t, w, "bob")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	say(t, bob, "r", "one")
	w.Crash("server-1")
	say(t, bob, "r", "two")
	// No ping is due: the lost connection alone moves ann at once.
	w.clk.Add(0)
	rmitest.WaitFor(t, "the failover", func() bool { return ann.Server() == "server-2" && len(ann.View("r")) == 2 })
	if n := w.count("ann", "server-1", "Ping"); n != 0 {
		t.Fatalf("%d pings reached server-1", n)
	}
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
