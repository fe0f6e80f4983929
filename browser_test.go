package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/distchat/distchat/central/centralapi"
)

// TestBrowserChat drives the web client in two headless chromium
// browsers (ann and bob, each with its own profile) against central and
// two chat servers run as processes on loopback with web ports, as
// issue 8 asks: signup, login and placement, rooms, messages both ways in
// one order, history on reload, recovery from a SIGKILLed chat server, a
// direct chat, text shown as text, the server-side membership and origin
// checks, and a password reset with the recovery code.
func TestBrowserChat(t *testing.T) {
	needChromium(t)
	h := newClusterWith(t, clusterOptions{servers: 2, host: "127.0.0.1", web: true})
	annB := newBrowser(t, "ann", "")
	bobB := newBrowser(t, "bob", "")
	webOf := map[string]string{} // chat server web origin -> name
	for _, name := range h.serverNames {
		webOf[originOf(t, h.procs[name].web)] = name
	}
	var bobCode string // bob's recovery code
	var total int      // messages in lobby

	t.Run("a/signup pages, login, and placement on different chat servers", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		ann.do("open the login page", chromedp.Navigate(h.centralWeb+"/"))
		for _, sel := range []string{"#login-form", "#user", "#password", "#login", "#forgot-link", "#signup-link", "#ca-link", "#ca-fingerprint"} {
			ann.waitSel(sel)
		}
		if fp := ann.textOf("#ca-fingerprint"); !strings.Contains(fp, h.caPrint) {
			t.Errorf("#ca-fingerprint shows %q, want %s", fp, h.caPrint)
		}
		ann.screenshot("login")
		signupWeb(ann, h.centralWeb, "ann", password("ann"), true)
		bobCode = signupWeb(bob, h.centralWeb, "bob", password("bob"), false)
		loginWeb(ann, h.centralWeb, "ann", password("ann"))
		loginWeb(bob, h.centralWeb, "bob", password("bob"))
		annAt, bobAt := webOf[ann.origin()], webOf[bob.origin()]
		if annAt == "" || bobAt == "" || annAt == bobAt {
			t.Fatalf("ann's app at %s (%q), bob's at %s (%q): want two different chat servers of %v",
				ann.origin(), annAt, bob.origin(), bobAt, webOf)
		}
		t.Logf("ann on %s, bob on %s", annAt, bobAt)
	})

	t.Run("b/create and join a room; members online", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		ann.roomDialog("#create-room", "lobby")
		bob.roomDialog("#join-room", "lobby")
		for _, b := range []*browser{ann, bob} {
			for _, u := range []string{"ann", "bob"} {
				b.waitJS(u+" shown online in #members",
					fmt.Sprintf(`document.querySelector('#members li[data-user=%s]')?.classList.contains('online') === true`, jsString(u)))
			}
		}
	})

	t.Run("c/messages both ways show in one order on both pages, the servers' order", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		for i := range 3 {
			ann.post(fmt.Sprintf("ann says %d", i), i%2 == 0)
			bob.post(fmt.Sprintf("bob says %d", i), i%2 == 1)
		}
		total = 6
		got := waitSameMessages(t, total, ann, bob)
		checkServerOrder(t, h, "lobby", got)
	})

	t.Run("d/a reload shows the history", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		before, err := ann.messages()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []*browser{ann, bob} {
			b.do("reload", chromedp.Reload())
			b.waitConnected()
			b.openRoom("lobby", "lobby")
		}
		if after := waitSameMessages(t, total, ann, bob); !slices.Equal(after, before) {
			t.Fatalf("history after reload differs:\n got %v\nwant %v", after, before)
		}
	})

	t.Run("e/a SIGKILLed and restarted chat server: the page recovers, nothing lost or doubled", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		bobOrigin := bob.origin()
		victim := webOf[bobOrigin]
		h.kill(victim)
		bob.waitJS("the page notices its server is down",
			fmt.Sprintf(`document.querySelector('#status')?.dataset.state !== 'connected' || location.origin !== %s`, jsString(bobOrigin)))
		down := "posted while " + victim + " was down"
		ann.post(down, true)
		h.restart(victim)
		bob.waitConnected()
		bob.openRoom("lobby", "lobby")
		total++
		got := waitSameMessages(t, total, ann, bob)
		if n := countText(got, down); n != 1 {
			t.Fatalf("%q shown %d times: %v", down, n, got)
		}
		bob.post("bob is back", false)
		total++
		got = waitSameMessages(t, total, ann, bob)
		checkServerOrder(t, h, "lobby", got)
		t.Logf("bob's page is on %s after the restart of %s", webOf[bob.origin()], victim)
	})

	dm := centralapi.DirectRoomName("ann", "bob")
	t.Run("f/a 1:1 chat started with the user search", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		result := `#user-results li[data-user="bob"]`
		ann.do("search a user", chromedp.Click(chromedp.CSS("#new-direct")), fill("#user-search", "bo"))
		ann.waitSel(result)
		ann.do("start a chat with bob", chromedp.Click(chromedp.CSS(result)))
		ann.waitJS("the chat with bob open", `(document.querySelector('#room-title')?.textContent ?? '').includes('bob')`)
		ann.post("psst bob", true)
		ann.waitSel(roomSel(dm))
		bob.waitJS("one unread message in the direct chat",
			fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? '').trim() === '1'`, jsString(roomSel(dm)+" .unread")))
		bob.openRoom(dm, "ann")
		bob.post("hi ann", true)
		if got := webTexts(waitSameMessages(t, 2, ann, bob)); !slices.Equal(got, []string{"psst bob", "hi ann"}) {
			t.Fatalf("direct chat shows %q", got)
		}
		bob.waitJS("the unread count hidden once read", fmt.Sprintf(`(() => {
			const u = document.querySelector(%s);
			return !u || u.hidden || u.offsetParent === null || ['', '0'].includes(u.textContent.trim());
		})()`, jsString(roomSel(dm)+" .unread")))
	})

	t.Run("g/a script message shows as text", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		evil := `<script>alert("xss")</script><img src=x onerror="alert('img')"><b>bold</b>`
		for _, b := range []*browser{ann, bob} {
			b.openRoom("lobby", "lobby")
		}
		ann.post(evil, true)
		total++
		got := waitSameMessages(t, total, ann, bob)
		if last := got[len(got)-1]; last.Text != evil {
			t.Fatalf("last message's textContent %q, want %q", last.Text, evil)
		}
		for _, b := range []*browser{ann, bob} {
			injected := mustEval[int](b, `document.querySelectorAll('#messages script, #messages img, #messages .text *').length`)
			if injected != 0 {
				t.Errorf("%s: %d elements injected into #messages", b.name, injected)
			}
			if d := b.openedDialogs(); len(d) != 0 {
				t.Errorf("%s: the page opened dialogs %q", b.name, d)
			}
		}
		// A busy room, in light and dark mode.
		ann.screenshot("room")
		ann.darkMode(true)
		ann.screenshot("room-dark")
		ann.darkMode(false)
	})

	t.Run("h/a post to a room the user is not in is refused", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		ann.roomDialog("#create-room", "annex")
		server := bob.origin()
		session := bob.cookie(server+"/", "distchat_session")
		ctx, cancel := context.WithTimeout(context.Background(), browserCall)
		defer cancel()
		c, _, err := dialWS(ctx, server, server, session)
		if err != nil {
			t.Fatalf("bob's WebSocket with his cookie and his page's origin: %v", err)
		}
		defer c.CloseNow()
		r, err := wsCall(ctx, c, map[string]any{"req": 1, "op": "post", "room": "annex", "id": randomHex(t, 8), "text": "sneaked in"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Error == nil || r.Error.Code != "central.not_member" {
			t.Fatalf("post to a room bob is not in: reply %+v, want error central.not_member", r)
		}
		// The same connection may post to lobby.
		r, err = wsCall(ctx, c, map[string]any{"req": 2, "op": "post", "room": "lobby", "id": randomHex(t, 8), "text": "bob over a bare WebSocket"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Error != nil {
			t.Fatalf("post to lobby: %+v", r.Error)
		}
		ann.post("only ann here", true)
		if got := webTexts(waitSameMessages(t, 1, ann)); !slices.Equal(got, []string{"only ann here"}) {
			t.Fatalf("annex shows %q", got)
		}
		ann.openRoom("lobby", "lobby")
		total++
		waitSameMessages(t, total, ann, bob)
	})

	t.Run("i/a WebSocket from a forged origin is refused", func(t *testing.T) {
		bob := bobB.in(t)
		server := bob.origin()
		session := bob.cookie(server+"/", "distchat_session")
		var other string
		for o := range webOf {
			if o != server {
				other = o
			}
		}
		for _, origin := range []string{"http://evil.example", other, h.centralWeb} {
			ctx, cancel := context.WithTimeout(context.Background(), browserCall)
			c, resp, err := dialWS(ctx, server, originOf(t, origin), session)
			cancel()
			if err == nil {
				c.CloseNow()
				t.Errorf("WebSocket with Origin %s accepted", origin)
				continue
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("WebSocket with Origin %s: %v, response %v; want 403", origin, err, resp)
			}
		}
	})

	t.Run("j/a password reset with the recovery code", func(t *testing.T) {
		bob := bobB.in(t)
		newPw := "a-new-password-for-bob"
		bob.do("reset bob's password", chromedp.Navigate(h.centralWeb+"/forgot"),
			fill("#user", "bob"), fill("#code", bobCode), fill("#password", newPw), fill("#password2", newPw),
			chromedp.Click(chromedp.CSS("#reset")))
		bob.waitSel("#recovery-code")
		if next := bob.textOf("#recovery-code"); !recoveryCodeRE.MatchString(next) || next == bobCode {
			t.Fatalf("after the reset the page shows recovery code %q (the old one was %q)", next, bobCode)
		}
		bob.do("back to login", chromedp.Click(chromedp.CSS("#to-login")))
		bob.waitSel("#login-form")
		wrong := func(user, pw string) string {
			bob.do("log in as "+user, chromedp.Navigate(h.centralWeb+"/"),
				fill("#user", user), fill("#password", pw), chromedp.Click(chromedp.CSS("#login")))
			bob.waitJS("an error shown", `(document.querySelector('#error')?.textContent ?? '').trim() !== ''`)
			if o := bob.origin(); o != originOf(t, h.centralWeb) {
				t.Fatalf("a failed login left central for %s", o)
			}
			return bob.textOf("#error")
		}
		oldPw, nobody := wrong("bob", password("bob")), wrong("nobody", password("bob"))
		if oldPw != nobody {
			t.Errorf("a wrong password says %q, an unknown user %q: they must not differ", oldPw, nobody)
		}
		loginWeb(bob, h.centralWeb, "bob", newPw)
	})

	t.Run("k/a chat server that stays down: central places the page on a live one", func(t *testing.T) {
		ann, bob := annB.in(t), bobB.in(t)
		bob.waitConnected()
		bobOrigin := bob.origin()
		victim := webOf[bobOrigin]
		h.kill(victim)
		bob.waitJS("the page moved to another chat server, by itself, and connected",
			fmt.Sprintf(`location.origin !== %s && document.querySelector('#status')?.dataset.state === 'connected'`, jsString(bobOrigin)))
		ann.waitConnected()
		t.Logf("bob's page moved from %s to %s", victim, webOf[bob.origin()])
		for _, p := range []*browser{ann, bob} {
			p.openRoom("lobby", "lobby")
		}
		bob.post("bob moved to a live server", false)
		total++
		got := waitSameMessages(t, total, ann, bob)
		checkServerOrder(t, h, "lobby", got)
	})
}

// checkServerOrder checks that the page's list of room is the chat
// servers' order of it: the history an in-process client of ann gets.
func checkServerOrder(t *testing.T, h *cluster, room string, page []webMsg) {
	t.Helper()
	u := h.login("ann")
	defer u.c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	hist, err := u.c.History(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, m := range hist {
		want = append(want, m.ID+" "+m.From+" "+m.Text)
	}
	for _, m := range page {
		got = append(got, m.ID+" "+m.From+" "+m.Text)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the page's order of %s is not the servers':\n page %q\nserver %q", room, got, want)
	}
}

// countText counts the messages with text.
func countText(ms []webMsg, text string) int {
	n := 0
	for _, m := range ms {
		if m.Text == text {
			n++
		}
	}
	return n
}
