package server

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// errDiskFull is the error of a write to a full test disk.
var errDiskFull = errors.New("injected: no space left on device")

// disk is a chat server's disk as a test sees it (Config.WriteFault): it
// can be made full, and records when it refused a write.
type disk struct {
	clk     clock.Clock
	mu      sync.Mutex
	full    bool
	refused []time.Time
}

// fault is the server's Config.WriteFault.
func (d *disk) fault() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.full {
		return nil
	}
	d.refused = append(d.refused, d.clk.Now())
	return errDiskFull
}

func (d *disk) setFull(full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full = full
}

// refusals returns when the disk refused writes.
func (d *disk) refusals() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.refused)
}

func TestStorageFailureRecoversWithoutRestart(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewMock()
	clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	c := newTestClusterClock(t, clk)
	a := c.startServer("a", ClockHLC)
	c.startServer("b", ClockHLC)
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		c.signup(u)
	}
	alice := c.login("alice")
	bob := c.login("bob")
	if alice.server != "a" || bob.server != "b" {
		t.Fatalf("alice on %s, bob on %s: want a and b", alice.server, bob.server)
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
	before := alice.say("lobby", "m1", "before")

	// a's disk fills: the post that finds out is refused, not acknowledged.
	d := c.disks["a"]
	d.setFull(true)
	failedAt := clk.Now()
	if _, err := post("m2", "refused"); !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("post to a full disk: %v, want ErrStorage", err)
	}
	if a.StorageErr() == nil {
		t.Fatal("storage not marked failing")
	}
	// From then on a refuses posts, pings and attachments at once,
	// without trying to write.
	if _, err := post("m3", "refused too"); !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("second post: %v, want ErrStorage", err)
	}
	if err := alice.chat.Ping(ctx, chatapi.TokenArgs{Token: alice.token}); !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("ping: %v, want ErrStorage", err)
	}
	if n := len(d.refusals()); n != 1 {
		t.Fatalf("%d writes tried on the failing disk, want only the first", n)
	}
	// Central was told before the post was refused: though a is the less
	// loaded, carol goes to b.
	if carol := c.login("carol"); carol.server != "b" {
		t.Fatalf("carol placed on %s while a's storage fails", carol.server)
	}
	// alice is told to move.
	rmitest.WaitFor(t, "alice's move event", func() bool {
		clk.Add(0)
		alice.mu.Lock()
		defer alice.mu.Unlock()
		return slices.Contains(alice.events, chatapi.Event{Kind: chatapi.EventMove})
	})

	// a probes its disk after probeFirst, then twice as long each time.
	clk.Add(probeFirst - time.Millisecond)
	if n := len(d.refusals()); n != 1 {
		t.Fatalf("probed %d times before probeFirst", n-1)
	}
	rmitest.WaitFor(t, "three probes", func() bool {
		clk.Add(10 * time.Millisecond)
		return len(d.refusals()) >= 4
	})
	probes := d.refusals()[1:]
	if got := probes[0].Sub(failedAt); got < probeFirst {
		t.Fatalf("first probe %v after the failure, want at least %v", got, probeFirst)
	}
	for i := 1; i < 3; i++ {
		if got, want := probes[i].Sub(probes[i-1]), probeFirst<<i; got < want {
			t.Fatalf("probe %d came %v after the one before, want at least %v", i+1, got, want)
		}
	}
	if _, err := post("m4", "still refused"); !errors.Is(err, chatapi.ErrStorage) {
		t.Fatalf("post while probing: %v, want ErrStorage", err)
	}

	// Space is freed: the next probe succeeds, with no restart.
	d.setFull(false)
	rmitest.WaitFor(t, "recovery", func() bool {
		clk.Add(100 * time.Millisecond)
		return a.StorageErr() == nil
	})
	after, err := post("m5", "after")
	if err != nil {
		t.Fatalf("post after recovery: %v", err)
	}
	// The refused posts took no seq: a's seqs in the room stay gap-free.
	if before.Stamp.Seq != 1 || after.Stamp.Seq != 2 {
		t.Fatalf("seqs %d then %d, want 1 then 2", before.Stamp.Seq, after.Stamp.Seq)
	}
	want := []string{"before", "after"}
	if got := texts(alice.history("lobby")); !slices.Equal(got, want) {
		t.Fatalf("a's log %v, want %v", got, want)
	}
	rmitest.WaitFor(t, "bob gets both posts", func() bool {
		clk.Add(0)
		return equal(bob.delivered("lobby"), want)
	})
	if got := texts(bob.history("lobby")); !slices.Equal(got, want) {
		t.Fatalf("b's log %v, want %v", got, want)
	}
	// And central places users on a again.
	rmitest.WaitFor(t, "a placeable again", func() bool {
		clk.Add(0)
		lr, err := c.central.Login(ctx, loginArgs("dave"))
		if err != nil {
			t.Fatal(err)
		}
		if lr.Server.Name == "a" {
			return true
		}
		// Not yet told: forget the session, so it does not count as load.
		if err := c.central.Logout(ctx, centralapi.LogoutArgs{Token: lr.Token}); err != nil {
			t.Fatal(err)
		}
		return false
	})
}
