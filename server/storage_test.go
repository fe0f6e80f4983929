package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// A chat server whose disk fills refuses posts (acknowledging nothing it
// did not store), tells central and its clients, probes its disk with a
// growing back-off, and once space is freed takes posts again without a
// restart, its seqs gap-free and nothing it acknowledged lost.
func TestStorageFailureRecoversWithoutRestart(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.New()
	clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	logs := &rmitest.SyncBuffer{}
	c := servertest.New(t, servertest.Options{
		Servers: 2, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	logged := func(msg string) int { return strings.Count(logs.String(), fmt.Sprintf("msg=%q", msg)) }
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		c.AddUser(u)
	}
	alice := attachDiskUser(t, c, "alice")
	bob := attachDiskUser(t, c, "bob")
	if alice.server != "server-1" || bob.server != "server-2" {
		t.Fatalf("alice on %s, bob on %s: want server-1 and server-2", alice.server, bob.server)
	}
	if _, err := alice.chat.CreateRoom(ctx, chatapi.RoomArgs{Token: alice.token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.chat.JoinRoom(ctx, chatapi.RoomArgs{Token: bob.token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	post := func(id, text string) (chatapi.PostReply, error) {
		return alice.chat.Post(ctx, chatapi.PostArgs{Token: alice.token, Room: "lobby", ID: id, Text: text})
	}
	before, err := post("m1", "before")
	if err != nil {
		t.Fatal(err)
	}

	// server-1's disk fills: the post that finds out is refused, not
	// acknowledged, and so are posts, pings and attachments after it.
	s1 := c.Server("server-1")
	c.DiskFull("server-1", true)
	if _, err := post("m2", "refused"); !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("post to a full disk: %v, want ErrStorage", err)
	}
	if !errors.Is(s1.StorageErr(), servertest.ErrDiskFull) {
		t.Fatalf("StorageErr() = %v, want the disk's error", s1.StorageErr())
	}
	if _, err := post("m3", "refused too"); !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("second post: %v, want ErrStorage", err)
	}
	if err := alice.chat.Ping(ctx, chatapi.TokenArgs{Token: alice.token}); !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("ping: %v, want ErrStorage", err)
	}
	// Central is told by a task of its own (the refusal does not wait on
	// it): once it knows, carol goes to server-2, though server-1 is as
	// loaded and first by name.
	rmitest.WaitFor(t, "central to hear server-1's storage fails", func() bool {
		clk.Add(0)
		return logged("chat server storage failing; placing no one there") == 1
	})
	lr, err := c.Central().Login(ctx, centralapi.LoginArgs{User: "carol", Password: c.Password("carol")})
	if err != nil || lr.Server.Name != "server-2" {
		t.Fatalf("carol's login while server-1's storage fails: %v, placed on %q", err, lr.Server.Name)
	}
	if err := c.Central().Logout(ctx, centralapi.LogoutArgs{Token: lr.Token}); err != nil {
		t.Fatal(err)
	}
	// alice is told to move.
	rmitest.WaitFor(t, "alice's move event", func() bool {
		clk.Add(0)
		return slices.Contains(alice.eventsSeen(), chatapi.Event{Kind: chatapi.EventMove})
	})

	// server-1 probes its disk 100 ms after the failure, then after twice
	// as long each time.
	for i, wait := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		clk.Add(wait - time.Millisecond)
		if n := logged("storage still failing"); n != i {
			t.Fatalf("%d failed probes %v after probe %d, want %d", n, wait-time.Millisecond, i, i)
		}
		clk.Add(time.Millisecond)
		rmitest.WaitFor(t, fmt.Sprintf("probe %d, %v after the one before", i+1, wait), func() bool {
			return logged("storage still failing") == i+1
		})
	}
	if _, err := post("m4", "still refused"); !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("post while probing: %v, want ErrStorage", err)
	}

	// Space is freed: the next probe (800 ms on) succeeds, with no restart.
	c.DiskFull("server-1", false)
	clk.Add(800 * time.Millisecond)
	rmitest.WaitFor(t, "central to hear server-1 recovered", func() bool {
		return logged("chat server storage works again") == 1
	})
	if err := s1.StorageErr(); err != nil {
		t.Fatalf("StorageErr() = %v after recovery", err)
	}
	after, err := post("m5", "after")
	if err != nil {
		t.Fatalf("post after recovery: %v", err)
	}
	// The refused posts took no seq: server-1's seqs stay gap-free.
	if before.Stamp.Seq != 1 || after.Stamp.Seq != 2 {
		t.Fatalf("seqs %d then %d, want 1 then 2", before.Stamp.Seq, after.Stamp.Seq)
	}
	want := []string{"before", "after"}
	if got := roomTexts(t, alice, "lobby"); !slices.Equal(got, want) {
		t.Fatalf("server-1's log %v, want %v", got, want)
	}
	rmitest.WaitFor(t, "server-2 to store both posts", func() bool {
		clk.Add(0)
		return slices.Equal(roomTexts(t, bob, "lobby"), want)
	})
	// And central places users on server-1 again.
	if dave := attachDiskUser(t, c, "dave"); dave.server != "server-1" {
		t.Fatalf("dave placed on %s, want the recovered server-1", dave.server)
	}
}

// A post whose write finds the disk failing is refused at once, even while
// central does not answer: telling central does not hold up the committer.
func TestStorageFailureDoesNotWaitForCentral(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.New()
	clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	logs := &rmitest.SyncBuffer{}
	c := servertest.New(t, servertest.Options{
		Servers: 2, Clock: clk, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	c.AddUser("alice")
	c.AddUser("carol")
	alice := attachDiskUser(t, c, "alice")
	if alice.server != "server-1" {
		t.Fatalf("alice on %s, want server-1", alice.server)
	}
	if _, err := alice.chat.CreateRoom(ctx, chatapi.RoomArgs{Token: alice.token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}

	// Central stops answering server-1 (its calls wait for their 10 s
	// timeout, which the mock clock never reaches), and its disk fills.
	c.HoldCentral("server-1", true)
	c.DiskFull("server-1", true)
	refused := make(chan error, 1)
	go func() {
		_, err := alice.chat.Post(ctx, chatapi.PostArgs{Token: alice.token, Room: "lobby", ID: "m1", Text: "refused"})
		refused <- err
	}()
	var err error
	rmitest.WaitFor(t, "the post to be refused with the clock standing still", func() bool {
		select {
		case err = <-refused:
			return true
		default:
			return false
		}
	})
	if !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("post to a full disk: %v, want ErrStorage", err)
	}

	// The report to central is made all the same, once central answers.
	clk.Add(0)
	c.HoldCentral("server-1", false)
	rmitest.WaitFor(t, "central to hear server-1's storage fails", func() bool {
		return strings.Contains(logs.String(), "chat server storage failing")
	})
	lr, err := c.Central().Login(ctx, centralapi.LoginArgs{User: "carol", Password: c.Password("carol")})
	if err != nil || lr.Server.Name != "server-2" {
		t.Fatalf("carol's login while server-1's storage fails: %v, placed on %q", err, lr.Server.Name)
	}
}

// A chat server whose heartbeat fails to write the list of chat servers it
// knows (storage failing) writes it once storage works again: after a
// restart it still waits for a server it learned before the failure,
// though central no longer lists that server.
func TestKnownServersSurviveAFailedHeartbeat(t *testing.T) {
	clk := clocktest.New()
	clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	logs := &rmitest.SyncBuffer{}
	c := servertest.New(t, servertest.Options{
		Servers: 2, Clock: clk, Settled: true, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	s1 := c.Server("server-1")

	// server-1's disk fills; it learns server-2 (registered after it) at
	// its first lease renewal, and its first heartbeat, which would write
	// the list, fails.
	c.DiskFull("server-1", true)
	clk.Add(400 * time.Millisecond)
	rmitest.WaitFor(t, "server-1 to learn server-2", func() bool {
		return slices.Equal(s1.KnownServers(), []string{"server-1", "server-2"})
	})
	clk.Add(600 * time.Millisecond)
	rmitest.WaitFor(t, "the heartbeat's write to fail", func() bool {
		return strings.Contains(logs.String(), `msg="store watermark"`)
	})
	// Storage works again at the first probe, and the next heartbeat
	// commits.
	c.DiskFull("server-1", false)
	clk.Add(100 * time.Millisecond)
	rmitest.WaitFor(t, "server-1's storage to recover", func() bool { return s1.StorageErr() == nil })
	commits := s1.Commits()
	// The failed heartbeat re-arms itself after the log line waited for
	// above: step the clock until the next one commits.
	rmitest.WaitFor(t, "the next heartbeat to commit", func() bool {
		clk.Add(100 * time.Millisecond)
		return s1.Commits() > commits
	})

	// server-2 leaves central's list; server-1 restarts from its data.
	c.Stop("server-2")
	c.Crash("server-1")
	c.Start("server-1")
	if got, want := c.Server("server-1").KnownServers(), []string{"server-1", "server-2"}; !slices.Equal(got, want) {
		t.Fatalf("server-1 knows %v after a restart, want %v", got, want)
	}
}

// diskUser is a user attached to a chat server of a servertest cluster,
// with a callback that records the events delivered.
type diskUser struct {
	token, server string
	chat          chatapi.Stub

	mu     sync.Mutex
	events []chatapi.Event
}

// Deliver implements chatapi.Callback.
func (u *diskUser) Deliver(ctx context.Context, a chatapi.DeliverArgs) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.events = append(u.events, a.Events...)
	return nil
}

// Voice implements chatapi.Callback; these tests use no voice.
func (u *diskUser) Voice(context.Context, chatapi.VoiceDeliverArgs) error { return nil }

func (u *diskUser) eventsSeen() []chatapi.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.events)
}

// attachUser logs user in at central and attaches it where central
// placed it.
func attachDiskUser(t *testing.T, c *servertest.Cluster, user string) *diskUser {
	t.Helper()
	ctx := context.Background()
	lr, err := c.Central().Login(ctx, centralapi.LoginArgs{User: user, Password: c.Password(user)})
	if err != nil {
		t.Fatal(err)
	}
	u := &diskUser{token: lr.Token, server: lr.Server.Name}
	cb := rmi.NewTable(rmitest.QuietLogger())
	if err := rmi.Export[chatapi.Callback](cb, chatapi.CallbackObjectName, u); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Dial(ctx, c.Addr(u.server), cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	u.chat = chatapi.Stub{Inv: conn}
	if _, err := u.chat.Attach(ctx, chatapi.AttachArgs{Token: u.token}); err != nil {
		t.Fatalf("%s attaches to %s: %v", user, u.server, err)
	}
	return u
}

// roomTexts returns the texts of room's whole log on u's server.
func roomTexts(t *testing.T, u *diskUser, room string) []string {
	t.Helper()
	r, err := u.chat.Sync(context.Background(), chatapi.SyncArgs{Token: u.token, Room: room})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range r.Messages {
		out = append(out, m.Text)
	}
	return out
}
