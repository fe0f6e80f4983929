// Package rmitest holds the small helpers every distchat test shares:
// bounded polling for a condition, a log buffer safe for concurrent
// writers, a logger that discards everything, and a check that a typed
// stub matches its remote interface. It imports nothing of chat, not even
// rmi, so any package's tests, internal or external, may use it.
package rmitest

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bound is how long WaitFor polls before it fails the test. It is generous
// so that a loaded machine (the race detector on two cores) never fails a
// correct test; a healthy run waits milliseconds.
const Bound = 20 * time.Second

// Tick is how often WaitFor checks its condition.
const Tick = 5 * time.Millisecond

// WaitFor polls cond every Tick until it holds, and fails the test if it
// does not within Bound. It never sleeps blindly: it waits on a ticker and
// a deadline timer.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWhy(t, what, func() (bool, string) { return cond(), "" })
}

// WaitForWhy is WaitFor for a condition that explains itself: when the
// bound passes, the test fails with cond's last explanation.
func WaitForWhy(t testing.TB, what string, cond func() (ok bool, why string)) {
	t.Helper()
	tick := time.NewTicker(Tick)
	defer tick.Stop()
	deadline := time.NewTimer(Bound)
	defer deadline.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			if why != "" {
				t.Fatalf("timed out after %v waiting for %s: %s", Bound, what, why)
			}
			t.Fatalf("timed out after %v waiting for %s", Bound, what)
		}
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for capturing
// log or terminal output that goroutines write while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns what was written, split into lines without their line
// ends; nothing written gives nil.
func (s *SyncBuffer) Lines() []string {
	out := strings.TrimSuffix(s.String(), "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// QuietLogger returns a logger that discards everything.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
