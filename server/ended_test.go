package server_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// rawUser is a session attached to a chat server with a callback object
// that records the events delivered.
type rawUser struct {
	user, token string
	chat        chatapi.Stub

	mu     sync.Mutex
	events []chatapi.Event
}

// Deliver implements chatapi.Callback.
func (u *rawUser) Deliver(ctx context.Context, a chatapi.DeliverArgs) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.events = append(u.events, a.Events...)
	return nil
}

// Voice implements chatapi.Callback; these tests use no voice.
func (u *rawUser) Voice(context.Context, chatapi.VoiceDeliverArgs) error { return nil }

func (u *rawUser) told(e chatapi.Event) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.events, e)
}

// attachUser logs user in at central, placed on server, and attaches there.
func attachUser(t *testing.T, c *servertest.Cluster, user, server string) *rawUser {
	t.Helper()
	ctx := context.Background()
	c.Place(user, server)
	lr, err := c.Central().Login(ctx, centralapi.LoginArgs{User: user, Password: c.Password(user)})
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUser{user: user, token: lr.Token}
	callbacks := rmi.NewTable(rmitest.QuietLogger())
	if err := rmi.Export[chatapi.Callback](callbacks, chatapi.CallbackObjectName, u); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Dial(ctx, lr.Server.Addr, callbacks)
	if err != nil {
		t.Fatal(err)
	}
	u.chat = chatapi.Stub{Inv: conn}
	if _, err := u.chat.Attach(ctx, chatapi.AttachArgs{Token: lr.Token}); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestEndedSessionRefusedOnChatServer: after Logout or ResetPassword, the
// session already attached to a chat server is refused there, at once when
// central's push arrives, and within one lease renewal (a third of the
// lease, on the mock clock) when the push is lost. Its client is told, and
// nothing it posts afterwards is stored.
func TestEndedSessionRefusedOnChatServer(t *testing.T) {
	ctx := context.Background()
	logout := func(t *testing.T, c *servertest.Cluster, u *rawUser, _ string) {
		if err := c.Central().Logout(ctx, centralapi.LogoutArgs{Token: u.token}); err != nil {
			t.Fatal(err)
		}
	}
	reset := func(t *testing.T, c *servertest.Cluster, u *rawUser, code string) {
		if _, err := c.Central().ResetPassword(ctx, centralapi.ResetArgs{User: u.user, RecoveryCode: code, NewPassword: "a-new-password"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		end  func(t *testing.T, c *servertest.Cluster, u *rawUser, code string)
		lose bool
	}{
		{"logout", logout, false},
		{"reset", reset, false},
		{"logout, push lost", logout, true},
		{"reset, push lost", reset, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mock := clocktest.New()
			c := servertest.New(t, servertest.Options{Servers: 1, Clock: mock})
			su, err := c.Central().SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: c.Password("alice")})
			if err != nil {
				t.Fatal(err)
			}
			c.AddUser("bob")
			alice, bob := attachUser(t, c, "alice", "server-1"), attachUser(t, c, "bob", "server-1")
			if _, err := alice.chat.CreateRoom(ctx, chatapi.RoomArgs{Token: alice.token, Room: "lobby"}); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.chat.JoinRoom(ctx, chatapi.RoomArgs{Token: bob.token, Room: "lobby"}); err != nil {
				t.Fatal(err)
			}
			post := func(u *rawUser, id, text string) error {
				_, err := u.chat.Post(ctx, chatapi.PostArgs{Token: u.token, Room: "lobby", ID: id, Text: text})
				return err
			}
			if err := post(alice, "1", "before"); err != nil {
				t.Fatal(err)
			}

			c.LoseSessionPushes(tt.lose)
			tt.end(t, c, alice, su.RecoveryCode)
			ended := func() bool {
				return errors.Is(alice.chat.Ping(ctx, chatapi.TokenArgs{Token: alice.token}), chatapi.ErrSessionEnded)
			}
			mock.Add(0) // central's push, if any, runs as a task on its clock
			if tt.lose {
				if ended() {
					t.Fatal("session ended on the chat server without a push or a renewal")
				}
				// The backstop: the next lease renewal, a third of the lease on.
				mock.Add(servertest.LeaseTTL / 3)
			}
			rmitest.WaitFor(t, "the chat server to refuse the ended session", ended)

			if err := post(alice, "2", "after"); !errors.Is(err, chatapi.ErrSessionEnded) {
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
			r, err := bob.chat.Sync(ctx, chatapi.SyncArgs{Token: bob.token, Room: "lobby"})
			if err != nil || len(r.Messages) != 1 || r.Messages[0].Text != "before" {
				t.Fatalf("lobby holds %+v (%v), want only what came before the end", r.Messages, err)
			}
			rmitest.WaitFor(t, "the client to be told its session ended", func() bool {
				mock.Add(0) // the last delivery is a task on the server's clock
				return alice.told(chatapi.Event{Kind: chatapi.EventSessionEnded})
			})
			if err := post(bob, "3", "still here"); err != nil {
				t.Fatalf("bob's session suffered: %v", err)
			}
		})
	}
}
