package central

import (
	"errors"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
)

func TestTickets(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1", "s2")
	lr := e.login("alice")
	redeem := func(tk, server string) (centralapi.TicketReply, error) {
		return e.c.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: tk, Server: server})
	}
	issue := func() string {
		tk, err := e.c.IssueTicket(lr.Token, "s1")
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}

	tk := issue()
	if _, err := redeem(tk, "s2"); !errors.Is(err, centralapi.ErrBadTicket) {
		t.Errorf("another server redeemed the ticket: %v", err)
	}
	got, err := redeem(tk, "s1")
	if err != nil || got.User != "alice" || got.Token != lr.Token {
		t.Fatalf("redeem at s1: %+v, %v", got, err)
	}
	if _, err := redeem(tk, "s1"); !errors.Is(err, centralapi.ErrBadTicket) {
		t.Errorf("a ticket was redeemed twice: %v", err)
	}
	if _, err := redeem("made-up", "s1"); !errors.Is(err, centralapi.ErrBadTicket) {
		t.Errorf("a made-up ticket: %v", err)
	}

	tk = issue()
	e.clk.Add(centralapi.TicketTTL)
	if _, err := redeem(tk, "s1"); !errors.Is(err, centralapi.ErrBadTicket) {
		t.Errorf("an expired ticket: %v", err)
	}

	// A ticket of a session that ended since is worthless.
	tk = issue()
	if err := e.c.Logout(ctx, centralapi.LogoutArgs{Token: lr.Token}); err != nil {
		t.Fatal(err)
	}
	if _, err := redeem(tk, "s1"); !errors.Is(err, centralapi.ErrBadSession) {
		t.Errorf("a ticket of a logged-out session: %v", err)
	}
	if _, err := e.c.IssueTicket("not a token", "s1"); err == nil {
		t.Error("a ticket was issued for a malformed token")
	}
}

func TestTicketsBounded(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1")
	lr := e.login("alice")
	first, err := e.c.IssueTicket(lr.Token, "s1")
	if err != nil {
		t.Fatal(err)
	}
	for range maxTickets {
		if _, err := e.c.IssueTicket(lr.Token, "s1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.c.tickets); n != maxTickets {
		t.Errorf("%d tickets outstanding, want at most %d", n, maxTickets)
	}
	if _, err := e.c.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: first, Server: "s1"}); !errors.Is(err, centralapi.ErrBadTicket) {
		t.Errorf("the oldest ticket survived: %v", err)
	}
}
