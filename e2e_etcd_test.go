package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/rmi/rmitest"
)

// TestEtcdMembers: three 'distchat central --etcd-member' processes form
// one etcd cluster (on unix sockets in the test's directory, no port
// guessed) and serve one state as three front-ends: a chat server
// registered at the first is live at the others, an account made at the
// second logs in at the third. After SIGKILL of the first front-end (its
// etcd member with it) the other two keep serving, and a chat server
// killed too leaves them both within its lease.
func TestEtcdMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs four processes")
	}
	h, addrs := startEtcdFrontEnds(t)
	dir := h.dir
	h.centralAddr = addrs[0]
	h.serverNames = []string{"chat-1"}
	h.startServer("chat-1", "127.0.0.1:0")

	if err := h.signupAt(addrs[1], "alice"); err != nil {
		t.Fatal(err)
	}
	// Registered at central-1, alice signed up at central-2: central-3
	// places her on chat-1.
	rmitest.WaitForWhy(t, "a login at central-3", func() (bool, string) {
		rep, err := h.loginAt(addrs[2], "alice")
		return err == nil && rep.Server.Name == "chat-1", fmt.Sprintf("%+v, %v", rep.Server, err)
	})

	// Kill the front-end whose member leads the etcd cluster: the two
	// others elect a leader and go on.
	lead := leader(t, dir)
	var rest []string
	for i, a := range addrs {
		if i+1 != lead {
			rest = append(rest, a)
		}
	}
	start := time.Now()
	h.kill(fmt.Sprintf("central-%d", lead))
	if err := h.signupAt(rest[0], "bob"); err != nil {
		t.Fatalf("after central-%d (and its etcd member, the leader) died: %v", lead, err)
	}
	t.Logf("signup at another front-end done %v after SIGKILL of central-%d and the etcd leader", time.Since(start).Round(time.Millisecond), lead)
	if _, err := h.loginAt(rest[1], "bob"); err != nil {
		t.Fatalf("bob's login at the third front-end: %v", err)
	}
	if err := h.signupAt(rest[1], "alice"); err == nil || !strings.Contains(err.Error(), "already taken") {
		t.Fatalf("alice signed up again at the third front-end: %v", err)
	}
	if lead == 1 {
		// chat-1 renewed at central-1: it is cut off from the cluster now
		// (a chat server takes one central address), and its lease ends
		// like that of a dead server.
		t.Log("the leader was central-1, where chat-1 is registered")
	}

	// A chat server that dies leaves every front-end within its lease.
	start = time.Now()
	h.kill("chat-1")
	rmitest.WaitForWhy(t, "chat-1's lease to end", func() (bool, string) {
		_, err2 := h.loginAt(rest[0], "alice")
		_, err3 := h.loginAt(rest[1], "alice")
		return errors.Is(err2, centralapi.ErrNoServers) && errors.Is(err3, centralapi.ErrNoServers), fmt.Sprintf("%v; %v", err2, err3)
	})
	gone := time.Since(start)
	t.Logf("chat-1 left both front-ends %v after its SIGKILL (lease %v)", gone.Round(time.Millisecond), central10s)
	if gone > central10s+5*time.Second {
		t.Fatalf("chat-1 left %v after its death, want within its lease (%v) and an election", gone, central10s)
	}
}

// startEtcdFrontEnds builds the binary and starts three 'distchat
// central --etcd-member' processes, central-1 to central-3, which form one
// etcd cluster on unix sockets in h.dir (no port guessed) and share one
// cluster secret and CA (h.secret, h.ca). It returns their RMI addresses.
func startEtcdFrontEnds(t *testing.T) (*cluster, []string) {
	t.Helper()
	dir := t.TempDir()
	h := &cluster{t: t, bin: buildBinary(t), dir: dir, procs: map[string]*proc{}, logs: &rmitest.SyncBuffer{}}
	h.secret = filepath.Join(dir, "cluster.secret")
	if err := os.WriteFile(h.secret, []byte(randomHex(t, 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// One cluster CA beside the secret, for every front-end.
	if _, _, err := pki.LoadOrCreateCA(dir, clock.New()); err != nil {
		t.Fatal(err)
	}
	h.ca = filepath.Join(dir, pki.CACertFile)
	t.Cleanup(func() {
		for _, p := range h.procs {
			p.stop()
		}
		if t.Failed() {
			for name, p := range h.procs {
				t.Logf("---- %s stderr (last lines) ----\n%s", name, tail(p.logFile, 30))
			}
		}
	})
	// unix://localhost:N is the socket file "localhost:N" in the
	// processes' working directory, not a TCP port (etcd wants host:port
	// in what a member advertises).
	initial := "m1=unix://localhost:1001,m2=unix://localhost:1002,m3=unix://localhost:1003"
	var addrs []string
	for i := 1; i <= 3; i++ {
		startIn(h, dir, fmt.Sprintf("central-%d", i), "central", "--listen", "127.0.0.1:0",
			"--data", filepath.Join(dir, fmt.Sprintf("central-%d", i)), "--cluster-secret-file", h.secret,
			"--etcd-member", fmt.Sprintf("m%d", i), "--etcd-initial-cluster", initial,
			"--etcd-client-url", fmt.Sprintf("unix://localhost:%d", 2000+i), "--log-level", "debug")
	}
	for i := 1; i <= 3; i++ {
		got := h.procs[fmt.Sprintf("central-%d", i)].waitLine(t, regexp.MustCompile(`^central server listening on (\S+) `))
		addrs = append(addrs, got[1])
	}
	return h, addrs
}

// signupAt makes the account user (password(user)) with the binary, at
// the central servers central (one address or a list), trusting h.ca.
func (h *cluster) signupAt(central, user string) error {
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, "signup", "--central", central, "--user", user, "--ca", h.ca)
	cmd.Env = h.env("DISTCHAT_PASSWORD=" + password(user))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("signup %s at %s: %w\n%s", user, central, err, out)
	}
	return nil
}

// centralAt calls fn on a connection of its own to the central server at
// addr (TLS, trusting h.ca), closed afterwards.
func (h *cluster) centralAt(addr string, fn func(context.Context, centralapi.Stub) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	trust, err := pki.NewClientTrust(pki.TrustOptions{Centrals: []string{addr}, CAFile: h.ca})
	if err != nil {
		return err
	}
	cl, err := rmi.Dial(ctx, addr, rmi.DialConfig{Clock: clock.New(), Logger: rmitest.QuietLogger(), TLS: trust.ClientConfig(addr)})
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, centralapi.Stub{Inv: cl})
}

// loginAt logs user in at the central server at addr.
func (h *cluster) loginAt(addr, user string) (rep centralapi.LoginReply, err error) {
	err = h.centralAt(addr, func(ctx context.Context, st centralapi.Stub) error {
		rep, err = st.Login(ctx, centralapi.LoginArgs{User: user, Password: password(user)})
		return err
	})
	return rep, err
}

// leader returns which of the three members (1-3) leads the etcd
// cluster, asking each through its socket in dir.
func leader(t *testing.T, dir string) int {
	t.Helper()
	var ids [4]uint64
	var lead uint64
	for i := 1; i <= 3; i++ {
		cli := memberClient(t, dir, i)
		ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
		st, err := cli.Status(ctx, cli.Endpoints()[0])
		cancel()
		cli.Close()
		if err != nil {
			t.Fatalf("status of member m%d: %v", i, err)
		}
		ids[i], lead = st.Header.MemberId, st.Leader
	}
	for i := 1; i <= 3; i++ {
		if ids[i] == lead {
			return i
		}
	}
	t.Fatalf("no member is the leader %x (members %x)", lead, ids[1:])
	return 0
}

// makeLeader makes member want (1-3) lead the etcd cluster of the
// members whose sockets are in dir: it asks the leader to hand over.
func makeLeader(t *testing.T, dir string, want int) {
	t.Helper()
	lead := leader(t, dir)
	if lead == want {
		return
	}
	id := func(i int) uint64 {
		cli := memberClient(t, dir, i)
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
		defer cancel()
		st, err := cli.Status(ctx, cli.Endpoints()[0])
		if err != nil {
			t.Fatalf("status of member m%d: %v", i, err)
		}
		return st.Header.MemberId
	}
	target := id(want)
	cli := memberClient(t, dir, lead)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if _, err := cli.MoveLeader(ctx, target); err != nil {
		t.Fatalf("move the etcd leadership from m%d to m%d: %v", lead, want, err)
	}
	rmitest.WaitFor(t, fmt.Sprintf("m%d to lead", want), func() bool { return leader(t, dir) == want })
}

// memberClient returns an etcd client of member i (1-3) alone, through
// its socket in dir.
func memberClient(t *testing.T, dir string, i int) *clientv3.Client {
	t.Helper()
	ep := "unix://" + filepath.Join(dir, fmt.Sprintf("localhost:%d", 2000+i))
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: e2eWait, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// central10s is the chat servers' lease (central.DefaultServerLeaseTTL).
const central10s = 10 * time.Second

// startIn runs the binary as process name with working directory wd (the
// etcd members' unix sockets are relative to it).
func startIn(h *cluster, wd, name string, args ...string) *proc {
	h.t.Helper()
	logFile := filepath.Join(h.dir, name+".log")
	f, err := os.Create(logFile)
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(h.bin, args...)
	cmd.Dir = wd
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
			default:
			}
		}
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	h.procs[name] = p
	return p
}
