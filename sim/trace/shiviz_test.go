package trace

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/server/chatapi"
)

// shivizEntry is one parsed ShiViz log entry.
type shivizEntry struct {
	host  string
	clock map[string]uint64
	desc  string
	kind  string
	call  uint64
}

var shivizCall = regexp.MustCompile(`\(call (\d+)\)`)

// parseShiViz parses a log the way ShiViz does: the first line is the
// regular expression, the second the execution delimiter, the rest the
// log, matched by the regular expression.
func parseShiViz(t *testing.T, log string) []shivizEntry {
	t.Helper()
	first, rest, ok := strings.Cut(log, "\n")
	if !ok || first != ShiVizRegex {
		t.Fatalf("first line %q, want the regex %q", first, ShiVizRegex)
	}
	delim, body, ok := strings.Cut(rest, "\n")
	if !ok || delim != "" {
		t.Fatalf("second line %q, want empty (no execution delimiter)", delim)
	}
	re := regexp.MustCompile(first) // Go reads (?<name>...) like JavaScript
	var out []shivizEntry
	matched := 0
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		e := shivizEntry{host: m[re.SubexpIndex("host")], desc: m[re.SubexpIndex("event")]}
		if err := json.Unmarshal([]byte(m[re.SubexpIndex("clock")]), &e.clock); err != nil {
			t.Fatalf("clock %q: %v", m[re.SubexpIndex("clock")], err)
		}
		e.kind, _, _ = strings.Cut(e.desc, " ")
		if c := shivizCall.FindStringSubmatch(e.desc); c != nil {
			e.call, _ = strconv.ParseUint(c[1], 10, 64)
		}
		matched += len(m[0]) + 1
		out = append(out, e)
	}
	if matched != len(body) {
		t.Fatalf("the regex matched %d of the log's %d bytes: some entries do not parse", matched, len(body))
	}
	return out
}

// checkShiViz checks what ShiViz requires of a log, and that the clocks
// capture the messages.
func checkShiViz(t *testing.T, entries []shivizEntry) {
	t.Helper()
	count := map[string]uint64{} // events of each host so far
	prev := map[string]map[string]uint64{}
	sends := map[uint64]map[string]uint64{}
	replies := map[uint64][]map[string]uint64{}
	merged := 0
	for i, e := range entries {
		count[e.host]++
		if got := e.clock[e.host]; got != count[e.host] {
			t.Fatalf("entry %d (%s %s): own clock %d, want %d (ShiViz needs 1, 2, 3, ... per host)", i, e.host, e.desc, got, count[e.host])
		}
		for h, v := range e.clock {
			if v > count[h] {
				t.Fatalf("entry %d (%s): clock names %s's event %d, but %s has only %d so far", i, e.host, h, v, h, count[h])
			}
		}
		if !dominates(e.clock, prev[e.host]) {
			t.Fatalf("entry %d (%s): clock %v does not dominate the host's previous %v", i, e.host, e.clock, prev[e.host])
		}
		switch e.kind {
		case "send":
			sends[e.call] = e.clock
		case "reply":
			replies[e.call] = append(replies[e.call], e.clock)
		case "recv":
			s, ok := sends[e.call]
			if !ok {
				t.Fatalf("entry %d: recv of call %d before its send", i, e.call)
			}
			if !dominates(e.clock, s) {
				t.Fatalf("entry %d: recv %v does not dominate its send %v (call %d)", i, e.clock, s, e.call)
			}
			if from := shivizSender(e); s[from] > prev[e.host][from] {
				merged++ // the receiver learned of the sender's events
			}
		case "return":
			ok := false
			for _, r := range replies[e.call] {
				ok = ok || dominates(e.clock, r)
			}
			if !ok {
				t.Fatalf("entry %d: return %v dominates no reply of call %d", i, e.clock, e.call)
			}
		}
		prev[e.host] = e.clock
	}
	if merged == 0 {
		t.Fatal("no receive learned anything from its send: the clocks do not capture messages")
	}
}

// shivizSender reads the sender from a recv entry's description,
// "recv t=... METHOD from PEER (call N)".
func shivizSender(recv shivizEntry) string {
	if _, after, ok := strings.Cut(recv.desc, " from "); ok {
		peer, _, _ := strings.Cut(after, " ")
		return peer
	}
	return ""
}

func dominates(a, b map[string]uint64) bool {
	for k, v := range b {
		if a[k] < v {
			return false
		}
	}
	return true
}

// TestWriteShiVizDuplicatesAndLosses checks the clocks on a hand-made
// trace: a duplicated request answered twice (the return took the second
// reply), a lost request copy, a lost reply and a crash.
func TestWriteShiVizDuplicatesAndLosses(t *testing.T) {
	ms := time.Millisecond
	type vc = map[string]uint64
	events := []Event{
		{T: 0, Kind: "post", Node: "u1", Room: "r", Text: "hi"},
		{T: 0, Kind: "send", Node: "u1", Peer: "s1", Call: 1, Method: "ChatServer.Post", VC: vc{"u1": 1}},
		{T: 1 * ms, Kind: "recv", Node: "s1", Peer: "u1", Call: 1, Method: "ChatServer.Post", VC: vc{"u1": 1, "s1": 1}},
		{T: 1 * ms, Kind: "reply", Node: "s1", Peer: "u1", Call: 1, Method: "ChatServer.Post", VC: vc{"u1": 1, "s1": 2}},
		{T: 2 * ms, Kind: "recv", Node: "s1", Peer: "u1", Call: 1, Method: "ChatServer.Post", Dup: true, VC: vc{"u1": 1, "s1": 3}},
		{T: 2 * ms, Kind: "reply", Node: "s1", Peer: "u1", Call: 1, Method: "ChatServer.Post", VC: vc{"u1": 1, "s1": 4}},
		{T: 3 * ms, Kind: "return", Node: "u1", Peer: "s1", Call: 1, Method: "ChatServer.Post", VC: vc{"u1": 2, "s1": 4}},
		{T: 3 * ms, Kind: "ack", Node: "u1", Room: "r", Text: "hi", From: "u1", ID: "a", Stamp: &chatapi.Stamp{Time: 1, Server: "s1", Seq: 1}},
		{T: 4 * ms, Kind: "send", Node: "s1", Peer: "s2", Call: 2, Method: "ChatPeer.Forward", VC: vc{"u1": 1, "s1": 5}},
		{T: 4 * ms, Kind: "drop", Node: "s1", Peer: "s2", Call: 2, Method: "ChatPeer.Forward"},
		{T: 5 * ms, Kind: "send", Node: "s1", Peer: "s2", Call: 3, Method: "ChatPeer.Forward", VC: vc{"u1": 1, "s1": 6}},
		{T: 6 * ms, Kind: "recv", Node: "s2", Peer: "s1", Call: 3, Method: "ChatPeer.Forward", VC: vc{"u1": 1, "s1": 6, "s2": 1}},
		{T: 6 * ms, Kind: "reply", Node: "s2", Peer: "s1", Call: 3, Method: "ChatPeer.Forward", VC: vc{"u1": 1, "s1": 6, "s2": 2}},
		{T: 6 * ms, Kind: "drop", Node: "s2", Peer: "s1", Call: 3, Method: "ChatPeer.Forward"},
		{T: 7 * ms, Kind: "partition", Text: "[[s1] [s2]]"},
		{T: 8 * ms, Kind: "crash", Node: "s2"},
		{T: 9 * ms, Kind: "timeout", Node: "s1", Peer: "s2", Call: 3, Method: "ChatPeer.Forward"},
	}
	legs := messageLegs(events)
	want := []leg{
		{from: 1, to: 2, drop: -1},
		{from: 1, to: 4, drop: -1},
		{from: 3, to: -1, drop: -1, reply: true}, // the first reply came too late
		{from: 5, to: 6, drop: -1, reply: true},  // the return carries s1:4, the second reply's
		{from: 8, to: -1, drop: 9},
		{from: 10, to: 11, drop: -1},
		{from: 12, to: -1, drop: 13, reply: true},
	}
	if !reflect.DeepEqual(legs, want) {
		t.Fatalf("legs\n got %+v\nwant %+v", legs, want)
	}
	var buf bytes.Buffer
	if err := WriteShiViz(&buf, events); err != nil {
		t.Fatal(err)
	}
	entries := parseShiViz(t, buf.String())
	if len(entries) != len(events)-1 { // the partition belongs to no host
		t.Fatalf("%d entries, want %d", len(entries), len(events)-1)
	}
	checkShiViz(t, entries)
	// The return merged the second reply (s1's 4th event), not the first.
	if got := entries[6].clock; got["s1"] != 4 || got["u1"] != 3 {
		t.Fatalf("return's clock %v, want s1:4 u1:3", got)
	}
}
