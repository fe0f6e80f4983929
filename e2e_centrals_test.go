package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"
)

// TestEndToEndCentralFailover runs the central server's failover with real
// processes and the embedded store: central A is SIGKILLed while users
// chat, and a central server on address B is started on A's data
// directory. The chat servers and the clients, given --central A,B, move
// to B by themselves: the terminal client prints "central A lost; using
// B" (as JSON here), the users keep chatting across the chat servers, and
// a new user signs up, logs in (placed on a chat server that renewed its
// lease at B) and joins the room.
func TestEndToEndCentralFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes; skipped with -short")
	}
	h := newClusterWith(t, clusterOptions{servers: 0, host: "127.0.0.1"})
	addrA := h.centralAddr
	addrB := secondLoopback(t, addrA)
	list := addrA + "," + addrB
	h.centralAddr = list // the chat servers' --central, and the in-process clients'
	for _, name := range []string{"chat-1", "chat-2"} {
		h.serverNames = append(h.serverNames, name)
		h.startServer(name, "127.0.0.1:0")
	}
	signup := func(user string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
		defer cancel()
		cmd := exec.CommandContext(ctx, h.bin, "signup", "--central", list, "--user", user)
		cmd.Env = h.env("DISTCHAT_PASSWORD=" + password(user))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("signup %s: %v\n%s", user, err, out)
		}
	}
	signup("ann")
	signup("bob")
	// Trust on first use pinned the cluster CA for both addresses.
	b, err := os.ReadFile(h.knownCentrals())
	if err != nil {
		t.Fatal(err)
	}
	if want := addrA + " " + h.caPrint + "\n" + addrB + " " + h.caPrint + "\n"; string(b) != want {
		t.Fatalf("known centrals %q, want %q", b, want)
	}

	// ann runs the terminal client (JSON lines); bob the library.
	ann, annIn := h.startScripted("ann", "client", "--central", list, "--user", "ann", "--json")
	say := func(line string) {
		t.Helper()
		if _, err := io.WriteString(annIn, line+"\n"); err != nil {
			t.Fatalf("ann's client: %v", err)
		}
	}
	say("/create lobby")
	ann.waitLine(t, regexp.MustCompile(`^\{"type":"ok","cmd":"create"`))
	bob := h.login("bob")
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if _, err := bob.c.JoinRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	say("/say lobby before")
	bob.waitTexts(t, "lobby", "before")

	// SIGKILL central A; start central B on its data.
	killed := time.Now()
	h.kill("central")
	h.start("central-b", "central", "--listen", addrB, "--data", filepath.Join(h.dir, "central"),
		"--cluster-secret-file", h.secret, "--log-level", "debug").
		waitLine(t, regexp.MustCompile(`^central server listening on `+regexp.QuoteMeta(addrB)+` `))
	ann.waitLine(t, regexp.MustCompile(`^\{"type":"status","status":"central",.*"central":"`+
		regexp.QuoteMeta(addrB)+`","lostCentral":"`+regexp.QuoteMeta(addrA)+`"\}$`))
	t.Logf("the terminal client used central B %v after central A was killed", time.Since(killed).Round(time.Millisecond))

	// The users keep chatting, across the chat servers.
	say("/say lobby after")
	bob.waitTexts(t, "lobby", "after")
	if _, err := bob.c.Say(ctx, "lobby", "reply"); err != nil {
		t.Fatal(err)
	}
	ann.waitLine(t, regexp.MustCompile(`^\{"type":"message","room":"lobby",.*"from":"bob","text":"reply"`))

	// The chat servers renew their leases at B (registering again there
	// with their sessions): B knows where ann and bob are.
	rmitest.WaitForWhy(t, "the chat servers to register at central B", func() (bool, string) {
		info, err := bob.c.Who(ctx, "lobby")
		if err != nil {
			return false, err.Error()
		}
		return len(info.Servers) == 2, fmt.Sprintf("lobby: %+v", info)
	})
	t.Logf("both chat servers were registered at central B %v after central A was killed", time.Since(killed).Round(time.Millisecond))

	// A new user signs up at B, logs in on a chat server whose lease B
	// holds, and joins.
	signup("cy")
	cy := h.login("cy")
	if _, err := cy.c.JoinRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	cy.waitTexts(t, "lobby", "before", "after", "reply")
	say("/say lobby welcome cy")
	cy.waitTexts(t, "lobby", "welcome cy")
	for _, name := range h.serverNames {
		log, err := os.ReadFile(h.procs[name].logFile)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("lost=%s using=%s", addrA, addrB); !strings.Contains(string(log), want) {
			t.Errorf("%s did not log its move to central B (%q)", name, want)
		}
	}
	say("/quit")
	select {
	case <-ann.done:
		if ann.waitErr != nil {
			t.Errorf("ann's client: %v", ann.waitErr)
		}
	case <-time.After(e2eWait):
		t.Errorf("ann's client did not quit")
	}
}

// startPiped starts the binary with args as user (the password in
// DISTCHAT_PASSWORD), its standard error going to logFile, and returns
// pipes to its standard input and output.
func (h *cluster) startPiped(user, logFile string, args ...string) (*exec.Cmd, io.WriteCloser, io.ReadCloser) {
	h.t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close() // the child has its own copy once started
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env("DISTCHAT_PASSWORD=" + password(user))
	cmd.Stderr = f
	in, err := cmd.StdinPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	return cmd, in, out
}

// startScripted runs the binary as process name, as start does, with a
// pipe to its standard input (returned) and the user's password in
// DISTCHAT_PASSWORD.
func (h *cluster) startScripted(user string, args ...string) (*proc, io.WriteCloser) {
	h.t.Helper()
	logFile := filepath.Join(h.dir, fmt.Sprintf("%s.%d.log", user, time.Now().UnixNano()))
	cmd, in, out := h.startPiped(user, logFile, args...)
	p := &proc{name: user, args: args, cmd: cmd, logFile: logFile, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for more lines
			}
		}
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	h.procs[user] = p
	return p, in
}
