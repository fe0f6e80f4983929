package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/web"
)

// TestAuthCookieAndRedirects: a ticket becomes the session cookie, with
// its attributes; a bad ticket, and the app without a cookie, go to
// central's login page; every response has the security headers.
func TestAuthCookieAndRedirects(t *testing.T) {
	e := newEnv(t, 1, nil)
	site := e.sites["server-1"].URL
	ck := e.login("ann", "server-1")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure || ck.Value == "" {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over http, a token", ck)
	}

	resp, err := noRedirect.Get(site + "/auth?ticket=nonsense")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != centralWeb+"/" {
		t.Errorf("bad ticket: %s to %q, want 303 to %s/", resp.Status, resp.Header.Get("Location"), centralWeb)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("bad ticket set cookies %v", resp.Cookies())
	}

	resp, err = noRedirect.Get(site + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != centralWeb+"/" {
		t.Errorf("app without cookie: %s to %q, want 303 to central", resp.Status, resp.Header.Get("Location"))
	}

	req, _ := http.NewRequest("GET", site+"/", nil)
	req.AddCookie(ck)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="composer"`) {
		t.Fatalf("app: %s, body has no composer", resp.Status)
	}
	if strings.Contains(string(body), "<script>") {
		t.Error("the app page has an inline script")
	}
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, part := range []string{"script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, part) || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP %q: want %q and no unsafe-inline", csp, part)
		}
	}
	for _, asset := range []string{"/static/app.js", "/static/conn.js", "/static/ui.js", "/static/app.css"} {
		resp, err := http.Get(site + asset)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", asset, resp.Status)
		}
	}
}

// TestWebSocketOriginAndCookie: a WebSocket from another origin is
// refused before anything else; one without a session is told it ended.
func TestWebSocketOriginAndCookie(t *testing.T) {
	e := newEnv(t, 1, nil)
	site := e.sites["server-1"].URL
	ck := e.login("ann", "server-1")
	for _, origin := range []string{"http://evil.example", "", strings.Replace(site, "127.0.0.1", "localhost", 1)} {
		_, resp, err := dialWS(site, ck, origin)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("WebSocket from origin %q: %v, want 403", origin, err)
		}
	}
	ws, _, err := dialWS(site, nil, site)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, data, err := ws.Read(context.Background())
	if err != nil || string(data) != `{"type":"ended"}` {
		t.Errorf("WebSocket without a cookie got %s, %v; want ended", data, err)
	}
}

// TestTwoServersSameOrder: ann on server-1 and bob on server-2 talk over
// their pages; both pages end with the same list, in stamp order, built
// only from each push's before.
func TestTwoServersSameOrder(t *testing.T) {
	e := newEnv(t, 2, nil)
	ann := e.open("server-1", e.login("ann", "server-1"))
	bob := e.open("server-2", e.login("bob", "server-2"))
	ann.must("create", map[string]any{"room": "r"})
	bob.must("join", map[string]any{"room": "r"})
	var want []string
	for i := range 6 {
		p, who := ann, "ann"
		if i%2 == 1 {
			p, who = bob, "bob"
		}
		text := fmt.Sprintf("%s-%d", who, i)
		want = append(want, text)
		r := p.must("post", map[string]any{"room": "r", "id": fmt.Sprintf("id-%d", i), "text": text})
		if r.Msg == nil || r.Msg.From != who || r.Msg.Text != text || r.Msg.Stamp == "" {
			t.Fatalf("post reply %+v", r.Msg)
		}
	}
	for _, p := range []*page{ann, bob} {
		rmitest.WaitForWhy(t, "both pages to show the conversation", func() (bool, string) {
			got := p.shown("r")
			return slices.Equal(got, want), fmt.Sprint(got)
		})
	}
	// The newest page of history is the same list.
	h := bob.must("history", map[string]any{"room": "r", "before": ""})
	var texts []string
	for _, m := range h.Messages {
		texts = append(texts, m.Text)
	}
	if !slices.Equal(texts, want) {
		t.Errorf("history = %v, want %v", texts, want)
	}
	who := ann.must("who", map[string]any{"room": "r"})
	if len(who.Members) != 2 || !who.Members[0].Online || !who.Members[1].Online {
		t.Errorf("who r = %+v, want ann and bob online", who.Members)
	}
}

// TestLateMessageGoesBefore: a message that reaches ann's page after one
// with a larger stamp is pushed with that one's id as before.
func TestLateMessageGoesBefore(t *testing.T) {
	e := newEnv(t, 2, nil)
	ann := e.open("server-1", e.login("ann", "server-1"))
	bob := e.open("server-2", e.login("bob", "server-2"))
	ann.must("create", map[string]any{"room": "r"})
	bob.must("join", map[string]any{"room": "r"})

	e.c.Disconnect("server-1", "server-2")
	early := bob.must("post", map[string]any{"room": "r", "id": "b1", "text": "early"})
	stampTime := func(m *msg) int64 {
		var ns int64
		fmt.Sscanf(m.Stamp, "%d/", &ns)
		return ns
	}
	// Wait until server-1's clock has passed bob's stamp, so ann's post
	// is stamped after it.
	rmitest.WaitFor(t, "the clock to pass bob's stamp", func() bool { return time.Now().UnixNano() > stampTime(early.Msg)+1000 })
	late := ann.must("post", map[string]any{"room": "r", "id": "a1", "text": "later"})
	if stampTime(late.Msg) <= stampTime(early.Msg) {
		t.Fatalf("ann's stamp %s not after bob's %s", late.Msg.Stamp, early.Msg.Stamp)
	}
	e.c.Reconnect("server-1", "server-2")

	f := ann.wait("bob's early message on ann's page", func(f frame) bool { return f.Type == "message" && f.Msg.ID == "b1" })
	if f.Before != "a1" {
		t.Errorf("bob's early message pushed with before %q, want a1 (ann's later one)", f.Before)
	}
	for _, p := range []*page{ann, bob} {
		rmitest.WaitForWhy(t, "both pages to show early then later", func() (bool, string) {
			got := p.shown("r")
			return slices.Equal(got, []string{"early", "later"}), fmt.Sprint(got)
		})
	}
}

// TestPostRefusals: a room the user is not in, an oversize text, an
// unknown op and the rate limit are refused with their codes.
func TestPostRefusals(t *testing.T) {
	e := newEnv(t, 1, func(c *web.Config) { c.PostRate, c.PostBurst = 1, 3 })
	ann := e.open("server-1", e.login("ann", "server-1"))
	bob := e.open("server-1", e.login("bob", "server-1"))
	ann.must("create", map[string]any{"room": "r"})

	code := func(f frame) string {
		if f.Error == nil {
			return ""
		}
		return f.Error.Code
	}
	if c := code(bob.do("post", map[string]any{"room": "r", "id": "x", "text": "let me in"})); c != "central.not_member" {
		t.Errorf("post to a room bob is not in: %q, want central.not_member", c)
	}
	if c := code(bob.do("history", map[string]any{"room": "r", "before": ""})); c != "central.not_member" {
		t.Errorf("history of a room bob is not in: %q, want central.not_member", c)
	}
	big := strings.Repeat("x", chatapi.MaxText+1)
	if c := code(ann.do("post", map[string]any{"room": "r", "id": "big", "text": big})); c != chatapi.ErrTooLarge.Code {
		t.Errorf("oversize post: %q, want %s", c, chatapi.ErrTooLarge.Code)
	}
	if c := code(ann.do("fly", nil)); c != "web.bad_request" {
		t.Errorf("unknown op: %q, want web.bad_request", c)
	}
	// The rate limit, burst 3 and one more a second, per user: ann's
	// oversize post took one of her tokens.
	ann.must("post", map[string]any{"room": "r", "id": "1", "text": "one"})
	ann.must("post", map[string]any{"room": "r", "id": "2", "text": "two"})
	if c := code(ann.do("post", map[string]any{"room": "r", "id": "3", "text": "three"})); c != "web.rate_limited" {
		t.Errorf("post over the limit: %q, want web.rate_limited", c)
	}
	e.clk.Add(time.Second)
	ann.must("post", map[string]any{"room": "r", "id": "3", "text": "three"})
	rmitest.WaitForWhy(t, "ann's page to show her posts", func() (bool, string) {
		got := ann.shown("r")
		return slices.Equal(got, []string{"one", "two", "three"}), fmt.Sprint(got)
	})
}

// TestLogoutEndsEverySocket: logging out needs the CSRF token, ends the
// session at central, and every WebSocket of the session hears ended.
func TestLogoutEndsEverySocket(t *testing.T) {
	e := newEnv(t, 1, nil)
	site := e.sites["server-1"].URL
	ck := e.login("ann", "server-1")
	tab1 := e.open("server-1", ck)
	tab2 := e.open("server-1", ck)
	tab1.must("create", map[string]any{"room": "r"})
	tab2.must("post", map[string]any{"room": "r", "id": "1", "text": "from tab 2"})
	tab1.wait("tab 1 to see tab 2's post", func(f frame) bool { return f.Type == "message" && f.Msg.ID == "1" })

	logout := func(csrf string) *http.Response {
		req, _ := http.NewRequest("POST", site+"/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(ck)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := logout("forged"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout with a bad CSRF token: %s, want 403", resp.Status)
	}
	csrf := csrfOf(t, e, ck)
	resp := logout(csrf)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != centralWeb+"/" {
		t.Fatalf("logout: %s to %q, want 303 to central", resp.Status, resp.Header.Get("Location"))
	}
	for _, p := range []*page{tab1, tab2} {
		p.wait("ended", func(f frame) bool { return f.Type == "ended" })
		rmitest.WaitFor(t, "the WebSocket to close", p.isClosed)
	}
	// The session is over: a new WebSocket with the cookie is told so.
	ws, _, err := dialWS(site, ck, site)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, data, err := ws.Read(context.Background())
	if err != nil || string(data) != `{"type":"ended"}` {
		t.Errorf("WebSocket after logout got %s, %v; want ended", data, err)
	}
}

// csrfOf reads the logout form's CSRF token from the app page.
func csrfOf(t *testing.T, e *env, ck *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest("GET", e.sites["server-1"].URL+"/", nil)
	req.AddCookie(ck)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	_, rest, ok := strings.Cut(string(body), `name="csrf" value="`)
	if !ok {
		t.Fatal("no CSRF token in the app page")
	}
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}

// TestHistoryPaging: the newest page first, then older pages before the
// oldest message shown, until there are no more.
func TestHistoryPaging(t *testing.T) {
	e := newEnv(t, 1, func(c *web.Config) { c.PageSize, c.PostBurst = 5, 100 })
	ann := e.open("server-1", e.login("ann", "server-1"))
	ann.must("create", map[string]any{"room": "r"})
	var want []string
	for i := range 12 {
		text := fmt.Sprintf("m%02d", i)
		want = append(want, text)
		ann.must("post", map[string]any{"room": "r", "id": text, "text": text})
	}
	var got []string
	before := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more pages than messages")
		}
		h := ann.must("history", map[string]any{"room": "r", "before": before})
		var texts []string
		for _, m := range h.Messages {
			texts = append(texts, m.Text)
		}
		got = append(texts, got...)
		if !h.More {
			break
		}
		before = h.Messages[0].Stamp
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages put together = %v, want %v", got, want)
	}
	if c := ann.do("history", map[string]any{"room": "r", "before": "not-a-stamp"}); c.Error == nil || c.Error.Code != "web.bad_request" {
		t.Errorf("history with a bad stamp: %+v, want web.bad_request", c.Error)
	}
}

// TestRoomsSearchAndDirect: the rooms list with unread counts from the
// read marks, a user search, and a direct chat both sides see.
func TestRoomsSearchAndDirect(t *testing.T) {
	e := newEnv(t, 2, nil)
	ann := e.open("server-1", e.login("ann", "server-1"))
	bob := e.open("server-2", e.login("bob", "server-2"))
	s := ann.must("search", map[string]any{"prefix": "b"})
	if !slices.Equal(s.Users, []string{"bob"}) {
		t.Errorf("search b = %v, want [bob]", s.Users)
	}
	d := ann.must("direct", map[string]any{"user": "bob"})
	ann.must("post", map[string]any{"room": d.Room, "id": "1", "text": "hi bob"})
	first := ann.must("post", map[string]any{"room": d.Room, "id": "2", "text": "are you there?"})
	bob.wait("ann's direct message", func(f frame) bool { return f.Type == "message" && f.Msg.ID == "2" })
	unread := func(p *page) int {
		for _, r := range p.must("rooms", nil).Rooms {
			if r.Name == d.Room {
				return r.Unread
			}
		}
		t.Fatalf("no room %s in the list", d.Room)
		return 0
	}
	if n := unread(bob); n != 2 {
		t.Errorf("bob's unread in the direct chat = %d, want 2", n)
	}
	h := bob.must("history", map[string]any{"room": d.Room, "before": ""})
	bob.must("read", map[string]any{"room": d.Room, "stamp": h.Messages[0].Stamp})
	if n := unread(bob); n != 1 {
		t.Errorf("bob's unread after reading the first = %d, want 1", n)
	}
	bob.must("read", map[string]any{"room": d.Room, "stamp": first.Msg.Stamp})
	if n := unread(bob); n != 0 {
		t.Errorf("bob's unread after reading all = %d, want 0", n)
	}
	if n := unread(ann); n != 0 {
		t.Errorf("ann's unread of her own messages = %d, want 0", n)
	}
}
