package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
)

// twoCentrals is a client's network with two central addresses, "a" and
// "b", that reach the world's one central server (as two central servers
// of one cluster would); either can be taken down.
type twoCentrals struct {
	w *world

	mu       sync.Mutex
	down     map[string]bool // registry addresses that refuse connections
	dialed   []string        // registry addresses dialed, in order
	centrals []Conn          // connections to the central server, in order
}

// dialer returns user's Dialer over the world's.
func (n *twoCentrals) dialer(user string) Dialer {
	inner := n.w.dialer(user)
	return func(ctx context.Context, addr string, cb *rmi.Table) (Conn, error) {
		n.mu.Lock()
		down := n.down[addr]
		if addr == "a:1099" || addr == "b:1099" {
			n.dialed = append(n.dialed, addr)
		}
		n.mu.Unlock()
		if down {
			return nil, fmt.Errorf("dial %s: %w", addr, rmi.ErrConnect)
		}
		if addr == "a:1099" || addr == "b:1099" {
			addr = n.w.RegistryAddr()
		}
		conn, err := inner(ctx, addr, cb)
		if err == nil && addr == n.w.CentralAddr() {
			n.mu.Lock()
			n.centrals = append(n.centrals, conn)
			n.mu.Unlock()
		}
		return conn, err
	}
}

func (n *twoCentrals) setDown(addr string, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[addr] = down
}

// takeDialed returns the registry addresses dialed since the last call.
func (n *twoCentrals) takeDialed() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.dialed
	n.dialed = nil
	return d
}

// count returns how many registry dials were made since takeDialed.
func (n *twoCentrals) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.dialed)
}

// lastCentral returns the latest connection to the central server.
func (n *twoCentrals) lastCentral() Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.centrals[len(n.centrals)-1]
}

func TestClientCentralList(t *testing.T) {
	w := newWorld(t, 2)
	w.AddUser("ann")
	net := &twoCentrals{w: w, down: map[string]bool{}}
	ctx := context.Background()
	cfg := w.cfg("ann")
	cfg.Central = "a,b"
	cfg.Dial = net.dialer("ann")
	rec := &recorder{}
	cfg.OnStatus = rec.onStatus

	// a is down at login: the same Login goes to b.
	net.setDown("a:1099", true)
	ann, err := Login(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	if d := net.takeDialed(); !slices.Equal(d, []string{"a:1099", "b:1099"}) {
		t.Fatalf("login dialed %v", d)
	}
	if _, err := ann.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}

	// b goes away (its connection closes) while a is back: the client
	// connects again at once and says so.
	net.setDown("a:1099", false)
	net.setDown("b:1099", true)
	if err := net.lastCentral().Close(); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitForWhy(t, "the CentralMoved status", func() (bool, string) {
		w.clk.Add(0)
		st := rec.status()
		return slices.ContainsFunc(st, func(s Status) bool { return s.Kind == CentralMoved }), fmt.Sprintf("%+v", st)
	})
	want := Status{Kind: CentralMoved, Server: ann.Server(), Central: "a:1099", LostCentral: "b:1099"}
	if st := rec.status(); len(st) != 1 || st[0].Kind != want.Kind || st[0].Server != want.Server ||
		st[0].Central != want.Central || st[0].LostCentral != want.LostCentral {
		t.Fatalf("statuses %+v, want %+v", st, want)
	}
	if d := net.takeDialed(); !slices.Equal(d, []string{"b:1099", "a:1099"}) {
		t.Fatalf("reconnecting dialed %v", d)
	}

	// Both down: the client keeps trying with a backoff on its clock,
	// and moves when one answers.
	net.setDown("a:1099", true)
	if err := net.lastCentral().Close(); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "a first attempt at both, and its retry armed", func() bool {
		w.clk.Add(0)
		ann.mu.Lock()
		armed := ann.centralTmr != nil
		ann.mu.Unlock()
		return net.count() == 2 && armed
	})
	w.clk.Add(minCentralRetry)
	rmitest.WaitFor(t, "a second attempt at both", func() bool { return net.count() == 4 })
	if d := net.takeDialed(); !slices.Equal(d, []string{"a:1099", "b:1099", "a:1099", "b:1099"}) {
		t.Fatalf("while both were down the client dialed %v", d)
	}
	net.setDown("b:1099", false)
	rmitest.WaitFor(t, "the move to b", func() bool {
		w.clk.Add(maxCentralRetry)
		return len(rec.status()) == 2
	})
	if st := rec.status()[1]; st.Central != "b:1099" || st.LostCentral != "a:1099" {
		t.Fatalf("second move %+v", st)
	}
	// The session holds at the other central server: logging out there
	// ends it.
	if err := ann.Logout(ctx); err != nil {
		t.Fatalf("log out after the moves: %v", err)
	}
}
