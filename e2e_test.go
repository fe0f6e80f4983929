package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/server/chatapi"
)

// Bounds on the end-to-end test's waits: every wait polls or blocks with
// one of these, none sleeps blindly.
const (
	e2eWait = 20 * time.Second // a condition that should hold soon
)

// TestEndToEnd builds the distchat binary and runs one central server and
// three chat servers as separate processes on loopback, with six users.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes; skipped with -short")
	}
	h := newCluster(t)

	// Six users sign up with the binary, then log in (in-process library,
	// real TCP). Central places each on the least-loaded live server.
	names := []string{"ann", "bob", "cyd", "dan", "eve", "fay"}
	h.signupAll(names)
	users := map[string]*e2eUser{}
	for _, n := range names {
		users[n] = h.login(n)
	}
	perServer := map[string][]*e2eUser{}
	for _, n := range names {
		u := users[n]
		perServer[u.c.Server()] = append(perServer[u.c.Server()], u)
	}
	for _, s := range h.serverNames {
		if len(perServer[s]) != 2 {
			t.Fatalf("users not spread over the servers by load: %v", serversOf(users))
		}
	}
	s1, s2, s3 := h.serverNames[0], h.serverNames[1], h.serverNames[2]
	// The room "lobby" gets members on every server, two on s1; two users
	// stay out of it.
	lobby := []*e2eUser{perServer[s1][0], perServer[s2][0], perServer[s3][0], perServer[s1][1]}
	outsider, late := perServer[s2][1], perServer[s3][1]
	t.Logf("servers: %v; lobby %v; outsiders %s, %s", serversOf(users), userNames(lobby), outsider.name, late.name)
	ctx := context.Background()

	t.Run("a/room and direct messages reach exactly their members", func(t *testing.T) {
		if _, err := lobby[0].c.CreateRoom(ctx, "lobby"); err != nil {
			t.Fatal(err)
		}
		for _, u := range lobby[1:] {
			if _, err := u.c.JoinRoom(ctx, "lobby"); err != nil {
				t.Fatal(err)
			}
		}
		var texts []string
		for _, u := range lobby {
			text := "hello from " + u.name
			if _, err := u.c.Say(ctx, "lobby", text); err != nil {
				t.Fatal(err)
			}
			texts = append(texts, text)
		}
		for _, u := range lobby {
			u.waitTexts(t, "lobby", texts...)
		}
		dm, err := lobby[0].c.Msg(ctx, outsider.name, "psst "+outsider.name)
		if err != nil {
			t.Fatal(err)
		}
		if want := centralapi.DirectRoomName(lobby[0].name, outsider.name); dm.Room != want {
			t.Fatalf("direct message went to room %q, want %q", dm.Room, want)
		}
		if _, err := outsider.c.Msg(ctx, lobby[0].name, "hi "+lobby[0].name); err != nil {
			t.Fatal(err)
		}
		for _, u := range []*e2eUser{lobby[0], outsider} {
			u.waitTexts(t, dm.Room, "psst "+outsider.name, "hi "+lobby[0].name)
		}
		// A marker posted after everything else, seen by every lobby
		// member: by then any stray delivery would have arrived too, since
		// each server delivers a room's messages to a client in order.
		postAndSee(t, lobby[1], "lobby", "marker a", lobby)
		for _, u := range users {
			for room, got := range u.receivedRooms() {
				member := room == "lobby" && slices.Contains(lobby, u) ||
					room == dm.Room && (u == lobby[0] || u == outsider)
				if !member {
					t.Errorf("%s (not a member) received %d messages of %s", u.name, got, room)
				}
			}
		}
		for _, u := range []*e2eUser{outsider, late} {
			if v := u.c.View("lobby"); v != nil {
				t.Errorf("non-member %s has a view of lobby: %v", u.name, textsOf(v))
			}
		}
	})

	t.Run("b/every member's log is identical", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, len(lobby))
		for _, u := range lobby {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					if _, err := u.c.Say(ctx, "lobby", fmt.Sprintf("burst %s %d", u.name, i)); err != nil {
						errs <- fmt.Errorf("%s: %w", u.name, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := 4 + 1 + 40
		waitIdentical(t, "lobby", lobby, want)
	})

	t.Run("c/late joiner and returning user get the full history", func(t *testing.T) {
		if _, err := late.c.JoinRoom(ctx, "lobby"); err != nil {
			t.Fatal(err)
		}
		hist, err := late.c.History(ctx, "lobby")
		if err != nil {
			t.Fatal(err)
		}
		if ref := lobby[0].c.View("lobby"); !sameLog(hist, ref) {
			t.Fatalf("late joiner's history differs:\n got %v\nwant %v", textsOf(hist), textsOf(ref))
		}
		lobby = append(lobby, late)

		// A member logs out, misses a message, logs in again (possibly on
		// another server) and catches up.
		away := lobby[2]
		if err := away.c.Close(); err != nil {
			t.Fatal(err)
		}
		postAndSee(t, lobby[1], "lobby", "while "+away.name+" was away", []*e2eUser{lobby[0], lobby[1]})
		back := h.login(away.name)
		users[away.name], lobby[2] = back, back
		hist, err = back.c.History(ctx, "lobby")
		if err != nil {
			t.Fatal(err)
		}
		waitIdentical(t, "lobby", lobby, len(hist))
		if !slices.Contains(textsOf(hist), "while "+away.name+" was away") {
			t.Fatalf("returning user's history lacks the message posted while away: %v", textsOf(hist))
		}
	})

	t.Run("d/SIGKILL of a chat server mid-stream loses no acknowledged post", func(t *testing.T) {
		victim := s1
		var onVictim []*e2eUser
		for _, u := range lobby {
			if u.c.Server() == victim {
				onVictim = append(onVictim, u)
			}
		}
		if len(onVictim) == 0 {
			t.Fatalf("no lobby member on %s: %v", victim, serversOf(users))
		}
		before := len(lobby[0].c.View("lobby"))

		stop := make(chan struct{})
		posters := make([]*poster, len(lobby))
		var wg sync.WaitGroup
		for i, u := range lobby {
			p := &poster{u: u}
			posters[i] = p
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.run(ctx, "lobby", stop)
			}()
		}
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			wg.Wait()
		}()
		rmitest.WaitForWhy(t, "posts before the kill", func() (bool, string) {
			n := 0
			for _, p := range posters {
				n += p.ackedCount()
			}
			return n >= 25, fmt.Sprintf("%d acknowledged", n)
		})
		h.kill(victim)
		mark := make([]int, len(posters))
		for i, p := range posters {
			mark[i] = p.ackedCount()
		}
		// Everyone, the killed server's users included, keeps posting:
		// they failed over.
		rmitest.WaitForWhy(t, "posts after the kill from every member", func() (bool, string) {
			var behind []string
			for i, p := range posters {
				if p.ackedCount() < mark[i]+5 {
					behind = append(behind, fmt.Sprintf("%s(%d new, last error %v)", p.u.name, p.ackedCount()-mark[i], p.lastErr()))
				}
			}
			return len(behind) == 0, strings.Join(behind, ", ")
		})
		for _, u := range onVictim {
			if s := u.c.Server(); s == victim || s == "" {
				t.Errorf("%s did not fail over from %s (now on %q)", u.name, victim, s)
			}
		}
		h.restart(victim)
		for i, p := range posters {
			mark[i] = p.ackedCount()
		}
		rmitest.WaitForWhy(t, "posts after the restart", func() (bool, string) {
			for i, p := range posters {
				if p.ackedCount() < mark[i]+3 {
					return false, p.u.name + " is behind"
				}
			}
			return true, ""
		})
		close(stop)
		wg.Wait()

		var acked []string
		for _, p := range posters {
			acked = append(acked, p.ackedTexts()...)
		}
		t.Logf("%d posts acknowledged around the crash; %d failed (not acknowledged)", len(acked), failedCount(posters))
		// Every acknowledged post, exactly once, in every member's log, and
		// all logs identical.
		rmitest.WaitForWhy(t, "every acknowledged post in every log", func() (bool, string) {
			for _, u := range lobby {
				counts := map[string]int{}
				for _, m := range u.c.View("lobby") {
					counts[m.Text]++
				}
				for _, text := range acked {
					if counts[text] != 1 {
						return false, fmt.Sprintf("%s has %q %d times", u.name, text, counts[text])
					}
				}
			}
			return true, ""
		})
		n := len(lobby[0].c.View("lobby"))
		if n < before+len(acked) {
			t.Fatalf("log has %d messages, want at least %d", n, before+len(acked))
		}
		waitIdentical(t, "lobby", lobby, n)
		for _, u := range lobby {
			seen := map[string]bool{}
			for _, m := range u.c.View("lobby") {
				if seen[m.Text] {
					t.Errorf("%s shows %q twice", u.name, m.Text)
				}
				seen[m.Text] = true
			}
		}
	})

	t.Run("e/clear errors, and the system still works after each", func(t *testing.T) {
		_, err := outsider.c.Say(ctx, "lobby", "let me in")
		if !errors.Is(err, centralapi.ErrNotMember) {
			t.Errorf("post to a room one is not in: %v, want ErrNotMember", err)
		}
		postAndSee(t, lobby[0], "lobby", "after not-member", lobby)

		_, err = client.Login(ctx, h.clientConfig(lobby[1].name, "not the password", nil))
		if !errors.Is(err, centralapi.ErrBadCredentials) {
			t.Errorf("wrong password: %v, want ErrBadCredentials", err)
		}
		postAndSee(t, lobby[1], "lobby", "after bad password", lobby)

		_, err = lobby[2].c.JoinRoom(ctx, "no-such-room")
		if !errors.Is(err, centralapi.ErrNoSuchRoom) {
			t.Errorf("join unknown room: %v, want ErrNoSuchRoom", err)
		}
		_, err = lobby[2].c.Say(ctx, "no-such-room", "anyone?")
		if !errors.Is(err, centralapi.ErrNoSuchRoom) {
			t.Errorf("post to unknown room: %v, want ErrNoSuchRoom", err)
		}
		postAndSee(t, lobby[2], "lobby", "after unknown room", lobby)

		big := strings.Repeat("x", 1<<20)
		_, err = lobby[3].c.Say(ctx, "lobby", big)
		if !errors.Is(err, chatapi.ErrTooLarge) {
			t.Errorf("1 MiB message through the client library: %v, want ErrTooLarge", err)
		}
		// The same over the wire, with a bare RMI session, so the chat
		// server itself must refuse it.
		err = h.rawPost(lobby[3].name, "lobby", big)
		if !errors.Is(err, chatapi.ErrTooLarge) {
			t.Errorf("1 MiB message sent to the chat server: %v, want ErrTooLarge", err)
		}
		postAndSee(t, lobby[3], "lobby", "after too large", lobby)
	})

	t.Run("f/garbage on every listening port", func(t *testing.T) {
		addrs := []string{h.centralAddr}
		for _, s := range h.serverNames {
			addrs = append(addrs, h.procs[s].addr)
		}
		var idle []net.Conn
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		for _, addr := range addrs {
			sendGarbage(t, addr, h.trust.ClientConfig(addr))
			// A connection that says nothing and stays open must not stop
			// the server from serving others.
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			idle = append(idle, c)
		}
		for name, p := range h.procs {
			if p.exited() {
				t.Fatalf("%s exited after garbage: %v", name, p.waitErr)
			}
		}
		postAndSee(t, lobby[4], "lobby", "after garbage", lobby)
		// New connections work too. The restarted server holds the fewest
		// sessions, so central places a fresh login there, and it serves.
		u := h.login(lobby[0].name)
		defer u.c.Close()
		if got := u.c.Server(); got != s1 {
			t.Errorf("fresh login placed on %s, want the restarted (least-loaded) %s; servers: %v", got, s1, serversOf(users))
		}
		postAndSee(t, u, "lobby", "from the restarted server", append(slices.Clone(lobby), u))
	})

	t.Run("tls/every port is TLS 1.3; plaintext, strangers and a changed CA are refused", func(t *testing.T) {
		addrs := map[string]string{"central": h.centralAddr}
		for _, s := range h.serverNames {
			addrs[s] = h.procs[s].addr
		}
		secret, err := os.ReadFile(h.secret)
		if err != nil {
			t.Fatal(err)
		}
		otherDir := t.TempDir()
		if _, _, err := pki.LoadOrCreateCA(otherDir, clock.New()); err != nil {
			t.Fatal(err)
		}
		otherCA := filepath.Join(otherDir, pki.CACertFile)
		stranger, err := pki.NewClientTrust(pki.TrustOptions{CAFile: otherCA})
		if err != nil {
			t.Fatal(err)
		}
		openssl, _ := exec.LookPath("openssl")
		if openssl == "" && os.Getenv("CI") != "" {
			t.Fatal("openssl is not on PATH; .ci/run installs it")
		}
		tctx, cancel := context.WithTimeout(ctx, e2eWait)
		defer cancel()
		for name, addr := range addrs {
			tc, err := tls.Dial("tcp", addr, h.trust.ClientConfig(addr))
			if err != nil {
				t.Fatalf("%s: TLS: %v", name, err)
			}
			if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
				t.Errorf("%s negotiated %s, want TLS 1.3", name, tls.VersionName(v))
			}
			tc.Close()
			if openssl != "" {
				cmd := exec.CommandContext(tctx, openssl, "s_client", "-connect", addr, "-brief", "-CAfile", h.ca)
				cmd.Stdin = strings.NewReader("")
				if out, _ := cmd.CombinedOutput(); !bytes.Contains(out, []byte("TLSv1.3")) {
					t.Errorf("%s: openssl s_client shows no TLS 1.3:\n%s", name, out)
				}
			}
			// Plaintext (the protocol's own hello) is refused.
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(append([]byte(rmiMagic+"\x00"), make([]byte, 32)...))
			c.SetReadDeadline(time.Now().Add(e2eWait))
			got, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || bytes.Contains(got, []byte("distchat-rmi")) {
				t.Errorf("%s: plaintext hello answered %q (%v), want the connection refused", name, got, err)
			}
			c.Close()
			// A client that trusts another CA refuses the server.
			if _, err := rmi.Dial(tctx, addr, rmi.DialConfig{TLS: stranger.ClientConfig(addr)}); !errors.Is(err, rmi.ErrHandshake) {
				t.Errorf("%s: a client trusting another CA: %v, want ErrHandshake", name, err)
			}
		}
		// Chat servers give cluster rights only with a certificate of the
		// cluster CA (mutual TLS), not for the secret alone.
		for _, s := range h.serverNames {
			addr := h.procs[s].addr
			_, err := rmi.Dial(tctx, addr, rmi.DialConfig{ClusterSecret: bytes.TrimSpace(secret), TLS: h.trust.ClientConfig(addr)})
			if !errors.Is(err, rmi.ErrHandshake) || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("%s: the secret without a certificate: %v", s, err)
			}
			for _, f := range []string{pki.MemberCertFile, pki.CACertFile} {
				if !fileExists(filepath.Join(h.dir, s, f)) {
					t.Errorf("%s has no %s", s, f)
				}
			}
		}
		// The binary refuses a central server not certified by --ca, and
		// one whose CA is not the one pinned for its address.
		run := func(args ...string) (string, error) {
			cmd := exec.CommandContext(tctx, h.bin, args...)
			cmd.Env = h.env("DISTCHAT_PASSWORD=" + password("mallory"))
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := run("signup", "--central", h.centralAddr, "--user", "mallory", "--ca", otherCA); err == nil || !strings.Contains(out, "certificate") {
			t.Errorf("signup with another cluster's CA: %v\n%s", err, out)
		}
		known := filepath.Join(t.TempDir(), "known_centrals")
		if err := os.WriteFile(known, []byte(h.centralAddr+" SHA256:"+strings.Repeat("A", 43)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := run("signup", "--central", h.centralAddr, "--user", "mallory", "--known-centrals", known); err == nil || !strings.Contains(out, "cluster CA has changed") {
			t.Errorf("signup with another CA pinned: %v\n%s", err, out)
		}
		postAndSee(t, lobby[0], "lobby", "after the TLS probes", lobby)
	})

	t.Run("g/scriptable terminal client", func(t *testing.T) {
		script := strings.Join([]string{
			"/join lobby",
			"/say lobby hello from a script",
			"/say no-such-room nobody here",
			"/history lobby",
			"/bogus",
			"/quit",
		}, "\n") + "\n"
		tctx, cancel := context.WithTimeout(ctx, e2eWait)
		defer cancel()
		cmd := exec.CommandContext(tctx, h.bin, "client", "--central", h.centralAddr, "--user", outsider.name, "--json", "--ca", h.ca)
		cmd.Env = h.env("DISTCHAT_PASSWORD=" + password(outsider.name))
		cmd.Stdin = strings.NewReader(script)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("client: %v\nstderr:\n%s", err, &stderr)
		}
		var hist []map[string]any
		sawOwn := false
		for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Fatalf("stdout line is not JSON: %q", line)
			}
			if obj["type"] != "message" {
				continue
			}
			for _, k := range []string{"room", "id", "from", "text", "time", "server"} {
				if s, _ := obj[k].(string); s == "" {
					t.Errorf("message line lacks %q: %s", k, line)
				}
			}
			if seq, _ := obj["seq"].(float64); seq < 1 {
				t.Errorf("message line lacks seq: %s", line)
			}
			if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(obj["time"])); err != nil {
				t.Errorf("time is not RFC 3339: %s", line)
			}
			if obj["text"] == "hello from a script" && obj["from"] == outsider.name {
				sawOwn = true
			}
			if obj["history"] == true {
				hist = append(hist, obj)
			}
		}
		if !sawOwn {
			t.Errorf("the script's own message never printed:\n%s", &stdout)
		}
		// /history printed the room's whole log, in the order every member
		// has it.
		waitTexts(t, lobby[0], "lobby", "hello from a script")
		ref := lobby[0].c.View("lobby")
		if len(hist) != len(ref) {
			t.Fatalf("/history printed %d messages, members have %d", len(hist), len(ref))
		}
		for i, m := range ref {
			if hist[i]["id"] != m.ID || hist[i]["text"] != m.Text || hist[i]["server"] != m.Stamp.Server || hist[i]["seq"] != float64(m.Stamp.Seq) {
				t.Fatalf("/history line %d = %v, member has %s %q at %v", i, hist[i], m.ID, m.Text, m.Stamp)
			}
		}
		var errLines []string
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.HasPrefix(line, "error: ") {
				errLines = append(errLines, line)
			}
		}
		if len(errLines) != 2 || !strings.Contains(errLines[0], "no such room") || !strings.Contains(errLines[1], "/bogus") {
			t.Errorf("want two error lines on stderr (no such room, unknown command), got:\n%s", &stderr)
		}
	})

	t.Run("up/the one-process cluster works and stops cleanly", func(t *testing.T) {
		data := filepath.Join(h.dir, "up-data")
		p := h.start("up", "up", "--data", data, "--servers", "2", "--listen", "127.0.0.1:0")
		addr := p.waitLine(t, regexp.MustCompile(`^\s+central server\s+(\S+)`))[1]
		var servers []string
		for range 2 {
			servers = append(servers, p.waitLine(t, regexp.MustCompile(`^\s+chat server\s+(\S+)\s+\S+\s+\(web app http://127\.0\.0\.1:\d+\)$`))[1])
		}
		if strings.Join(servers, " ") != "server-1 server-2" {
			t.Fatalf("up printed chat servers %v", servers)
		}
		for _, f := range []string{"cluster.secret", pki.CAKeyFile, filepath.Join("server-1", pki.MemberKeyFile)} {
			st, err := os.Stat(filepath.Join(data, f))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v, %v", f, st, err)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, e2eWait)
		defer cancel()
		cfg := h.clientConfig("zed", password("zed"), nil)
		cfg.Central = addr
		// A client on the same machine takes the CA from the data dir.
		upTrust, err := pki.NewClientTrust(pki.TrustOptions{CAFile: filepath.Join(data, pki.CACertFile)})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Dial = client.TLSDialer(rmi.DialConfig{CallTimeout: 10 * time.Second}, upTrust.ClientConfig)
		// The cluster's own CA does not verify up's servers.
		wrong := h.clientConfig("zed", password("zed"), nil)
		wrong.Central = addr
		if _, err := client.SignUp(ctx, wrong); err == nil {
			t.Fatal("up's central server verified against another cluster's CA")
		}
		if _, err := client.SignUp(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		c, err := client.Login(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateRoom(ctx, "solo"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Say(ctx, "solo", "alone"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		h.terminate("up")
		for _, dir := range []string{"central", "server-1", "server-2"} {
			if !fileExists(filepath.Join(data, dir)) {
				t.Errorf("up left no %s data dir", dir)
			}
		}
	})

	t.Run("shutdown/SIGTERM stops every process cleanly", func(t *testing.T) {
		for _, u := range users {
			u.c.Close()
		}
		for _, name := range append(slices.Clone(h.serverNames), "central") {
			h.terminate(name)
		}
	})
}

// cluster is the processes of one end-to-end run.
type cluster struct {
	t           *testing.T
	bin         string
	dir         string
	secret      string
	ca          string // the cluster CA, ca.crt beside the secret
	caPrint     string // its fingerprint, as central printed it
	trust       *pki.ClientTrust
	centralAddr string
	serverNames []string
	procs       map[string]*proc
	logs        *rmitest.SyncBuffer // the in-process clients' logs
	opts        clusterOptions
	centralWeb  string // central's web URL, with opts.web
}

// clusterOptions shapes a test cluster. newCluster's is TestEndToEnd's:
// three chat servers on loopback, without web ports.
type clusterOptions struct {
	servers int    // how many chat servers to start
	host    string // the IP every process listens on (RMI and web ports)
	web     bool   // give central and each chat server a web port (--http HOST:0)
}

func newCluster(t *testing.T) *cluster {
	return newClusterWith(t, clusterOptions{servers: 3, host: "127.0.0.1"})
}

// newClusterWith builds the binary and starts central and opts.servers
// chat servers, named chat-1, chat-2, ...
func newClusterWith(t *testing.T, opts clusterOptions) *cluster {
	h := &cluster{t: t, dir: t.TempDir(), procs: map[string]*proc{}, logs: &rmitest.SyncBuffer{}, opts: opts}
	h.bin = buildBinary(t)
	h.secret = filepath.Join(h.dir, "cluster.secret")
	if err := os.WriteFile(h.secret, []byte(randomHex(t, 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range h.procs {
			p.stop()
		}
		if t.Failed() {
			for name, p := range h.procs {
				t.Logf("---- %s stderr (last lines) ----\n%s", name, tail(p.logFile, 40))
			}
			t.Logf("---- clients' log ----\n%s", lastLines(h.logs.String(), 40))
		}
	})
	args := []string{"central", "--listen", net.JoinHostPort(opts.host, "0"), "--data", filepath.Join(h.dir, "central"),
		"--cluster-secret-file", h.secret, "--log-level", "debug"}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^cluster CA fingerprint (SHA256:\S+):`),
		regexp.MustCompile(`^central server listening on (\S+) `),
	}
	if opts.web {
		args = append(args, "--http", net.JoinHostPort(opts.host, "0"))
		want = append(want, regexp.MustCompile(`^central web at (\S+)$`))
	}
	c := h.start("central", args...)
	got := c.waitLines(t, want...)
	h.caPrint, h.centralAddr = got[0][1], got[1][1]
	if opts.web {
		h.centralWeb = got[2][1]
	}
	h.ca = filepath.Join(h.dir, pki.CACertFile)
	var err error
	if h.trust, err = pki.NewClientTrust(pki.TrustOptions{CAFile: h.ca}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= opts.servers; i++ {
		name := fmt.Sprintf("chat-%d", i)
		h.serverNames = append(h.serverNames, name)
		h.startServer(name, net.JoinHostPort(opts.host, "0"))
	}
	return h
}

// startServer starts chat server name listening on listen and waits until
// it is registered with central. With a web port, a restarted server
// gets the web port it had before.
func (h *cluster) startServer(name, listen string) {
	args := []string{"server", "--central", h.centralAddr, "--name", name, "--listen", listen,
		"--data", filepath.Join(h.dir, name), "--cluster-secret-file", h.secret, "--log-level", "debug"}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^chat server \S+ listening on \S+, advertised as (\S+)$`),
		regexp.MustCompile(`^chat server \S+ registered`),
	}
	if h.opts.web {
		webListen := net.JoinHostPort(h.opts.host, "0")
		if old := h.procs[name]; old != nil && old.webAddr != "" {
			webListen = old.webAddr
		}
		args = append(args, "--http", webListen)
		want = append(want, regexp.MustCompile(`^chat server `+regexp.QuoteMeta(name)+` web at (\S+)$`))
	}
	p := h.start(name, args...)
	got := p.waitLines(h.t, want...)
	p.addr = got[0][1]
	if h.opts.web {
		p.web = got[2][1]
		u, err := url.Parse(p.web)
		if err != nil {
			h.t.Fatalf("%s printed a bad web URL %q: %v", name, p.web, err)
		}
		p.webAddr = u.Host
	}
}

// start runs the binary as process name.
func (h *cluster) start(name string, args ...string) *proc {
	h.t.Helper()
	logFile := filepath.Join(h.dir, fmt.Sprintf("%s.%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logFile)
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env()
	cmd.Stderr = f
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	f.Close()
	p := &proc{name: name, args: args, cmd: cmd, logFile: logFile, lines: make(chan string, 1024), done: make(chan struct{})}
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
	h.procs[name] = p
	return p
}

// kill SIGKILLs process name and waits for it to die.
func (h *cluster) kill(name string) {
	h.t.Helper()
	p := h.procs[name]
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		h.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(e2eWait):
		h.t.Fatalf("%s did not die after SIGKILL", name)
	}
}

// restart starts chat server name again with the same data dir and port.
func (h *cluster) restart(name string) {
	h.t.Helper()
	h.startServer(name, h.procs[name].addr)
}

// terminate sends SIGTERM to process name and checks it exits with status 0.
func (h *cluster) terminate(name string) {
	h.t.Helper()
	p := h.procs[name]
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		h.t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.waitErr != nil {
			h.t.Errorf("%s after SIGTERM: %v", name, p.waitErr)
		}
	case <-time.After(e2eWait):
		h.t.Errorf("%s did not exit after SIGTERM", name)
	}
}

func password(user string) string { return "pw-of-" + user + "-long-enough" }

// env is the environment of the processes the test runs, plus extra: the
// known-centrals file of the clients that trust on first use lives in the
// test's directory.
func (h *cluster) env(extra ...string) []string {
	return append(append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(h.dir, "config")), extra...)
}

// knownCentrals is the file where the binary's clients pin CAs.
func (h *cluster) knownCentrals() string {
	return filepath.Join(h.dir, "config", "distchat", "known_centrals")
}

// signupAll signs users up with the binary, concurrently.
func (h *cluster) signupAll(names []string) {
	h.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
			defer cancel()
			cmd := exec.CommandContext(ctx, h.bin, "signup", "--central", h.centralAddr, "--user", n)
			cmd.Env = h.env("DISTCHAT_PASSWORD=" + password(n))
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("signup %s: %v\n%s", n, err, out)
				return
			}
			if !regexp.MustCompile(`(?m)^Recovery code: [A-Z2-7]{5}(-[A-Z2-7]{5}){3}$`).Match(out) {
				errs[i] = fmt.Errorf("signup %s printed no recovery code:\n%s", n, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			h.t.Fatal(err)
		}
	}
	// They trusted the cluster CA on first use and pinned it.
	b, err := os.ReadFile(h.knownCentrals())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line != h.centralAddr+" "+h.caPrint {
			h.t.Fatalf("known centrals line %q, want %q", line, h.centralAddr+" "+h.caPrint)
		}
	}
}

// clientConfig is an in-process client's configuration.
func (h *cluster) clientConfig(user, pw string, u *e2eUser) client.Config {
	clk := clock.New()
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test_user", user)
	cfg := client.Config{
		Central: h.centralAddr, User: user, Password: pw, Clock: clk, Logger: log,
		Dial:         client.TLSDialer(rmi.DialConfig{Clock: clk, Logger: log, CallTimeout: 10 * time.Second}, h.trust.ClientConfig),
		PingInterval: 250 * time.Millisecond,
	}
	if u != nil {
		cfg.OnMessage = u.record
	}
	return cfg
}

// login logs user in with the client library.
func (h *cluster) login(user string) *e2eUser {
	h.t.Helper()
	u := &e2eUser{name: user, got: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	c, err := client.Login(ctx, h.clientConfig(user, password(user), u))
	if err != nil {
		h.t.Fatalf("login %s: %v", user, err)
	}
	u.c = c
	h.t.Cleanup(func() { c.Close() })
	return u
}

// rawPost logs user in and posts text to room through bare RMI calls (no
// client library), returning the chat server's answer.
func (h *cluster) rawPost(user, room, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	cc, err := rmi.Dial(ctx, h.centralAddr, rmi.DialConfig{TLS: h.trust.ClientConfig(h.centralAddr)})
	if err != nil {
		return err
	}
	defer cc.Close()
	lr, err := centralapi.Stub{Inv: cc}.Login(ctx, centralapi.LoginArgs{User: user, Password: password(user)})
	if err != nil {
		return err
	}
	defer centralapi.Stub{Inv: cc}.Logout(ctx, centralapi.LogoutArgs{Token: lr.Token})
	cb := rmi.NewTable(nil)
	if err := rmi.Export[chatapi.Callback](cb, chatapi.CallbackObjectName, discardCallback{}); err != nil {
		return err
	}
	sc, err := rmi.Dial(ctx, lr.Server.Addr, rmi.DialConfig{Callbacks: cb, TLS: h.trust.ClientConfig(lr.Server.Addr)})
	if err != nil {
		return err
	}
	defer sc.Close()
	st := chatapi.Stub{Inv: sc}
	if _, err := st.Attach(ctx, chatapi.AttachArgs{Token: lr.Token}); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	_, err = st.Post(ctx, chatapi.PostArgs{Token: lr.Token, Room: room, ID: randomHex(h.t, 8), Text: text})
	return err
}

// discardCallback is a client callback object that drops what it gets.
type discardCallback struct{}

// Deliver implements server.Callback.
func (discardCallback) Deliver(context.Context, chatapi.DeliverArgs) error { return nil }

// Voice implements server.Callback.
func (discardCallback) Voice(context.Context, chatapi.VoiceDeliverArgs) error { return nil }

// proc is one distchat process.
type proc struct {
	name    string
	args    []string
	cmd     *exec.Cmd
	addr    string // a chat server's advertised address
	web     string // a chat server's web URL, as it printed it (with a web port)
	webAddr string // the host:port of web
	logFile string
	lines   chan string
	done    chan struct{}
	waitErr error // set before done is closed
}

// waitLine waits (bounded) for a stdout line matching re and returns the
// submatches.
func (p *proc) waitLine(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	return p.waitLines(t, re)[0]
}

// waitLines waits (bounded) until stdout has shown a line matching each of
// res, in any order, and returns each one's submatches (in the order of
// res). A line counts for the first pattern still waiting that it matches.
func (p *proc) waitLines(t *testing.T, res ...*regexp.Regexp) [][]string {
	t.Helper()
	got := make([][]string, len(res))
	missing := func() []string {
		var out []string
		for i, re := range res {
			if got[i] == nil {
				out = append(out, re.String())
			}
		}
		return out
	}
	timer := time.NewTimer(e2eWait)
	defer timer.Stop()
	for len(missing()) > 0 {
		select {
		case line := <-p.lines:
			for i, re := range res {
				if got[i] != nil {
					continue
				}
				if m := re.FindStringSubmatch(line); m != nil {
					got[i] = m
					break
				}
			}
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing lines matching %q; stderr:\n%s", p.name, p.waitErr, missing(), tail(p.logFile, 30))
		case <-timer.C:
			t.Fatalf("%s printed no lines matching %q in %v; stderr:\n%s", p.name, missing(), e2eWait, tail(p.logFile, 30))
		}
	}
	return got
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop kills the process if it still runs (test cleanup).
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(e2eWait):
	}
}

// e2eUser is a logged-in user and what its client delivered.
type e2eUser struct {
	name string
	c    *client.Client
	mu   sync.Mutex
	got  map[string]int // room -> messages delivered (OnMessage)
}

func (u *e2eUser) record(m chatapi.Message) {
	u.mu.Lock()
	u.got[m.Room]++
	u.mu.Unlock()
}

func (u *e2eUser) receivedRooms() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int{}
	for r, n := range u.got {
		out[r] = n
	}
	return out
}

// waitTexts waits until u's view of room holds every text.
func (u *e2eUser) waitTexts(t *testing.T, room string, texts ...string) {
	t.Helper()
	waitTexts(t, u, room, texts...)
}

func waitTexts(t *testing.T, u *e2eUser, room string, texts ...string) {
	t.Helper()
	rmitest.WaitForWhy(t, fmt.Sprintf("%s to see %d messages in %s", u.name, len(texts), room), func() (bool, string) {
		have := textsOf(u.c.View(room))
		for _, text := range texts {
			if !slices.Contains(have, text) {
				return false, fmt.Sprintf("missing %q; has %d messages", text, len(have))
			}
		}
		return true, ""
	})
}

// postAndSee posts text as u and waits until every member sees it.
func postAndSee(t *testing.T, u *e2eUser, room, text string, members []*e2eUser) chatapi.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	m, err := u.c.Say(ctx, room, text)
	if err != nil {
		t.Fatalf("%s says %q in %s: %v", u.name, text, room, err)
	}
	for _, v := range members {
		waitTexts(t, v, room, text)
	}
	return m
}

// waitIdentical waits until every member's view of room has n messages and
// all views are the same log.
func waitIdentical(t *testing.T, room string, members []*e2eUser, n int) {
	t.Helper()
	rmitest.WaitForWhy(t, fmt.Sprintf("identical logs of %s with %d messages", room, n), func() (bool, string) {
		ref := members[0].c.View(room)
		if len(ref) != n {
			return false, fmt.Sprintf("%s has %d", members[0].name, len(ref))
		}
		for _, u := range members[1:] {
			if v := u.c.View(room); !sameLog(v, ref) {
				return false, fmt.Sprintf("%s (%d messages) differs from %s", u.name, len(v), members[0].name)
			}
		}
		return true, ""
	})
}

// sameLog reports whether two logs hold the same messages in the same order.
func sameLog(a, b []chatapi.Message) bool {
	return slices.EqualFunc(a, b, func(x, y chatapi.Message) bool {
		return x.Stamp == y.Stamp && x.ID == y.ID && x.From == y.From && x.Text == y.Text
	})
}

func textsOf(ms []chatapi.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

func serversOf(users map[string]*e2eUser) map[string]string {
	out := map[string]string{}
	for n, u := range users {
		out[n] = u.c.Server()
	}
	return out
}

func userNames(us []*e2eUser) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.name)
	}
	return out
}

// posterPace spaces a poster's posts, so a crash lands mid-stream without
// making the room's log needlessly long.
const posterPace = 10 * time.Millisecond

// poster posts numbered messages to a room until stopped, recording which
// were acknowledged.
type poster struct {
	u      *e2eUser
	mu     sync.Mutex
	acked  []string
	failed int
	err    error
}

func (p *poster) run(ctx context.Context, room string, stop <-chan struct{}) {
	pace := time.NewTicker(posterPace)
	defer pace.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-pace.C:
		}
		text := fmt.Sprintf("crash-test %s %d", p.u.name, i)
		cctx, cancel := context.WithTimeout(ctx, e2eWait)
		_, err := p.u.c.Say(cctx, room, text)
		cancel()
		p.mu.Lock()
		if err == nil {
			p.acked = append(p.acked, text)
		} else {
			p.failed++
			p.err = err
		}
		p.mu.Unlock()
	}
}

func (p *poster) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

func (p *poster) ackedTexts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

func (p *poster) lastErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func failedCount(ps []*poster) int {
	n := 0
	for _, p := range ps {
		p.mu.Lock()
		n += p.failed
		p.mu.Unlock()
	}
	return n
}

// rmiMagic opens the rmi handshake (see rmi/handshake.go).
const rmiMagic = "distchat-rmi/2\n"

// sendGarbage sends what is not the protocol to addr, each on its own
// connection that it then closes: random bytes, an HTTP request, a
// handshake cut short, and a correct TLS and rmi handshake (TLS with
// tlsConfig) followed by half a frame.
func sendGarbage(t *testing.T, addr string, tlsConfig *tls.Config) {
	t.Helper()
	junk := make([]byte, 4096)
	rand.Read(junk)
	payloads := [][]byte{
		junk,
		[]byte("GET / HTTP/1.1\r\nHost: distchat\r\nUser-Agent: e2e\r\n\r\n"),
		append([]byte(rmiMagic+"\x00"), junk[:10]...), // hello cut short
		[]byte(rmiMagic),
	}
	for _, b := range payloads {
		c, err := net.DialTimeout("tcp", addr, e2eWait)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if _, err := c.Write(b); err != nil {
			t.Logf("%s: write: %v (the server hung up, fine)", addr, err)
		}
		// Read whatever the server answers, briefly, then hang up.
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		io.Copy(io.Discard, c)
		c.Close()
	}

	// A well-formed handshake (no secret, no callbacks), then the first
	// 3 bytes of a 5-byte frame header, then hang up.
	raw, err := net.DialTimeout("tcp", addr, e2eWait)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(e2eWait))
	c := tls.Client(raw, tlsConfig)
	if err := c.Handshake(); err != nil {
		t.Fatalf("%s: TLS handshake: %v", addr, err)
	}
	hello := append([]byte(rmiMagic+"\x00"), junk[:32]...)
	if _, err := c.Write(hello); err != nil {
		t.Fatalf("%s: handshake: %v", addr, err)
	}
	reply := make([]byte, len(rmiMagic)+1+32+len("OK\n"))
	if _, err := io.ReadFull(c, reply); err != nil || string(reply[:len(rmiMagic)]) != rmiMagic || string(reply[len(reply)-3:]) != "OK\n" {
		t.Fatalf("%s: handshake reply %q, %v", addr, reply, err)
	}
	if _, err := c.Write([]byte{1, 0, 0}); err != nil {
		t.Fatalf("%s: half frame: %v", addr, err)
	}
}

// buildBinary builds distchat from this module into a temporary dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "distchat")
	goTool := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goTool = p
	} else if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		goTool = p
	}
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
