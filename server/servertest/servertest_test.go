package servertest_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// member is a user attached to a chat server through Cluster.Dial, with a
// callback object that records what it is delivered.
type member struct {
	chat   chatapi.Stub
	conn   *servertest.Conn
	token  string
	server string

	mu     sync.Mutex
	texts  []string
	closed bool
}

// Deliver implements chatapi.Callback.
func (m *member) Deliver(ctx context.Context, a chatapi.DeliverArgs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range a.Messages {
		m.texts = append(m.texts, msg.Text)
	}
	return nil
}

func (m *member) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.texts)
}

// login logs user in at central, placed on server, and attaches there
// with a callback object.
func login(t *testing.T, c *servertest.Cluster, user, server string) *member {
	t.Helper()
	ctx := context.Background()
	c.Place(user, server)
	lr, err := c.Central().Login(ctx, centralapi.LoginArgs{User: user, Password: c.Password(user)})
	if err != nil {
		t.Fatal(err)
	}
	if lr.Server.Name != server || lr.Server.Addr != c.Addr(server) {
		t.Fatalf("placed on %+v, want %s at %s", lr.Server, server, c.Addr(server))
	}
	m := &member{token: lr.Token, server: server}
	callbacks := rmi.NewTable(rmitest.QuietLogger())
	if err := rmi.Export[chatapi.Callback](callbacks, chatapi.CallbackObjectName, m); err != nil {
		t.Fatal(err)
	}
	if m.conn, err = c.Dial(ctx, lr.Server.Addr, callbacks); err != nil {
		t.Fatal(err)
	}
	m.conn.OnClose(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
	})
	m.chat = chatapi.Stub{Inv: m.conn}
	if _, err := m.chat.Attach(ctx, chatapi.AttachArgs{Token: lr.Token}); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *member) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func (m *member) post(t *testing.T, room, id, text string) {
	t.Helper()
	if _, err := m.chat.Post(context.Background(), chatapi.PostArgs{Token: m.token, Room: room, ID: id, Text: text}); err != nil {
		t.Fatalf("post %q: %v", text, err)
	}
}

func (m *member) join(t *testing.T, room string, create bool) {
	t.Helper()
	ctx := context.Background()
	var err error
	if create {
		_, err = m.chat.CreateRoom(ctx, chatapi.RoomArgs{Token: m.token, Room: room})
	} else {
		_, err = m.chat.JoinRoom(ctx, chatapi.RoomArgs{Token: m.token, Room: room})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// twoRooms starts two chat servers with ann on server-1 and bob on
// server-2, both in room r.
func twoRooms(t *testing.T, opts servertest.Options) (*servertest.Cluster, *member, *member) {
	c := servertest.New(t, opts)
	c.AddUser("ann")
	c.AddUser("bob")
	ann := login(t, c, "ann", "server-1")
	bob := login(t, c, "bob", "server-2")
	ann.join(t, "r", true)
	bob.join(t, "r", false)
	return c, ann, bob
}

func TestPostReachesAnotherServer(t *testing.T) {
	c, ann, bob := twoRooms(t, servertest.Options{Servers: 2})
	if got := c.Servers(); !slices.Equal(got, []string{"server-1", "server-2"}) {
		t.Fatalf("Servers = %v", got)
	}
	ann.post(t, "r", "1", "hello")
	rmitest.WaitFor(t, "the post on server-2", func() bool { return slices.Equal(bob.got(), []string{"hello"}) })
}

func TestCrashAndStart(t *testing.T) {
	ctx := context.Background()
	c, ann, _ := twoRooms(t, servertest.Options{Servers: 2})
	ann.post(t, "r", "1", "kept")
	c.Crash("server-1")
	if c.Server("server-1") != nil {
		t.Fatal("a crashed server is still returned")
	}
	if !ann.isClosed() {
		t.Fatal("the connection's OnClose hook did not run")
	}
	if err := ann.chat.Ping(ctx, chatapi.TokenArgs{Token: ann.token}); !errors.Is(err, rmi.ErrConnLost) {
		t.Fatalf("a call on the broken connection: %v", err)
	}
	if _, err := c.Dial(ctx, c.Addr("server-1"), nil); !errors.Is(err, rmi.ErrConnect) {
		t.Fatalf("dialing a crashed server: %v", err)
	}
	// Central was not told: it places ann on server-1 while it is live,
	// until its lease runs out.
	rmitest.WaitFor(t, "central to drop server-1", func() bool {
		lr, err := c.Central().Reassign(ctx, centralapi.ReassignArgs{Token: ann.token})
		return err == nil && lr.Server.Name == "server-2"
	})

	c.Start("server-1")
	again := login(t, c, "ann", "server-1")
	r, err := again.chat.Sync(ctx, chatapi.SyncArgs{Token: again.token, Room: "r"})
	if err != nil || len(r.Messages) != 1 || r.Messages[0].Text != "kept" {
		t.Fatalf("after the restart: %+v, %v", r, err)
	}
}

func TestStopUnregisters(t *testing.T) {
	ctx := context.Background()
	c, ann, _ := twoRooms(t, servertest.Options{Servers: 2})
	c.Stop("server-1")
	if !ann.isClosed() {
		t.Fatal("the connection's OnClose hook did not run")
	}
	// Central knows at once: ann, who prefers server-1, goes to server-2.
	lr, err := c.Central().Reassign(ctx, centralapi.ReassignArgs{Token: ann.token})
	if err != nil || lr.Server.Name != "server-2" {
		t.Fatalf("Reassign after Stop = %+v, %v", lr, err)
	}
	c.Stop("server-2")
	if _, err := c.Central().Reassign(ctx, centralapi.ReassignArgs{Token: ann.token}); !errors.Is(err, centralapi.ErrNoServers) {
		t.Fatalf("Reassign with every server stopped: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	c, ann, bob := twoRooms(t, servertest.Options{Servers: 2})
	c.SetUnreachable("server-1", true)
	if err := ann.chat.Ping(ctx, chatapi.TokenArgs{Token: ann.token}); !errors.Is(err, rmi.ErrConnLost) {
		t.Fatalf("a call to an unreachable server: %v", err)
	}
	if ann.isClosed() {
		t.Fatal("the connection ended; it should only stop answering")
	}
	if _, err := c.Dial(ctx, c.Addr("server-1"), nil); !errors.Is(err, rmi.ErrConnect) {
		t.Fatalf("dialing an unreachable server: %v", err)
	}
	bob.post(t, "r", "1", "while away")
	c.SetUnreachable("server-1", false)
	if err := ann.chat.Ping(ctx, chatapi.TokenArgs{Token: ann.token}); err != nil {
		t.Fatalf("a call once reachable again: %v", err)
	}
	// server-2's outbox gets the post there in the end.
	rmitest.WaitFor(t, "the post to reach server-1", func() bool {
		r, err := ann.chat.Sync(ctx, chatapi.SyncArgs{Token: ann.token, Room: "r"})
		return err == nil && len(r.Messages) == 1
	})
}

func TestDisconnect(t *testing.T) {
	c, ann, bob := twoRooms(t, servertest.Options{Servers: 2})
	c.Disconnect("server-1", "server-2")
	ann.post(t, "r", "1", "held back")
	bob.post(t, "r", "2", "here")
	rmitest.WaitFor(t, "each to get its own server's post", func() bool {
		return slices.Equal(ann.got(), []string{"held back"}) && slices.Equal(bob.got(), []string{"here"})
	})
	c.Reconnect("server-1", "server-2")
	rmitest.WaitFor(t, "the outboxes to deliver", func() bool {
		return len(ann.got()) == 2 && len(bob.got()) == 2
	})
}

func TestTCP(t *testing.T) {
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{TCP: true})
	conn, err := rmi.Dial(ctx, c.RegistryAddr(), rmi.DialConfig{Logger: rmitest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ref, err := rmi.RegistryStub{Inv: conn}.Lookup(ctx, centralapi.ObjectName)
	if err != nil || ref.Addr != c.CentralAddr() {
		t.Fatalf("the registry's entry for central: %+v, %v", ref, err)
	}
	addr := c.Addr("server-1")
	c.Crash("server-1")
	c.Start("server-1")
	if c.Addr("server-1") != addr {
		t.Fatalf("restarted on %s, was %s", c.Addr("server-1"), addr)
	}
	sc, err := rmi.Dial(ctx, addr, rmi.DialConfig{Logger: rmitest.QuietLogger()})
	if err != nil {
		t.Fatalf("dial the restarted server over TCP: %v", err)
	}
	defer sc.Close()
	if err := (chatapi.Stub{Inv: sc}).Ping(ctx, chatapi.TokenArgs{Token: "nobody"}); !errors.Is(err, chatapi.ErrNotAttached) {
		t.Fatalf("the restarted server's answer over TCP: %v", err)
	}
}
