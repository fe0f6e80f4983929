package central

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv/boltkv"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// TestMembershipChangesReachServedServers: with two front-ends on one
// store, a membership change made at either reaches, through each
// front-end's watch, the chat servers of the room's members, each told
// by the front-end that serves it (where it renews its lease), once.
func TestMembershipChangesReachServedServers(t *testing.T) {
	clk := clocktest.New()
	clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	store, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), boltkv.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	var mu sync.Mutex
	var told []string // "front-end server-address room"
	open := func(name string) *Central {
		connect := func(addr string) rmi.Invoker {
			return invokerFunc(func(ctx context.Context, object, method string, args, reply any) error {
				if a, ok := args.(chatapi.RoomChangedArgs); ok && method == "RoomChanged" {
					mu.Lock()
					for _, r := range a.Rooms {
						told = append(told, name+" "+addr+" "+r)
					}
					mu.Unlock()
				}
				return nil
			})
		}
		c, err := Open(Config{Store: keepOpen{store}, Clock: clk, Logger: rmitest.QuietLogger(),
			PasswordCost: bcrypt.MinCost, ServerLeaseTTL: 10 * time.Second, Connect: connect})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	fe1, fe2 := open("fe1"), open("fe2")
	for _, s := range []struct {
		fe   *Central
		name string
	}{{fe1, "s1"}, {fe2, "s2"}, {fe2, "s3"}} {
		if _, err := s.fe.RegisterServer(ctx, centralapi.RegisterArgs{Name: s.name, Addr: s.name + ":7000"}); err != nil {
			t.Fatal(err)
		}
	}
	// alice on s1 (served by fe1), bob on s2 (served by fe2); s3 has no
	// member of the room.
	for _, u := range []struct{ user, server string }{{"alice", "s1"}, {"bob", "s2"}} {
		if _, err := fe1.SignUp(ctx, centralapi.SignUpArgs{User: u.user, Password: pw}); err != nil {
			t.Fatal(err)
		}
		l, err := fe1.Login(ctx, centralapi.LoginArgs{User: u.user, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fe2.CheckSession(ctx, centralapi.SessionArgs{Token: l.Token, Server: u.server}); err != nil {
			t.Fatal(err)
		}
	}
	rmitest.WaitFor(t, "both front-ends to see both attachments", func() bool {
		for _, fe := range []*Central{fe1, fe2} {
			fe.mu.Lock()
			a, b := fe.userServers("alice"), fe.userServers("bob")
			fe.mu.Unlock()
			if !slices.Equal(a, []string{"s1"}) || !slices.Equal(b, []string{"s2"}) {
				return false
			}
		}
		return true
	})

	// A front-end tells the servers of the room's members as it finds
	// them when it handles a change, so each change is made once the one
	// before it has been told: then who hears of it is fixed. s1 hears of
	// each change from fe1; s2 of bob's join and leave (it has a member of
	// the room then, or he is the one who left) from fe2; s3 of none.
	waitTold := func(want ...string) {
		t.Helper()
		rmitest.WaitForWhy(t, "the servers to be told", func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			got := slices.Sorted(slices.Values(told))
			return slices.Equal(got, want), fmt.Sprintf("told %q, want %q", got, want)
		})
	}
	if _, err := fe2.CreateRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	waitTold("fe1 s1:7000 lobby")
	if _, err := fe2.JoinRoom(ctx, centralapi.RoomArgs{User: "bob", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	waitTold("fe1 s1:7000 lobby", "fe1 s1:7000 lobby", "fe2 s2:7000 lobby")
	if _, err := fe1.LeaveRoom(ctx, centralapi.RoomArgs{User: "bob", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	waitTold("fe1 s1:7000 lobby", "fe1 s1:7000 lobby", "fe1 s1:7000 lobby", "fe2 s2:7000 lobby", "fe2 s2:7000 lobby")
}
