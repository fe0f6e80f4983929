//go:build linux

package main

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

func TestRunPrintsEveryFigure(t *testing.T) {
	var out strings.Builder
	var pauses []time.Duration
	err := run([]string{"--n", "20", "--gap", "7ms", "--dir", t.TempDir()}, &out, clock.New(), func(d time.Duration) {
		pauses = append(pauses, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^op=(\w+) mode=(busy|idle) n=(\d+) p50_us=([0-9.]+) p90_us=([0-9.]+)( cpu_us=[0-9.]+)?$`)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not a figure", l)
		}
		got = append(got, m[1]+"/"+m[2])
		p50, _ := strconv.ParseFloat(m[4], 64)
		p90, _ := strconv.ParseFloat(m[5], 64)
		if p50 <= 0 || p90 < p50 {
			t.Errorf("%s: p50 %v, p90 %v", l, p50, p90)
		}
		if (m[1] == "fdatasync") != (m[6] != "") {
			t.Errorf("%s: cpu_us is for fdatasync only", l)
		}
		if want := "20"; m[1] != "syscall" && m[3] != want {
			t.Errorf("%s: n=%s, want %s", l, m[3], want)
		}
	}
	want := "syscall/busy wake/busy tcp/busy fdatasync/busy wake/idle tcp/idle fdatasync/idle"
	if strings.Join(got, " ") != want {
		t.Errorf("figures %q, want %q", strings.Join(got, " "), want)
	}
	// One pause before each of the 20 idle operations of the three kinds.
	if len(pauses) != 60 || pauses[0] != 7*time.Millisecond {
		t.Errorf("%d pauses (first %v), want 60 of 7ms", len(pauses), pauses)
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{{"--n", "0"}, {"--gap", "-1s"}, {"extra"}, {"--nope"}} {
		err := run(args, &strings.Builder{}, clock.New(), func(time.Duration) { t.Fatal("ran") })
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want the usage", args, err)
		}
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"--help"}, &out, clock.New(), func(time.Duration) { t.Fatal("ran") }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{errUsage.Error(), "-gap D", "-dir DIR", "-n N"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help %q lacks %q", out.String(), want)
		}
	}
}

func TestRunReportsAnUnwritableDirectory(t *testing.T) {
	err := run([]string{"--n", "2", "--dir", "/nonexistent/dir"}, &strings.Builder{}, clock.New(), func(time.Duration) {})
	if err == nil || !strings.Contains(err.Error(), "fdatasync") {
		t.Fatalf("err %v, want the fdatasync test file's", err)
	}
}
