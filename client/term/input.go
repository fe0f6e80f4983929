package term

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/benbjohnson/clock"
	xterm "golang.org/x/term"

	"github.com/distchat/distchat/central/centralapi"
)

// help lists the commands.
var help = []string{
	"/create ROOM       create a room and join it",
	"/join ROOM         join a room (its history follows)",
	"/leave [ROOM]      leave a room (default: the current one)",
	"/rooms             list rooms",
	"/who [ROOM]        list a room's members and their servers (default: the current room)",
	"/msg USER TEXT     send a direct (1:1) message",
	"/say ROOM TEXT     send a message to a room",
	"/history [ROOM]    print a room's whole log in order (default: the current room)",
	"/voice join ROOM FILE.ogg  join ROOM's voice, sending an Opus file (looped)",
	"/voice leave ROOM  leave ROOM's voice; prints packets and bytes per participant",
	"/voice stats [ROOM]  packets and bytes received per voice participant",
	"/wait DURATION     wait (e.g. 2s) while messages keep arriving",
	"/help              this list",
	"/quit              leave the client",
	"TEXT               (no leading /) send to the current room: the last one joined or used",
}

// Run runs the terminal client on s until in ends, /quit, or ctx is done.
// Commands are read one per line from in; output goes to out, and each
// failed command prints one line "error: ..." to errOut (to the terminal
// in interactive mode) and the next command runs. What opts.Feed carries
// prints as it arrives, between commands and during /wait. All output is
// written by one goroutine, so lines never interleave. It returns nil on
// end of input or /quit, ctx.Err() if ctx ends first, a read error, or
// ErrSessionEnded once the session ended (a Status of kind client.Ended
// came through the feed, or a command failed with
// chatapi.ErrSessionEnded).
func Run(ctx context.Context, s Session, in io.Reader, out, errOut io.Writer, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	t := &terminal{s: s, opts: opts, out: out, errOut: errOut}
	defer t.leaveVoice()
	var read func() (string, error)
	if opts.Interactive {
		t.tty = xterm.NewTerminal(struct {
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
			if t.ended {
				return ErrSessionEnded
			}
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
		if t.ended {
			return ErrSessionEnded
		}
	}
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
	// roomArg is the room a command that takes one ROOM names, or the
	// current room when it names none.
	roomArg := func(usage string) (string, bool) {
		switch {
		case rest == "" && t.current != "":
			return t.current, true
		case rest == "":
			t.fail(fmt.Errorf("usage: %s (there is no current room)", usage))
			return "", false
		}
		return rest, need(usage, text == "")
	}
	switch cmd {
	case "quit", "exit":
		return true
	case "help":
		t.printHelp()
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
		if room, ok := roomArg("/leave [ROOM]"); ok {
			if err := t.s.LeaveRoom(ctx, room); err != nil {
				t.fail(err)
				break
			}
			if t.current == room {
				t.setCurrent("")
			}
			t.ok(jsonOK{Type: "ok", Cmd: "leave", Room: room}, "left room "+room)
		}
	case "rooms":
		if need("/rooms", rest == "") {
			r, err := t.s.ListRooms(ctx)
			if err != nil {
				t.fail(err)
				break
			}
			t.printRooms(r)
		}
	case "who":
		if room, ok := roomArg("/who [ROOM]"); ok {
			info, err := t.s.Who(ctx, room)
			if err != nil {
				t.fail(err)
				break
			}
			t.printWho(room, info)
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
		if room, ok := roomArg("/history [ROOM]"); ok {
			msgs, err := t.s.History(ctx, room)
			if err != nil {
				t.fail(err)
				break
			}
			t.printHistory(room, msgs)
		}
	case "voice":
		t.voiceCmd(ctx, rest)
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

// say posts text to room. The message itself prints when the session
// hands it to the feed (output.go), as everyone else's do.
func (t *terminal) say(ctx context.Context, room, text string) {
	if _, err := t.s.Say(ctx, room, text); err != nil {
		t.fail(err)
		return
	}
	t.setCurrent(room)
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
		fmt.Sprintf(human+" (%s)", room, members(len(info.Members))))
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
			if t.ended {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
