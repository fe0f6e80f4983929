package web

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// Errors of the gateway itself; the others the page sees are the chat
// server's and central's codes (rmi.Error codes).
var (
	// ErrRateLimited: the user posts faster than the gateway allows.
	ErrRateLimited = rmi.NewError("web.rate_limited", "you are sending messages too fast; wait a moment")
	// ErrBadRequest: a WebSocket command the gateway cannot make sense of.
	ErrBadRequest = rmi.NewError("web.bad_request", "bad request")
)

// request is a command from the page: {"req":N,"op":OP,...}. Which of the
// other fields count depends on Op (see ops.go).
type request struct {
	Req    int64  `json:"req"`
	Op     string `json:"op"`
	Room   string `json:"room,omitempty"`
	ID     string `json:"id,omitempty"`
	Text   string `json:"text,omitempty"`
	Before string `json:"before,omitempty"`
	User   string `json:"user,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Stamp  string `json:"stamp,omitempty"`
	// Signal is the page's WebRTC signal of a voice-signal command.
	Signal *wireSignal `json:"signal,omitempty"`
}

// wireError is the error of a reply.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorOf returns the code and message the page is shown for err: the
// code of the rmi error it wraps (local or remote), else "web.internal".
func errorOf(err error) *wireError {
	var re *rmi.RemoteError
	var le *rmi.Error
	switch {
	case errors.As(err, &le):
		return &wireError{Code: le.Code, Message: le.Msg}
	case errors.As(err, &re) && re.Code != "":
		return &wireError{Code: re.Code, Message: re.Message}
	case rmi.IsUnreachable(err):
		return &wireError{Code: "web.unavailable", Message: "the chat server could not be reached; try again"}
	}
	return &wireError{Code: "web.internal", Message: "something went wrong on the server"}
}

// wireMessage is a message as the page sees it.
type wireMessage struct {
	ID      string `json:"id"`
	Room    string `json:"room"`
	From    string `json:"from"`
	Text    string `json:"text"`
	Stamp   string `json:"stamp"` // formatStamp
	Time    int64  `json:"time"`  // Unix milliseconds
	Server  string `json:"server"`
	Seq     uint64 `json:"seq"`
	Settled bool   `json:"settled"` // in the room's settled prefix when sent
}

// toWire converts m; settled is the room's settled stamp time (0: none).
func toWire(m chatapi.Message, settled int64) wireMessage {
	return wireMessage{
		ID: m.ID, Room: m.Room, From: m.From, Text: m.Text, Stamp: formatStamp(m.Stamp),
		Time: m.Stamp.Time / 1e6, Server: m.Stamp.Server, Seq: m.Stamp.Seq,
		Settled: settled != 0 && m.Stamp.Time <= settled,
	}
}

// formatStamp writes s as "<unix ns>/<server>/<seq>", which parseStamp
// reads back (server names have no "/").
func formatStamp(s chatapi.Stamp) string {
	return fmt.Sprintf("%d/%s/%d", s.Time, s.Server, s.Seq)
}

// parseStamp reads a formatStamp string; "" is the zero stamp.
func parseStamp(str string) (chatapi.Stamp, error) {
	if str == "" {
		return chatapi.Stamp{}, nil
	}
	parts := strings.Split(str, "/")
	if len(parts) != 3 || parts[1] == "" {
		return chatapi.Stamp{}, fmt.Errorf("stamp %q: want time/server/seq: %w", str, ErrBadRequest)
	}
	t, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return chatapi.Stamp{}, fmt.Errorf("stamp %q: %w", str, ErrBadRequest)
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return chatapi.Stamp{}, fmt.Errorf("stamp %q: %w", str, ErrBadRequest)
	}
	return chatapi.Stamp{Time: t, Server: parts[1], Seq: seq}, nil
}
