package trace_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/sim"
	"github.com/distchat/distchat/sim/trace"
)

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
	s, _ := outputRun(t, sim.Config{Seed: 1}, sim.Workload{Posts: 20})
	var buf bytes.Buffer
	if err := trace.WriteSVG(&buf, s.Trace(), s.Nodes(), trace.SVGOptions{}); err != nil {
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
	if err := trace.WriteSVG(&buf, s.Trace(), s.Nodes(), trace.SVGOptions{Highlight: r.Causality.Pair, Title: "seed 7, wall clocks, 200 ms skew"}); err != nil {
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
		trace.StampText(x.Stamp), trace.StampText(y.Stamp), "seed 7, wall clocks"} {
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
	s, _ := outputRun(t, sim.Config{Seed: 2, Drop: 0.05}, sim.Workload{Posts: 20})
	events := s.Trace()
	var buf bytes.Buffer
	if err := trace.WriteSVG(&buf, events, s.Nodes(), trace.SVGOptions{From: 100 * time.Millisecond, To: 2 * time.Second, MaxEvents: 60}); err != nil {
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
	if err := trace.WriteSVG(&buf, events, nil, trace.SVGOptions{MaxEvents: 100000}); err != nil {
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
	if err := trace.WriteSVG(&buf, nil, []string{"central"}, trace.SVGOptions{}); err != nil {
		t.Fatal(err)
	}
	if doc := parseSVG(t, buf.Bytes()); !doc.has("No events") {
		t.Fatalf("empty trace: no explanation")
	}
}

func TestWriteSVGCrash(t *testing.T) {
	s, err := sim.New(sim.Config{Seed: 3, Trace: true})
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
	if err := trace.WriteSVG(&buf, s.Trace(), s.Nodes(), trace.SVGOptions{From: from, To: from + 300*time.Millisecond}); err != nil {
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
	if err := trace.WriteShiViz(&sv, s.Trace()); err != nil {
		t.Fatal(err)
	}
	trace.CheckShiViz(t, trace.ParseShiViz(t, sv.String()))
}
