package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/server/chatapi"
)

// secondLoopback returns the address on 127.0.0.2 with addr's port: a
// central server's second address, known before it starts and free while
// the first one (on 127.0.0.1) holds the port. It skips the test where
// 127.0.0.2 is not a loopback address (Linux routes all of 127/8 to lo).
func secondLoopback(t *testing.T, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address here: %v", err)
	}
	l.Close()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.2", port)
}

// statusLog records a client's statuses.
type statusLog struct {
	mu sync.Mutex
	st []client.Status
}

func (s *statusLog) add(st client.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = append(s.st, st)
}

// moves returns the CentralMoved statuses as "lost->using".
func (s *statusLog) moves() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, st := range s.st {
		if st.Kind == client.CentralMoved {
			out = append(out, st.LostCentral+"->"+st.Central)
		}
	}
	return out
}

// TestCentralFailover runs the central server's failover on one machine
// without etcd: central at address A, two chat servers and clients given
// --central A,B; A goes away, and a central server on address B opens the
// same data directory. The chat servers and the clients move to B by
// themselves: the logged-in users keep chatting across the two chat
// servers, the chat servers renew their leases at B (where a new user is
// then placed), a new user signs up, logs in and joins the room, and the
// clients' status says "central A lost; using B".
func TestCentralFailover(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "cluster.secret")
	if _, err := ensureSecretFile(secretFile); err != nil {
		t.Fatal(err)
	}
	logs := &rmitest.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- the chat servers' and clients' logs (last lines) ----\n%s", lastLines(logs.String(), 120))
		}
	})
	log := rmitest.QuietLogger()
	secret, err := readSecretFile(secretFile, log)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.New()
	ca, _, err := pki.LoadOrCreateCA(dir, clk)
	if err != nil {
		t.Fatal(err)
	}
	startAt := func(listen string) *centralProc {
		t.Helper()
		cp, err := startCentral(context.Background(), centralOptions{
			dir: filepath.Join(dir, "central"), listen: listen, secret: secret, ca: ca, clock: clk, log: log,
		})
		if err != nil {
			t.Fatalf("start central on %s: %v", listen, err)
		}
		return cp
	}
	cpA := startAt("127.0.0.1:0")
	addrA := cpA.addr
	addrB := secondLoopback(t, addrA)
	centrals := []string{addrA, addrB}
	var cpB *centralProc
	t.Cleanup(func() {
		if cpB != nil {
			cpB.Close()
		}
	})

	for _, name := range []string{"server-1", "server-2"} {
		sp, err := startChatServer(serverOptions{
			name: name, dir: filepath.Join(dir, name), listen: "127.0.0.1:0", central: centrals,
			secret: secret, clockMode: server.ClockHLC, settled: true, clock: clk,
			log: slogTo(logs, name),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), rmitest.Bound)
		err = sp.register(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	// The clients trust the cluster CA on first use, pinned for both
	// addresses of the list.
	known := filepath.Join(dir, "known_centrals")
	trust, err := pki.NewClientTrust(pki.TrustOptions{Centrals: centrals, KnownCentrals: known})
	if err != nil {
		t.Fatal(err)
	}
	config := func(user string, st *statusLog) client.Config {
		cfg := client.Config{
			Central: strings.Join(centrals, ","), User: user, Password: "password of " + user, Clock: clk,
			Logger:       slogTo(logs, user),
			Dial:         client.TLSDialer(rmi.DialConfig{Clock: clk, Logger: log}, trust.ClientConfig),
			PingInterval: 400 * time.Millisecond,
			// Sign-up and login hash a password at central's real bcrypt
			// cost, slow under the race detector on a busy machine.
			CallTimeout: rmitest.Bound,
		}
		if st != nil {
			cfg.OnStatus = st.add
		}
		return cfg
	}
	// Each call of the client is bounded by its Config.CallTimeout.
	ctx := context.Background()
	login := func(user string, st *statusLog) *client.Client {
		t.Helper()
		if _, err := client.SignUp(ctx, config(user, nil)); err != nil {
			t.Fatalf("sign up %s: %v", user, err)
		}
		c, err := client.Login(ctx, config(user, st))
		if err != nil {
			t.Fatalf("log in %s: %v", user, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var annStatus, bobStatus statusLog
	ann := login("ann", &annStatus)
	bob := login("bob", &bobStatus)
	if ann.Server() == bob.Server() {
		t.Fatalf("ann and bob both on %s; the test wants them on two chat servers", ann.Server())
	}
	if _, err := ann.CreateRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	sees := func(c *client.Client, text string) func() bool {
		return func() bool {
			return slices.ContainsFunc(c.View("lobby"), func(m chatapi.Message) bool { return m.Text == text })
		}
	}
	say := func(c *client.Client, text string, readers ...*client.Client) {
		t.Helper()
		if _, err := c.Say(ctx, "lobby", text); err != nil {
			t.Fatalf("%s says %q: %v", c.User(), text, err)
		}
		for _, r := range readers {
			rmitest.WaitFor(t, r.User()+" to see "+text, sees(r, text))
		}
	}
	say(ann, "before", bob)
	b, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s %s\n%s %s\n", addrA, ca.Fingerprint(), addrB, ca.Fingerprint()); string(b) != want {
		t.Fatalf("known centrals %q, want %q", b, want)
	}

	// Central A goes away. The clients find no central server (they try
	// again at each ping) until B opens A's data.
	if err := cpA.Close(); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "the clients to find no central server", func() bool {
		lines := logs.Lines()
		return slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, "who=ann") && strings.Contains(l, "no central server answers")
		}) && slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, "who=bob") && strings.Contains(l, "no central server answers")
		})
	})
	cpB = startAt(addrB)

	// The chat servers move to B and register there again with their
	// sessions: B knows where ann and bob are.
	rmitest.WaitForWhy(t, "the chat servers to register at B", func() (bool, string) {
		info, err := cpB.c.Room(ctx, centralapi.RoomQuery{Room: "lobby"})
		if err != nil {
			return false, err.Error()
		}
		return len(info.Servers) == 2, fmt.Sprintf("lobby at B: %+v", info)
	})
	for _, name := range []string{"server-1", "server-2"} {
		want := fmt.Sprintf("who=%s server=%s lost=%s using=%s", name, name, addrA, addrB)
		if !strings.Contains(logs.String(), want) {
			t.Errorf("%s did not log its move (%q):\n%s", name, want, logs.String())
		}
	}
	// The clients notice their central connection closed and move too.
	for _, st := range []*statusLog{&annStatus, &bobStatus} {
		rmitest.WaitForWhy(t, "the clients' status to say central moved", func() (bool, string) {
			m := st.moves()
			return slices.Equal(m, []string{addrA + "->" + addrB}), fmt.Sprintf("moves %q", m)
		})
	}

	// A client whose ping of its chat server took longer than the ping
	// interval (400 ms; -race on a loaded machine) has left that server
	// too, and could only find another once central answered again: the
	// clients are back on a chat server before they post.
	for _, c := range []*client.Client{ann, bob} {
		rmitest.WaitFor(t, c.User()+" to be on a chat server", func() bool { return c.Server() != "" })
	}

	// The logged-in users keep chatting across the chat servers; a new
	// user signs up, logs in (placed on a chat server B knows) and joins.
	say(bob, "after", ann)
	var cyStatus statusLog
	cy := login("cy", &cyStatus)
	if _, err := cy.JoinRoom(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "cy to get the history", sees(cy, "after"))
	say(ann, "welcome cy", bob, cy)
	say(cy, "thanks", ann, bob)
	if m := cyStatus.moves(); m != nil {
		t.Errorf("cy logged in at B and moved: %q", m)
	}
}

// slogTo is a logger writing debug and above to w, tagged with who.
func slogTo(w *rmitest.SyncBuffer, who string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("who", who)
}
