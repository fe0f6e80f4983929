package central

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
)

// TestThrottleCore: an address gets throttleFree failures free, then waits
// that double up to throttleMax; a user under attack limits each address
// to one failure, without slowing an address that has not failed; all is
// forgotten after throttleForget.
func TestThrottleCore(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	th := newThrottle()
	for i := 0; i < throttleFree; i++ {
		if w := th.wait("alice", "A", now); w != 0 {
			t.Fatalf("failure %d waited %v", i+1, w)
		}
		th.failed("bob", "A", now) // another user: counts for the address
	}
	if w := th.wait("alice", "A", now); w != throttleBase {
		t.Fatalf("after %d failures the address waits %v, want %v", throttleFree, w, throttleBase)
	}
	if w := th.wait("alice", "B", now); w != 0 {
		t.Fatalf("another address waits %v", w)
	}
	// Waits double, up to the cap.
	want := throttleBase
	for i := 0; i < 10; i++ {
		now = now.Add(th.wait("alice", "A", now))
		th.failed("carol", "A", now)
		want = min(2*want, throttleMax)
		if w := th.wait("alice", "A", now); w != want {
			t.Fatalf("after %d more failures the wait is %v, want %v", i+1, w, want)
		}
	}
	// Bob is under attack (from A): B is not slowed until it fails once.
	if w := th.wait("bob", "B", now); w != 0 {
		t.Fatalf("an address that never failed for bob waits %v", w)
	}
	th.failed("bob", "B", now)
	if w := th.wait("bob", "B", now); w != throttleBase {
		t.Fatalf("after one failure for a user under attack, B waits %v, want %v", w, throttleBase)
	}
	if w := th.wait("dave", "B", now); w != 0 {
		t.Fatalf("B waits %v for another user", w)
	}
	// A success ends the attack on bob.
	th.succeeded("bob", "C")
	th.failed("bob", "D", now)
	if w := th.wait("bob", "D", now); w != 0 {
		t.Fatalf("after bob's success, one failure from D waits %v", w)
	}
	// Everything is forgotten in time, and swept.
	now = now.Add(throttleForget)
	if w := th.wait("alice", "A", now); w != 0 {
		t.Fatalf("after %v the address still waits %v", throttleForget, w)
	}
	th.failed("erin", "E", now)
	if len(th.keys) != 3 {
		t.Fatalf("%d keys after the sweep, want erin's 3", len(th.keys))
	}
}

// TestThrottleUnfailed: a failure taken back no longer counts, for the
// address, the user or the pair.
func TestThrottleUnfailed(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	th := newThrottle()
	for range throttleFree {
		th.failed("alice", "A", now)
	}
	if w := th.wait("alice", "A", now); w == 0 {
		t.Fatalf("after %d failures alice from A need not wait", throttleFree)
	}
	th.unfailed("alice", "A")
	if w := th.wait("alice", "A", now); w != 0 {
		t.Fatalf("after a failure was taken back alice from A waits %v", w)
	}
	for _, k := range []string{"a A", "u alice", "p alice A"} {
		if n := th.count(k, now); n != throttleFree-1 {
			t.Fatalf("%q counts %d failures, want %d", k, n, throttleFree-1)
		}
	}
}

// TestLoginThrottled: the 21st rapid wrong password from one address is
// refused (ErrThrottled, before any check) for the wait, the right
// password from another address still works, and ResetPassword shares the
// limit.
func TestLoginThrottled(t *testing.T) {
	e := newEnv(t)
	codes := e.signUp("alice")
	e.register("s1")
	from := func(addr string) context.Context {
		return rmi.WithPeer(ctx, rmi.NewPeer(1, addr, false, nil))
	}
	a, b := from("192.0.2.1:40000"), from("192.0.2.2:40000")
	for i := 0; i < 20; i++ {
		_, err := e.c.Login(from(fmt.Sprintf("192.0.2.1:%d", 30000+i)), centralapi.LoginArgs{User: "alice", Password: "wrong password"})
		wantErr(t, "wrong password", err, centralapi.ErrBadCredentials)
	}
	_, err := e.c.Login(a, centralapi.LoginArgs{User: "alice", Password: "wrong password"})
	wantErr(t, "21st wrong password", err, centralapi.ErrThrottled)
	_, err = e.c.Login(a, centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "right password from the throttled address", err, centralapi.ErrThrottled)
	_, err = e.c.ResetPassword(a, centralapi.ResetArgs{User: "alice", RecoveryCode: codes[0], NewPassword: "new password"})
	wantErr(t, "reset from the throttled address", err, centralapi.ErrThrottled)
	_, err = e.c.Login(b, centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "right password from another address", err, nil)

	// After the wait, the address may try again.
	e.clk.Add(throttleBase)
	_, err = e.c.Login(a, centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "right password after the wait", err, nil)
}

// TestPasswordChecksAreCapped: password checks wait for a free slot (at
// most one per CPU run at once), bounded by the caller's context, and an
// unknown user's login waits like a known one's: it does the same work.
func TestPasswordChecksAreCapped(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	for i := 0; i < cap(e.c.checks); i++ {
		e.c.checks <- struct{}{}
	}
	for _, user := range []string{"alice", "nobody"} {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := e.c.Login(cctx, centralapi.LoginArgs{User: user, Password: "wrong password"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("login as %s with every check slot taken: %v, want to wait until the context ends", user, err)
		}
	}
	for i := 0; i < cap(e.c.checks); i++ {
		<-e.c.checks
	}
	for _, user := range []string{"alice", "nobody"} {
		_, err := e.c.Login(ctx, centralapi.LoginArgs{User: user, Password: "wrong password"})
		wantErr(t, "login as "+user, err, centralapi.ErrBadCredentials)
	}
}

// TestConcurrentAttemptsThrottled sends many wrong passwords at once from
// one address while every password check slot is taken, so that none is
// checked before the others are admitted: only throttleFree may reach the
// check, as if they had come one after another; the rest are refused at
// once, and the right password from another address still works.
func TestConcurrentAttemptsThrottled(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1")
	held := cap(e.c.checks)
	for range held {
		e.c.checks <- struct{}{}
	}
	freeSlots := func() {
		for ; held > 0; held-- {
			<-e.c.checks
		}
	}
	t.Cleanup(freeSlots)

	const n = 5 * throttleFree
	results := make(chan error, n)
	for i := range n {
		a := rmi.WithPeer(ctx, rmi.NewPeer(uint64(i), fmt.Sprintf("192.0.2.1:%d", 30000+i), false, nil))
		go func() {
			_, err := e.c.Login(a, centralapi.LoginArgs{User: "alice", Password: "wrong password"})
			results <- err
		}()
	}
	var throttled []error
	rmitest.WaitForWhy(t, "the attempts over the allowance to be refused", func() (bool, string) {
		for len(results) > 0 {
			throttled = append(throttled, <-results)
		}
		return len(throttled) >= n-throttleFree, fmt.Sprintf("%d of %d refused", len(throttled), n-throttleFree)
	})
	freeSlots()
	var checked []error
	for len(checked) < throttleFree {
		checked = append(checked, <-results)
	}
	for _, err := range throttled {
		wantErr(t, "an attempt over the allowance", err, centralapi.ErrThrottled)
	}
	for _, err := range checked {
		wantErr(t, "an attempt within the allowance", err, centralapi.ErrBadCredentials)
	}
	if len(results) > 0 {
		t.Fatalf("%d attempts more than the allowance ended", len(results))
	}
	b := rmi.WithPeer(ctx, rmi.NewPeer(uint64(n), "192.0.2.2:40000", false, nil))
	_, err := e.c.Login(b, centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "right password from another address", err, nil)
}

// TestPasswordCheckQueueBounded: with every check slot taken, at most
// maxCheckWaiting calls wait for one; the next ones are refused at once
// with ErrBusy, and those waiting give up with ErrBusy after
// maxCheckWait, though they have no deadline of their own.
func TestPasswordCheckQueueBounded(t *testing.T) {
	e := newEnv(t)
	held := cap(e.c.checks)
	for range held {
		e.c.checks <- struct{}{}
	}
	t.Cleanup(func() {
		for ; held > 0; held-- {
			<-e.c.checks
		}
	})
	const extra = 3
	n := maxCheckWaiting + extra
	results := make(chan error, n)
	for i := range n {
		go func() {
			_, err := e.c.SignUp(ctx, centralapi.SignUpArgs{User: fmt.Sprintf("user%d", i), Password: pw})
			results <- err
		}()
	}
	collect := func(what string, want int) []error {
		var errs []error
		rmitest.WaitForWhy(t, what, func() (bool, string) {
			for len(results) > 0 {
				errs = append(errs, <-results)
			}
			return len(errs) >= want, fmt.Sprintf("%d of %d", len(errs), want)
		})
		return errs
	}
	for _, err := range collect("the calls over the bound to be refused", extra) {
		wantErr(t, "a check over the queue's bound", err, centralapi.ErrBusy)
	}
	e.clk.Add(maxCheckWait)
	for _, err := range collect("the waiting calls to give up", maxCheckWaiting) {
		wantErr(t, "a check that waited too long", err, centralapi.ErrBusy)
	}
}
