package client

import (
	"context"
	"errors"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// TestAttachPostAndLogoutSession attaches a session logged in elsewhere
// (as the web gateway does), posts twice with one id (stored once), and
// ends the session with LogoutSession: the attached client hears Ended.
func TestAttachPostAndLogoutSession(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1)
	w.AddUser("ann")
	lr, err := w.Central().Login(ctx, centralapi.LoginArgs{User: "ann", Password: w.Password("ann")})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	cfg := w.cfg("")
	cfg.Password = ""
	cfg.OnMessage = rec.onMessage
	cfg.OnStatus = rec.onStatus
	c, err := Attach(ctx, cfg, Session{Token: lr.Token, Server: lr.Server}) // the server names the user
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if c.User() != "ann" || c.Server() != lr.Server.Name {
		t.Fatalf("attached as %q on %q, want ann on %s", c.User(), c.Server(), lr.Server.Name)
	}
	if _, err := c.CreateRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	first, err := c.Post(ctx, "r", "id-1", "hello")
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	again, err := c.Post(ctx, "r", "id-1", "hello")
	if err != nil {
		t.Fatalf("Post again: %v", err)
	}
	if again.Stamp != first.Stamp {
		t.Fatalf("retried post stamped %v, first %v: want the same", again.Stamp, first.Stamp)
	}
	if got := c.View("r"); len(got) != 1 || got[0].ID != "id-1" {
		t.Fatalf("view of r = %v, want the one post", got)
	}
	if _, err := c.Post(ctx, "r", "id-2", ""); !errors.Is(err, chatapi.ErrEmpty) {
		t.Fatalf("empty Post: %v, want ErrEmpty", err)
	}

	if err := LogoutSession(ctx, w.cfg(""), lr.Token); err != nil {
		t.Fatalf("LogoutSession: %v", err)
	}
	rmitest.WaitFor(t, "the attached client to hear its session ended", func() bool {
		st := rec.status()
		return len(st) > 0 && st[len(st)-1].Kind == Ended
	})
	if _, err := c.Post(ctx, "r", "id-3", "after"); !errors.Is(err, chatapi.ErrSessionEnded) {
		t.Fatalf("Post after logout: %v, want ErrSessionEnded", err)
	}
}
