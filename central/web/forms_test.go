package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
)

// TestCSRFRefused: a POST without the CSRF cookie, without the token, or
// with a token of another browser is refused with 403 and does nothing.
func TestCSRFRefused(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	b.signUp("alice")
	other := e.browser("192.0.2.2:1000")
	_, otherPage := other.get("/")
	otherToken := csrfOf(t, otherPage)

	attempts := []struct {
		what   string
		path   string
		fields url.Values
		cookie bool
	}{
		{"login without the cookie", "/login", url.Values{"user": {"alice"}, "password": {pw}, csrfField: {otherToken}}, false},
		{"login without the token", "/login", url.Values{"user": {"alice"}, "password": {pw}}, true},
		{"login with another browser's token", "/login", url.Values{"user": {"alice"}, "password": {pw}, csrfField: {otherToken}}, true},
		{"signup with a wrong token", "/signup", url.Values{"user": {"mallory"}, "password": {pw}, "password2": {pw}, csrfField: {"00"}}, true},
		{"forgot with a wrong token", "/forgot", url.Values{"user": {"alice"}, "code": {"x"}, "password": {"new password"}, "password2": {"new password"}, csrfField: {otherToken}}, true},
	}
	for _, a := range attempts {
		v := e.browser("192.0.2.3:1000")
		if a.cookie {
			v.get("/")
		}
		resp, body := v.do(http.MethodPost, a.path, a.fields)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %s, Location %q", a.what, resp.Status, resp.Header.Get("Location"))
		}
		if msg := errorOf(t, body); !strings.Contains(msg, "expired or was sent from another site") {
			t.Errorf("%s: page shows %q", a.what, msg)
		}
		if _, ok := v.cookies[SessionCookie]; ok {
			t.Errorf("%s: a session cookie was set", a.what)
		}
		if codeOf(body) != "" {
			t.Errorf("%s: a recovery code was shown", a.what)
		}
	}
	// Nothing happened: mallory does not exist (the name is free), and
	// alice's password is unchanged.
	b.signUp("mallory")
	if resp, _ := b.login("alice", pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("alice's password changed: %s", resp.Status)
	}
}

// TestSignup: each bad input gets its message (and the name typed back),
// and a good one shows the recovery code once.
func TestSignup(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	b.signUp("taken")
	cases := []struct {
		user, pw, pw2 string
		status        int
		msg           string
	}{
		{"bob", pw, pw + "x", http.StatusBadRequest, msgPasswordsDiffer},
		{"bob", "short", "short", http.StatusBadRequest, msgWeakPassword},
		{"Bob Smith", pw, pw, http.StatusBadRequest, msgBadName},
		{"", pw, pw, http.StatusBadRequest, msgNoUser},
		{"taken", pw, pw, http.StatusConflict, "That user name is taken. Choose another."},
	}
	for _, c := range cases {
		resp, body := b.post("/signup", "/signup", map[string]string{"user": c.user, "password": c.pw, "password2": c.pw2})
		if resp.StatusCode != c.status || errorOf(t, body) != c.msg {
			t.Errorf("sign up %q/%q/%q: %s %q, want %d %q", c.user, c.pw, c.pw2, resp.Status, errorOf(t, body), c.status, c.msg)
		}
		if codeOf(body) != "" {
			t.Errorf("sign up %q: a code was shown", c.user)
		}
		if c.user != "" && !strings.Contains(body, `value="`+template.HTMLEscapeString(c.user)+`"`) {
			t.Errorf("sign up %q: the name was not typed back", c.user)
		}
		if strings.Contains(body, c.pw) && c.pw != "" && c.pw != "short" {
			t.Errorf("sign up %q: the page echoes the password", c.user)
		}
	}
	resp, body := b.post("/signup", "/signup", map[string]string{"user": "bob", "password": pw, "password2": pw})
	code := codeOf(body)
	if resp.StatusCode != http.StatusOK || len(code) != 23 {
		t.Fatalf("sign up bob: %s, recovery code %q", resp.Status, code)
	}
	wantIDs(t, "the code page", body, "recovery-code", "to-login")
	for _, p := range []string{"/", "/signup", "/forgot"} {
		if _, body := b.get(p); strings.Contains(body, code) {
			t.Errorf("GET %s shows the recovery code again", p)
		}
	}
	// The account works.
	if resp, _ := b.login("bob", pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as the new user: %s", resp.Status)
	}
}

// TestForgot: a wrong code is refused with the one message; the right one
// sets the new password, ends the sessions and shows the next code, and
// is spent.
func TestForgot(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	code := b.signUp("alice")
	if resp, _ := b.login("alice", pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatal(resp.Status)
	}
	session := b.cookies[SessionCookie].Value
	const newPW = "battery staple"
	forgot := func(user, code, p1, p2 string) (*http.Response, string) {
		return b.post("/forgot", "/forgot", map[string]string{"user": user, "code": code, "password": p1, "password2": p2})
	}
	cases := []struct {
		user, code, pw, pw2 string
		status              int
		msg                 string
	}{
		{"alice", "AAAAA-AAAAA-AAAAA-AAAAA", newPW, newPW, http.StatusUnauthorized, msgBadRecoveryCode},
		{"nobody", code, newPW, newPW, http.StatusUnauthorized, msgBadRecoveryCode},
		{"alice", "not a code", newPW, newPW, http.StatusUnauthorized, msgBadRecoveryCode},
		{"alice", code, newPW, "other password", http.StatusBadRequest, msgPasswordsDiffer},
		{"alice", code, "short", "short", http.StatusBadRequest, msgWeakPassword},
		{"alice", "", newPW, newPW, http.StatusBadRequest, msgNoCode},
	}
	for _, c := range cases {
		resp, body := forgot(c.user, c.code, c.pw, c.pw2)
		if resp.StatusCode != c.status || errorOf(t, body) != c.msg || codeOf(body) != "" {
			t.Errorf("forgot %+v: %s %q", c, resp.Status, errorOf(t, body))
		}
		if strings.Contains(body, code) {
			t.Errorf("forgot %+v: the page echoes the recovery code", c)
		}
	}
	resp, body := forgot("alice", strings.ToLower(code), newPW, newPW)
	next := codeOf(body)
	if resp.StatusCode != http.StatusOK || next == "" || next == code {
		t.Fatalf("forgot with the code: %s %q, next code %q", resp.Status, errorOf(t, body), next)
	}
	wantIDs(t, "the code page", body, "recovery-code", "to-login")
	if _, err := e.c.Reassign(ctx, centralapi.ReassignArgs{Token: session}); err == nil {
		t.Error("the session survived the reset")
	}
	if resp, _ := b.login("alice", pw); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the old password still works: %s", resp.Status)
	}
	if resp, _ := b.login("alice", newPW); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the new password does not work: %s", resp.Status)
	}
	if resp, body := forgot("alice", code, newPW, newPW); resp.StatusCode != http.StatusUnauthorized || errorOf(t, body) != msgBadRecoveryCode {
		t.Errorf("the spent code: %s %q", resp.Status, errorOf(t, body))
	}
	if resp, _ := forgot("alice", next, pw, pw); resp.StatusCode != http.StatusOK {
		t.Errorf("the next code: %s", resp.Status)
	}
}

// TestGo: /go places the session of central's cookie on a live server
// other than the failed one; without a (valid) session it goes to login.
func TestGo(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	b.signUp("alice")
	if resp, _ := b.login("alice", pw); !strings.HasPrefix(resp.Header.Get("Location"), centralapi.WebURL(s1HTTP)+"/auth?ticket=") {
		t.Fatalf("alice was not sent to s1: %q", resp.Header.Get("Location"))
	}
	token := b.cookies[SessionCookie].Value
	resp, body := b.get("/go?failed=s1")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Host != s2HTTP || loc.Path != "/auth" {
		t.Fatalf("/go?failed=s1: %s to %q\n%s", resp.Status, resp.Header.Get("Location"), body)
	}
	got, err := e.c.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: loc.Query().Get("ticket"), Server: "s2"})
	if err != nil || got.User != "alice" || got.Token != token {
		t.Fatalf("redeem the /go ticket at s2: %+v, %v", got, err)
	}
	if resp, body := b.get("/go?failed=" + url.QueryEscape("<b>")); resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "<b>") {
		t.Errorf("/go with a bad server name: %s", resp.Status)
	}

	// Logged out: /go clears the cookie and goes to the login page.
	if err := e.c.Logout(ctx, centralapi.LogoutArgs{Token: token}); err != nil {
		t.Fatal(err)
	}
	resp, _ = b.get("/go?failed=s1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("/go with an ended session: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if _, ok := b.cookies[SessionCookie]; ok {
		t.Error("/go kept the cookie of an ended session")
	}
	resp, _ = e.browser("192.0.2.9:1000").get("/go")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("/go without a cookie: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
}
