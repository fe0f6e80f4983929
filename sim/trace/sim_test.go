package trace_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/sim"
	"github.com/distchat/distchat/sim/trace"
)

// outputRun runs a traced workload and returns the simulation (closed at
// the end of the test) and its report.
func outputRun(t *testing.T, cfg sim.Config, w sim.Workload) (*sim.Sim, *sim.Report) {
	t.Helper()
	cfg.Trace = true
	s, err := sim.New(cfg)
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
func outputSkewRun(t *testing.T) (*sim.Sim, *sim.Report) {
	t.Helper()
	s, r := outputRun(t, sim.Config{Seed: 7, ClockMode: server.ClockWall, Delay: sim.Uniform{Min: time.Millisecond, Max: 5 * time.Millisecond}},
		sim.Workload{Skew: 200 * time.Millisecond, Posts: 60, Gap: 10 * time.Millisecond})
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

func TestWriteJSONRoundTrip(t *testing.T) {
	s, _ := outputRun(t, sim.Config{Seed: 1}, sim.Workload{Posts: 20})
	events := s.Trace()
	if len(events) == 0 {
		t.Fatal("no events traced")
	}
	var buf bytes.Buffer
	if err := trace.WriteJSON(&buf, events); err != nil {
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
		var e trace.Event
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

func TestWritersReportWriteErrors(t *testing.T) {
	events := []trace.Event{{Kind: "start", Node: "s1"}}
	if err := trace.WriteJSON(failingWriter{}, events); err == nil {
		t.Fatal("trace.WriteJSON to a failing writer: no error")
	}
	if err := trace.WriteShiViz(failingWriter{}, events); err == nil {
		t.Fatal("trace.WriteShiViz to a failing writer: no error")
	}
	if err := trace.WriteSVG(failingWriter{}, events, nil, trace.SVGOptions{}); err == nil {
		t.Fatal("trace.WriteSVG to a failing writer: no error")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteShiViz(t *testing.T) {
	s, _ := outputRun(t, sim.Config{Seed: 1, Dup: 0.2, Drop: 0.02}, sim.Workload{Posts: 20})
	events := s.Trace()
	var buf bytes.Buffer
	if err := trace.WriteShiViz(&buf, events); err != nil {
		t.Fatal(err)
	}
	entries := trace.ParseShiViz(t, buf.String())
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
	trace.CheckShiViz(t, entries)
	outputSave(t, "shiviz.log", buf.Bytes())
}

func TestOutputDeterministic(t *testing.T) {
	outputs := func() [3][]byte {
		s, r := outputSkewRun(t)
		var out [3]bytes.Buffer
		if err := trace.WriteJSON(&out[0], s.Trace()); err != nil {
			t.Fatal(err)
		}
		if err := trace.WriteShiViz(&out[1], s.Trace()); err != nil {
			t.Fatal(err)
		}
		if err := trace.WriteSVG(&out[2], s.Trace(), s.Nodes(), trace.SVGOptions{Highlight: r.Causality.Pair}); err != nil {
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
