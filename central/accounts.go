package central

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
)

// Recovery codes: 20 base32 characters (100 random bits), shown in four
// groups of five, e.g. "7K2QD-MX4VA-PLR3N-ZB6WE".
const (
	recoveryChars = 20
	recoveryGroup = 5
)

// hashSecret hashes a password or recovery code with bcrypt. The secret is
// first reduced with SHA-256 (base64-encoded, so it has no NUL bytes),
// because bcrypt only reads 72 bytes and passwords may be up to 1024. It
// waits for one of the limited bcrypt slots (see checkSlot).
func (c *Central) hashSecret(ctx context.Context, secret string) ([]byte, error) {
	release, err := c.checkSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return bcrypt.GenerateFromPassword(prehash(secret), c.cost)
}

// secretMatches reports whether secret matches hash, taking as long as a
// real comparison even when hash is nil (unknown user). It waits for one
// of the limited bcrypt slots (see checkSlot).
func (c *Central) secretMatches(ctx context.Context, hash []byte, secret string) (bool, error) {
	release, err := c.checkSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	if hash == nil {
		_ = bcrypt.CompareHashAndPassword(c.dummyHash, prehash(secret))
		return false, nil
	}
	return bcrypt.CompareHashAndPassword(hash, prehash(secret)) == nil, nil
}

// Bounds on the calls waiting for a password check slot (checkSlot).
const (
	// maxCheckWaiting caps the calls waiting at once; more are refused.
	maxCheckWaiting = 64
	// maxCheckWait caps the time a call waits, even without a deadline.
	maxCheckWait = 10 * time.Second
)

// checkSlot waits for one of the slots that cap concurrent bcrypt work at
// the number of CPUs, so that a flood of password checks queues instead
// of starving everything else. Call release when done. The queue is
// bounded too, so that a flood cannot hold requests (and their memory)
// without end: a call finding maxCheckWaiting others waiting, or waiting
// longer than maxCheckWait, fails with ErrBusy; one whose ctx ends first
// fails with ctx's error.
func (c *Central) checkSlot(ctx context.Context) (release func(), err error) {
	release = func() { <-c.checks }
	select {
	case c.checks <- struct{}{}:
		return release, nil
	default:
	}
	// The timer starts before the call joins the queue, so that a call
	// counted as waiting always has its limit.
	timer := c.clk.Timer(maxCheckWait)
	defer timer.Stop()
	select {
	case c.checkQueue <- struct{}{}:
		defer func() { <-c.checkQueue }()
	default:
		return nil, fmt.Errorf("%d calls waiting for a password check: %w", maxCheckWaiting, centralapi.ErrBusy)
	}
	select {
	case c.checks <- struct{}{}:
		return release, nil
	case <-timer.C:
		return nil, fmt.Errorf("waited %v for a password check: %w", maxCheckWait, centralapi.ErrBusy)
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a password check: %w", ctx.Err())
	}
}

func prehash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// newToken returns a fresh session token and its storage key.
func (c *Central) newToken() (token, key string, err error) {
	b := make([]byte, tokenLen/2)
	if err := c.readRand(b); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, string(sum[:]), nil
}

// newRecoveryCode returns a fresh recovery code in its display form.
func (c *Central) newRecoveryCode() (string, error) {
	b := make([]byte, 13) // 104 bits, of which 100 are used
	if err := c.readRand(b); err != nil {
		return "", err
	}
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)[:recoveryChars]
	var out strings.Builder
	for i := 0; i < len(s); i += recoveryGroup {
		if i > 0 {
			out.WriteByte('-')
		}
		out.WriteString(s[i : i+recoveryGroup])
	}
	return out.String(), nil
}

// normalizeRecoveryCode strips separators and case, so that a user may type
// the code in any reasonable way. ok is false if it cannot be a code.
func normalizeRecoveryCode(code string) (string, bool) {
	if len(code) > 4*recoveryChars {
		return "", false
	}
	var b strings.Builder
	for _, r := range code {
		switch {
		case r == '-' || r == ' ' || r == '\t':
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case (r >= 'A' && r <= 'Z') || (r >= '2' && r <= '7'):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != recoveryChars {
		return "", false
	}
	return b.String(), true
}

// SignUp implements [CentralServer]: it creates an account and returns its
// recovery code.
func (c *Central) SignUp(ctx context.Context, a centralapi.SignUpArgs) (centralapi.SignUpReply, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.SignUpReply{}, fmt.Errorf("sign up: %w", err)
	}
	if err := checkPassword(a.Password); err != nil {
		return centralapi.SignUpReply{}, fmt.Errorf("sign up %s: %w", q(a.User), err)
	}
	// Fail fast on a taken name, before spending bcrypt time.
	if err := kv.View(ctx, c.store, func(tx *kv.Tx) error {
		if _, ok, err := getUser(tx, a.User); err != nil || ok {
			return errors.Join(err, fmt.Errorf("user %s: %w", q(a.User), centralapi.ErrUserExists))
		}
		return nil
	}); err != nil {
		return centralapi.SignUpReply{}, fmt.Errorf("sign up: %w", err)
	}
	code, err := c.newRecoveryCode()
	if err != nil {
		return centralapi.SignUpReply{}, err
	}
	norm, _ := normalizeRecoveryCode(code)
	pwHash, err := c.hashSecret(ctx, a.Password)
	if err != nil {
		return centralapi.SignUpReply{}, fmt.Errorf("sign up %s: %w", q(a.User), err)
	}
	rcHash, err := c.hashSecret(ctx, norm)
	if err != nil {
		return centralapi.SignUpReply{}, fmt.Errorf("sign up %s: %w", q(a.User), err)
	}
	if err := ctx.Err(); err != nil {
		return centralapi.SignUpReply{}, fmt.Errorf("sign up %s: %w", q(a.User), err)
	}
	_, err = kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		if _, ok, err := getUser(tx, a.User); err != nil || ok {
			return errors.Join(err, fmt.Errorf("user %s: %w", q(a.User), centralapi.ErrUserExists))
		}
		return putUser(tx, a.User, userRecord{
			PasswordHash: pwHash, RecoveryHash: rcHash, Created: c.clk.Now(),
		})
	})
	if err != nil {
		return centralapi.SignUpReply{}, fmt.Errorf("sign up: %w", err)
	}
	c.log.Info("user signed up", "user", a.User)
	return centralapi.SignUpReply{RecoveryCode: code}, nil
}

// Login implements [CentralServer]: it checks the password, opens a session
// and places it on the least-loaded live chat server. Unknown users and
// wrong passwords both get ErrBadCredentials, after the same bcrypt work;
// too many failures get ErrThrottled, before any (see throttle.go).
func (c *Central) Login(ctx context.Context, a centralapi.LoginArgs) (centralapi.LoginReply, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.LoginReply{}, fmt.Errorf("log in: %w", err)
	}
	addr := callerAddr(ctx)
	if err := c.admitAttempt(a.User, addr); err != nil {
		return centralapi.LoginReply{}, fmt.Errorf("log in %s: %w", q(a.User), err)
	}
	var hash []byte
	if err := kv.View(ctx, c.store, func(tx *kv.Tx) error {
		u, _, err := getUser(tx, a.User)
		hash = u.PasswordHash
		return err
	}); err != nil {
		c.endAttempt(a.User, addr, attemptUnchecked)
		return centralapi.LoginReply{}, fmt.Errorf("log in %s: %w", q(a.User), err)
	}
	ok := false
	if len(a.Password) <= MaxPasswordLen {
		var err error
		if ok, err = c.secretMatches(ctx, hash, a.Password); err != nil {
			c.endAttempt(a.User, addr, attemptUnchecked)
			return centralapi.LoginReply{}, fmt.Errorf("log in %s: %w", q(a.User), err)
		}
	}
	if !ok {
		c.endAttempt(a.User, addr, attemptFailed)
		c.log.Info("login failed", "user", a.User, "addr", addr)
		return centralapi.LoginReply{}, fmt.Errorf("log in %s: %w", q(a.User), centralapi.ErrBadCredentials)
	}
	c.endAttempt(a.User, addr, attemptSucceeded)
	if err := ctx.Err(); err != nil {
		return centralapi.LoginReply{}, fmt.Errorf("log in %s: %w", q(a.User), err)
	}
	// Place first, so that no session is created when there is nowhere to
	// send it.
	c.mu.Lock()
	srv, gen, err := c.place(a.User, "", "")
	c.mu.Unlock()
	if err != nil {
		return centralapi.LoginReply{}, fmt.Errorf("log in %s: %w", q(a.User), err)
	}
	token, key, err := c.newToken()
	if err != nil {
		return centralapi.LoginReply{}, err
	}
	now := c.clk.Now()
	rec := sessionRecord{User: a.User, Created: now, Expires: now.Add(c.sessionTTL)}
	if _, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error { return putSession(tx, key, rec) }); err != nil {
		return centralapi.LoginReply{}, fmt.Errorf("log in %s: %w", q(a.User), err)
	}
	c.mu.Lock()
	info, ok := c.notePlacement(key, srv.Name, gen)
	c.mu.Unlock()
	if !ok {
		// The server died in between; the client will ask for Reassign.
		info = srv
	}
	c.log.Info("user logged in", "user", a.User, "session", shortID(key), "server", info.Name)
	return centralapi.LoginReply{User: a.User, Token: token, Server: info}, nil
}

// Reassign implements [CentralServer]: it places a valid session on the
// least-loaded live chat server other than args.Failed.
func (c *Central) Reassign(ctx context.Context, a centralapi.ReassignArgs) (centralapi.LoginReply, error) {
	key, err := sessionKey(a.Token)
	if err != nil {
		return centralapi.LoginReply{}, fmt.Errorf("reassign: %w", err)
	}
	if a.Failed != "" {
		if err := checkServer(a.Failed); err != nil {
			return centralapi.LoginReply{}, fmt.Errorf("reassign: failed %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, err := c.validSession(ctx, key)
	if err != nil {
		return centralapi.LoginReply{}, fmt.Errorf("reassign: %w", err)
	}
	if a.Failed != "" && c.detach(key, a.Failed) {
		if err := c.storeDetach(ctx, key, a.Failed); err != nil {
			return centralapi.LoginReply{}, fmt.Errorf("reassign: %w", err)
		}
	}
	srv, gen, err := c.place(rec.User, key, a.Failed)
	if err != nil {
		return centralapi.LoginReply{}, fmt.Errorf("reassign %s: %w", q(rec.User), err)
	}
	info, _ := c.notePlacement(key, srv.Name, gen)
	c.log.Info("session reassigned", "user", rec.User, "session", shortID(key), "failed", a.Failed, "server", info.Name)
	return centralapi.LoginReply{User: rec.User, Token: a.Token, Server: info}, nil
}

// ResetPassword implements [CentralServer]: with the right recovery code it
// sets the new password, replaces the recovery code and ends all the user's
// sessions. An unknown user and a wrong code both get ErrBadRecoveryCode;
// it shares Login's throttle.
func (c *Central) ResetPassword(ctx context.Context, a centralapi.ResetArgs) (centralapi.ResetReply, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password: %w", err)
	}
	if err := checkPassword(a.NewPassword); err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: new %w", q(a.User), err)
	}
	addr := callerAddr(ctx)
	if err := c.admitAttempt(a.User, addr); err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), err)
	}
	norm, ok := normalizeRecoveryCode(a.RecoveryCode)
	if !ok {
		c.endAttempt(a.User, addr, attemptFailed)
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: malformed code: %w", q(a.User), centralapi.ErrBadRecoveryCode)
	}
	var old []byte
	if err := kv.View(ctx, c.store, func(tx *kv.Tx) error {
		u, _, err := getUser(tx, a.User)
		old = u.RecoveryHash
		return err
	}); err != nil {
		c.endAttempt(a.User, addr, attemptUnchecked)
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), err)
	}
	ok, err := c.secretMatches(ctx, old, norm)
	if err != nil {
		c.endAttempt(a.User, addr, attemptUnchecked)
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), err)
	}
	if !ok {
		c.endAttempt(a.User, addr, attemptFailed)
		c.log.Info("password reset failed", "user", a.User, "addr", addr)
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), centralapi.ErrBadRecoveryCode)
	}
	c.endAttempt(a.User, addr, attemptSucceeded)
	code, err := c.newRecoveryCode()
	if err != nil {
		return centralapi.ResetReply{}, err
	}
	newNorm, _ := normalizeRecoveryCode(code)
	pwHash, err := c.hashSecret(ctx, a.NewPassword)
	if err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), err)
	}
	rcHash, err := c.hashSecret(ctx, newNorm)
	if err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), err)
	}
	if err := ctx.Err(); err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ended, err := userSessionKeys(ctx, c.store, a.User)
	if err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), err)
	}
	// The first sessions end with the password change, in one
	// transaction; a user with more than fit in one (kv.MaxTxnOps) has
	// the others ended right after.
	first, rest := ended[:min(len(ended), sessionsPerTxn)], ended[min(len(ended), sessionsPerTxn):]
	_, err = kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		u, ok, err := getUser(tx, a.User)
		if err != nil {
			return err
		}
		// The code is single-use: a concurrent reset with the same code
		// must not also succeed.
		if !ok || !bytes.Equal(u.RecoveryHash, old) {
			return centralapi.ErrBadRecoveryCode
		}
		u.PasswordHash, u.RecoveryHash = pwHash, rcHash
		if err := putUser(tx, a.User, u); err != nil {
			return err
		}
		for _, k := range first {
			deleteSession(tx, k, a.User)
		}
		return nil
	})
	if err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: %w", q(a.User), err)
	}
	if err := c.deleteSessions(ctx, a.User, rest); err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("reset password of %s: password changed, ending its sessions: %w", q(a.User), err)
	}
	for _, k := range ended {
		c.dropSession(k)
	}
	c.log.Info("password reset", "user", a.User, "sessions_ended", len(ended))
	return centralapi.ResetReply{RecoveryCode: code}, nil
}

// Logout implements [CentralServer]: it ends the session.
func (c *Central) Logout(ctx context.Context, a centralapi.LogoutArgs) error {
	key, err := sessionKey(a.Token)
	if err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var user string
	_, err = kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		rec, ok, err := getSession(tx, key)
		if err != nil {
			return err
		}
		if !ok {
			return centralapi.ErrBadSession
		}
		user = rec.User
		deleteSession(tx, key, rec.User)
		return nil
	})
	if err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	c.dropSession(key)
	c.log.Info("user logged out", "user", user, "session", shortID(key))
	return nil
}
