package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/rmi/rmitest"
)

// testEnv is a Central with two chat servers registered (s1 and s2, with
// web ports), alice placed on s1, and the web port's handler.
type testEnv struct {
	t   *testing.T
	clk *clocktest.Mock
	c   *central.Central
	ca  *pki.CA
	h   *Handler
}

// Web ports of the registered chat servers.
const (
	s1HTTP = "127.0.0.1:8001"
	s2HTTP = "127.0.0.1:8002"
)

const pw = "correct horse"

func newTestEnv(t *testing.T, secure bool) *testEnv {
	t.Helper()
	clk := clocktest.New()
	clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	c, err := central.Open(central.Config{
		Dir: t.TempDir(), Clock: clk, Logger: rmitest.QuietLogger(), PasswordCost: bcrypt.MinCost,
		Prefer: func(user string) string {
			if user == "alice" {
				return "s1"
			}
			return ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	for _, s := range []centralapi.RegisterArgs{
		{Name: "s1", Addr: "127.0.0.1:7001", HTTP: s1HTTP},
		{Name: "s2", Addr: "127.0.0.1:7002", HTTP: s2HTTP},
	} {
		if _, err := c.RegisterServer(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ca, _, err := pki.LoadOrCreateCA(t.TempDir(), clk)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Central: c, CA: ca.Certificate(), Secure: secure, Logger: rmitest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, clk: clk, c: c, ca: ca, h: h}
}

// browser sends requests to the handler from one address, keeping its
// cookies like a browser (without following redirects).
type browser struct {
	e       *testEnv
	addr    string
	cookies map[string]*http.Cookie
}

func (e *testEnv) browser(addr string) *browser {
	return &browser{e: e, addr: addr, cookies: map[string]*http.Cookie{}}
}

// do sends a request (a form body if form is not nil) and returns the
// response and its body.
func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.RemoteAddr = b.addr
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.e.h.ServeHTTP(w, r)
	resp := w.Result()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return resp, w.Body.String()
}

func (b *browser) get(path string) (*http.Response, string) { return b.do(http.MethodGet, path, nil) }

// post fetches the form page first (for its CSRF token), then posts the
// fields to path.
func (b *browser) post(page, path string, fields map[string]string) (*http.Response, string) {
	b.e.t.Helper()
	_, body := b.get(page)
	form := url.Values{csrfField: {csrfOf(b.e.t, body)}}
	for k, v := range fields {
		form.Set(k, v)
	}
	return b.do(http.MethodPost, path, form)
}

var (
	csrfRE  = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
	errorRE = regexp.MustCompile(`<p id="error" class="error" role="alert"( hidden)?>([^<]*)</p>`)
	codeRE  = regexp.MustCompile(`<code id="recovery-code">([^<]*)</code>`)
)

// csrfOf returns the CSRF token of a page's form.
func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

// errorOf returns the text of a page's #error ("" when hidden).
func errorOf(t *testing.T, body string) string {
	t.Helper()
	m := errorRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no #error in the page:\n%s", body)
	}
	if m[1] != "" {
		if m[2] != "" {
			t.Fatalf("#error is hidden but holds %q", m[2])
		}
		return ""
	}
	return m[2]
}

// codeOf returns the recovery code a page shows, or "".
func codeOf(body string) string {
	if m := codeRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// wantIDs checks that body has an element with each id.
func wantIDs(t *testing.T, what, body string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if !strings.Contains(body, ` id="`+id+`"`) {
			t.Errorf("%s has no #%s", what, id)
		}
	}
}

// signUp creates user with password pw through the web pages and returns
// the recovery code shown.
func (b *browser) signUp(user string) string {
	b.e.t.Helper()
	resp, body := b.post("/signup", "/signup", map[string]string{"user": user, "password": pw, "password2": pw})
	code := codeOf(body)
	if resp.StatusCode != http.StatusOK || code == "" {
		b.e.t.Fatalf("sign up %s: %s, no code shown:\n%s", user, resp.Status, body)
	}
	return code
}

// login posts the login form.
func (b *browser) login(user, password string) (*http.Response, string) {
	b.e.t.Helper()
	return b.post("/", "/login", map[string]string{"user": user, "password": password})
}
