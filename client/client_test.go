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
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// login logs user in with a recorder wired to OnMessage, OnEvent and
// OnStatus.
// annAndBobInRoom starts two chat servers, logs ann in on server-1 and
// bob on server-2, and puts both in room "r", created by ann.
func annAndBobInRoom(t *testing.T) (w *world, ann *Client, annRec *recorder, bob *Client, bobRec *recorder) {
	t.Helper()
	ctx := context.Background()
	w = newWorld(t, 2)
	w.AddUser("ann")
	w.AddUser("bob")
	w.Place("ann", "server-1")
	w.Place("bob", "server-2")
	ann, annRec = login(t, w, "ann")
	bob, bobRec = login(t, w, "bob")
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	return w, ann, annRec, bob, bobRec
}

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
	rmitest.WaitFor(t, c.User()+" to catch up", func() bool {
		w.clk.Add(0) // each time: a delivery may schedule its sync after an Add
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pendingFull) == 0 && len(c.rooms.unsynced) == 0
	})
}

// When the server tells a user it joined a room while the user's own
// JoinRoom is under way, the client fetches the room's history once, in
// JoinRoom, and asks for no second full sync (in production that one ran
// at the same time and fetched the history again). A JoinRoom that fails
// once the user is a member leaves the history to a background sync.
func TestJoinRoomFetchesHistoryOnce(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1)
	w.AddUser("ann")
	w.AddUser("bob")
	ann, _ := login(t, w, "ann")
	var hist []chatapi.Message
	for _, room := range []string{"lobby", "attic"} {
		if _, err := ann.CreateRoom(ctx, room); err != nil {
			t.Fatal(err)
		}
		hist = nil
		for _, text := range []string{"one", "two", "three", "four", "five"} {
			hist = append(hist, say(t, ann, room, text))
		}
	}
	w.pageSyncs(2)
	bob, _ := login(t, w, "bob")
	toldJoined := func(room string) func() bool {
		return func() bool {
			return slices.Contains(w.handledEvents("bob"), chatapi.Event{Kind: chatapi.EventJoined, Room: room, User: "bob"})
		}
	}
	pendingFull := func(room string) bool {
		bob.mu.Lock()
		defer bob.mu.Unlock()
		return bob.pendingFull[room]
	}

	// The joined event is handled before JoinRoom fetches the history.
	w.afterCall("bob", "JoinRoom", func() { rmitest.WaitFor(t, "bob's client to handle his joined event", toldJoined("lobby")) })
	before := w.count("bob", "server-1", "Sync")
	if _, err := bob.JoinRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if got := bob.View("lobby"); len(got) != 5 {
		t.Fatalf("after JoinRoom bob shows %s, want the 5 messages", fmtTexts(got))
	}
	if n := w.count("bob", "server-1", "Sync"); n-before != 3 || pendingFull("lobby") {
		t.Fatalf("JoinRoom took %d Sync calls (5 messages in pages of 2: want 3), and a second full sync is scheduled: %v", n-before, pendingFull("lobby"))
	}

	// JoinRoom fails after the join (its caller gave up): the history
	// comes in the background.
	jctx, cancel := context.WithCancel(ctx)
	w.afterCall("bob", "JoinRoom", func() {
		rmitest.WaitFor(t, "bob's client to handle his joined event", toldJoined("attic"))
		cancel()
	})
	if _, err := bob.JoinRoom(jctx, "attic"); !errors.Is(err, context.Canceled) {
		t.Fatalf("JoinRoom canceled after the join: %v, want context.Canceled", err)
	}
	if !pendingFull("attic") {
		t.Fatal("JoinRoom failed after the join, and no sync of the room is scheduled")
	}
	caughtUp(t, w, bob)
	if got := bob.View("attic"); !slices.Equal(ids(got), ids(hist)) {
		t.Fatalf("after the background sync bob shows %s in attic, want %s", fmtTexts(got), fmtTexts(hist))
	}
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
	w.pageSyncs(2) // history comes in pages

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
	_, ann, annRec, bob, bobRec := annAndBobInRoom(t)

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
	// The view shows "second" before the delivery schedules the gap sync.
	rmitest.WaitFor(t, "ann's gap sync of q to be scheduled", func() bool {
		ann.mu.Lock()
		defer ann.mu.Unlock()
		return ann.pendingGap["q"]
	})
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
