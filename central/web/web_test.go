package web

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/pki"
)

var ctx = context.Background()

// TestPagesRender: the three pages render with the contract's element ids
// and no error shown; the login page offers the CA with its fingerprint.
func TestPagesRender(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	pages := []struct {
		path string
		ids  []string
	}{
		{"/", []string{"login-form", "user", "password", "login", "forgot-link", "signup-link", "error", "ca-link", "ca-fingerprint"}},
		{"/signup", []string{"user", "password", "password2", "signup", "error"}},
		{"/forgot", []string{"user", "code", "password", "password2", "reset", "error"}},
	}
	for _, p := range pages {
		resp, body := b.get(p.path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s: %s %q", p.path, resp.Status, resp.Header.Get("Content-Type"))
		}
		wantIDs(t, p.path, body, p.ids...)
		if msg := errorOf(t, body); msg != "" {
			t.Errorf("GET %s shows an error: %q", p.path, msg)
		}
		csrfOf(t, body)
		if strings.Contains(body, "<script") || strings.Contains(body, " style=") {
			t.Errorf("GET %s has inline script or style", p.path)
		}
	}
	_, body := b.get("/")
	m := regexp.MustCompile(`<code id="ca-fingerprint">([^<]*)</code>`).FindStringSubmatch(body)
	if fp := e.ca.Fingerprint(); m == nil || html.UnescapeString(m[1]) != fp {
		t.Errorf("the login page does not show the CA fingerprint %s: %q", fp, m)
	}
	for _, link := range []string{`id="forgot-link" href="/forgot"`, `id="signup-link" href="/signup"`, `id="ca-link" href="/ca.crt"`} {
		if !strings.Contains(body, link) {
			t.Errorf("the login page lacks %s", link)
		}
	}
	if !strings.Contains(body, `<form id="login-form" method="post" action="/login">`) {
		t.Error("the login form does not post to /login")
	}

	resp, body := b.get("/ca.crt")
	blk, _ := pem.Decode([]byte(body))
	if resp.StatusCode != http.StatusOK || blk == nil {
		t.Fatalf("GET /ca.crt: %s, %q", resp.Status, body)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !cert.Equal(e.ca.Certificate()) || pki.Fingerprint(cert) != e.ca.Fingerprint() {
		t.Fatalf("/ca.crt is not the cluster CA: %v", err)
	}
	resp, body = b.get("/static/style.css")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "#5b2a86") {
		t.Fatalf("GET /static/style.css: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
}

// TestLoginRedirect: a login sets central's cookie and sends the browser
// to its chat server's /auth with a ticket that server can redeem, once,
// for the same session.
func TestLoginRedirect(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := newTestEnv(t, secure)
		b := e.browser("192.0.2.1:1000")
		b.signUp("alice")
		resp, body := b.login("alice", pw)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %s\n%s", resp.Status, body)
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Scheme+"://"+loc.Host != centralapi.WebURL(s1HTTP) || loc.Path != "/auth" {
			t.Fatalf("login redirected to %q, want %s/auth?ticket=...", resp.Header.Get("Location"), centralapi.WebURL(s1HTTP))
		}
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == SessionCookie {
				cookie = c
			}
		}
		if cookie == nil || cookie.Value == "" || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode ||
			cookie.Path != "/" || cookie.Secure != secure {
			t.Fatalf("secure=%v: session cookie %+v", secure, cookie)
		}
		ticket := loc.Query().Get("ticket")
		_, err = e.c.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: ticket, Server: "s2"})
		if !errors.Is(err, centralapi.ErrBadTicket) {
			t.Fatalf("another server redeemed the ticket: %v", err)
		}
		got, err := e.c.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: ticket, Server: "s1"})
		if err != nil || got.User != "alice" || got.Token != cookie.Value {
			t.Fatalf("redeem at s1 = %+v, %v; want alice with the cookie's token", got, err)
		}
		if _, err := e.c.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: ticket, Server: "s1"}); !errors.Is(err, centralapi.ErrBadTicket) {
			t.Fatalf("the ticket was redeemed twice: %v", err)
		}
		for _, c := range resp.Cookies() {
			if c.Name == csrfCookie {
				t.Errorf("the login response replaced the CSRF cookie")
			}
		}
	}
}

// TestWrongCredentialsLookAlike: a wrong password and an unknown user get
// the same status and page, the one message.
func TestWrongCredentialsLookAlike(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	b.signUp("alice")
	r1, wrongPW := b.login("alice", "wrong password")
	r2, noUser := b.login("nobody", "wrong password")
	r3, badName := b.login("No Such Name!", "wrong password")
	for _, r := range []*http.Response{r1, r2, r3} {
		if r.StatusCode != http.StatusUnauthorized || r.Header.Get("Location") != "" {
			t.Fatalf("wrong credentials: %s, Location %q", r.Status, r.Header.Get("Location"))
		}
	}
	if msg := errorOf(t, wrongPW); msg != msgBadCredentials {
		t.Fatalf("wrong password shows %q, want %q", msg, msgBadCredentials)
	}
	same := func(body, user string) string { return strings.ReplaceAll(body, user, "USER") }
	if same(wrongPW, "alice") != same(noUser, "nobody") || same(wrongPW, "alice") != same(badName, "No Such Name!") {
		t.Fatalf("the pages differ:\n%s\n---\n%s", wrongPW, noUser)
	}
	if _, ok := b.cookies[SessionCookie]; ok {
		t.Fatal("a failed login set the session cookie")
	}
}

// TestLoginThrottledByIP: after the free failures from one IP (over any
// user names, any ports), that IP waits, even with the right password,
// and the page says how long; another IP is not slowed.
func TestLoginThrottledByIP(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	b.signUp("alice")
	for i := range 20 {
		attacker := e.browser("192.0.2.66:" + string(rune('0'+i%10)) + "000")
		if resp, _ := attacker.login("bob", "guess"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %s", i+1, resp.Status)
		}
	}
	attacker := e.browser("192.0.2.66:9999")
	resp, body := attacker.login("alice", pw)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("the 21st attempt from one IP: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if msg := errorOf(t, body); msg != "Too many failed attempts. Wait 1 second and try again." {
		t.Fatalf("throttled page shows %q", msg)
	}
	// The forgot page shares the throttle.
	resp, body = attacker.post("/forgot", "/forgot", map[string]string{"user": "alice", "code": "AAAAA-AAAAA-AAAAA-AAAAA", "password": "new password", "password2": "new password"})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(errorOf(t, body), "Wait 1 second") {
		t.Fatalf("forgot from the throttled IP: %s %q", resp.Status, errorOf(t, body))
	}
	if resp, body := b.login("alice", pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("alice from her own IP: %s %q", resp.Status, errorOf(t, body))
	}
	e.clk.Add(time.Second)
	if resp, body := attacker.login("alice", pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the wait: %s %q", resp.Status, errorOf(t, body))
	}
}
