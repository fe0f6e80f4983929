package trace

import (
	"fmt"
	"strings"
	"time"

	"github.com/distchat/distchat/server/chatapi"
)

// Epoch is virtual time zero: every simulated run starts its clocks here,
// an Event's T counts from it, and the writers show a stamp's clock
// reading as seconds since it.
var Epoch = time.Date(2019, 5, 1, 12, 0, 0, 0, time.UTC)

// Event is one line of the trace. Kinds:
//
//	send     Node calls Method on Peer (Call identifies the call)
//	recv     the request reaches the callee (Node) from the caller (Peer)
//	reply    the callee (Node) sends its reply to the caller (Peer); Err if the method failed
//	return   the reply reaches the caller (Node) from Peer
//	refused  the caller (Node) learns Peer is down
//	timeout  the caller (Node) gives up on the call to Peer
//	drop     the network lost a request or reply from Node to Peer
//	post     user Node starts posting Text to Room
//	ack      user Node's post is acknowledged, with its Stamp
//	deliver  user Node's view of Room gains a message (Stamp, From, ID, Text)
//	login    user Node is logged in, on chat server Peer
//	start, crash, restart  a chat server (Node) starts, crashes, restarts
//	partition, heal, clockstep  network and clock faults (Text details them)
//	error    an operation of Node failed (Text)
//
// VC is Node's vector clock after the event, by node name
// (communication events only).
type Event struct {
	// T is virtual time since the start.
	T      time.Duration     `json:"t"`
	Kind   string            `json:"kind"`
	Node   string            `json:"node,omitempty"`
	Peer   string            `json:"peer,omitempty"`
	Call   uint64            `json:"call,omitempty"`
	Method string            `json:"method,omitempty"`
	Dup    bool              `json:"dup,omitempty"`
	Err    string            `json:"err,omitempty"`
	Room   string            `json:"room,omitempty"`
	ID     string            `json:"id,omitempty"`
	From   string            `json:"from,omitempty"`
	Text   string            `json:"text,omitempty"`
	Stamp  *chatapi.Stamp    `json:"stamp,omitempty"`
	VC     map[string]uint64 `json:"vc,omitempty"`
}

// describe is an event's one-line description, for the ShiViz log and
// the diagram's tooltips.
func describe(e *Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s t=%s", e.Kind, seconds(e.T))
	switch e.Kind {
	case "send", "reply", "drop":
		fmt.Fprintf(&b, " %s to %s (call %d)", e.Method, e.Peer, e.Call)
	case "recv", "return", "refused", "timeout":
		fmt.Fprintf(&b, " %s from %s (call %d)", e.Method, e.Peer, e.Call)
	case "login":
		fmt.Fprintf(&b, " on %s", e.Peer)
	}
	if e.Dup {
		b.WriteString(" duplicate")
	}
	if e.Room != "" {
		fmt.Fprintf(&b, " room %s", e.Room)
	}
	if e.Kind == "deliver" && e.From != "" {
		fmt.Fprintf(&b, " from %s", e.From)
	}
	if e.Text != "" {
		fmt.Fprintf(&b, " %q", e.Text)
	}
	if e.Stamp != nil {
		fmt.Fprintf(&b, " stamp %s", stampText(*e.Stamp))
	}
	if e.Err != "" {
		fmt.Fprintf(&b, " error: %s", e.Err)
	}
	return oneLine(b.String())
}

// oneLine keeps a description on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// seconds formats virtual time as seconds with microseconds.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.6fs", d.Seconds())
}

// stampText formats a stamp with its clock reading relative to Epoch in
// seconds (to 0.1 ms): "4.2705/s2/1".
func stampText(st chatapi.Stamp) string {
	return fmt.Sprintf("%.4f/%s/%d", time.Duration(st.Time-Epoch.UnixNano()).Seconds(), st.Server, st.Seq)
}
