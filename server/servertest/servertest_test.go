package servertest_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// texts returns the texts of the messages delivered to rc.
func texts(rc *servertest.RawClient) []string {
	var out []string
	for _, m := range rc.Messages() {
		out = append(out, m.Text)
	}
	return out
}

// closed reports, once the connection of rc ends, that it has.
func closed(rc *servertest.RawClient) func() bool {
	var mu sync.Mutex
	done := false
	rc.Conn.OnClose(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done
	}
}

func post(t *testing.T, rc *servertest.RawClient, room, id, text string) {
	t.Helper()
	if _, err := rc.Chat.Post(context.Background(), chatapi.PostArgs{Token: rc.Token, Room: room, ID: id, Text: text}); err != nil {
		t.Fatalf("post %q: %v", text, err)
	}
}

func join(t *testing.T, rc *servertest.RawClient, room string, create bool) {
	t.Helper()
	ctx := context.Background()
	var err error
	if create {
		_, err = rc.Chat.CreateRoom(ctx, chatapi.RoomArgs{Token: rc.Token, Room: room})
	} else {
		_, err = rc.Chat.JoinRoom(ctx, chatapi.RoomArgs{Token: rc.Token, Room: room})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// twoRooms starts two chat servers with ann on server-1 and bob on
// server-2, both in room r. It returns once ann has been told that bob
// joined: no delivery is then under way, which a test that takes
// server-1 off the network would fail (the server drops a client it
// cannot call back).
func twoRooms(t *testing.T, opts servertest.Options) (*servertest.Cluster, *servertest.RawClient, *servertest.RawClient) {
	c := servertest.New(t, opts)
	c.AddUser("ann")
	c.AddUser("bob")
	ann := c.Login("ann", "server-1")
	bob := c.Login("bob", "server-2")
	join(t, ann, "r", true)
	join(t, bob, "r", false)
	joined := chatapi.Event{Kind: chatapi.EventJoined, Room: "r", User: "bob"}
	rmitest.WaitFor(t, "ann to hear that bob joined", func() bool { return slices.Contains(ann.Events(), joined) })
	return c, ann, bob
}

func TestPostReachesAnotherServer(t *testing.T) {
	c, ann, bob := twoRooms(t, servertest.Options{Servers: 2})
	if got := c.Servers(); !slices.Equal(got, []string{"server-1", "server-2"}) {
		t.Fatalf("Servers = %v", got)
	}
	post(t, ann, "r", "1", "hello")
	rmitest.WaitFor(t, "the post on server-2", func() bool { return slices.Equal(texts(bob), []string{"hello"}) })
}

func TestCrashAndStart(t *testing.T) {
	ctx := context.Background()
	c, ann, _ := twoRooms(t, servertest.Options{Servers: 2})
	annClosed := closed(ann)
	post(t, ann, "r", "1", "kept")
	c.Crash("server-1")
	if c.Server("server-1") != nil {
		t.Fatal("a crashed server is still returned")
	}
	if !annClosed() {
		t.Fatal("the connection's OnClose hook did not run")
	}
	if err := ann.Chat.Ping(ctx, chatapi.TokenArgs{Token: ann.Token}); !errors.Is(err, rmi.ErrConnLost) {
		t.Fatalf("a call on the broken connection: %v", err)
	}
	if _, err := c.Dial(ctx, c.Addr("server-1"), nil); !errors.Is(err, rmi.ErrConnect) {
		t.Fatalf("dialing a crashed server: %v", err)
	}
	// Central was not told: it places ann on server-1 while it is live,
	// until its lease runs out.
	rmitest.WaitFor(t, "central to drop server-1", func() bool {
		lr, err := c.Central().Reassign(ctx, centralapi.ReassignArgs{Token: ann.Token})
		return err == nil && lr.Server.Name == "server-2"
	})

	c.Start("server-1")
	again := c.Login("ann", "server-1")
	r, err := again.Chat.Sync(ctx, chatapi.SyncArgs{Token: again.Token, Room: "r"})
	if err != nil || len(r.Messages) != 1 || r.Messages[0].Text != "kept" {
		t.Fatalf("after the restart: %+v, %v", r, err)
	}
}

func TestStopUnregisters(t *testing.T) {
	ctx := context.Background()
	c, ann, _ := twoRooms(t, servertest.Options{Servers: 2})
	annClosed := closed(ann)
	c.Stop("server-1")
	if !annClosed() {
		t.Fatal("the connection's OnClose hook did not run")
	}
	// Central knows at once: ann, who prefers server-1, goes to server-2.
	lr, err := c.Central().Reassign(ctx, centralapi.ReassignArgs{Token: ann.Token})
	if err != nil || lr.Server.Name != "server-2" {
		t.Fatalf("Reassign after Stop = %+v, %v", lr, err)
	}
	c.Stop("server-2")
	if _, err := c.Central().Reassign(ctx, centralapi.ReassignArgs{Token: ann.Token}); !errors.Is(err, centralapi.ErrNoServers) {
		t.Fatalf("Reassign with every server stopped: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	c, ann, bob := twoRooms(t, servertest.Options{Servers: 2})
	annClosed := closed(ann)
	c.SetUnreachable("server-1", true)
	if err := ann.Chat.Ping(ctx, chatapi.TokenArgs{Token: ann.Token}); !errors.Is(err, rmi.ErrConnLost) {
		t.Fatalf("a call to an unreachable server: %v", err)
	}
	if annClosed() {
		t.Fatal("the connection ended; it should only stop answering")
	}
	if _, err := c.Dial(ctx, c.Addr("server-1"), nil); !errors.Is(err, rmi.ErrConnect) {
		t.Fatalf("dialing an unreachable server: %v", err)
	}
	post(t, bob, "r", "1", "while away")
	c.SetUnreachable("server-1", false)
	if err := ann.Chat.Ping(ctx, chatapi.TokenArgs{Token: ann.Token}); err != nil {
		t.Fatalf("a call once reachable again: %v", err)
	}
	// server-2's outbox gets the post there in the end.
	rmitest.WaitFor(t, "the post to reach server-1", func() bool {
		r, err := ann.Chat.Sync(ctx, chatapi.SyncArgs{Token: ann.Token, Room: "r"})
		return err == nil && len(r.Messages) == 1
	})
}

func TestDisconnect(t *testing.T) {
	c, ann, bob := twoRooms(t, servertest.Options{Servers: 2})
	c.Disconnect("server-1", "server-2")
	post(t, ann, "r", "1", "held back")
	post(t, bob, "r", "2", "here")
	rmitest.WaitFor(t, "each to get its own server's post", func() bool {
		return slices.Equal(texts(ann), []string{"held back"}) && slices.Equal(texts(bob), []string{"here"})
	})
	c.Reconnect("server-1", "server-2")
	rmitest.WaitFor(t, "the outboxes to deliver", func() bool {
		return len(texts(ann)) == 2 && len(texts(bob)) == 2
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

// A crashed server's port is free at once, and the server restarted over
// TCP gets it back even if, while it was down, another connection was
// given that port as its own (it is in the ephemeral range): Start tries
// again until the port is free.
func TestTCPRestartWaitsForItsPort(t *testing.T) {
	c := servertest.New(t, servertest.Options{TCP: true})
	addr := c.Addr("server-1")
	c.Crash("server-1")
	// The crashed server's port is free once Crash returns.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("after Crash: %v", err)
	}
	l.Close()

	// A connection whose local end is addr, without SO_REUSEADDR: the
	// server's listener cannot bind while it is open.
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	local, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	squatter, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", peer.Addr().String())
	if err != nil {
		t.Fatalf("a connection from %s: %v", addr, err)
	}
	accepted, err := peer.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		squatter.Close()
		t.Skip("this system lets a listener share a port with a connection: nothing to wait for")
	}
	// Freed a moment after Start begins trying.
	free := time.AfterFunc(100*time.Millisecond, func() {
		accepted.Close()
		squatter.Close()
	})
	defer free.Stop()
	c.Start("server-1")
	if c.Addr("server-1") != addr {
		t.Fatalf("restarted on %s, was %s", c.Addr("server-1"), addr)
	}
}
