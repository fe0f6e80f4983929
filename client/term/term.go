// Package term is the distchat terminal client: it runs on a logged-in
// [client.Client] (any [Session]), interactively on a TTY (a line editor;
// what arrives prints above the prompt) or reading one command per line
// from a script, printing messages, events and connection changes as text
// or JSON lines.
//
// A post's way through it is one direction: a line typed is run by
// input.go (Session.Say); what the client receives comes back through a
// [Feed], which output.go prints.
package term

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/benbjohnson/clock"
	xterm "golang.org/x/term"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/voice"
)

// Session is what the terminal client needs of a logged-in user;
// [*client.Client] implements it.
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

var _ Session = (*client.Client)(nil)

// Options configure [Run].
type Options struct {
	// JSON prints messages, events, connection changes and command
	// results as one JSON object per line.
	JSON bool
	// Interactive runs a line editor (golang.org/x/term) on in and out,
	// which must be a terminal in raw mode (see [MakeRaw]): what arrives
	// prints above the prompt, and errors go to the terminal too.
	// Otherwise in is read as a script, one command per line.
	Interactive bool
	// Clock times /wait; default clock.New().
	Clock clock.Clock
	// Feed carries the session's deliveries (messages, events, connection
	// changes) to the terminal, which prints them as they come; nil prints
	// none. With a [*client.Client], create the feed first and pass its
	// Message, Event and Status methods as the client.Config's OnMessage,
	// OnEvent and OnStatus to client.Login.
	Feed *Feed
	// StartVoice starts a Go peer in a room's voice channel for /voice
	// join: a *client.Client's StartVoice. Nil refuses /voice join.
	StartVoice func(ctx context.Context, cfg client.VoiceCallConfig) (*client.VoiceCall, error)
	// VoiceRecord, when set, is where /voice join records what it
	// receives: VoiceRecord/ROOM/USER.ogg.
	VoiceRecord string
	// VoiceNetwork is the network of the voice peers (see voice.Network):
	// the zero value offers every interface but loopback.
	VoiceNetwork voice.Network
	// VoiceLogger receives the voice peers' log; nil: the client's.
	VoiceLogger *slog.Logger
}

// MakeRaw puts the terminal fd into raw mode, as the interactive client
// needs, and returns a function that restores it.
func MakeRaw(fd int) (restore func() error, err error) {
	st, err := xterm.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("terminal raw mode: %w", err)
	}
	return func() error { return xterm.Restore(fd, st) }, nil
}

// IsTerminal reports whether fd is a terminal (then the client runs
// interactively).
func IsTerminal(fd int) bool { return xterm.IsTerminal(fd) }

// terminal is the state of one Run. Only its main goroutine uses it.
type terminal struct {
	s       Session
	opts    Options
	tty     *xterm.Terminal // nil unless interactive
	out     io.Writer
	errOut  io.Writer
	current string                       // the room a line without a leading / goes to
	ended   bool                         // the session ended: Run returns ErrSessionEnded
	calls   map[string]*client.VoiceCall // voice channels joined, by room (voice.go)
	rang    map[string]time.Time         // when each direct room last rang (ring.go)
}

// ErrSessionEnded is what [Run] returns when the session ended (logged out
// elsewhere, password reset, expired): the client stopped, and the user
// must log in again. It wraps chatapi.ErrSessionEnded.
var ErrSessionEnded = fmt.Errorf("terminal stopped: %w", chatapi.ErrSessionEnded)

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
