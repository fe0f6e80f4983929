package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// termUserPace spaces a terminal user's posts: one every 50 ms.
const termUserPace = 50 * time.Millisecond

// termUser is one user's terminal client, 'distchat client --json', run
// as a process. One goroutine (run) owns its standard input and output:
// while posting is on it posts a numbered message to its room every
// termUserPace, and between two posts it runs the commands the test sends
// (send, do). Every command is followed by /help, which the client
// answers at once without the network: its line marks the end of the
// command's output, so a post is acknowledged exactly when a
// {"type":"ok","cmd":"say"} line came before that mark (a failed command
// prints only to stderr, the process's log).
type termUser struct {
	name string
	room string
	p    *proc // p.lines carries every stdout line: the reader never drops one
	in   io.Writer
	reqs chan termRequest
	// stopped is closed when run returns: the test ended, or the client
	// misbehaved (err says how).
	stopped chan struct{}

	mu       sync.Mutex
	acks     []termAck  // the acknowledged posts, in order
	failed   int        // posts that were not acknowledged
	statuses []termLine // the status lines (connection changes)
	server   string     // the chat server that stamped this user's last post
	err      error      // why run stopped early
}

// termAck is an acknowledged post and when the test read its "ok".
type termAck struct {
	text string
	at   time.Time
}

// termRequest is a command for run: a command line, or (posting not nil)
// posting switched on or off.
type termRequest struct {
	cmd     string
	posting *bool
	reply   chan termReply
}

// termReply is what a command printed on stdout apart from the feed
// (messages, events and status lines arriving meanwhile), or why it got
// no answer.
type termReply struct {
	lines []termLine
	err   error
}

// termLine is one JSON line of the terminal client: the fields this test
// reads, and when the test read it.
type termLine struct {
	Type        string `json:"type"`
	Cmd         string `json:"cmd"`
	Room        string `json:"room"`
	ID          string `json:"id"`
	From        string `json:"from"`
	Text        string `json:"text"`
	Server      string `json:"server"`
	Seq         uint64 `json:"seq"`
	Stamp       int64  `json:"stamp"`
	History     bool   `json:"history"`
	Status      string `json:"status"`
	Central     string `json:"central"`
	LostCentral string `json:"lostCentral"`
	at          time.Time
}

// feed reports whether l is something the client printed by itself
// rather than in answer to a command.
func (l termLine) feed() bool {
	return l.Type == "message" && !l.History || l.Type == "event" || l.Type == "status"
}

// startTermUser logs user in with 'distchat client --json --central
// central --ca h.ca', posting to room once switched on (setPosting), and
// runs its driving goroutine until ctx ends. The process is in h.procs
// (stopped, and its stderr shown on failure, by the cluster's cleanup).
func (h *cluster) startTermUser(ctx context.Context, user, room, central string) *termUser {
	h.t.Helper()
	logFile := filepath.Join(h.dir, user+".client.log")
	cmd, in, out := h.startPiped(user, logFile, "client", "--central", central, "--user", user, "--json", "--ca", h.ca, "--log-level", "info")
	// Unbuffered, and never dropped: once done is closed, every line
	// has been taken.
	p := &proc{name: user, args: cmd.Args[1:], cmd: cmd, logFile: logFile, lines: make(chan string), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text() // run, then drain, takes every line
		}
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	h.procs[user] = p
	u := &termUser{name: user, room: room, p: p, in: in, reqs: make(chan termRequest, 4), stopped: make(chan struct{})}
	go u.run(ctx)
	return u
}

// run drives the client until ctx ends or the client misbehaves (it
// exits, prints what is not JSON, or leaves a command unanswered for
// e2eWait).
func (u *termUser) run(ctx context.Context) {
	defer close(u.stopped)
	defer u.drain()
	pace := time.NewTicker(termUserPace)
	defer pace.Stop()
	posting := false
	// handle runs one request; false: the client misbehaved.
	handle := func(r termRequest) bool {
		if r.posting != nil {
			posting = *r.posting
			r.reply <- termReply{}
			return true
		}
		lines, err := u.exec(r.cmd)
		r.reply <- termReply{lines, err}
		if err != nil {
			u.stop(err)
		}
		return err == nil
	}
	for n := 1; ; {
		// Queued requests go first, one after the other: no post comes
		// between a /leave and the /join sent after it.
		select {
		case r := <-u.reqs:
			if !handle(r) {
				return
			}
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return
		case s := <-u.p.lines:
			if _, err := u.note(s); err != nil {
				u.stop(err)
				return
			}
		case <-u.p.done:
			u.stop(fmt.Errorf("%s's client exited: %v", u.name, u.p.waitErr))
			return
		case r := <-u.reqs:
			if !handle(r) {
				return
			}
		case <-pace.C:
			if !posting {
				continue
			}
			text := fmt.Sprintf("%s %d", u.name, n)
			n++
			lines, err := u.exec("/say " + u.room + " " + text)
			if err != nil {
				u.stop(err)
				return
			}
			u.mu.Lock()
			if slices.ContainsFunc(lines, func(l termLine) bool { return l.Type == "ok" && l.Cmd == "say" }) {
				u.acks = append(u.acks, termAck{text: text, at: time.Now()})
			} else {
				u.failed++
			}
			u.mu.Unlock()
		}
	}
}

// exec writes cmd and /help, and returns what the client printed in
// answer to cmd, up to /help's line.
func (u *termUser) exec(cmd string) ([]termLine, error) {
	if _, err := io.WriteString(u.in, cmd+"\n/help\n"); err != nil {
		return nil, fmt.Errorf("%s: %q: %w", u.name, cmd, err)
	}
	timer := time.NewTimer(e2eWait)
	defer timer.Stop()
	var out []termLine
	for {
		select {
		case s := <-u.p.lines:
			l, err := u.note(s)
			switch {
			case err != nil:
				return nil, err
			case l.Type == "help":
				return out, nil
			case !l.feed():
				out = append(out, l)
			}
		case <-u.p.done:
			return nil, fmt.Errorf("%s's client exited (%v) during %q", u.name, u.p.waitErr, cmd)
		case <-timer.C:
			return nil, fmt.Errorf("%s's client did not answer %q within %v", u.name, cmd, e2eWait)
		}
	}
}

// note parses one stdout line and keeps what the test asks about later:
// status lines, and the server that stamped this user's own posts.
func (u *termUser) note(s string) (termLine, error) {
	var l termLine
	if err := json.Unmarshal([]byte(s), &l); err != nil || l.Type == "" {
		return l, fmt.Errorf("%s's client printed %q, not a JSON line (%v)", u.name, s, err)
	}
	l.at = time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case l.Type == "status":
		u.statuses = append(u.statuses, l)
	case l.Type == "message" && !l.History && l.From == u.name:
		u.server = l.Server
	}
	return l, nil
}

// stop records why run stops early.
func (u *termUser) stop(err error) {
	u.mu.Lock()
	u.err = err
	u.mu.Unlock()
}

// drain takes the lines nobody reads any more, so that the process is
// never blocked writing them.
func (u *termUser) drain() {
	go func() {
		for {
			select {
			case <-u.p.lines:
			case <-u.p.done:
				return
			}
		}
	}()
}

// send queues a command for run (after the post in progress, if any)
// and returns where its answer will come.
func (u *termUser) send(cmd string) <-chan termReply {
	r := termRequest{cmd: cmd, reply: make(chan termReply, 1)}
	select {
	case u.reqs <- r:
	case <-u.stopped:
		r.reply <- termReply{err: u.stopErr()}
	}
	return r.reply
}

// wait returns the answer of a command sent with send.
func (u *termUser) wait(reply <-chan termReply) ([]termLine, error) {
	select {
	case r := <-reply:
		return r.lines, r.err
	case <-u.stopped:
		// run may have answered just before it stopped.
		select {
		case r := <-reply:
			return r.lines, r.err
		default:
			return nil, u.stopErr()
		}
	}
}

// do runs cmd and returns its answer.
func (u *termUser) do(cmd string) ([]termLine, error) { return u.wait(u.send(cmd)) }

// must runs cmd and fails the test unless the client answered
// {"type":"ok","cmd":okCmd}.
func (u *termUser) must(t *testing.T, cmd, okCmd string) {
	t.Helper()
	lines, err := u.do(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(lines, func(l termLine) bool { return l.Type == "ok" && l.Cmd == okCmd }) {
		t.Fatalf("%s: %q failed (answer %+v); stderr:\n%s", u.name, cmd, lines, tail(u.p.logFile, 10))
	}
}

// setPosting switches posting on or off; once it returns no post is in
// flight.
func (u *termUser) setPosting(t *testing.T, on bool) {
	t.Helper()
	r := termRequest{posting: &on, reply: make(chan termReply, 1)}
	select {
	case u.reqs <- r:
	case <-u.stopped:
		t.Fatal(u.stopErr())
	}
	if _, err := u.wait(r.reply); err != nil {
		t.Fatal(err)
	}
}

// stopErr is why run stopped.
func (u *termUser) stopErr() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return u.err
	}
	return errors.New(u.name + "'s client is no longer driven (the test ended)")
}

// stopErrIfAny is why run stopped early, or nil.
func (u *termUser) stopErrIfAny() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// ackList returns the acknowledged posts so far.
func (u *termUser) ackList() []termAck {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.acks)
}

// acksSince counts the posts acknowledged after t0.
func (u *termUser) acksSince(t0 time.Time) int {
	n := 0
	for _, a := range u.ackList() {
		if a.at.After(t0) {
			n++
		}
	}
	return n
}

// failedPosts counts the posts that were not acknowledged.
func (u *termUser) failedPosts() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.failed
}

// statusSince returns the first status line of kind status read after
// t0 that satisfies ok, if any.
func (u *termUser) statusSince(t0 time.Time, status string, ok func(termLine) bool) (termLine, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.statuses {
		if l.at.After(t0) && l.Status == status && ok(l) {
			return l, true
		}
	}
	return termLine{}, false
}

// lastServer returns the chat server that stamped this user's last post
// the client printed.
func (u *termUser) lastServer() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.server
}

// longestGap returns the longest time between two consecutive
// acknowledged posts in acks around [from, to]: from the last post
// acknowledged before from to the first one acknowledged after to.
func longestGap(acks []termAck, from, to time.Time) time.Duration {
	var gap time.Duration
	for i := 1; i < len(acks); i++ {
		prev, next := acks[i-1].at, acks[i].at
		if next.Before(from) || prev.After(to) {
			continue
		}
		gap = max(gap, next.Sub(prev))
	}
	return gap
}
