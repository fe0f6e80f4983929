package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSecurityHeaders: every response, whatever the route, method or
// outcome, carries the security headers.
func TestSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	b.signUp("alice")
	requests := []struct {
		method, path string
		form         url.Values
		status       int
	}{
		{"GET", "/", nil, 200},
		{"HEAD", "/", nil, 200},
		{"GET", "/signup", nil, 200},
		{"GET", "/forgot", nil, 200},
		{"GET", "/ca.crt", nil, 200},
		{"GET", "/static/style.css", nil, 200},
		{"GET", "/static/favicon.svg", nil, 200},
		{"GET", "/go", nil, 303},
		{"POST", "/login", url.Values{}, 403},
		{"POST", "/signup", url.Values{}, 403},
		{"POST", "/forgot", url.Values{}, 403},
		{"GET", "/login", nil, 405},
		{"PUT", "/", nil, 405},
		{"DELETE", "/signup", nil, 405},
		{"GET", "/nowhere", nil, 404},
		{"GET", "/static/", nil, 404},
		{"GET", "/templates/layout.html", nil, 404},
	}
	for _, q := range requests {
		resp, _ := b.do(q.method, q.path, q.form)
		if resp.StatusCode != q.status {
			t.Errorf("%s %s: %s, want %d", q.method, q.path, resp.Status, q.status)
		}
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s %s: CSP %q", q.method, q.path, csp)
		}
		for k, v := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"X-Frame-Options":        "DENY",
		} {
			if h.Get(k) != v {
				t.Errorf("%s %s: %s = %q, want %q", q.method, q.path, k, h.Get(k), v)
			}
		}
	}
	// Pages (they hold tokens and codes) are not cached.
	for _, p := range []string{"/", "/signup", "/forgot"} {
		if resp, _ := b.get(p); resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: Cache-Control %q", p, resp.Header.Get("Cache-Control"))
		}
	}
}

// TestEscaping: what a user typed is shown back as text, never as markup.
func TestEscaping(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	for _, evil := range []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `'autofocus onfocus='alert(1)`} {
		for _, p := range []struct{ page, path string }{{"/", "/login"}, {"/signup", "/signup"}, {"/forgot", "/forgot"}} {
			_, body := b.post(p.page, p.path, map[string]string{"user": evil, "password": pw, "password2": pw, "code": "AAAAA-AAAAA-AAAAA-AAAAA"})
			if strings.Contains(body, evil) || strings.Contains(body, "<script") || strings.Contains(body, "<img") {
				t.Errorf("POST %s with user %q: the page holds it unescaped:\n%s", p.path, evil, body)
			}
			if errorOf(t, body) == "" {
				t.Errorf("POST %s with user %q: no error shown", p.path, evil)
			}
		}
	}
}

// TestLimits: an oversized body is refused with 413 before anything runs.
func TestLimits(t *testing.T) {
	e := newTestEnv(t, false)
	b := e.browser("192.0.2.1:1000")
	_, page := b.get("/signup")
	form := url.Values{csrfField: {csrfOf(t, page)}, "user": {"bob"}, "password": {strings.Repeat("p", maxFormBytes)}}
	form.Set("password2", form.Get("password"))
	resp, body := b.do(http.MethodPost, "/signup", form)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorOf(t, body) != "The form is too large." {
		t.Fatalf("oversized signup: %s %q", resp.Status, errorOf(t, body))
	}
	b.signUp("bob") // the name is still free
}
