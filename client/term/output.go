package term

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/server/chatapi"
)

// Delivery is one item of a [Feed]: a message, or an event when Event is
// not nil, or a connection change when Status is not nil.
type Delivery struct {
	Message chatapi.Message
	Event   *chatapi.Event
	Status  *client.Status
}

// Feed is an unbounded queue that hands what a [client.Client] receives
// to the terminal, which runs elsewhere. Wire it as client.Config's
// OnMessage = feed.Message, OnEvent = feed.Event and OnStatus =
// feed.Status. Adding never blocks (so the client's delivery path never
// waits for the terminal); the terminal waits on Ready and then Takes. A
// Feed is safe for concurrent use.
type Feed struct {
	mu    sync.Mutex
	items []Delivery
	ready chan struct{} // holds a token while items is not empty
}

// NewFeed returns an empty feed.
func NewFeed() *Feed {
	return &Feed{ready: make(chan struct{}, 1)}
}

// Message adds a message to the feed.
func (f *Feed) Message(m chatapi.Message) { f.add(Delivery{Message: m}) }

// Event adds an event to the feed.
func (f *Feed) Event(e chatapi.Event) { f.add(Delivery{Event: &e}) }

// Status adds a connection change to the feed.
func (f *Feed) Status(s client.Status) { f.add(Delivery{Status: &s}) }

func (f *Feed) add(d Delivery) {
	f.mu.Lock()
	f.items = append(f.items, d)
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default: // a token is already there
	}
}

// Ready returns a channel that has a value when the feed may hold items.
func (f *Feed) Ready() <-chan struct{} { return f.ready }

// Take removes and returns every queued delivery, oldest first.
func (f *Feed) Take() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	items := f.items
	f.items = nil
	return items
}

// printFeed prints every queued delivery.
func (t *terminal) printFeed() {
	if t.opts.Feed == nil {
		return
	}
	for _, d := range t.opts.Feed.Take() {
		switch {
		case d.Status != nil:
			t.printStatus(*d.Status)
		case d.Event != nil:
			t.printEvent(*d.Event)
		default:
			t.printMessage(d.Message, false)
		}
	}
}

// The JSON objects the terminal prints with --json, one per line. Each
// has a "type".
type (
	jsonMessage struct {
		Type    string `json:"type"` // "message"
		Room    string `json:"room"`
		ID      string `json:"id"`
		From    string `json:"from"`
		Text    string `json:"text"`
		Time    string `json:"time"`
		Server  string `json:"server"`
		Seq     uint64 `json:"seq"`
		Stamp   int64  `json:"stamp"`
		History bool   `json:"history,omitempty"`
	}
	jsonEvent struct {
		Type string `json:"type"` // "event"
		Kind string `json:"kind"`
		Room string `json:"room"`
		User string `json:"user,omitempty"`
	}
	jsonStatus struct {
		Type        string `json:"type"`   // "status"
		Status      string `json:"status"` // "lost", "back", "ended" or "central"
		Server      string `json:"server"`
		Central     string `json:"central,omitempty"`     // "central": the central server now used
		LostCentral string `json:"lostCentral,omitempty"` // and the one lost
	}
	jsonRoom struct {
		Name    string `json:"name"`
		Direct  bool   `json:"direct"`
		Members int    `json:"members"`
		Joined  bool   `json:"joined"`
	}
	jsonRooms struct {
		Type  string     `json:"type"` // "rooms"
		Rooms []jsonRoom `json:"rooms"`
	}
	jsonMember struct {
		User    string   `json:"user"`
		Servers []string `json:"servers"`
		Online  bool     `json:"online"`
	}
	jsonWho struct {
		Type    string       `json:"type"` // "who"
		Room    string       `json:"room"`
		Direct  bool         `json:"direct"`
		Members []jsonMember `json:"members"`
		Servers []string     `json:"servers"`
	}
	jsonOK struct {
		Type    string `json:"type"` // "ok"
		Cmd     string `json:"cmd"`
		Room    string `json:"room,omitempty"`
		Members int    `json:"members,omitempty"`
	}
	jsonHelp struct {
		Type     string   `json:"type"` // "help"
		Commands []string `json:"commands"`
	}
)

func (t *terminal) printMessage(m chatapi.Message, history bool) {
	if t.opts.JSON {
		t.printJSON(jsonMessage{
			Type: "message", Room: m.Room, ID: m.ID, From: m.From, Text: m.Text,
			Time:   time.Unix(0, m.Stamp.Time).UTC().Format(time.RFC3339Nano),
			Server: m.Stamp.Server, Seq: m.Stamp.Seq, Stamp: m.Stamp.Time, History: history,
		})
		return
	}
	t.println(FormatMessage(m))
}

// FormatMessage formats m as the terminal client prints it:
// "[room] 15:04:05 user: text", in local time.
func FormatMessage(m chatapi.Message) string {
	return fmt.Sprintf("[%s] %s %s: %s", m.Room, time.Unix(0, m.Stamp.Time).Format("15:04:05"), m.From, m.Text)
}

// printEvent prints a member joining or leaving a room: "bob joined
// lobby", "bob left lobby"; and a call coming in (printRing).
func (t *terminal) printEvent(e chatapi.Event) {
	if t.opts.JSON {
		t.printJSON(jsonEvent{Type: "event", Kind: e.Kind, Room: e.Room, User: e.User})
		return
	}
	switch e.Kind {
	case chatapi.EventResync, chatapi.EventMove, chatapi.EventSessionEnded:
		// The client catches up, or moves, by itself; an ended session
		// comes as a status (printStatus). Nothing for the user here.
	case chatapi.EventRing:
		t.printRing(e)
	default: // chatapi.EventJoined, chatapi.EventLeft
		t.println(fmt.Sprintf("%s %s %s", e.User, e.Kind, e.Room))
	}
}

// printStatus prints a connection change as one short line: "connection
// to server-2 lost; reconnecting…", then "back, on server-3", or "central
// 10.0.0.1:1099 lost; using 10.0.0.2:1099". Why it was lost goes to the
// client's log, not here. An ended session also stops the terminal
// (terminal.ended).
func (t *terminal) printStatus(s client.Status) {
	if s.Kind == client.Ended {
		t.ended = true
	}
	if t.opts.JSON {
		t.printJSON(jsonStatus{Type: "status", Status: s.Kind.String(), Server: s.Server, Central: s.Central, LostCentral: s.LostCentral})
		return
	}
	switch s.Kind {
	case client.Lost:
		t.println(fmt.Sprintf("connection to %s lost; reconnecting…", s.Server))
	case client.Back:
		t.println("back, on " + s.Server)
	case client.Ended:
		t.println("session ended: logged out, password reset or expired; log in again")
	case client.CentralMoved:
		t.println(fmt.Sprintf("central %s lost; using %s", s.LostCentral, s.Central))
	}
}

func (t *terminal) printHelp() {
	if t.opts.JSON {
		t.printJSON(jsonHelp{Type: "help", Commands: help})
		return
	}
	for _, h := range help {
		t.println(h)
	}
}

func (t *terminal) printHistory(room string, msgs []chatapi.Message) {
	for _, m := range msgs {
		t.printMessage(m, true)
	}
	if !t.opts.JSON && len(msgs) == 0 {
		t.println(fmt.Sprintf("[%s] no messages", room))
	}
}

func (t *terminal) printRooms(r centralapi.ListReply) {
	if t.opts.JSON {
		out := jsonRooms{Type: "rooms", Rooms: []jsonRoom{}}
		for _, s := range r.Rooms {
			out.Rooms = append(out.Rooms, jsonRoom{Name: s.Name, Direct: s.Direct, Members: s.Members, Joined: s.Joined})
		}
		t.printJSON(out)
		return
	}
	if len(r.Rooms) == 0 {
		t.println("no rooms")
		return
	}
	for _, s := range r.Rooms {
		var flags []string
		if s.Joined {
			flags = append(flags, "joined")
		}
		if s.Direct {
			flags = append(flags, "direct")
		}
		line := fmt.Sprintf("%s (%s)", s.Name, members(s.Members))
		if len(flags) > 0 {
			line += " " + strings.Join(flags, ", ")
		}
		t.println(line)
	}
}

func (t *terminal) printWho(room string, info centralapi.RoomInfo) {
	if t.opts.JSON {
		out := jsonWho{Type: "who", Room: info.Name, Direct: info.Direct, Members: []jsonMember{}, Servers: []string{}}
		if out.Room == "" {
			out.Room = room
		}
		for _, m := range info.Members {
			servers := append([]string{}, m.Servers...)
			out.Members = append(out.Members, jsonMember{User: m.User, Servers: servers, Online: len(servers) > 0})
		}
		for _, s := range info.Servers {
			out.Servers = append(out.Servers, s.Name)
		}
		t.printJSON(out)
		return
	}
	var parts []string
	for _, m := range info.Members {
		where := "offline"
		if len(m.Servers) > 0 {
			where = "on " + strings.Join(m.Servers, ", ")
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", m.User, where))
	}
	t.println(fmt.Sprintf("[%s] %s: %s", room, members(len(info.Members)), strings.Join(parts, "; ")))
}

// members says how many members a room has: "1 member", "2 members".
func members(n int) string {
	if n == 1 {
		return "1 member"
	}
	return fmt.Sprintf("%d members", n)
}

// ok reports a successful command: the JSON object, or the human line if
// not empty.
func (t *terminal) ok(j jsonOK, human string) {
	t.printFeed() // a message the command produced prints before its result
	if t.opts.JSON {
		t.printJSON(j)
	} else if human != "" {
		t.println(human)
	}
}

func (t *terminal) printJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.fail(fmt.Errorf("encode output: %w", err))
		return
	}
	t.println(string(b))
}

func (t *terminal) println(s string) {
	_, _ = io.WriteString(t.out, s+"\n")
}

// fail prints err as one line.
func (t *terminal) fail(err error) {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	_, _ = io.WriteString(t.errOut, "error: "+msg+"\n")
	if errors.Is(err, chatapi.ErrSessionEnded) {
		t.ended = true
	}
}
