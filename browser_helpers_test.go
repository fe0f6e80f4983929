package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/web/browsertest"
)

// screenshots makes the browser tests save pictures of the pages under
// testdata/screenshots (go test -run Browser -screenshots). Without it
// they write nothing.
var screenshots = flag.Bool("screenshots", false, "browser tests write testdata/screenshots/*.png")

// browserCall bounds one browser action (a click, a navigation, a script).
// Waits for a page condition poll with rmitest.WaitForWhy instead.
const browserCall = 15 * time.Second

// recoveryCodeRE is the shape of a recovery code, as signup prints it.
var recoveryCodeRE = regexp.MustCompile(`^[A-Z2-7]{5}(-[A-Z2-7]{5}){3}$`)

// browser is one headless chromium with a profile of its own (its own
// cookies): one person's browser. Its tab records every JavaScript
// dialog (alert, confirm, prompt) a page opens, and dismisses it.
type browser struct {
	t       *testing.T
	name    string
	ctx     context.Context // the tab
	out     *rmitest.SyncBuffer
	dialogs *dialogLog
}

// dialogLog records the JavaScript dialogs a tab opened.
type dialogLog struct {
	mu   sync.Mutex
	seen []string
}

// in returns b for use in subtest t (so that its failures are t's).
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

// newBrowser starts chromium for the test. HOME is home, where chromium
// reads its NSS certificate database (.pki/nssdb); empty means a fresh
// directory, so that nothing of the machine's user is trusted or used.
func newBrowser(t *testing.T, name, home string) *browser {
	t.Helper()
	return newBrowserWith(t, name, home)
}

// needChromium skips t with -short, or without chromium (in CI it fails
// instead: browsertest.Path).
func needChromium(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a cluster of processes and a browser; skipped with -short")
	}
	browsertest.Path(t)
}

// newBrowserWith is newBrowser with extra chromium flags (such as
// voiceFlags).
func newBrowserWith(t *testing.T, name, home string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	needChromium(t)
	if home == "" {
		home = t.TempDir()
	}
	b := &browser{t: t, name: name, out: &rmitest.SyncBuffer{}, dialogs: &dialogLog{}}
	ctx, err := browsertest.Start(t, "browser "+name, browsertest.Options{
		Home: home, Output: b.out, Flags: append([]chromedp.ExecAllocatorOption{chromedp.WindowSize(1280, 800)}, extra...),
	})
	if err != nil {
		t.Fatalf("browser %s: start chromium (%d attempts): %v\n%s", name, browsertest.Attempts, err, lastLines(b.out.String(), 20))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- browser %s output (last lines) ----\n%s", name, lastLines(b.out.String(), 20))
		}
	})
	b.ctx = ctx
	// A fixed viewport, so that screenshots have one size.
	b.do("set the viewport", chromedp.EmulateViewport(1280, 800))
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.dialogs.mu.Lock()
			b.dialogs.seen = append(b.dialogs.seen, string(ev.Type)+": "+ev.Message)
			b.dialogs.mu.Unlock()
			cctx, cancel := context.WithTimeout(ctx, browserCall)
			chromedp.Call(cctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			cancel()
		}
	}()
	return b
}

// openedDialogs returns what the pages showed as JavaScript dialogs.
func (b *browser) openedDialogs() []string {
	b.dialogs.mu.Lock()
	defer b.dialogs.mu.Unlock()
	return slices.Clone(b.dialogs.seen)
}

// do runs actions in order, bounded, and fails the test on an error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserCall)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser %s: %s: %v", b.name, what, err)
	}
}

// eval evaluates a JavaScript expression in the page, bounded.
func eval[T any](b *browser, js string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, browserCall)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

// mustEval is eval that fails the test on an error.
func mustEval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := eval[T](b, js)
	if err != nil {
		b.t.Fatalf("browser %s: %s: %v", b.name, js, err)
	}
	return v
}

// waitJS waits (bounded) until the JavaScript expression is true in the
// page. It survives navigations: an evaluation that fails meanwhile is
// retried.
func (b *browser) waitJS(what, js string) {
	b.t.Helper()
	rmitest.WaitForWhy(b.t, b.name+": "+what, func() (bool, string) {
		ok, err := eval[bool](b, js)
		if err != nil {
			return false, err.Error()
		}
		return ok, "still false: " + js + " at " + b.location()
	})
}

// waitSel waits until an element matches the CSS selector.
func (b *browser) waitSel(sel string) {
	b.t.Helper()
	b.waitJS("an element "+sel, fmt.Sprintf("document.querySelector(%s) !== null", jsString(sel)))
}

// location is the page's URL ("" if it cannot be read now).
func (b *browser) location() string {
	loc, _ := eval[string](b, "location.href")
	return loc
}

// origin is the page's origin (scheme://host:port).
func (b *browser) origin() string {
	b.t.Helper()
	return mustEval[string](b, "location.origin")
}

// textOf is the trimmed textContent of the first element matching sel.
func (b *browser) textOf(sel string) string {
	b.t.Helper()
	return mustEval[string](b, fmt.Sprintf("(document.querySelector(%s)?.textContent ?? '').trim()", jsString(sel)))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// cookie returns the value of the browser's cookie name for pageURL.
func (b *browser) cookie(pageURL, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserCall)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{pageURL}})
	if err != nil {
		b.t.Fatalf("browser %s: cookies of %s: %v", b.name, pageURL, err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			if !c.HTTPOnly {
				b.t.Errorf("cookie %s of %s is not HttpOnly", name, pageURL)
			}
			return c.Value
		}
	}
	b.t.Fatalf("browser %s has no cookie %s for %s", b.name, name, pageURL)
	return ""
}

// screenshot saves the viewport as testdata/screenshots/name.png, only
// with -screenshots.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if !*screenshots {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, browserCall)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("browser %s: screenshot %s: %v", b.name, name, err)
	}
	dir := filepath.Join("testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// darkMode turns the emulated prefers-color-scheme dark on or off.
func (b *browser) darkMode(on bool) {
	b.t.Helper()
	scheme := "light"
	if on {
		scheme = "dark"
	}
	ctx, cancel := context.WithTimeout(b.ctx, browserCall)
	defer cancel()
	_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
	if err != nil {
		b.t.Fatalf("browser %s: prefers-color-scheme %s: %v", b.name, scheme, err)
	}
}

// fill clears the input matching sel and types text into it.
func fill(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf("document.querySelector(%s).value = ''", jsString(sel))),
		chromedp.SendKeys(chromedp.CSS(sel), text),
	)
}

// signupWeb signs user up on central's signup page and returns the
// recovery code the page shows. With shot, it saves the filled-in form
// as signup.png.
func signupWeb(b *browser, centralWeb, user, pw string, shot bool) string {
	b.t.Helper()
	b.do("open the signup page", chromedp.Navigate(centralWeb+"/signup"),
		fill("#user", user), fill("#password", pw), fill("#password2", pw))
	if shot {
		b.screenshot("signup")
	}
	b.do("sign up "+user, chromedp.Click(chromedp.CSS("#signup")))
	b.waitSel("#recovery-code")
	code := b.textOf("#recovery-code")
	if !recoveryCodeRE.MatchString(code) {
		b.t.Fatalf("signup of %s shows recovery code %q", user, code)
	}
	b.waitSel("#to-login")
	return code
}

// loginWeb logs user in on central's login page and waits until the chat
// app (on the chat server central placed the user on) is connected.
func loginWeb(b *browser, centralWeb, user, pw string) {
	b.t.Helper()
	b.do("open the login page", chromedp.Navigate(centralWeb+"/"),
		fill("#user", user), fill("#password", pw), chromedp.Click(chromedp.CSS("#login")))
	b.waitConnected()
	if me := b.textOf("#me"); me != user {
		b.t.Fatalf("the app shows #me %q, want %q", me, user)
	}
}

// waitConnected waits until the chat app's status is connected.
func (b *browser) waitConnected() {
	b.t.Helper()
	b.waitJS("the app connected", `document.querySelector('#status')?.dataset.state === 'connected'`)
}

// openRoom clicks room in the room list and waits until the room's
// title includes title (the room's name, or the other user's for a
// direct chat).
func (b *browser) openRoom(room, title string) {
	b.t.Helper()
	sel := roomSel(room)
	b.waitSel(sel)
	// The room list is drawn again whenever a count in it changes (a
	// message arrives, the page reconnects), which can replace the entry
	// between finding it and clicking it. Then the click is made again,
	// on the entry found afresh.
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(b.ctx, browserCall)
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "Could not find node") {
			b.t.Fatalf("browser %s: open room %s: %v", b.name, room, err)
		}
		b.t.Logf("browser %s: open room %s: %v; clicking the redrawn entry", b.name, room, err)
	}
	b.waitJS("room "+room+" open", fmt.Sprintf(`(document.querySelector('#room-title')?.textContent ?? '').includes(%s)`, jsString(title)))
}

// roomSel selects room's entry in the room list.
func roomSel(room string) string {
	return fmt.Sprintf("#rooms li[data-room=%s]", jsString(room))
}

// roomDialog creates or joins (button #create-room or #join-room) room
// through the #new-room dialog, then opens it.
func (b *browser) roomDialog(button, room string) {
	b.t.Helper()
	b.do(button+" "+room, chromedp.Click(chromedp.CSS("#new-room")),
		fill("#room-name", room), chromedp.Click(chromedp.CSS(button)))
	b.openRoom(room, room)
}

// post sends text to the open room, with the Enter key or the send
// button, and waits until the page shows it acknowledged (not pending).
func (b *browser) post(text string, enter bool) {
	b.t.Helper()
	send := chromedp.Click(chromedp.CSS("#send"))
	if enter {
		send = chromedp.Steps(chromedp.Focus(chromedp.CSS("textarea#composer")), pressEnter)
	}
	b.do("post "+text, chromedp.WaitVisible(chromedp.CSS("textarea#composer")),
		chromedp.SendKeys(chromedp.CSS("textarea#composer"), text), send)
	b.waitMessages("its post "+jsString(text)+" acknowledged", func(ms []webMsg) (bool, string) {
		for _, m := range ms {
			if m.Text == text && !m.Pending && !m.Failed {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d messages: %v", len(ms), ms)
	})
	if v := mustEval[string](b, `document.querySelector('textarea#composer').value`); v != "" {
		b.t.Errorf("the composer still holds %q after sending", v)
	}
}

// pressEnter presses and releases the Enter key in the focused element,
// as a person does: a keydown the page can cancel (the composer sends),
// without the separate character event with which chromedp's SendKeys
// would also insert a line break.
var pressEnter = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
		})
		if err != nil {
			return fmt.Errorf("press Enter: %w", err)
		}
	}
	return nil
})

// webMsg is one li.msg of the page's #messages.
type webMsg struct {
	ID      string `json:"id"`
	Stamp   string `json:"stamp"`
	From    string `json:"from"`
	Text    string `json:"text"`
	Pending bool   `json:"pending"`
	Failed  bool   `json:"failed"`
}

func (m webMsg) String() string {
	return fmt.Sprintf("%s %s %q", m.Stamp, m.From, m.Text)
}

// messagesJS lists the open room's messages as the page shows them.
const messagesJS = `[...document.querySelectorAll('#messages li.msg')].map(li => ({
	id: li.dataset.id ?? '', stamp: li.dataset.stamp ?? '',
	from: (li.querySelector('.from')?.textContent ?? '').trim(),
	text: li.querySelector('.text')?.textContent ?? '',
	pending: li.classList.contains('pending'), failed: li.classList.contains('failed'),
}))`

// messages returns the open room's messages in page order.
func (b *browser) messages() ([]webMsg, error) {
	return eval[[]webMsg](b, messagesJS)
}

// waitMessages waits until cond holds for the page's messages.
func (b *browser) waitMessages(what string, cond func([]webMsg) (bool, string)) {
	b.t.Helper()
	rmitest.WaitForWhy(b.t, b.name+": "+what, func() (bool, string) {
		ms, err := b.messages()
		if err != nil {
			return false, err.Error()
		}
		return cond(ms)
	})
}

// waitSameMessages waits until every page shows the same settled list
// of n messages (the same ids, stamps, senders and texts in the same
// order, none pending), with no id twice, and returns it.
func waitSameMessages(t *testing.T, n int, pages ...*browser) []webMsg {
	t.Helper()
	var ref []webMsg
	rmitest.WaitForWhy(t, fmt.Sprintf("identical lists of %d messages on %d pages", n, len(pages)), func() (bool, string) {
		var lists [][]webMsg
		for _, b := range pages {
			ms, err := b.messages()
			if err != nil {
				return false, b.name + ": " + err.Error()
			}
			if len(ms) != n {
				return false, fmt.Sprintf("%s shows %d: %v", b.name, len(ms), ms)
			}
			for _, m := range ms {
				if m.Pending || m.Failed || m.ID == "" || m.Stamp == "" {
					return false, fmt.Sprintf("%s: not settled: %+v", b.name, m)
				}
			}
			lists = append(lists, ms)
		}
		for i, ms := range lists[1:] {
			if !slices.Equal(ms, lists[0]) {
				return false, fmt.Sprintf("%s differs from %s:\n%v\n%v", pages[i+1].name, pages[0].name, ms, lists[0])
			}
		}
		ref = lists[0]
		return true, ""
	})
	seen := map[string]bool{}
	for _, m := range ref {
		if seen[m.ID] {
			t.Fatalf("message %s shown twice: %v", m.ID, ref)
		}
		seen[m.ID] = true
	}
	return ref
}

// webTexts is the texts of ms.
func webTexts(ms []webMsg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// originOf is the scheme://host:port of a URL.
func originOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		t.Fatalf("not a URL: %q (%v)", rawURL, err)
	}
	return u.Scheme + "://" + u.Host
}

// wsReply is the part of a chat server's WebSocket frame the tests read.
type wsReply struct {
	Type  string `json:"type"`
	Req   int    `json:"req"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// dialWS opens the WebSocket of the chat server whose web origin is
// server, presenting the session cookie and the Origin header origin.
func dialWS(ctx context.Context, server, origin, session string) (*websocket.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(server, "http") + "/ws"
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{
		"Origin": {origin},
		"Cookie": {"distchat_session=" + session},
	}})
}

// wsCall sends one request and returns its reply, skipping the pushes
// (hello, rooms, messages, events) that come before it.
func wsCall(ctx context.Context, c *websocket.Conn, req map[string]any) (wsReply, error) {
	if err := wsjson.Write(ctx, c, req); err != nil {
		return wsReply{}, fmt.Errorf("send %v: %w", req, err)
	}
	for {
		var r wsReply
		if err := wsjson.Read(ctx, c, &r); err != nil {
			return wsReply{}, fmt.Errorf("reply to %v: %w", req, err)
		}
		if r.Type == "reply" && r.Req == req["req"] {
			return r, nil
		}
	}
}
