package server

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/benbjohnson/clock"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// testCluster wires a real central and real chat servers in one process
// through rmi.Local, so every call is encoded and dispatched exactly as it
// would be over TCP.
type testCluster struct {
	t       testing.TB
	clk     clock.Clock
	dir     string
	central *central.Central
	ctable  *rmi.Table
	mu      sync.Mutex
	servers map[string]*Server
	tables  map[string]*rmi.Table // by server address
	down    map[string]bool       // server addresses that refuse calls
	fwds    map[string]*atomic.Int64
	peerID  atomic.Uint64
}

func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	c := &testCluster{
		t: t, clk: clock.New(), dir: t.TempDir(),
		servers: map[string]*Server{}, tables: map[string]*rmi.Table{},
		down: map[string]bool{}, fwds: map[string]*atomic.Int64{},
	}
	c.ctable = rmi.NewTable(rmitest.QuietLogger())
	c.openCentral()
	t.Cleanup(func() {
		c.mu.Lock()
		servers := c.servers
		c.servers = map[string]*Server{}
		c.mu.Unlock()
		for _, s := range servers {
			s.Close()
		}
		c.central.Close()
	})
	return c
}

// openCentral opens central (again, after restartCentral) on its data.
func (c *testCluster) openCentral() {
	c.t.Helper()
	cen, err := central.Open(central.Config{
		Dir: c.dir + "/central", Clock: c.clk, Logger: rmitest.QuietLogger(),
		PasswordCost: bcrypt.MinCost, ServerLeaseTTL: time.Second,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cen.Export(c.ctable); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.central = cen
	c.mu.Unlock()
}

// restartCentral closes central and opens it again from its data, as
// after a crash: it forgets live servers and attachments.
func (c *testCluster) restartCentral() {
	c.ctable.Unexport(centralapi.ObjectName)
	c.ctable.Unexport(centralapi.ClusterObjectName)
	c.central.Close()
	c.openCentral()
}

func (c *testCluster) clusterPeer() *rmi.Peer {
	return rmi.NewPeer(c.peerID.Add(1), "test", true, nil)
}

// gate is an Invoker to a server table that fails like an unreachable host
// while the server is marked down, and counts Forward calls per target.
type gate struct {
	c    *testCluster
	addr string
}

func (g gate) Invoke(ctx context.Context, object, method string, args, reply any) error {
	g.c.mu.Lock()
	down, table := g.c.down[g.addr], g.c.tables[g.addr]
	n := g.c.fwds[g.addr]
	g.c.mu.Unlock()
	if down || table == nil {
		return fmt.Errorf("%s: %w", g.addr, rmi.ErrConnect)
	}
	if method == "Forward" {
		n.Add(1)
	}
	return rmi.Local{Table: table, Peer: g.c.clusterPeer()}.Invoke(ctx, object, method, args, reply)
}

// startServer opens (or reopens, keeping its data) and starts a server.
func (c *testCluster) startServer(name, mode string) *Server {
	c.t.Helper()
	addr := name + ":1"
	s, err := Open(Config{
		Name: name, Addr: addr, Dir: c.dir + "/" + name, Clock: c.clk, ClockMode: mode,
		Central: centralapi.ClusterStub{Inv: rmi.Local{Table: c.ctable, Peer: c.clusterPeer()}},
		Connect: func(addr string) rmi.Invoker { return gate{c, addr} },
		Logger:  rmitest.QuietLogger(),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	t := rmi.NewTable(rmitest.QuietLogger())
	if err := s.Export(t); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.servers[name] = s
	c.tables[addr] = t
	c.down[addr] = false
	if c.fwds[addr] == nil {
		c.fwds[addr] = &atomic.Int64{}
	}
	c.mu.Unlock()
	if err := s.Start(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	return s
}

// crash closes a server abruptly and makes its address unreachable.
func (c *testCluster) crash(name string) {
	c.mu.Lock()
	s := c.servers[name]
	delete(c.servers, name)
	c.down[name+":1"] = true
	c.mu.Unlock()
	s.Close()
}

func (c *testCluster) forwards(name string) int64 { return c.fwds[name+":1"].Load() }

// testClient is a minimal client: it exports a callback that records
// deliveries and calls its server through rmi.Local.
type testClient struct {
	t      testing.TB
	c      *testCluster
	user   string
	token  string
	server string
	peer   *rmi.Peer
	chat   chatapi.Stub

	mu      sync.Mutex
	got     []chatapi.Message
	events  []chatapi.Event
	block   chan struct{} // when non-nil, Deliver waits on it
	changed chan struct{}
}

// Deliver implements Callback.
func (tc *testClient) Deliver(ctx context.Context, a chatapi.DeliverArgs) error {
	tc.mu.Lock()
	block := tc.block
	tc.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tc.mu.Lock()
	tc.got = append(tc.got, a.Messages...)
	tc.events = append(tc.events, a.Events...)
	tc.mu.Unlock()
	return nil
}

func (c *testCluster) signup(user string) {
	c.t.Helper()
	if _, err := c.central.SignUp(context.Background(), centralapi.SignUpArgs{User: user, Password: "password-" + user}); err != nil {
		c.t.Fatal(err)
	}
}

// login logs user in at central and attaches to the server central chose.
func (c *testCluster) login(user string) *testClient {
	c.t.Helper()
	rep, err := c.central.Login(context.Background(), centralapi.LoginArgs{User: user, Password: "password-" + user})
	if err != nil {
		c.t.Fatal(err)
	}
	return c.attach(user, rep.Token, rep.Server.Name)
}

func (c *testCluster) attach(user, token, server string) *testClient {
	c.t.Helper()
	tc := &testClient{t: c.t, c: c, user: user, token: token, server: server}
	cbt := rmi.NewTable(rmitest.QuietLogger())
	if err := rmi.Export[chatapi.Callback](cbt, chatapi.CallbackObjectName, tc); err != nil {
		c.t.Fatal(err)
	}
	tc.peer = rmi.NewPeer(c.peerID.Add(1), user, false, rmi.Local{Table: cbt})
	c.mu.Lock()
	table := c.tables[server+":1"]
	c.mu.Unlock()
	tc.chat = chatapi.Stub{Inv: rmi.Local{Table: table, Peer: tc.peer}}
	if _, err := tc.chat.Attach(context.Background(), chatapi.AttachArgs{Token: token}); err != nil {
		c.t.Fatal(err)
	}
	return tc
}

func (tc *testClient) say(room, id, text string) chatapi.PostReply {
	tc.t.Helper()
	r, err := tc.chat.Post(context.Background(), chatapi.PostArgs{Token: tc.token, Room: room, ID: id, Text: text})
	if err != nil {
		tc.t.Fatalf("%s posts %q to %s: %v", tc.user, text, room, err)
	}
	return r
}

// history returns the room's whole log as the server returns it.
func (tc *testClient) history(room string) []chatapi.Message {
	tc.t.Helper()
	var all []chatapi.Message
	have := map[string]uint64{}
	for {
		r, err := tc.chat.Sync(context.Background(), chatapi.SyncArgs{Token: tc.token, Room: room, Have: have, Limit: 7})
		if err != nil {
			tc.t.Fatalf("%s syncs %s: %v", tc.user, room, err)
		}
		for _, m := range r.Messages {
			all = append(all, m)
			if m.Stamp.Seq > have[m.Stamp.Server] {
				have[m.Stamp.Server] = m.Stamp.Seq
			}
		}
		if !r.More {
			return all
		}
	}
}

// delivered returns the distinct delivered texts of a room, sorted by stamp.
func (tc *testClient) delivered(room string) []string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	seen := map[chatapi.Stamp]bool{}
	var ms []chatapi.Message
	for _, m := range tc.got {
		if m.Room == room && !seen[m.Stamp] {
			seen[m.Stamp] = true
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Stamp.Less(ms[j].Stamp) })
	return texts(ms)
}

func texts(ms []chatapi.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func loginArgs(user string) centralapi.LoginArgs {
	return centralapi.LoginArgs{User: user, Password: "password-" + user}
}
