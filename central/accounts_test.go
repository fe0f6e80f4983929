package central

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central/centralapi"
)

func TestSignUp(t *testing.T) {
	e := newEnv(t)
	e.signUp("taken")
	tests := []struct {
		name, user, password string
		want                 error
	}{
		{"ok", "alice", pw, nil},
		{"ok with punctuation", "b0b_the.builder-2", pw, nil},
		{"min length password", "carol", "12345678", nil},
		{"max length password", "dave", strings.Repeat("x", MaxPasswordLen), nil},
		{"short password", "erin", "1234567", centralapi.ErrWeakPassword},
		{"empty password", "erin", "", centralapi.ErrWeakPassword},
		{"long password", "erin", strings.Repeat("x", MaxPasswordLen+1), centralapi.ErrWeakPassword},
		{"taken", "taken", pw, centralapi.ErrUserExists},
		{"empty name", "", pw, centralapi.ErrBadName},
		{"upper case", "Alice", pw, centralapi.ErrBadName},
		{"leading dot", ".alice", pw, centralapi.ErrBadName},
		{"colon", "a:b", pw, centralapi.ErrBadName},
		{"space", "a b", pw, centralapi.ErrBadName},
		{"too long", strings.Repeat("a", 33), pw, centralapi.ErrBadName},
		{"longest", strings.Repeat("a", 32), pw, nil},
	}
	codeRE := regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.c.SignUp(ctx, centralapi.SignUpArgs{User: tt.user, Password: tt.password})
			wantErr(t, "SignUp", err, tt.want)
			if err == nil && !codeRE.MatchString(r.RecoveryCode) {
				t.Fatalf("recovery code %q has the wrong form", r.RecoveryCode)
			}
		})
	}
	// A long password works in full: a different 1024-byte password with
	// the same first 72 bytes does not log in (bcrypt alone would accept it).
	e.register("s1")
	long := strings.Repeat("x", MaxPasswordLen)
	if _, err := e.c.Login(ctx, centralapi.LoginArgs{User: "dave", Password: long}); err != nil {
		t.Fatalf("login with long password: %v", err)
	}
	other := long[:MaxPasswordLen-1] + "y"
	_, err := e.c.Login(ctx, centralapi.LoginArgs{User: "dave", Password: other})
	wantErr(t, "login with other long password", err, centralapi.ErrBadCredentials)
}

func TestRecoveryCodesDiffer(t *testing.T) {
	e := newEnv(t)
	codes := e.signUp("a1", "a2", "a3")
	if codes[0] == codes[1] || codes[1] == codes[2] || codes[0] == codes[2] {
		t.Fatalf("recovery codes repeat: %v", codes)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	_, err := e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "Login with no servers", err, centralapi.ErrNoServers)
	if n := e.countSessions(); n != 0 {
		t.Fatalf("Login without servers left %d sessions", n)
	}
	e.register("s1")
	tests := []struct {
		name, user, password string
		want                 error
	}{
		{"ok", "alice", pw, nil},
		{"wrong password", "alice", pw + "!", centralapi.ErrBadCredentials},
		{"empty password", "alice", "", centralapi.ErrBadCredentials},
		{"huge password", "alice", strings.Repeat("x", 5000), centralapi.ErrBadCredentials},
		{"unknown user", "mallory", pw, centralapi.ErrBadCredentials},
		{"bad name", "Mallory", pw, centralapi.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.countSessions()
			r, err := e.c.Login(ctx, centralapi.LoginArgs{User: tt.user, Password: tt.password})
			wantErr(t, "Login", err, tt.want)
			if err != nil {
				if n := e.countSessions(); n != before {
					t.Fatalf("failed Login changed session count %d -> %d", before, n)
				}
				return
			}
			if r.User != tt.user || len(r.Token) != 64 || r.Server.Name != "s1" ||
				r.Server.Addr != "127.0.0.1:7000" || r.Server.HTTP != "127.0.0.1:8000" {
				t.Fatalf("Login reply %+v", r)
			}
			if _, err := sessionKey(r.Token); err != nil {
				t.Fatalf("token %q is not well-formed: %v", r.Token, err)
			}
		})
	}
	a, b := e.login("alice"), e.login("alice")
	if a.Token == b.Token {
		t.Fatal("two logins returned the same token")
	}
}

func TestDummyHashMatchesCost(t *testing.T) {
	e := newEnv(t)
	cost, err := bcrypt.Cost(e.c.dummyHash)
	if err != nil || cost != bcrypt.MinCost {
		t.Fatalf("dummy hash cost %d, %v; want %d", cost, err, bcrypt.MinCost)
	}
}

func TestReassign(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice", "bob")
	e.register("s1", "s2")
	r := e.connect("alice") // on s1
	if r.Server.Name != "s1" {
		t.Fatalf("first login placed on %s, want s1", r.Server.Name)
	}
	gone := e.login("bob")
	if err := e.c.Logout(ctx, centralapi.LogoutArgs{Token: gone.Token}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, failed string
		wantServer          string
		want                error
	}{
		{"away from failed", r.Token, "s1", "s2", nil},
		{"no failed given", r.Token, "", "s1", nil},
		{"unknown failed", r.Token, "s9", "s1", nil},
		{"malformed token", "abc", "s1", "", centralapi.ErrBadSession},
		{"upper-case token", strings.ToUpper(r.Token), "s1", "", centralapi.ErrBadSession},
		{"unknown token", strings.Repeat("ab", 32), "s1", "", centralapi.ErrBadSession},
		{"logged out token", gone.Token, "s1", "", centralapi.ErrBadSession},
		{"bad failed name", r.Token, "s 1", "", centralapi.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.c.Reassign(ctx, centralapi.ReassignArgs{Token: tt.token, Failed: tt.failed})
			wantErr(t, "Reassign", err, tt.want)
			if err == nil && (got.Server.Name != tt.wantServer || got.User != "alice" || got.Token != r.Token) {
				t.Fatalf("Reassign = %+v, want alice on %s", got, tt.wantServer)
			}
		})
	}
	// Reassign away from s1 detached the session from s1.
	if m := e.room(mustDirect(t, e, "alice", "bob")).Members[0]; len(m.Servers) != 0 {
		t.Fatalf("alice still attached after Reassign away from s1: %+v", m)
	}
	// The only live server is the failed one.
	if err := e.c.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: "s2"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.Reassign(ctx, centralapi.ReassignArgs{Token: r.Token, Failed: "s1"})
	wantErr(t, "Reassign with only the failed server", err, centralapi.ErrNoServers)
}

func mustDirect(t *testing.T, e *env, a, b string) string {
	t.Helper()
	r, err := e.c.DirectRoom(ctx, centralapi.DirectArgs{User: a, Peer: b})
	if err != nil {
		t.Fatal(err)
	}
	return r.Name
}

func TestResetPassword(t *testing.T) {
	e := newEnv(t)
	codes := e.signUp("alice", "bob")
	e.register("s1")
	s1 := e.connect("alice")
	s2 := e.login("alice")
	bobs := e.connect("bob")

	badCode := "AAAAA-AAAAA-AAAAA-AAAAA"
	if badCode == codes[0] {
		badCode = "BBBBB-BBBBB-BBBBB-BBBBB"
	}
	fails := []struct {
		name string
		args centralapi.ResetArgs
		want error
	}{
		{"wrong code", centralapi.ResetArgs{User: "alice", RecoveryCode: badCode, NewPassword: "new password"}, centralapi.ErrBadRecoveryCode},
		{"other user's code", centralapi.ResetArgs{User: "alice", RecoveryCode: codes[1], NewPassword: "new password"}, centralapi.ErrBadRecoveryCode},
		{"malformed code", centralapi.ResetArgs{User: "alice", RecoveryCode: "1234", NewPassword: "new password"}, centralapi.ErrBadRecoveryCode},
		{"empty code", centralapi.ResetArgs{User: "alice", NewPassword: "new password"}, centralapi.ErrBadRecoveryCode},
		{"unknown user", centralapi.ResetArgs{User: "zed", RecoveryCode: codes[0], NewPassword: "new password"}, centralapi.ErrBadRecoveryCode},
		{"weak new password", centralapi.ResetArgs{User: "alice", RecoveryCode: codes[0], NewPassword: "short"}, centralapi.ErrWeakPassword},
		{"bad name", centralapi.ResetArgs{User: "A", RecoveryCode: codes[0], NewPassword: "new password"}, centralapi.ErrBadName},
	}
	for _, tt := range fails {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.c.ResetPassword(ctx, tt.args)
			wantErr(t, "ResetPassword", err, tt.want)
		})
	}
	// Failed attempts changed nothing.
	e.login("alice")

	// The code is accepted in lower case without dashes.
	typed := strings.ToLower(strings.ReplaceAll(codes[0], "-", " "))
	r, err := e.c.ResetPassword(ctx, centralapi.ResetArgs{User: "alice", RecoveryCode: typed, NewPassword: "new password"})
	if err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if r.RecoveryCode == "" || r.RecoveryCode == codes[0] {
		t.Fatalf("recovery code not rotated: %q", r.RecoveryCode)
	}
	_, err = e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: pw})
	wantErr(t, "Login with old password", err, centralapi.ErrBadCredentials)
	if _, err := e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: "new password"}); err != nil {
		t.Fatalf("Login with new password: %v", err)
	}
	for _, tok := range []string{s1.Token, s2.Token} {
		_, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: tok, Server: "s1"})
		wantErr(t, "CheckSession of a session ended by reset", err, centralapi.ErrBadSession)
	}
	if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: bobs.Token, Server: "s1"}); err != nil {
		t.Fatalf("bob's session ended by alice's reset: %v", err)
	}
	// Alice is no longer attached anywhere.
	info, err := e.c.UserRooms(ctx, centralapi.UserArgs{User: "alice"})
	if err != nil || len(info.Rooms) != 0 {
		t.Fatalf("UserRooms = %v, %v", info, err)
	}
	if on := e.c.userServersLocked("alice"); len(on) != 0 {
		t.Fatalf("alice still attached at %v after reset", on)
	}
	// The old code is spent; the new one works.
	_, err = e.c.ResetPassword(ctx, centralapi.ResetArgs{User: "alice", RecoveryCode: codes[0], NewPassword: "third password"})
	wantErr(t, "reusing a spent code", err, centralapi.ErrBadRecoveryCode)
	if _, err := e.c.ResetPassword(ctx, centralapi.ResetArgs{User: "alice", RecoveryCode: r.RecoveryCode, NewPassword: "third password"}); err != nil {
		t.Fatalf("ResetPassword with the new code: %v", err)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1")
	r := e.connect("alice")
	other := e.connect("alice")
	tests := []struct {
		name, token string
		want        error
	}{
		{"ok", r.Token, nil},
		{"twice", r.Token, centralapi.ErrBadSession},
		{"malformed", "x", centralapi.ErrBadSession},
		{"unknown", strings.Repeat("0", 64), centralapi.ErrBadSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "Logout", e.c.Logout(ctx, centralapi.LogoutArgs{Token: tt.token}), tt.want)
		})
	}
	_, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: r.Token, Server: "s1"})
	wantErr(t, "CheckSession after Logout", err, centralapi.ErrBadSession)
	if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: other.Token, Server: "s1"}); err != nil {
		t.Fatalf("other session ended by Logout: %v", err)
	}
	if n := e.serverLoad("s1"); n != 1 {
		t.Fatalf("s1 load %d after logging out one of two sessions, want 1", n)
	}
}

func (e *env) serverLoad(name string) int {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	if s := e.c.servers[name]; s != nil {
		return len(s.sessions)
	}
	return -1
}

func (c *Central) userServersLocked(user string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.userServers(user)
}

func TestCheckSession(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1", "s2")
	r := e.login("alice")
	tests := []struct {
		name, token, server string
		want                error
	}{
		{"ok", r.Token, "s1", nil},
		{"again", r.Token, "s1", nil},
		{"second server", r.Token, "s2", nil},
		{"malformed token", "zz", "s1", centralapi.ErrBadSession},
		{"unknown token", strings.Repeat("f", 64), "s1", centralapi.ErrBadSession},
		{"unknown server", r.Token, "s3", centralapi.ErrUnknownServer},
		{"bad server name", r.Token, "-s", centralapi.ErrBadName},
		{"empty server name", r.Token, "", centralapi.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: tt.token, Server: tt.server})
			wantErr(t, "CheckSession", err, tt.want)
			if err == nil && info.User != "alice" {
				t.Fatalf("CheckSession user %q", info.User)
			}
		})
	}
	if got := e.c.userServersLocked("alice"); strings.Join(got, ",") != "s1,s2" {
		t.Fatalf("alice attached at %v, want s1,s2", got)
	}
	if a, b := e.serverLoad("s1"), e.serverLoad("s2"); a != 1 || b != 1 {
		t.Fatalf("loads s1=%d s2=%d, want 1 and 1 (attaching twice counts once)", a, b)
	}
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1")
	used := e.login("alice")
	idle := e.login("alice")
	// Use one session past half its life: it is extended.
	e.clk.Add(DefaultSessionTTL/2 + time.Hour)
	e.register("s1") // keep s1 live despite the jump
	if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: used.Token, Server: "s1"}); err != nil {
		t.Fatalf("CheckSession at 15 days: %v", err)
	}
	e.clk.Add(DefaultSessionTTL/2 + time.Hour)
	e.register("s1")
	if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: used.Token, Server: "s1"}); err != nil {
		t.Fatalf("extended session rejected: %v", err)
	}
	_, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: idle.Token, Server: "s1"})
	wantErr(t, "idle session after 30 days", err, centralapi.ErrBadSession)
	_, err = e.c.Reassign(ctx, centralapi.ReassignArgs{Token: idle.Token})
	wantErr(t, "Reassign of idle session", err, centralapi.ErrBadSession)
	if n := e.countSessions(); n != 1 {
		t.Fatalf("%d sessions stored, want 1 (the expired one deleted)", n)
	}
}

func TestSessionSweep(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.SessionTTL = 2 * time.Hour })
	e.signUp("alice")
	e.register("s1")
	for i := 0; i < 3; i++ {
		e.login("alice")
	}
	if n := e.countSessions(); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	// Nobody touches them; the periodic sweep removes them. The sweep runs
	// in a goroutine of its own when its timer fires, perhaps after the
	// next Add: time goes on until it has run past their expiry.
	rmitest.WaitFor(t, "sweep of expired sessions", func() bool {
		if e.countSessions() == 0 {
			return true
		}
		e.clk.Add(time.Hour)
		return false
	})
}

func TestEndSession(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1")
	r := e.connect("alice")
	tests := []struct {
		name, token, server string
		want                error
	}{
		{"ok", r.Token, "s1", nil},
		{"not attached", r.Token, "s1", nil},
		{"unknown server", r.Token, "s2", nil},
		{"malformed", "", "s1", centralapi.ErrBadSession},
		{"bad server name", r.Token, "s/1", centralapi.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "EndSession", e.c.EndSession(ctx, centralapi.SessionArgs{Token: tt.token, Server: tt.server}), tt.want)
		})
	}
	if n := e.serverLoad("s1"); n != 0 {
		t.Fatalf("s1 load %d after EndSession", n)
	}
	// The session stays valid.
	if _, err := e.c.Reassign(ctx, centralapi.ReassignArgs{Token: r.Token}); err != nil {
		t.Fatalf("session invalid after EndSession: %v", err)
	}
}

func TestSecretsNotStoredOrLogged(t *testing.T) {
	e := newEnv(t)
	password := "Sekrit-Passw0rd-xyzzy"
	r, err := e.c.SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	e.register("s1")
	l, err := e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.CheckSession(ctx, centralapi.SessionArgs{Token: l.Token, Server: "s1"}); err != nil {
		t.Fatal(err)
	}
	e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: password + "wrong"})
	r2, err := e.c.ResetPassword(ctx, centralapi.ResetArgs{User: "alice", RecoveryCode: r.RecoveryCode, NewPassword: password + "2"})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: password + "2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(filepath.Join(e.dir, "central.db"))
	if err != nil {
		t.Fatal(err)
	}
	logs := e.log.String()
	if !strings.Contains(logs, "alice") {
		t.Fatalf("log does not mention the user at all; is logging wired? %q", logs)
	}
	secrets := []string{password, password + "2", l.Token, l2.Token,
		r.RecoveryCode, strings.ReplaceAll(r.RecoveryCode, "-", ""),
		r2.RecoveryCode, strings.ReplaceAll(r2.RecoveryCode, "-", "")}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains secret %q", s)
		}
		if strings.Contains(string(db), s) {
			t.Errorf("database contains secret %q", s)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{},
		{Dir: t.TempDir(), PasswordCost: 1},
		{Dir: t.TempDir(), PasswordCost: bcrypt.MaxCost + 1},
		{Dir: t.TempDir(), ServerLeaseTTL: -time.Second},
		{Dir: file},
	} {
		cfg.Logger = rmitest.QuietLogger()
		if c, err := Open(cfg); err == nil {
			c.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestOpenDefaults(t *testing.T) {
	c, err := Open(Config{Dir: filepath.Join(t.TempDir(), "new", "dir"), Logger: rmitest.QuietLogger(), PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.leaseTTL != 10*time.Second || c.sessionTTL != 30*24*time.Hour || c.clk == nil {
		t.Fatalf("defaults: lease %v session %v clock %v", c.leaseTTL, c.sessionTTL, c.clk)
	}
	r, err := c.RegisterServer(context.Background(), centralapi.RegisterArgs{Name: "s1", Addr: "h:1"})
	if err != nil || r.LeaseTTL != 10*time.Second {
		t.Fatalf("RegisterServer = %+v, %v", r, err)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	e.signUp("alice")
	e.register("s1")
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: pw}); err == nil {
		t.Fatal("Login after Close succeeded")
	}
	if _, err := e.c.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s1", Addr: "h:1"}); err == nil {
		t.Fatal("RegisterServer after Close succeeded")
	}
	_, err := e.c.RenewServer(ctx, centralapi.RenewArgs{Name: "s1"})
	wantErr(t, "RenewServer after Close", err, centralapi.ErrUnknownServer)
	if _, err := e.c.Room(ctx, centralapi.RoomQuery{Room: "x"}); err == nil {
		t.Fatal("Room after Close succeeded")
	}
}
