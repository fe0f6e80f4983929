package server

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// TestEndedSessionRefusedOnChatServer: after Logout or ResetPassword, the
// session already attached to a chat server is refused there, at once when
// central's push arrives, and within one lease renewal (a third of the
// lease, on the mock clock) when the push is lost. Its client is told, and
// nothing it posts afterwards is stored.
func TestEndedSessionRefusedOnChatServer(t *testing.T) {
	ctx := context.Background()
	logout := func(t *testing.T, c *testCluster, cl *testClient, _ string) {
		if err := c.central.Logout(ctx, centralapi.LogoutArgs{Token: cl.token}); err != nil {
			t.Fatal(err)
		}
	}
	reset := func(t *testing.T, c *testCluster, cl *testClient, code string) {
		if _, err := c.central.ResetPassword(ctx, centralapi.ResetArgs{User: cl.user, RecoveryCode: code, NewPassword: "a-new-password"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		end  func(t *testing.T, c *testCluster, cl *testClient, code string)
		lose bool
	}{
		{"logout", logout, false},
		{"reset", reset, false},
		{"logout, push lost", logout, true},
		{"reset, push lost", reset, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mock := clock.NewMock()
			c := newTestClusterClock(t, mock)
			srv := c.startServer("a", ClockHLC)
			su, err := c.central.SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: "password-alice"})
			if err != nil {
				t.Fatal(err)
			}
			c.signup("bob")
			alice, bob := c.login("alice"), c.login("bob")
			if _, err := alice.chat.CreateRoom(ctx, chatapi.RoomArgs{Token: alice.token, Room: "lobby"}); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.chat.JoinRoom(ctx, chatapi.RoomArgs{Token: bob.token, Room: "lobby"}); err != nil {
				t.Fatal(err)
			}
			alice.say("lobby", "1", "before")

			c.losePush.Store(tt.lose)
			tt.end(t, c, alice, su.RecoveryCode)
			ended := func() bool {
				return errors.Is(alice.chat.Ping(ctx, chatapi.TokenArgs{Token: alice.token}), chatapi.ErrSessionEnded)
			}
			if tt.lose {
				// No push: the lease renewal (every third of the 1s lease)
				// is the backstop.
				mock.Add(0)
				if ended() {
					t.Fatal("session ended without a push or a renewal")
				}
				srv.mu.Lock()
				wait := srv.renewWait
				srv.mu.Unlock()
				mock.Add(wait)
			} else {
				mock.Add(0) // central's push runs as a task on its clock
			}
			rmitest.WaitFor(t, "chat server refuses the ended session", ended)

			if _, err := alice.chat.Post(ctx, chatapi.PostArgs{Token: alice.token, Room: "lobby", ID: "2", Text: "after"}); !errors.Is(err, chatapi.ErrSessionEnded) {
				t.Fatalf("post after the end: %v", err)
			}
			if _, err := alice.chat.Sync(ctx, chatapi.SyncArgs{Token: alice.token, Room: "lobby"}); !errors.Is(err, chatapi.ErrSessionEnded) {
				t.Fatalf("sync after the end: %v", err)
			}
			if _, err := alice.chat.JoinRoom(ctx, chatapi.RoomArgs{Token: alice.token, Room: "lobby"}); !errors.Is(err, chatapi.ErrSessionEnded) {
				t.Fatalf("join after the end: %v", err)
			}
			if _, err := alice.chat.Attach(ctx, chatapi.AttachArgs{Token: alice.token}); err == nil {
				t.Fatal("attach after the end succeeded")
			}
			if got := texts(bob.history("lobby")); !slices.Equal(got, []string{"before"}) {
				t.Fatalf("lobby holds %q, want only what came before the end", got)
			}
			rmitest.WaitFor(t, "client told its session ended", func() bool {
				mock.Add(0)
				alice.mu.Lock()
				defer alice.mu.Unlock()
				return slices.Contains(alice.events, chatapi.Event{Kind: chatapi.EventSessionEnded})
			})
			// Bob's session is untouched.
			bob.say("lobby", "3", "still here")
		})
	}
}
