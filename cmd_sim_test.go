package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimCommand(t *testing.T) {
	dir := t.TempDir()
	svg := filepath.Join(dir, "a.svg")
	trace := filepath.Join(dir, "t.jsonl")
	shiviz := filepath.Join(dir, "s.log")
	e, out, errOut := testEnv(nil)
	code := run(context.Background(), e, []string{"sim", "--clock", "wall", "--skew", "200ms", "--delay", "1ms..5ms",
		"--posts", "60", "--gap", "10ms", "--svg", svg, "--trace", trace, "--shiviz", shiviz})
	if code != exitOK {
		t.Fatalf("wall-mode anomaly run: exit %d (a causality violation in wall mode is reported, not an error); stderr %q", code, errOut)
	}
	if !strings.Contains(out.String(), "causality      VIOLATED") || !strings.Contains(out.String(), "first counterexample") {
		t.Fatalf("no causality counterexample in:\n%s", out)
	}
	for _, p := range []string{svg, trace, shiviz} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Fatalf("%s not written: %v", p, err)
		}
	}
	if b, _ := os.ReadFile(svg); !strings.Contains(string(b), "Causality violated") {
		t.Fatal("the SVG does not explain the counterexample")
	}

	// The same run in hlc mode, as JSON: everything holds.
	e, out, errOut = testEnv(nil)
	if code := run(context.Background(), e, []string{"sim", "--clock", "hlc", "--skew", "200ms", "--delay", "1ms..5ms", "--posts", "60", "--gap", "10ms", "--json"}); code != exitOK {
		t.Fatalf("hlc run: exit %d; stderr %q", code, errOut)
	}
	var rep struct {
		Seed      uint64
		Posts     int
		Causality struct{ OK bool }
		Agreement struct{ OK bool }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if !rep.Causality.OK || !rep.Agreement.OK || rep.Posts != 60 || rep.Seed != 1 {
		t.Fatalf("hlc report %+v", rep)
	}

	// Same seed, same trace.
	trace2 := filepath.Join(dir, "t2.jsonl")
	e, _, _ = testEnv(nil)
	run(context.Background(), e, []string{"sim", "--clock", "wall", "--skew", "200ms", "--delay", "1ms..5ms",
		"--posts", "60", "--gap", "10ms", "--trace", trace2})
	a, _ := os.ReadFile(trace)
	b, _ := os.ReadFile(trace2)
	if string(a) != string(b) {
		t.Fatal("two runs with the same seed wrote different traces")
	}
}

func TestSimCommandScenarioAndErrors(t *testing.T) {
	e, out, errOut := testEnv(nil)
	if code := run(context.Background(), e, []string{"sim", "--scenario", "testdata/skew-fixed-hlc.scenario"}); code != exitOK {
		t.Fatalf("scenario: exit %d; stderr %q", code, errOut)
	}
	if !strings.Contains(out.String(), "log alice lobby") || !strings.Contains(out.String(), "causality      ok") {
		t.Fatalf("scenario transcript/report missing:\n%s", out)
	}
	e, out, _ = testEnv(nil)
	if code := run(context.Background(), e, []string{"sim", "--scenario-help"}); code != exitOK || !strings.Contains(out.String(), "partition A,B | C,D") {
		t.Fatalf("--scenario-help: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"sim", "--delay", "soon"},
		{"sim", "--clock", "sundial"},
		{"sim", "--servers", "0"},
	} {
		e, _, errOut := testEnv(nil)
		if code := run(context.Background(), e, args); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
	}
	e, _, errOut = testEnv(nil)
	if code := run(context.Background(), e, []string{"sim", "--scenario", "testdata/no-such.scenario"}); code != exitError {
		t.Errorf("missing scenario: exit %d; stderr %q", code, errOut)
	}
}
