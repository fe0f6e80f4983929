package rmi

import (
	"errors"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/clocktest"
)

func TestLeases(t *testing.T) {
	mock := clocktest.New()
	expired := make(chan string, 8)
	l := NewLeases(mock, func(id string) { expired <- id })
	defer l.Close()

	noExpiry := func() {
		t.Helper()
		select {
		case id := <-expired:
			t.Fatalf("unexpected expiry of %q", id)
		default:
		}
	}

	l.Grant("a", 10*time.Second)
	l.Grant("b", 10*time.Second)
	if !l.Held("a") || !l.Held("b") || l.Held("c") {
		t.Fatal("Held wrong after Grant")
	}
	mock.Add(6 * time.Second)
	if err := l.Renew("a", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mock.Add(4 * time.Second) // b's lease runs out; a's has 6s left
	if id := waitChan(t, "b to expire", expired); id != "b" {
		t.Fatalf("expired %q, want b", id)
	}
	if l.Held("b") || !l.Held("a") {
		t.Fatal("Held wrong after b expired")
	}
	if err := l.Renew("b", time.Second); !errors.Is(err, ErrLeaseExpired) {
		t.Fatalf("renewing an expired lease: %v", err)
	}
	if err := l.Renew("never", time.Second); !errors.Is(err, ErrLeaseExpired) {
		t.Fatalf("renewing an unknown lease: %v", err)
	}
	noExpiry()

	mock.Add(6 * time.Second)
	if id := waitChan(t, "a to expire", expired); id != "a" {
		t.Fatalf("expired %q, want a", id)
	}

	// Revoke: no expiry callback.
	l.Grant("c", time.Second)
	if !l.Revoke("c") {
		t.Fatal("Revoke of a held lease returned false")
	}
	if l.Revoke("c") {
		t.Fatal("second Revoke returned true")
	}
	mock.Add(2 * time.Second)
	noExpiry()

	// Granting again replaces the old lease (and its timer).
	l.Grant("d", time.Second)
	l.Grant("d", 5*time.Second)
	mock.Add(2 * time.Second)
	noExpiry()
	if !l.Held("d") {
		t.Fatal("re-granted lease lost")
	}

	// A lease whose time is up cannot be renewed, even at the very instant.
	l.Grant("e", time.Second)
	mock.Add(time.Second)
	if err := l.Renew("e", time.Second); !errors.Is(err, ErrLeaseExpired) {
		t.Fatalf("renewal at expiry: %v", err)
	}
	if id := waitChan(t, "e to expire", expired); id != "e" {
		t.Fatalf("expired %q, want e", id)
	}

	// Close: nothing expires afterwards.
	l.Close()
	mock.Add(time.Hour)
	noExpiry()
	if l.Held("d") {
		t.Fatal("lease held after Close")
	}
	l.Grant("f", time.Second) // ignored after Close
	if l.Held("f") {
		t.Fatal("Grant after Close took effect")
	}
}
