package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/server/chatapi"
)

// outputRun runs a traced workload and returns the simulation (closed at
// the end of the test) and its report.
func outputRun(t *testing.T, cfg Config, w Workload) (*Sim, *Report) {
	t.Helper()
	cfg.Trace = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r, err := s.RunWorkload(w)
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

// outputSkewRun is the wall-clock anomaly: 200 ms of skew against 1-5 ms
// of network delay.
func outputSkewRun(t *testing.T) (*Sim, *Report) {
	t.Helper()
	s, r := outputRun(t, Config{Seed: 7, ClockMode: server.ClockWall, Delay: Uniform{time.Millisecond, 5 * time.Millisecond}},
		Workload{Skew: 200 * time.Millisecond, Posts: 60, Gap: 10 * time.Millisecond})
	if r.Causality.OK || len(r.Causality.Pair) != 2 {
		t.Fatalf("wall mode with 200ms skew: want a causality counterexample, got %+v", r.Causality)
	}
	return s, r
}

// outputSave writes b to $SIM_OUTPUT_DIR/name when that is set, to look at
// the pictures.
func outputSave(t *testing.T, name string, b []byte) {
	if dir := os.Getenv("SIM_OUTPUT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteTraceRoundTrip(t *testing.T) {
	s, _ := outputRun(t, Config{Seed: 1}, Workload{Posts: 20})
	events := s.Trace()
	if len(events) == 0 {
		t.Fatal("no events traced")
	}
	var buf bytes.Buffer
	if err := WriteTrace(&buf, events); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %d: %v: %s", n+1, err, sc.Text())
		}
		if _, err := strconv.ParseInt(string(raw["t"]), 10, 64); err != nil {
			t.Fatalf("line %d: t is not integer nanoseconds: %s", n+1, raw["t"])
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if n >= len(events) {
			t.Fatalf("more lines than the %d events", len(events))
		}
		if !reflect.DeepEqual(e, events[n]) {
			t.Fatalf("line %d reads back as %+v, want %+v", n+1, e, events[n])
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(events) {
		t.Fatalf("%d lines for %d events", n, len(events))
	}
}

func TestWriteTraceReportsWriteErrors(t *testing.T) {
	events := []Event{{Kind: "start", Node: "s1"}}
	if err := WriteTrace(outFailingWriter{}, events); err == nil {
		t.Fatal("WriteTrace to a failing writer: no error")
	}
	if err := WriteShiViz(outFailingWriter{}, events); err == nil {
		t.Fatal("WriteShiViz to a failing writer: no error")
	}
	if err := WriteSVG(outFailingWriter{}, events, nil, SVGOptions{}); err == nil {
		t.Fatal("WriteSVG to a failing writer: no error")
	}
}

type outFailingWriter struct{}

func (outFailingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

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
		if !outDominates(e.clock, prev[e.host]) {
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
			if !outDominates(e.clock, s) {
				t.Fatalf("entry %d: recv %v does not dominate its send %v (call %d)", i, e.clock, s, e.call)
			}
			if from := shivizSender(e); s[from] > prev[e.host][from] {
				merged++ // the receiver learned of the sender's events
			}
		case "return":
			ok := false
			for _, r := range replies[e.call] {
				ok = ok || outDominates(e.clock, r)
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

func outDominates(a, b map[string]uint64) bool {
	for k, v := range b {
		if a[k] < v {
			return false
		}
	}
	return true
}

func TestWriteShiViz(t *testing.T) {
	s, _ := outputRun(t, Config{Seed: 1, Dup: 0.2, Drop: 0.02}, Workload{Posts: 20})
	events := s.Trace()
	var buf bytes.Buffer
	if err := WriteShiViz(&buf, events); err != nil {
		t.Fatal(err)
	}
	entries := parseShiViz(t, buf.String())
	want := 0
	kinds := map[string]bool{}
	for _, e := range events {
		if e.Node != "" {
			want++
			kinds[e.Kind] = true
		}
	}
	if len(entries) != want {
		t.Fatalf("%d ShiViz entries for %d events on nodes", len(entries), want)
	}
	for _, k := range []string{"send", "recv", "reply", "return", "post", "ack", "deliver"} {
		if !kinds[k] {
			t.Errorf("the run has no %s event to test with", k)
		}
	}
	checkShiViz(t, entries)
	outputSave(t, "shiviz.log", buf.Bytes())
}

// TestWriteShiVizDuplicatesAndLosses checks the clocks on a hand-made
// trace: a duplicated request answered twice (the return took the second
// reply), a lost request copy, a lost reply and a crash.
func TestWriteShiVizDuplicatesAndLosses(t *testing.T) {
	ms := time.Millisecond
	events := []Event{
		{T: 0, Kind: "post", Node: "u1", Room: "r", Text: "hi"},
		{T: 0, Kind: "send", Node: "u1", Peer: "s1", Call: 1, Method: "ChatServer.Post", VC: vclock{"u1": 1}},
		{T: 1 * ms, Kind: "recv", Node: "s1", Peer: "u1", Call: 1, Method: "ChatServer.Post", VC: vclock{"u1": 1, "s1": 1}},
		{T: 1 * ms, Kind: "reply", Node: "s1", Peer: "u1", Call: 1, Method: "ChatServer.Post", VC: vclock{"u1": 1, "s1": 2}},
		{T: 2 * ms, Kind: "recv", Node: "s1", Peer: "u1", Call: 1, Method: "ChatServer.Post", Dup: true, VC: vclock{"u1": 1, "s1": 3}},
		{T: 2 * ms, Kind: "reply", Node: "s1", Peer: "u1", Call: 1, Method: "ChatServer.Post", VC: vclock{"u1": 1, "s1": 4}},
		{T: 3 * ms, Kind: "return", Node: "u1", Peer: "s1", Call: 1, Method: "ChatServer.Post", VC: vclock{"u1": 2, "s1": 4}},
		{T: 3 * ms, Kind: "ack", Node: "u1", Room: "r", Text: "hi", From: "u1", ID: "a", Stamp: &chatapi.Stamp{Time: 1, Server: "s1", Seq: 1}},
		{T: 4 * ms, Kind: "send", Node: "s1", Peer: "s2", Call: 2, Method: "ChatPeer.Forward", VC: vclock{"u1": 1, "s1": 5}},
		{T: 4 * ms, Kind: "drop", Node: "s1", Peer: "s2", Call: 2, Method: "ChatPeer.Forward"},
		{T: 5 * ms, Kind: "send", Node: "s1", Peer: "s2", Call: 3, Method: "ChatPeer.Forward", VC: vclock{"u1": 1, "s1": 6}},
		{T: 6 * ms, Kind: "recv", Node: "s2", Peer: "s1", Call: 3, Method: "ChatPeer.Forward", VC: vclock{"u1": 1, "s1": 6, "s2": 1}},
		{T: 6 * ms, Kind: "reply", Node: "s2", Peer: "s1", Call: 3, Method: "ChatPeer.Forward", VC: vclock{"u1": 1, "s1": 6, "s2": 2}},
		{T: 6 * ms, Kind: "drop", Node: "s2", Peer: "s1", Call: 3, Method: "ChatPeer.Forward"},
		{T: 7 * ms, Kind: "partition", Text: "[[s1] [s2]]"},
		{T: 8 * ms, Kind: "crash", Node: "s2"},
		{T: 9 * ms, Kind: "timeout", Node: "s1", Peer: "s2", Call: 3, Method: "ChatPeer.Forward"},
	}
	legs := outMessageLegs(events)
	want := []outLeg{
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

// svgDoc is what the tests read back from an SVG.
type svgDoc struct {
	procs      []string // data-node of each process group
	procLines  int
	msgs       int
	lost       int
	highlights int
	badges     int
	texts      []string
	elements   int
}

// parseSVG decodes the SVG with encoding/xml, failing on malformed XML.
func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	var doc svgDoc
	dec := xml.NewDecoder(bytes.NewReader(b))
	depth := 0
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if depth == 0 && tk.Name.Local != "svg" {
				t.Fatalf("root element %q, want svg", tk.Name.Local)
			}
			depth++
			doc.elements++
			class := ""
			for _, a := range tk.Attr {
				switch a.Name.Local {
				case "class":
					class = a.Value
				case "data-node":
					doc.procs = append(doc.procs, a.Value)
				}
			}
			fields := strings.Fields(class)
			has := func(c string) bool {
				for _, f := range fields {
					if f == c {
						return true
					}
				}
				return false
			}
			switch {
			case tk.Name.Local == "line" && has("proc"):
				doc.procLines++
			case tk.Name.Local == "line" && has("msg"):
				doc.msgs++
			case has("msg") && has("lost"):
				doc.lost++
			}
			if has("highlight") {
				doc.highlights++
			}
			if has("badge") {
				doc.badges++
			}
			if tk.Name.Local == "text" {
				text.Reset()
			}
		case xml.CharData:
			text.Write(tk)
		case xml.EndElement:
			depth--
			if tk.Name.Local == "text" {
				doc.texts = append(doc.texts, text.String())
			}
		}
	}
	if depth != 0 || doc.elements == 0 {
		t.Fatalf("SVG ends at depth %d after %d elements", depth, doc.elements)
	}
	return doc
}

// has reports whether the picture's text holds sub (on one line, or
// across the lines of a wrapped paragraph).
func (d svgDoc) has(sub string) bool {
	return strings.Contains(strings.Join(d.texts, " "), sub)
}

func TestWriteSVG(t *testing.T) {
	s, _ := outputRun(t, Config{Seed: 1}, Workload{Posts: 20})
	var buf bytes.Buffer
	if err := WriteSVG(&buf, s.Trace(), s.Nodes(), SVGOptions{}); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	if !reflect.DeepEqual(doc.procs, s.Nodes()) || doc.procLines != len(s.Nodes()) {
		t.Fatalf("processes %v with %d lines, want one line per node %v", doc.procs, doc.procLines, s.Nodes())
	}
	if doc.msgs < 20 {
		t.Fatalf("%d message arrows", doc.msgs)
	}
	if doc.highlights != 0 || doc.badges != 0 {
		t.Fatalf("highlights drawn without a pair to highlight")
	}
	// The window starts at the posts and says it is a window.
	if !doc.has("u0") || !doc.has("Showing events") || !doc.has("virtual time") {
		t.Fatalf("missing labels, window note or axis title")
	}
	outputSave(t, "small.svg", buf.Bytes())
}

func TestWriteSVGHighlightsCausalityViolation(t *testing.T) {
	s, r := outputSkewRun(t)
	x, y := r.Causality.Pair[0], r.Causality.Pair[1]
	var buf bytes.Buffer
	if err := WriteSVG(&buf, s.Trace(), s.Nodes(), SVGOptions{Highlight: r.Causality.Pair, Title: "seed 7, wall clocks, 200 ms skew"}); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	outputSave(t, "skew.svg", buf.Bytes())
	if doc.procLines != len(s.Nodes()) {
		t.Fatalf("%d process lines for %d nodes", doc.procLines, len(s.Nodes()))
	}
	if doc.msgs < 20 {
		t.Fatalf("%d message arrows", doc.msgs)
	}
	// Both messages' post, ack and deliveries are marked, and the four
	// numbered steps (twice: on the events and in the explanation).
	if doc.highlights < 6 {
		t.Fatalf("%d highlighted elements", doc.highlights)
	}
	if doc.badges != 8 {
		t.Fatalf("%d numbered badges, want 4 on events and 4 in the explanation", doc.badges)
	}
	for _, want := range []string{"Causality violated", y.From + " saw X, then posted Y", fmt.Sprintf("%q", x.Text), fmt.Sprintf("%q", y.Text),
		outStamp(x.Stamp), outStamp(y.Stamp), "seed 7, wall clocks"} {
		if !doc.has(want) {
			t.Errorf("SVG lacks the text %q", want)
		}
	}
	// With 1-5 ms delays the window around the pair is well under the
	// whole trace.
	if !doc.has("a window of a trace that runs to") {
		t.Errorf("the picture does not say it shows a window of the trace")
	}
}

func TestWriteSVGWindowAndLimits(t *testing.T) {
	s, _ := outputRun(t, Config{Seed: 2, Drop: 0.05}, Workload{Posts: 20})
	events := s.Trace()
	var buf bytes.Buffer
	if err := WriteSVG(&buf, events, s.Nodes(), SVGOptions{From: 100 * time.Millisecond, To: 2 * time.Second, MaxEvents: 60}); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	first := 0
	for events[first].T < 100*time.Millisecond {
		first++
	}
	if want := fmt.Sprintf("Showing events %d–%d of %d", first+1, first+60, len(events)); !doc.has(want) {
		t.Fatalf("window note: want %q", want)
	}
	// Every node gets its line, even those idle in the window.
	if doc.procLines != len(s.Nodes()) {
		t.Fatalf("%d process lines", doc.procLines)
	}

	// A lossy run draws lost messages.
	buf.Reset()
	if err := WriteSVG(&buf, events, nil, SVGOptions{MaxEvents: 100000}); err != nil {
		t.Fatal(err)
	}
	doc = parseSVG(t, buf.Bytes())
	if doc.lost == 0 {
		t.Fatalf("drop 5%%: no lost message drawn")
	}
	if doc.procLines != len(s.Nodes()) {
		t.Fatalf("nodes from the events: %d lines, want %d", doc.procLines, len(s.Nodes()))
	}

	// Nothing to draw is still a picture.
	buf.Reset()
	if err := WriteSVG(&buf, nil, []string{"central"}, SVGOptions{}); err != nil {
		t.Fatal(err)
	}
	if doc := parseSVG(t, buf.Bytes()); !doc.has("No events") {
		t.Fatalf("empty trace: no explanation")
	}
}

func TestWriteSVGCrash(t *testing.T) {
	s, err := New(Config{Seed: 3, Trace: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []string{"s1", "s2"} {
		if err := s.AddServer(n, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.Run(100 * time.Millisecond)
	for _, u := range [][2]string{{"ann", "s1"}, {"bob", "s2"}} {
		if err := s.AddUser(u[0], u[1]); err != nil {
			t.Fatal(err)
		}
	}
	s.Run(time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Create("ann", "r"))
	s.Run(time.Second)
	must(s.Join("bob", "r"))
	s.Run(time.Second)
	from := s.Now()
	must(s.Post("ann", "r", "before the crash"))
	s.Run(3 * time.Millisecond)
	must(s.Crash("s2"))
	s.Run(200 * time.Millisecond)
	must(s.Restart("s2"))
	s.Run(2 * time.Second)
	var buf bytes.Buffer
	if err := WriteSVG(&buf, s.Trace(), s.Nodes(), SVGOptions{From: from, To: from + 300*time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	outputSave(t, "crash.svg", buf.Bytes())
	if !doc.has("CRASH") || !doc.has("restart") {
		t.Fatalf("crash and restart not drawn")
	}
	if !bytes.Contains(buf.Bytes(), []byte(`class="down"`)) {
		t.Fatalf("the down time is not drawn")
	}
	var sv bytes.Buffer
	if err := WriteShiViz(&sv, s.Trace()); err != nil {
		t.Fatal(err)
	}
	checkShiViz(t, parseShiViz(t, sv.String()))
}

func TestOutputDeterministic(t *testing.T) {
	outputs := func() [3][]byte {
		s, r := outputSkewRun(t)
		var out [3]bytes.Buffer
		if err := WriteTrace(&out[0], s.Trace()); err != nil {
			t.Fatal(err)
		}
		if err := WriteShiViz(&out[1], s.Trace()); err != nil {
			t.Fatal(err)
		}
		if err := WriteSVG(&out[2], s.Trace(), s.Nodes(), SVGOptions{Highlight: r.Causality.Pair}); err != nil {
			t.Fatal(err)
		}
		return [3][]byte{out[0].Bytes(), out[1].Bytes(), out[2].Bytes()}
	}
	a, b := outputs(), outputs()
	for i, name := range []string{"trace", "ShiViz log", "SVG"} {
		if len(a[i]) == 0 {
			t.Fatalf("%s is empty", name)
		}
		if !bytes.Equal(a[i], b[i]) {
			t.Errorf("same seed, different %s (%d and %d bytes)", name, len(a[i]), len(b[i]))
		}
	}
}
