package web_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/distchat/distchat/server/web"
	"github.com/distchat/distchat/server/web/browsertest"
)

// TestBrowserRoom opens ann's app in headless Chromium on a room with a
// dozen messages from ann and bob (on another server), and checks that it
// shows them in the gateway's order, a "<script>" as text, ann as the
// user and the connection as up; light and dark. (The README's
// screenshots come from the root package's TestBrowserChat -screenshots.)
func TestBrowserRoom(t *testing.T) {
	browsertest.Path(t)
	e := newEnv(t, 2, func(c *web.Config) { c.PostBurst = 100 })
	annCookie := e.login("ann", "server-1")
	ann := e.open("server-1", annCookie)
	bob := e.open("server-2", e.login("bob", "server-2"))
	e.login("carol", "server-2")
	ann.must("create", map[string]any{"room": "lobby"})
	bob.must("join", map[string]any{"room": "lobby"})
	bob.must("create", map[string]any{"room": "design"})
	ann.must("join", map[string]any{"room": "design"})
	talk := []struct{ who, text string }{
		{"ann", "Morning! Is the new build up on server-2 yet?"},
		{"bob", "Yes, deployed ten minutes ago."},
		{"bob", "Stamps are (time, server, seq), so we should all see the same order."},
		{"ann", "Great. I'll post from server-1 and watch."},
		{"ann", "Hover a message to see its stamp and whether it is settled."},
		{"bob", "Looks right here: yours came in between mine."},
		{"ann", "<script>alert('hi')</script> shows as text, as it should."},
		{"bob", "Try Shift+Enter for a new line.\nLike this."},
		{"ann", "Nice. What about a server restart?"},
		{"bob", "The page reconnects by itself and catches up with no gap."},
		{"ann", "Perfect, let's demo it in class tomorrow."},
		{"bob", "See you then!"},
	}
	for i, m := range talk {
		p := ann
		if m.who == "bob" {
			p = bob
		}
		p.must("post", map[string]any{"room": "lobby", "id": fmt.Sprintf("m%02d", i), "text": m.text})
	}
	d := bob.must("direct", map[string]any{"user": "ann"})
	bob.must("post", map[string]any{"room": d.Room, "id": "d1", "text": "Got a minute after class?"})
	bob.must("post", map[string]any{"room": "design", "id": "x1", "text": "hello"})
	for _, id := range []string{"d1", "x1"} {
		ann.wait("bob's message "+id, func(f frame) bool { return f.Type == "message" && f.Msg.ID == id })
	}

	var want []string
	for _, m := range talk {
		want = append(want, m.text)
	}
	site := e.sites["server-1"].URL

	browser := startChromium(t, "chromium")
	for _, dark := range []bool{false, true} {
		ctx, cancel := chromedp.NewContext(browser) // a new tab
		ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		t.Logf("%s mode", scheme)
		var shown []string
		var me string
		err := chromedp.Do(ctx,
			chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
					Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
				}); err != nil {
					return err
				}
				httpOnly := true
				_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
					Name: annCookie.Name, Value: annCookie.Value, URL: site, HTTPOnly: &httpOnly,
				})
				return err
			}),
			chromedp.Navigate(site+"/#lobby"),
			chromedp.WaitVisible(`#status[data-state="connected"]`),
			chromedp.WaitVisible(fmt.Sprintf(`#messages li.msg:nth-child(%d)`, len(want))),
			chromedp.WaitVisible(`#members li.online[data-user="bob"]`),
			chromedp.WaitVisible(`#rooms li[data-room="design"]`),
			chromedp.Func(func(ctx context.Context, t *chromedp.Target) (err error) {
				shown, err = chromedp.Evaluate[[]string](`[...document.querySelectorAll("#messages li.msg .text")].map(e => e.textContent)`)(ctx, t)
				if err != nil {
					return err
				}
				me, err = chromedp.Text(`#me`)(ctx, t)
				return err
			}),
		)
		cancelT()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		if !slices.Equal(shown, want) {
			t.Errorf("%s: the page shows %q, want %q", scheme, shown, want)
		}
		if me != "ann" {
			t.Errorf("%s: #me %q, want ann", scheme, me)
		}
	}
}

// startChromium starts a chromium of its own with extra flags
// (browsertest.Start) and returns its first tab's context.
func startChromium(t *testing.T, name string, flags ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	ctx, err := browsertest.Start(t, name, browsertest.Options{
		Flags: append([]chromedp.ExecAllocatorOption{chromedp.DisableGPU, chromedp.WindowSize(1280, 800)}, flags...),
	})
	if err != nil {
		t.Fatalf("%s: start chromium (%d attempts): %v", name, browsertest.Attempts, err)
	}
	return ctx
}
