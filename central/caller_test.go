package central

import (
	"errors"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
)

// TestWithCallerAddr: a caller address given in the context (the web
// port's HTTP peer) is throttled like an rmi peer's address, over
// Login and ResetPassword alike, and the throttled error says how long
// to wait.
func TestWithCallerAddr(t *testing.T) {
	e := newEnv(t)
	codes := e.signUp("alice")
	e.register("s1")
	web := WithCallerAddr(ctx, "198.51.100.7:51000")
	for range throttleFree {
		_, err := e.c.Login(WithCallerAddr(ctx, "198.51.100.7:52000"), centralapi.LoginArgs{User: "bob", Password: "wrong password"})
		wantErr(t, "wrong password", err, centralapi.ErrBadCredentials)
	}
	_, err := e.c.Login(web, centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "login from the throttled address", err, centralapi.ErrThrottled)
	var te *ThrottledError
	if !errors.As(err, &te) || te.Wait != throttleBase {
		t.Fatalf("throttled error %v: want a *ThrottledError waiting %v", err, throttleBase)
	}
	_, err = e.c.ResetPassword(web, centralapi.ResetArgs{User: "alice", RecoveryCode: codes[0], NewPassword: "new password"})
	wantErr(t, "reset from the throttled address", err, centralapi.ErrThrottled)
	// The same address over rmi shares the count; another does not.
	_, err = e.c.Login(rmi.WithPeer(ctx, rmi.NewPeer(1, "198.51.100.7:40000", false, nil)), centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "login over rmi from the throttled address", err, centralapi.ErrThrottled)
	_, err = e.c.Login(WithCallerAddr(ctx, "198.51.100.8:51000"), centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "login from another address", err, nil)
}
