package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/benbjohnson/clock"
	"golang.org/x/term"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// Session is what the terminal client needs of a logged-in user; [*Client]
// implements it.
type Session interface {
	User() string
	CreateRoom(ctx context.Context, room string) (centralapi.RoomInfo, error)
	JoinRoom(ctx context.Context, room string) (centralapi.RoomInfo, error)
	LeaveRoom(ctx context.Context, room string) error
	ListRooms(ctx context.Context) (centralapi.ListReply, error)
	Who(ctx context.Context, room string) (centralapi.RoomInfo, error)
	Say(ctx context.Context, room, text string) (chatapi.Message, error)
	Msg(ctx context.Context, user, text string) (chatapi.Message, error)
	History(ctx context.Context, room string) ([]chatapi.Message, error)
}

var _ Session = (*Client)(nil)

// TermOptions configure [RunTerminal].
type TermOptions struct {
	// JSON prints messages and command results as one JSON object per line.
	JSON bool
	// Interactive runs a line editor (golang.org/x/term) on in and out,
	// which must be a terminal in raw mode (see [MakeRaw]): incoming
	// messages print above the prompt, and errors go to the terminal too.
	// Otherwise in is read as a script, one command per line.
	Interactive bool
	// Clock times /wait; default clock.New().
	Clock clock.Clock
	// Feed carries the session's deliveries (messages and events) to the
	// terminal, which prints them as they come; nil prints none. With a
	// [*Client], create the feed first and pass feed.Message and feed.Event
	// as Config.OnMessage and Config.OnEvent to [Login].
	Feed *Feed
}

// termHelp lists the commands.
var termHelp = []string{
	"/create ROOM       create a room and join it",
	"/join ROOM         join a room (its history follows)",
	"/leave ROOM        leave a room",
	"/rooms             list rooms",
	"/who ROOM          list a room's members and their servers",
	"/msg USER TEXT     send a direct (1:1) message",
	"/say ROOM TEXT     send a message to a room",
	"/history ROOM      print a room's whole log in order",
	"/wait DURATION     wait (e.g. 2s) while messages keep arriving",
	"/help              this list",
	"/quit              leave the client",
	"TEXT               (no leading /) send to the current room: the last one joined or used",
}

// RunTerminal runs the terminal client on s until in ends, /quit, or ctx is
// done. Commands are read one per line from in; output goes to out, and
// each failed command prints one line "error: ..." to errOut (to the
// terminal in interactive mode) and the next command runs. Deliveries from
// opts.Feed print as they arrive, including during /wait. All output is
// written by one goroutine, so lines never interleave. It returns nil on
// end of input or /quit, ctx.Err() if ctx ends first, or a read error.
func RunTerminal(ctx context.Context, s Session, in io.Reader, out, errOut io.Writer, opts TermOptions) error {
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	t := &terminal{s: s, opts: opts, out: out, errOut: errOut}
	var read func() (string, error)
	if opts.Interactive {
		t.tty = term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{in, out}, "> ")
		t.out, t.errOut = t.tty, t.tty
		read = t.tty.ReadLine
		t.updatePrompt()
	} else {
		br := bufio.NewReader(in)
		read = func() (string, error) {
			line, err := br.ReadString('\n')
			if err == io.EOF && line != "" {
				err = nil
			}
			return strings.TrimRight(line, "\r\n"), err
		}
	}

	done := make(chan struct{})
	defer close(done)
	lines := make(chan string)
	var readErr error
	go func() {
		defer close(lines)
		for {
			line, err := read()
			if err != nil {
				readErr = err
				return
			}
			select {
			case lines <- line:
			case <-done:
				return
			}
		}
	}()

	var ready <-chan struct{}
	if opts.Feed != nil {
		ready = opts.Feed.Ready()
	}
	for {
		select {
		case <-ctx.Done():
			t.printFeed()
			return ctx.Err()
		case <-ready:
			t.printFeed()
		case line, ok := <-lines:
			t.printFeed()
			if !ok {
				if readErr != nil && !errors.Is(readErr, io.EOF) {
					return fmt.Errorf("read commands: %w", readErr)
				}
				return nil
			}
			quit := t.exec(ctx, line)
			t.printFeed()
			if quit {
				return nil
			}
		}
	}
}

// MakeRaw puts the terminal fd into raw mode, as the interactive client
// needs, and returns a function that restores it.
func MakeRaw(fd int) (restore func() error, err error) {
	st, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("terminal raw mode: %w", err)
	}
	return func() error { return term.Restore(fd, st) }, nil
}

// IsTerminal reports whether fd is a terminal (then the client runs
// interactively).
func IsTerminal(fd int) bool { return term.IsTerminal(fd) }

// terminal is the state of one RunTerminal. Only its main goroutine uses it.
type terminal struct {
	s       Session
	opts    TermOptions
	tty     *term.Terminal // nil unless interactive
	out     io.Writer
	errOut  io.Writer
	current string // the room a line without a leading / goes to
}

// jsonMessage is the JSON form of a message.
type jsonMessage struct {
	Type    string `json:"type"`
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

type jsonEvent struct {
	Type string `json:"type"`
	Kind string `json:"kind"`
	Room string `json:"room"`
	User string `json:"user,omitempty"`
}

type jsonRoom struct {
	Name    string `json:"name"`
	Direct  bool   `json:"direct"`
	Members int    `json:"members"`
	Joined  bool   `json:"joined"`
}

type jsonRooms struct {
	Type  string     `json:"type"`
	Rooms []jsonRoom `json:"rooms"`
}

type jsonMember struct {
	User    string   `json:"user"`
	Servers []string `json:"servers"`
	Online  bool     `json:"online"`
}

type jsonWho struct {
	Type    string       `json:"type"`
	Room    string       `json:"room"`
	Direct  bool         `json:"direct"`
	Members []jsonMember `json:"members"`
	Servers []string     `json:"servers"`
}

type jsonOK struct {
	Type    string `json:"type"`
	Cmd     string `json:"cmd"`
	Room    string `json:"room,omitempty"`
	Members int    `json:"members,omitempty"`
}

type jsonHelp struct {
	Type     string   `json:"type"`
	Commands []string `json:"commands"`
}

// exec runs one command line and reports whether it was /quit.
func (t *terminal) exec(ctx context.Context, line string) (quit bool) {
	line = strings.TrimSpace(line)
	if line == "" || (!t.opts.Interactive && strings.HasPrefix(line, "#")) {
		return false
	}
	if !strings.HasPrefix(line, "/") {
		if t.current == "" {
			t.fail(errors.New("no current room: /join ROOM or /say ROOM TEXT first"))
			return false
		}
		t.say(ctx, t.current, line)
		return false
	}
	cmd, rest, _ := strings.Cut(line[1:], " ")
	rest = strings.TrimSpace(rest)
	arg1, text, _ := strings.Cut(rest, " ")
	text = strings.TrimSpace(text)
	need := func(usage string, ok bool) bool {
		if !ok {
			t.fail(fmt.Errorf("usage: %s", usage))
		}
		return ok
	}
	switch cmd {
	case "quit", "exit":
		return true
	case "help":
		if t.opts.JSON {
			t.printJSON(jsonHelp{Type: "help", Commands: termHelp})
		} else {
			for _, h := range termHelp {
				t.println(h)
			}
		}
	case "create":
		if need("/create ROOM", rest != "" && text == "") {
			info, err := t.s.CreateRoom(ctx, rest)
			t.done("create", rest, info, err, "created room %s")
		}
	case "join":
		if need("/join ROOM", rest != "" && text == "") {
			info, err := t.s.JoinRoom(ctx, rest)
			t.done("join", rest, info, err, "joined room %s")
		}
	case "leave":
		if need("/leave ROOM", rest != "" && text == "") {
			if err := t.s.LeaveRoom(ctx, rest); err != nil {
				t.fail(err)
				break
			}
			if t.current == rest {
				t.setCurrent("")
			}
			t.ok(jsonOK{Type: "ok", Cmd: "leave", Room: rest}, "left room "+rest)
		}
	case "rooms":
		if need("/rooms", rest == "") {
			t.rooms(ctx)
		}
	case "who":
		if need("/who ROOM", rest != "" && text == "") {
			t.who(ctx, rest)
		}
	case "say":
		if need("/say ROOM TEXT", arg1 != "" && text != "") {
			t.say(ctx, arg1, text)
		}
	case "msg":
		if need("/msg USER TEXT", arg1 != "" && text != "") {
			m, err := t.s.Msg(ctx, arg1, text)
			if err != nil {
				t.fail(err)
				break
			}
			t.setCurrent(m.Room)
			t.ok(jsonOK{Type: "ok", Cmd: "msg", Room: m.Room}, "")
		}
	case "history":
		if need("/history ROOM", rest != "" && text == "") {
			msgs, err := t.s.History(ctx, rest)
			if err != nil {
				t.fail(err)
				break
			}
			for _, m := range msgs {
				t.printMessage(m, true)
			}
			if !t.opts.JSON && len(msgs) == 0 {
				t.println(fmt.Sprintf("[%s] no messages", rest))
			}
		}
	case "wait":
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			t.fail(fmt.Errorf("usage: /wait DURATION (such as 500ms or 2s)"))
			break
		}
		t.wait(ctx, d)
	default:
		t.fail(fmt.Errorf("unknown command /%s (try /help)", cmd))
	}
	return false
}

// say posts text to room.
func (t *terminal) say(ctx context.Context, room, text string) {
	if _, err := t.s.Say(ctx, room, text); err != nil {
		t.fail(err)
		return
	}
	t.setCurrent(room)
	// The message itself prints when the session delivers it to the feed.
	t.ok(jsonOK{Type: "ok", Cmd: "say", Room: room}, "")
}

// done reports the result of a command that returns a room.
func (t *terminal) done(cmd, room string, info centralapi.RoomInfo, err error, human string) {
	if err != nil {
		t.fail(err)
		return
	}
	t.setCurrent(room)
	t.ok(jsonOK{Type: "ok", Cmd: cmd, Room: room, Members: len(info.Members)},
		fmt.Sprintf(human+" (%d members)", room, len(info.Members)))
}

func (t *terminal) rooms(ctx context.Context) {
	r, err := t.s.ListRooms(ctx)
	if err != nil {
		t.fail(err)
		return
	}
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
		line := fmt.Sprintf("%s (%d members)", s.Name, s.Members)
		if len(flags) > 0 {
			line += " " + strings.Join(flags, ", ")
		}
		t.println(line)
	}
}

func (t *terminal) who(ctx context.Context, room string) {
	info, err := t.s.Who(ctx, room)
	if err != nil {
		t.fail(err)
		return
	}
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
	t.println(fmt.Sprintf("[%s] %d members: %s", room, len(info.Members), strings.Join(parts, "; ")))
}

// wait lets d pass on the clock while deliveries keep printing.
func (t *terminal) wait(ctx context.Context, d time.Duration) {
	timer := t.opts.Clock.Timer(d)
	defer timer.Stop()
	var ready <-chan struct{}
	if t.opts.Feed != nil {
		ready = t.opts.Feed.Ready()
	}
	for {
		select {
		case <-timer.C:
			return
		case <-ready:
			t.printFeed()
		case <-ctx.Done():
			return
		}
	}
}

func (t *terminal) setCurrent(room string) {
	if t.current == room {
		return
	}
	t.current = room
	t.updatePrompt()
}

func (t *terminal) updatePrompt() {
	if t.tty == nil {
		return
	}
	prompt := t.s.User()
	if t.current != "" {
		prompt += " [" + t.current + "]"
	}
	t.tty.SetPrompt(prompt + "> ")
}

// printFeed prints every queued delivery.
func (t *terminal) printFeed() {
	if t.opts.Feed == nil {
		return
	}
	for _, d := range t.opts.Feed.Take() {
		if d.Event != nil {
			t.printEvent(*d.Event)
		} else {
			t.printMessage(d.Message, false)
		}
	}
}

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

func (t *terminal) printEvent(e chatapi.Event) {
	if t.opts.JSON {
		t.printJSON(jsonEvent{Type: "event", Kind: e.Kind, Room: e.Room, User: e.User})
		return
	}
	switch e.Kind {
	case chatapi.EventJoined:
		t.println(fmt.Sprintf("[%s] * %s joined", e.Room, e.User))
	case chatapi.EventLeft:
		t.println(fmt.Sprintf("[%s] * %s left", e.Room, e.User))
	case chatapi.EventResync:
		// The client catches up by itself; nothing for the user to do.
	default:
		t.println(fmt.Sprintf("[%s] * %s %s", e.Room, e.User, e.Kind))
	}
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
}
