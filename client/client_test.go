package client

import (
	"context"
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// login logs user in with a recorder wired to OnMessage and OnEvent.
func login(t *testing.T, w *world, user string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := w.cfg(user)
	cfg.OnMessage = rec.onMessage
	cfg.OnEvent = rec.onEvent
	c, err := Login(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Login(%s): %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, rec
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
	w.addUser("ann")
	w.addRoom("lobby", "ann")
	w.placeOn = "s2"
	s2 := w.server("s2")
	s2.syncLimit = 2 // history comes in pages
	hist := s2.seed("lobby", "bob", "one", "two", "three", "four", "five")

	c, rec := login(t, w, "ann")
	if got := w.dialed(); !slices.Equal(got, []string{"reg:1099", "central:1099", "s2:7000"}) {
		t.Fatalf("dialed %v, want registry (default port), then the central server it names, then the chat server", got)
	}
	if c.User() != "ann" || c.Server() != "s2" {
		t.Fatalf("User, Server = %q, %q", c.User(), c.Server())
	}
	if got := c.Rooms(); !slices.Equal(got, []string{"lobby"}) {
		t.Fatalf("Rooms = %v", got)
	}
	if got := c.View("lobby"); !slices.Equal(ids(got), ids(hist)) {
		t.Fatalf("history after login = %v, want %v", texts(got), texts(hist))
	}
	if got := rec.messages(); len(got) != len(hist) {
		t.Fatalf("OnMessage saw %d messages, want %d", len(got), len(hist))
	}
	if _, err := Login(ctx, func() Config { c := w.cfg("ann"); c.Password = "wrong"; return c }()); !errors.Is(err, centralapi.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if s2.detaches != 1 {
		t.Fatalf("Close detached %d times", s2.detaches)
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
	if err != nil || code != "code-zed" {
		t.Fatalf("SignUp = %q, %v", code, err)
	}
	if _, err := SignUp(ctx, cfg); !errors.Is(err, centralapi.ErrUserExists) {
		t.Fatalf("second SignUp: %v", err)
	}
	if _, err := ResetPassword(ctx, cfg, "nope", "new-password"); !errors.Is(err, centralapi.ErrBadRecoveryCode) {
		t.Fatalf("reset with a wrong code: %v", err)
	}
	next, err := ResetPassword(ctx, cfg, code, "new-password")
	if err != nil || next != "code2-zed" {
		t.Fatalf("ResetPassword = %q, %v", next, err)
	}
	cfg.Password = "new-password"
	c, err := Login(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if len(w.sessions) != 0 {
		t.Fatalf("sessions after Logout: %v", w.sessions)
	}
}

func TestRoomsAndDirect(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.addUser("ann")
	w.addUser("bob")
	w.placeOn = "s1"
	ann, _ := login(t, w, "ann")
	w.placeOn = "s2"
	bob, bobRec := login(t, w, "bob")

	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.CreateRoom(ctx, "r"); !errors.Is(err, centralapi.ErrRoomExists) {
		t.Fatalf("second CreateRoom: %v", err)
	}
	first, err := ann.Say(ctx, "r", "before bob")
	if err != nil {
		t.Fatal(err)
	}
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
	if got := bob.View("dm:ann:bob"); len(got) != 1 || got[0].Text != "psst" {
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
	if _, err := ann.Say(ctx, "r", "bob is gone"); err != nil {
		t.Fatal(err)
	}
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
	w.addUser("ann")
	w.addUser("bob")
	w.addRoom("r", "ann", "bob")
	w.placeOn = "s1"
	ann, annRec := login(t, w, "ann")
	w.placeOn = "s2"
	bob, bobRec := login(t, w, "bob")

	var sent []chatapi.Message
	for _, text := range []string{"a", "b", "c"} {
		m, err := ann.Say(ctx, "r", text)
		if err != nil {
			t.Fatal(err)
		}
		if m.From != "ann" || m.Stamp.Server != "s1" || m.ID == "" {
			t.Fatalf("Say returned %+v", m)
		}
		sent = append(sent, m)
	}
	// The server delivered ann's own posts to her as well: each is shown
	// and reported once.
	if got := ann.View("r"); !slices.Equal(ids(got), ids(sent)) {
		t.Fatalf("ann's view %v, want %v", texts(got), texts(sent))
	}
	if got := annRec.messages(); !slices.Equal(ids(got), ids(sent)) {
		t.Fatalf("ann's OnMessage %v", texts(got))
	}
	if got := bob.View("r"); !slices.Equal(ids(got), ids(sent)) {
		t.Fatalf("bob's view %v", texts(got))
	}
	if got := bobRec.messages(); !slices.Equal(ids(got), ids(sent)) {
		t.Fatalf("bob's OnMessage %v", texts(got))
	}
	// Each post carries Seen, so a reply orders after what its author saw.
	m, err := bob.Say(ctx, "r", "reply")
	if err != nil {
		t.Fatal(err)
	}
	if !sent[2].Stamp.Less(m.Stamp) {
		t.Fatalf("reply %v ordered before %v", m.Stamp, sent[2].Stamp)
	}
}

func TestSayRetriesWithSameIDAfterServerDies(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.addUser("ann")
	w.addUser("bob")
	w.addRoom("r", "ann", "bob")
	w.placeOn = "s1"
	ann, annRec := login(t, w, "ann")
	w.placeOn = "s2"
	bob, bobRec := login(t, w, "bob")
	s1 := w.server("s1")

	// s1 stores the post, then dies before acknowledging or forwarding it.
	s1.dieOnStore = true
	m, err := ann.Say(ctx, "r", "hello")
	if err != nil {
		t.Fatalf("Say across a failover: %v", err)
	}
	if ann.Server() != "s2" || m.Stamp.Server != "s2" {
		t.Fatalf("after failover: server %q, stamp %v", ann.Server(), m.Stamp)
	}
	if w.reassigns != 1 {
		t.Fatalf("Reassign called %d times", w.reassigns)
	}
	firstID := ""
	for _, x := range s1.logs["r"] {
		firstID = x.ID
	}
	if firstID != m.ID {
		t.Fatalf("retry used id %q, first attempt %q", m.ID, firstID)
	}
	// s1 comes back and forwards its copy: the post now exists twice, with
	// two stamps. Every client shows it once, at the smaller (s1's) stamp.
	w.restart("s1")
	for name, c := range map[string]*Client{"ann": ann, "bob": bob} {
		got := c.View("r")
		if len(got) != 1 || got[0].ID != m.ID || got[0].Stamp.Server != "s1" {
			t.Fatalf("%s's view: %+v", name, got)
		}
		st, _ := c.ViewStats("r")
		if st.Collapsed != 1 {
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
	w.addUser("ann")
	w.addRoom("r", "ann")
	w.addRoom("q", "ann")
	w.placeOn = "s1"
	ann, rec := login(t, w, "ann")
	back := w.server("s1").backOf(ann.token)
	if back == nil {
		t.Fatal("ann not attached")
	}

	var msgs []chatapi.Message
	for i := range 10 {
		srv := []string{"s1", "s2"}[i%2]
		msgs = append(msgs, chatapi.Message{Room: "r", ID: string(rune('a' + i)), From: "bob", Text: string(rune('A' + i)),
			Stamp: chatapi.Stamp{Time: int64(1000 + i), Server: srv, Seq: uint64(i/2 + 1)}})
	}
	shuffled := slices.Clone(msgs)
	rand.New(rand.NewSource(1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	// Deliver one at a time and some twice, as a server could.
	for _, m := range append(shuffled, shuffled[:3]...) {
		if err := (chatapi.CallbackStub{Inv: back}).Deliver(ctx, chatapi.DeliverArgs{Messages: []chatapi.Message{m}}); err != nil {
			t.Fatal(err)
		}
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

	// A hole: s2's message 2 of room q arrives before its message 1. After
	// GapSyncDelay the client syncs the room and fills it.
	held := w.server("s2").seed("q", "cy", "first", "second")
	if err := (chatapi.CallbackStub{Inv: back}).Deliver(ctx, chatapi.DeliverArgs{Messages: held[1:]}); err != nil {
		t.Fatal(err)
	}
	w.clk.Add(defaultGapSyncDelay / 2)
	if got := ann.View("q"); len(got) != 1 {
		t.Fatalf("view of q before the gap delay: %v", texts(got))
	}
	w.clk.Add(defaultGapSyncDelay / 2)
	rmitest.WaitFor(t, "the gap sync", func() bool { return len(ann.View("q")) == 2 })
	if got := ann.View("q"); !slices.Equal(ids(got), ids(held)) {
		t.Fatalf("view of q %v", texts(got))
	}

	// A resync event for a room makes the client sync it; one without a
	// room, every room.
	extra := w.server("s3").seed("r", "cy", "missed")
	if err := (chatapi.CallbackStub{Inv: back}).Deliver(ctx, chatapi.DeliverArgs{Events: []chatapi.Event{{Kind: chatapi.EventResync, Room: "r"}}}); err != nil {
		t.Fatal(err)
	}
	w.clk.Add(0)
	rmitest.WaitFor(t, "the resync", func() bool { return len(ann.View("r")) == len(msgs)+1 })
	if got := ann.View("r"); got[len(got)-1].ID != extra[0].ID || !sortedByStamp(got) {
		t.Fatalf("after resync: %v", ids(got))
	}
	more := w.server("s3").seed("q", "cy", "missed too")
	if err := (chatapi.CallbackStub{Inv: back}).Deliver(ctx, chatapi.DeliverArgs{Events: []chatapi.Event{{Kind: chatapi.EventResync}}}); err != nil {
		t.Fatal(err)
	}
	w.clk.Add(0)
	rmitest.WaitFor(t, "the resync of every room", func() bool { return len(ann.View("q")) == 3 })
	if got := ann.View("q"); got[2].ID != more[0].ID {
		t.Fatalf("after resync: %v", texts(got))
	}
}

func TestFailoverCatchesUpWithoutGapOrDuplicate(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 3)
	for _, u := range []string{"ann", "bob", "cy"} {
		w.addUser(u)
	}
	w.addRoom("r", "ann", "bob", "cy")
	w.placeOn = "s1"
	ann, annRec := login(t, w, "ann")
	w.placeOn = "s2"
	bob, _ := login(t, w, "bob")
	w.placeOn = "s3"
	cy, _ := login(t, w, "cy")

	say := func(c *Client, text string) chatapi.Message {
		t.Helper()
		m, err := c.Say(ctx, "r", text)
		if err != nil {
			t.Fatalf("%s says %q: %v", c.User(), text, err)
		}
		return m
	}
	say(bob, "b1")
	say(cy, "c1")
	say(ann, "a1")
	if len(ann.View("r")) != 3 {
		t.Fatalf("before the crash: %v", texts(ann.View("r")))
	}

	// ann's server dies; the room goes on without her.
	w.crash("s1")
	say(bob, "b2")
	say(cy, "c2")
	say(bob, "b3")

	// Her next ping finds the server gone: she moves to another server and
	// catches up from her views' heads.
	w.clk.Add(10 * time.Second) // the lease is 30s: pings every 10s
	rmitest.WaitFor(t, "the failover", func() bool { return ann.Server() != "" && ann.Server() != "s1" && len(ann.View("r")) == 6 })
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
	say(ann, "a2")
	for _, c := range []*Client{ann, bob, cy} {
		if got := c.View("r"); len(got) != 7 || !sortedByStamp(got) || !slices.Equal(ids(got), ids(ann.View("r"))) {
			t.Fatalf("%s's final log %v", c.User(), texts(got))
		}
	}
}

func TestFailoverLogsInAgainWhenSessionExpired(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.addUser("ann")
	w.addRoom("r", "ann")
	w.placeOn = "s1"
	ann, _ := login(t, w, "ann")
	w.placeOn = ""
	old := ann.token

	w.mu.Lock()
	delete(w.sessions, old) // central forgot the session
	w.mu.Unlock()
	w.crash("s1")
	if _, err := ann.Say(ctx, "r", "still here"); err != nil {
		t.Fatalf("Say: %v", err)
	}
	if ann.token == old || w.logins != 2 || ann.Server() != "s2" {
		t.Fatalf("token %q (was %q), logins %d, server %q", ann.token, old, w.logins, ann.Server())
	}
}

func TestFailoverFailureIsRetried(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.addUser("ann")
	w.addRoom("r", "ann")
	w.placeOn = "s1"
	ann, _ := login(t, w, "ann")
	w.crash("s1")
	w.crash("s2")
	_, err := ann.Say(ctx, "r", "nobody home")
	if !errors.Is(err, centralapi.ErrNoServers) || !rmi.IsUnreachable(err) {
		t.Fatalf("Say with every server down: %v", err)
	}
	if ann.Server() != "" {
		t.Fatalf("Server() = %q with none attached", ann.Server())
	}
	w.restart("s2")
	// The next ping tries again.
	w.clk.Add(10 * time.Second)
	rmitest.WaitFor(t, "the reconnect", func() bool { return ann.Server() == "s2" })
	if _, err := ann.Say(ctx, "r", "back"); err != nil {
		t.Fatal(err)
	}
}

func TestFailoverOnConnectionLoss(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	w.addUser("ann")
	w.addUser("bob")
	w.addRoom("r", "ann", "bob")
	w.placeOn = "s1"
	ann, _ := login(t, w, "ann")
	w.placeOn = "s2"
	bob, _ := login(t, w, "bob")
	if _, err := bob.Say(ctx, "r", "one"); err != nil {
		t.Fatal(err)
	}
	w.crash("s1")
	if _, err := bob.Say(ctx, "r", "two"); err != nil {
		t.Fatal(err)
	}
	// No ping is due: the lost connection alone moves ann at once.
	w.clk.Add(0)
	rmitest.WaitFor(t, "the failover", func() bool { return ann.Server() == "s2" && len(ann.View("r")) == 2 })
	if w.server("s1").pings != 0 {
		t.Fatal("pinged")
	}
}

func TestOverTCP(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2)
	reg := w.serveTCP()
	w.addUser("ann")
	w.addUser("bob")
	w.addRoom("r", "ann", "bob")
	logins := map[string]*Client{}
	recs := map[string]*recorder{}
	for _, u := range []string{"ann", "bob"} {
		w.placeOn = map[string]string{"ann": "s1", "bob": "s2"}[u]
		rec := &recorder{}
		cfg := w.cfg(u)
		cfg.Central = reg
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
	m, err := bob.Say(ctx, "r", "over the wire")
	if err != nil {
		t.Fatal(err)
	}
	// The callback came back over ann's own connection.
	if got := ann.View("r"); len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("ann's view %v", got)
	}

	// s1 goes away: ann's connection ends, and she moves to s2.
	w.crash("s1")
	if _, err := bob.Say(ctx, "r", "while ann moves"); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "the failover over TCP", func() bool {
		w.clk.Add(0)
		return ann.Server() == "s2" && len(ann.View("r")) == 2
	})
	if _, err := ann.Say(ctx, "r", "back"); err != nil {
		t.Fatal(err)
	}
	if got, want := ann.View("r"), bob.View("r"); len(got) != 3 || !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("ann %v, bob %v", texts(got), texts(want))
	}
	if n := len(recs["ann"].messages()); n != 3 {
		t.Fatalf("ann was told of %d messages", n)
	}
}
