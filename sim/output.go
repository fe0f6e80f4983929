package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/distchat/distchat/server/chatapi"
)

// This file writes a run's trace for people and tools: the raw event
// trace (WriteTrace), a ShiViz log (WriteShiViz) and, in svg.go, a
// space-time diagram (WriteSVG). All three are pure functions of the
// events, so the same seed gives byte-identical files.

// WriteTrace writes events as JSON lines: one Event per line, with the
// field names of Event's json tags. Durations (t) are integer nanoseconds
// of virtual time and vector clocks are objects with sorted keys, so
// identical events give identical bytes.
func WriteTrace(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return fmt.Errorf("trace event %d: %w", i, err)
		}
	}
	return bw.Flush()
}

// ShiVizRegex is the log-parsing regular expression WriteShiViz puts on
// the first line of its output: a host and its vector clock on one line,
// the event's description on the next.
const ShiVizRegex = `(?<host>\S*) (?<clock>{.*})\n(?<event>.*)`

// WriteShiViz writes events as a log for ShiViz
// (https://bestchai.bitbucket.io/shiviz/), the vector-clock visualiser:
// the first line is ShiVizRegex, the second the (empty) delimiter between
// executions, then two lines per event, "HOST {VECTOR CLOCK}" and a
// description beginning with the event's kind and virtual time.
//
// Every event that happens on a node (Node set) is written; network-wide
// events (partition, heal) are not, as they belong to no host. ShiViz
// insists that a host's own clock component counts that host's events
// 1, 2, 3, ... and that every clock entry names an event in the log, so
// the vector clocks are recomputed here, over exactly the events written,
// rather than copied from Event.VC: each event increments its host's own
// entry; a recv also merges the clock of the matching send (same Call)
// and a return the clock of the reply it received. That makes the log
// consistent whatever the trace holds, including local events (post, ack,
// deliver, crash, ...) that carry no VC in the trace.
func WriteShiViz(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s\n\n", ShiVizRegex)
	legs := outMessageLegs(events)
	// cause[i] is the event whose clock event i merges (its send or
	// reply), or -1; readers[c] counts the events still to merge c's
	// clock, which is kept in inflight only until then, so memory follows
	// the messages in flight, not the length of the trace.
	cause := make([]int, len(events))
	for i := range cause {
		cause[i] = -1
	}
	readers := map[int]int{}
	for _, l := range legs {
		if l.to >= 0 {
			cause[l.to] = l.from
			readers[l.from]++
		}
	}
	cur := map[string]vclock{} // each host's clock now
	inflight := map[int]vclock{}
	for i := range events {
		e := &events[i]
		if e.Node == "" {
			continue
		}
		host := outHost(e.Node)
		vc := cur[host]
		if vc == nil {
			vc = vclock{}
			cur[host] = vc
		}
		if c := cause[i]; c >= 0 {
			mergeMax(vc, inflight[c])
			if readers[c]--; readers[c] == 0 {
				delete(inflight, c)
				delete(readers, c)
			}
		}
		vc[host]++
		if readers[i] > 0 {
			inflight[i] = vc.clone()
		}
		b, err := json.Marshal(vc)
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "%s %s\n%s\n", host, b, outDescribe(e))
	}
	return bw.Flush()
}

// outHost is a node's name as a ShiViz host: the regex reads a host as
// \S*, so white space becomes '_'.
func outHost(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, name)
}

// outDescribe is an event's one-line description for the ShiViz log.
func outDescribe(e *Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s t=%s", e.Kind, outSeconds(e.T))
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
		fmt.Fprintf(&b, " stamp %s", outStamp(*e.Stamp))
	}
	if e.Err != "" {
		fmt.Fprintf(&b, " error: %s", e.Err)
	}
	return outOneLine(b.String())
}

// outOneLine keeps a description on one line.
func outOneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// outSeconds formats virtual time as seconds with microseconds.
func outSeconds(d time.Duration) string {
	return fmt.Sprintf("%.6fs", d.Seconds())
}

// outStamp formats a stamp with its clock reading relative to Epoch in
// seconds (to 0.1 ms): "4.2705/s2/1".
func outStamp(st chatapi.Stamp) string {
	return fmt.Sprintf("%.4f/%s/%d", time.Duration(st.Time-Epoch.UnixNano()).Seconds(), st.Server, st.Seq)
}

// outLeg is one message crossing the network: a request (send to recv)
// or a reply (reply to return). to is the receiving event, or -1 when the
// trace has none: then drop is the drop event when the network lost it,
// or -1 when it was not received for another reason (the receiver was
// down, the caller had given up or crashed, or the run ended first).
type outLeg struct {
	from, to, drop int
	reply          bool
}

// outMessageLegs pairs each message's sending and receiving events, in
// the order the messages were sent. A request matches its recv (two, when
// the network duplicated it) by Call; a reply its return. When a
// duplicated request produced two replies, the return is matched to the
// reply whose callee clock entry it carries (the simulator merged that
// one), else to the earlier reply.
func outMessageLegs(events []Event) []outLeg {
	var legs []outLeg
	send := map[uint64]int{}      // call -> send event
	sendLeg := map[uint64]bool{}  // call -> a leg was made for its request
	replies := map[uint64][]int{} // call -> reply events not yet matched
	replyLeg := map[int]bool{}    // reply event -> has a leg
	for i := range events {
		e := &events[i]
		switch e.Kind {
		case "send":
			send[e.Call] = i
		case "recv":
			if s, ok := send[e.Call]; ok {
				legs = append(legs, outLeg{from: s, to: i, drop: -1})
				sendLeg[e.Call] = true
			}
		case "reply":
			replies[e.Call] = append(replies[e.Call], i)
		case "return":
			rs := replies[e.Call]
			if len(rs) == 0 {
				continue
			}
			k := 0
			for j, r := range rs {
				callee := events[r].Node
				if events[r].VC != nil && e.VC != nil && events[r].VC[callee] == e.VC[callee] {
					k = j
					break
				}
			}
			legs = append(legs, outLeg{from: rs[k], to: i, drop: -1, reply: true})
			replyLeg[rs[k]] = true
			replies[e.Call] = append(rs[:k:k], rs[k+1:]...)
		case "drop":
			s, ok := send[e.Call]
			if !ok {
				continue
			}
			if events[s].Node == e.Node {
				legs = append(legs, outLeg{from: s, to: -1, drop: i})
				sendLeg[e.Call] = true
				continue
			}
			// A lost reply: the latest unmatched reply of the call.
			rs := replies[e.Call]
			for j := len(rs) - 1; j >= 0; j-- {
				if events[rs[j]].Node == e.Node {
					legs = append(legs, outLeg{from: rs[j], to: -1, drop: i, reply: true})
					replyLeg[rs[j]] = true
					replies[e.Call] = append(rs[:j:j], rs[j+1:]...)
					break
				}
			}
		}
	}
	// Messages sent but never received, for no recorded network reason.
	for i := range events {
		e := &events[i]
		switch {
		case e.Kind == "send" && !sendLeg[e.Call]:
			legs = append(legs, outLeg{from: i, to: -1, drop: -1})
		case e.Kind == "reply" && !replyLeg[i]:
			legs = append(legs, outLeg{from: i, to: -1, drop: -1, reply: true})
		}
	}
	sort.SliceStable(legs, func(a, b int) bool { return legs[a].from < legs[b].from })
	return legs
}
