package term

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/server/chatapi"
)

// fakeSession is an in-memory Session. Like a Client wired to a Feed, it
// reports its own posts to the feed.
type fakeSession struct {
	user string
	feed *Feed

	mu    sync.Mutex
	rooms map[string][]chatapi.Message
	seq   uint64
	said  []string
}

func newFakeSession(feed *Feed) *fakeSession {
	return &fakeSession{user: "ann", feed: feed, rooms: map[string][]chatapi.Message{"lobby": nil}}
}

func (f *fakeSession) User() string { return f.user }

func (f *fakeSession) CreateRoom(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.rooms[room]; ok {
		return centralapi.RoomInfo{}, fmt.Errorf("create room %s: %w", room, centralapi.ErrRoomExists)
	}
	f.rooms[room] = nil
	return centralapi.RoomInfo{Name: room, Members: []centralapi.Member{{User: f.user}}}, nil
}

func (f *fakeSession) JoinRoom(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.rooms[room]; !ok {
		return centralapi.RoomInfo{}, fmt.Errorf("join room %s: %w", room, centralapi.ErrNoSuchRoom)
	}
	return centralapi.RoomInfo{Name: room, Members: []centralapi.Member{{User: f.user}, {User: "bob"}}}, nil
}

func (f *fakeSession) LeaveRoom(ctx context.Context, room string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.rooms[room]; !ok {
		return fmt.Errorf("leave room %s: %w", room, centralapi.ErrNoSuchRoom)
	}
	return nil
}

func (f *fakeSession) ListRooms(ctx context.Context) (centralapi.ListReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r centralapi.ListReply
	for name := range f.rooms {
		r.Rooms = append(r.Rooms, centralapi.RoomSummary{Name: name, Direct: strings.HasPrefix(name, centralapi.DirectPrefix), Members: 2, Joined: true})
	}
	slices.SortFunc(r.Rooms, func(a, b centralapi.RoomSummary) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

func (f *fakeSession) Who(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.rooms[room]; !ok {
		return centralapi.RoomInfo{}, fmt.Errorf("who is in %s: %w", room, centralapi.ErrNoSuchRoom)
	}
	return centralapi.RoomInfo{Name: room, Members: []centralapi.Member{{User: "ann", Servers: []string{"s1"}}, {User: "bob"}},
		Servers: []centralapi.ServerInfo{{Name: "s1"}}}, nil
}

func (f *fakeSession) Say(ctx context.Context, room, text string) (chatapi.Message, error) {
	f.mu.Lock()
	if _, ok := f.rooms[room]; !ok {
		f.mu.Unlock()
		return chatapi.Message{}, fmt.Errorf("say in %s: %w", room, centralapi.ErrNotMember)
	}
	f.seq++
	m := chatapi.Message{Room: room, ID: fmt.Sprintf("id%d", f.seq), From: f.user, Text: text,
		Stamp: chatapi.Stamp{Time: time.Date(2025, 1, 2, 3, 4, 5, int(f.seq), time.UTC).UnixNano(), Server: "s1", Seq: f.seq}}
	f.rooms[room] = append(f.rooms[room], m)
	f.said = append(f.said, room+": "+text)
	f.mu.Unlock()
	if f.feed != nil {
		f.feed.Message(m)
	}
	return m, nil
}

func (f *fakeSession) Msg(ctx context.Context, user, text string) (chatapi.Message, error) {
	room := centralapi.DirectRoomName(f.user, user)
	f.mu.Lock()
	if _, ok := f.rooms[room]; !ok {
		f.rooms[room] = nil
	}
	f.mu.Unlock()
	return f.Say(ctx, room, text)
}

func (f *fakeSession) History(ctx context.Context, room string) ([]chatapi.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msgs, ok := f.rooms[room]
	if !ok {
		return nil, fmt.Errorf("history of %s: %w", room, centralapi.ErrNotMember)
	}
	return slices.Clone(msgs), nil
}

func (f *fakeSession) saidLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.said)
}

func TestTerminalScriptJSON(t *testing.T) {
	feed := NewFeed()
	sess := newFakeSession(feed)
	script := strings.Join([]string{
		"/create lobby",         // error: exists
		"/create r",             // ok
		"/join nope",            // error
		"/say r hello",          // message (live) + ok
		"/who r",                // who object
		"/rooms",                // rooms object
		"and again",             // to the current room, r
		"/msg bob psst",         // direct message
		"/bogus",                // error
		"/say r",                // usage error
		"/history r",            // r's log, history:true
		"/quit",                 // stop here
		"/say r after the quit", // never runs
	}, "\n") + "\n"
	var out, errOut rmitest.SyncBuffer
	err := Run(context.Background(), sess, strings.NewReader(script), &out, &errOut,
		Options{JSON: true, Clock: clocktest.New(), Feed: feed})
	if err != nil {
		t.Fatalf("RunTerminal: %v", err)
	}

	errs := errOut.Lines()
	if len(errs) != 4 {
		t.Fatalf("want 4 error lines, got %q", errs)
	}
	for i, want := range []string{"room already exists", "no such room", "unknown command /bogus", "usage: /say ROOM TEXT"} {
		if !strings.HasPrefix(errs[i], "error: ") || !strings.Contains(errs[i], want) {
			t.Fatalf("error line %d = %q, want it to mention %q", i, errs[i], want)
		}
	}
	if got := sess.saidLines(); !slices.Equal(got, []string{"r: hello", "r: and again", "dm:ann:bob: psst"}) {
		t.Fatalf("posted %q", got)
	}

	var objs []map[string]any
	for _, line := range out.Lines() {
		var o map[string]any
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("output line %q is not JSON: %v", line, err)
		}
		objs = append(objs, o)
	}
	var kinds []string
	for _, o := range objs {
		k := o["type"].(string)
		if k == "ok" {
			k += ":" + o["cmd"].(string)
		}
		if k == "message" && o["history"] == true {
			k = "history"
		}
		kinds = append(kinds, k)
	}
	want := []string{
		"ok:create",
		"message", "ok:say",
		"who", "rooms",
		"message", "ok:say",
		"message", "ok:msg",
		"history", "history",
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("output kinds %q, want %q", kinds, want)
	}
	msg := objs[1]
	for _, field := range []string{"room", "id", "from", "text", "time", "server", "seq"} {
		if _, ok := msg[field]; !ok {
			t.Fatalf("message object %v lacks %q", msg, field)
		}
	}
	if msg["room"] != "r" || msg["from"] != "ann" || msg["text"] != "hello" || msg["server"] != "s1" || msg["seq"] != 1.0 {
		t.Fatalf("message object %v", msg)
	}
	if tm, err := time.Parse(time.RFC3339Nano, msg["time"].(string)); err != nil || !strings.HasSuffix(msg["time"].(string), "Z") ||
		!tm.Equal(time.Date(2025, 1, 2, 3, 4, 5, 1, time.UTC)) {
		t.Fatalf("time %v: %v", msg["time"], err)
	}
	if _, ok := msg["history"]; ok {
		t.Fatal("a live message has a history field")
	}
	if h := objs[9]; h["text"] != "hello" || h["id"] != msg["id"] || objs[10]["text"] != "and again" {
		t.Fatalf("history %v, %v", h, objs[10])
	}
	if dm := objs[7]; dm["room"] != "dm:ann:bob" {
		t.Fatalf("direct message %v", dm)
	}
	who := objs[3]
	members := who["members"].([]any)
	if who["room"] != "r" || len(members) != 2 || members[0].(map[string]any)["user"] != "ann" || members[1].(map[string]any)["online"] != false {
		t.Fatalf("who %v", who)
	}
	rooms := objs[4]["rooms"].([]any)
	if len(rooms) != 2 || rooms[0].(map[string]any)["name"] != "lobby" || rooms[1].(map[string]any)["joined"] != true {
		t.Fatalf("rooms %v", objs[4])
	}
}

func TestTerminalScriptText(t *testing.T) {
	feed := NewFeed()
	sess := newFakeSession(feed)
	// No /quit: the script ends at EOF. Comments and blank lines are skipped.
	script := "# a comment\n\n/join lobby\n/say lobby hi there\n/history lobby\n/leave lobby\n/who nope\n/rooms\n/help\n"
	var out, errOut rmitest.SyncBuffer
	if err := Run(context.Background(), sess, strings.NewReader(script), &out, &errOut, Options{Feed: feed}); err != nil {
		t.Fatal(err)
	}
	msgs, _ := sess.History(context.Background(), "lobby")
	line := FormatMessage(msgs[0])
	wantPrefix := []string{
		"joined room lobby (2 members)",
		line,
		line,
		"left room lobby",
		"lobby (2 members) joined",
		help[0],
	}
	got := out.Lines()
	if len(got) != 5+len(help) {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, w := range wantPrefix {
		if got[i] != w {
			t.Fatalf("line %d = %q, want %q\n%s", i, got[i], w, out.String())
		}
	}
	if !strings.HasPrefix(line, "[lobby] ") || !strings.HasSuffix(line, " ann: hi there") {
		t.Fatalf("message line %q", line)
	}
	if e := errOut.Lines(); len(e) != 1 || !strings.HasPrefix(e[0], "error: who is in nope") {
		t.Fatalf("errors %q", e)
	}
}

func TestTerminalWaitKeepsPrinting(t *testing.T) {
	feed := NewFeed()
	sess := newFakeSession(feed)
	clk := clocktest.New()
	in, inW := io.Pipe()
	var out, errOut rmitest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), sess, in, &out, &errOut, Options{Clock: clk, Feed: feed})
	}()
	if _, err := io.WriteString(inW, "/say lobby first\n/wait 5s\n/rooms\n"); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "the first message", func() bool { return strings.Contains(out.String(), "ann: first") })

	// A delivery arriving during the wait prints at once.
	feed.Message(chatapi.Message{Room: "lobby", ID: "x", From: "bob", Text: "meanwhile", Stamp: chatapi.Stamp{Time: 1, Server: "s2", Seq: 1}})
	rmitest.WaitFor(t, "the delivery during /wait", func() bool { return strings.Contains(out.String(), "bob: meanwhile") })
	feed.Event(chatapi.Event{Kind: chatapi.EventJoined, Room: "lobby", User: "cy"})
	rmitest.WaitFor(t, "the event during /wait", func() bool { return strings.Contains(out.String(), "cy joined lobby") })
	feed.Status(client.Status{Kind: client.Lost, Server: "s1", Err: errors.New("gone")})
	rmitest.WaitFor(t, "the status line during /wait", func() bool {
		return strings.Contains(out.String(), "connection to s1 lost; reconnecting…")
	})

	// The timer fires on the mock clock, but what follows runs in real
	// time: step the clock until the output shows, within rmitest's bound.
	start := clk.Now()
	rmitest.WaitFor(t, "/wait to end", func() bool {
		if strings.Contains(out.String(), "lobby (2 members)") {
			return true
		}
		clk.Add(time.Second)
		return false
	})
	if advanced := clk.Since(start); advanced < 5*time.Second {
		t.Fatalf("/wait 5s ended after %v", advanced)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e := errOut.String(); e != "" {
		t.Fatalf("errors: %s", e)
	}
}

func TestTerminalInteractive(t *testing.T) {
	feed := NewFeed()
	sess := newFakeSession(feed)
	in := strings.NewReader("/join lobby\rhello\r/quit\r")
	var out rmitest.SyncBuffer
	if err := Run(context.Background(), sess, in, &out, &out, Options{Interactive: true, Feed: feed}); err != nil {
		t.Fatal(err)
	}
	if got := sess.saidLines(); !slices.Equal(got, []string{"lobby: hello"}) {
		t.Fatalf("a plain line went to %q", got)
	}
	if !strings.Contains(out.String(), "[lobby]> ") || !strings.Contains(out.String(), "ann: hello") {
		t.Fatalf("terminal output %q", out.String())
	}
}

func TestTerminalEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	in, inW := io.Pipe()
	defer inW.Close()
	done := make(chan error, 1)
	var out rmitest.SyncBuffer
	go func() { done <- Run(ctx, newFakeSession(nil), in, &out, &out, Options{}) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("RunTerminal = %v, want context.Canceled", err)
	}
}

// arrivals queues, before a script runs, what a client hands the terminal
// while the user types: others joining and leaving, a lost connection, a
// message, the connection back, a move to another central server. It
// returns the message.
func arrivals(feed *Feed) chatapi.Message {
	m := chatapi.Message{Room: "lobby", ID: "x", From: "bob", Text: "made it", Stamp: chatapi.Stamp{Time: 7, Server: "s3", Seq: 1}}
	feed.Event(chatapi.Event{Kind: chatapi.EventJoined, Room: "lobby", User: "bob"})
	feed.Event(chatapi.Event{Kind: chatapi.EventResync, Room: "lobby"})
	feed.Status(client.Status{Kind: client.Lost, Server: "s2", Err: errors.New("ping: rmi: connection lost: EOF")})
	feed.Message(m)
	feed.Status(client.Status{Kind: client.Back, Server: "s3"})
	feed.Event(chatapi.Event{Kind: chatapi.EventLeft, Room: "lobby", User: "cy"})
	feed.Status(client.Status{Kind: client.CentralMoved, Server: "s3", Central: "10.0.0.2:1099", LostCentral: "10.0.0.1:1099"})
	return m
}

func TestTerminalShowsMembersAndConnection(t *testing.T) {
	feed := NewFeed()
	m := arrivals(feed)
	// Notices for the client library, not the user: no line for them.
	feed.Event(chatapi.Event{Kind: chatapi.EventMove})
	feed.Event(chatapi.Event{Kind: chatapi.EventSessionEnded})
	var out, errOut rmitest.SyncBuffer
	if err := Run(context.Background(), newFakeSession(feed), strings.NewReader("/rooms\n"), &out, &errOut, Options{Feed: feed}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bob joined lobby",
		"connection to s2 lost; reconnecting…",
		FormatMessage(m),
		"back, on s3",
		"cy left lobby",
		"central 10.0.0.1:1099 lost; using 10.0.0.2:1099",
		"lobby (2 members) joined",
	}
	if got := out.Lines(); !slices.Equal(got, want) {
		t.Fatalf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Why the connection was lost is for the log, not the chat.
	if e := errOut.String(); e != "" {
		t.Fatalf("errors: %q", e)
	}
}

func TestTerminalShowsMembersAndConnectionJSON(t *testing.T) {
	feed := NewFeed()
	arrivals(feed)
	var out, errOut rmitest.SyncBuffer
	if err := Run(context.Background(), newFakeSession(feed), strings.NewReader(""), &out, &errOut, Options{JSON: true, Feed: feed}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"type":"event","kind":"joined","room":"lobby","user":"bob"}`,
		`{"type":"event","kind":"resync","room":"lobby"}`,
		`{"type":"status","status":"lost","server":"s2"}`,
		`{"type":"message","room":"lobby","id":"x","from":"bob","text":"made it","time":"1970-01-01T00:00:00.000000007Z","server":"s3","seq":1,"stamp":7}`,
		`{"type":"status","status":"back","server":"s3"}`,
		`{"type":"event","kind":"left","room":"lobby","user":"cy"}`,
		`{"type":"status","status":"central","server":"s3","central":"10.0.0.2:1099","lostCentral":"10.0.0.1:1099"}`,
	}
	if got := out.Lines(); !slices.Equal(got, want) {
		t.Fatalf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e := errOut.String(); e != "" {
		t.Fatalf("errors: %q", e)
	}
}

func TestMembersCount(t *testing.T) {
	for n, want := range map[int]string{0: "0 members", 1: "1 member", 2: "2 members"} {
		if got := members(n); got != want {
			t.Errorf("members(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestTerminalCurrentRoomDefaults: /history, /who and /leave without a
// ROOM act on the current room (the last one joined or used), and say so
// when there is none.
func TestTerminalCurrentRoomDefaults(t *testing.T) {
	feed := NewFeed()
	sess := newFakeSession(feed)
	script := "/history\n/join lobby\n/say lobby hi there\n/history\n/who\n/leave\n/who\n/history lobby too\n"
	var out, errOut rmitest.SyncBuffer
	if err := Run(context.Background(), sess, strings.NewReader(script), &out, &errOut, Options{Feed: feed}); err != nil {
		t.Fatal(err)
	}
	msgs, _ := sess.History(context.Background(), "lobby")
	line := FormatMessage(msgs[0])
	var whoOut rmitest.SyncBuffer
	if err := Run(context.Background(), newFakeSession(NewFeed()), strings.NewReader("/who lobby\n"), &whoOut, io.Discard, Options{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"joined room lobby (2 members)", line, line}
	want = append(want, whoOut.Lines()...)
	want = append(want, "left room lobby")
	if got := out.Lines(); !slices.Equal(got, want) {
		t.Fatalf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantErr := []string{
		"error: usage: /history [ROOM] (there is no current room)",
		"error: usage: /who [ROOM] (there is no current room)",
		"error: usage: /history [ROOM]",
	}
	if got := errOut.Lines(); !slices.Equal(got, wantErr) {
		t.Fatalf("errors %q, want %q", got, wantErr)
	}
}
