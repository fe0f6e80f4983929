package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
)

// voiceFlags make headless chromium's microphone and camera fake devices
// (a beep and a test pattern) that need no permission prompt, and let its
// WebRTC use loopback, as issue 9's browser test asks.
var voiceFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("use-fake-device-for-media-stream", true),
	chromedp.Flag("use-fake-ui-for-media-stream", true),
	chromedp.Flag("allow-loopback-in-peer-connection", true),
	chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
}

// evalAwait evaluates a JavaScript expression whose value is a promise,
// bounded, and returns what it resolves to.
func evalAwait[T any](b *browser, js string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, browserCall)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// voiceInboundJS sums, per remote user and kind, the bytes and the frames
// decoded that the page's voice connection received: getStats'
// inbound-rtp, matched to users by the stream ids of the received tracks
// (the voice bar keeps them in trackUsers).
const voiceInboundJS = `(async () => {
	const v = document.querySelector('#voice-bar')?.voice;
	if (!v || !v.pc) return {};
	const out = {};
	(await v.pc.getStats()).forEach((r) => {
		if (r.type !== 'inbound-rtp') return;
		const user = v.trackUsers.get(r.trackIdentifier);
		if (!user) return;
		const k = user + '/' + r.kind;
		out[k] = out[k] || { bytes: 0, frames: 0 };
		out[k].bytes += r.bytesReceived || 0;
		out[k].frames += r.framesDecoded || 0;
	});
	return out;
})()`

// voiceInbound is what voiceInboundJS returns for one user and kind.
type voiceInbound struct {
	Bytes  int64 `json:"bytes"`
	Frames int64 `json:"frames"`
}

// waitInbound waits until the page has received from user's kind
// ("audio" or "video") more bytes (audio) or decoded frames (video) than
// when first seen, twice over: the stream flows, it is not only set up.
func (b *browser) waitInbound(user, kind string) {
	b.t.Helper()
	key := user + "/" + kind
	var first, last int64 = -1, -1
	rises := 0
	rmitest.WaitForWhy(b.t, fmt.Sprintf("%s: inbound %s rising", b.name, key), func() (bool, string) {
		m, err := evalAwait[map[string]voiceInbound](b, voiceInboundJS)
		if err != nil {
			return false, err.Error()
		}
		n := m[key].Bytes
		if kind == "video" {
			n = m[key].Frames
		}
		switch {
		case n <= 0:
		case first < 0:
			first, last = n, n
		case n > last:
			last = n
			rises++
		}
		return rises >= 2, fmt.Sprintf("stats %v", m)
	})
}

// inVoiceJS is true when user is shown connected in the voice channel.
func inVoiceJS(user string) string {
	return fmt.Sprintf(`document.querySelector('#voice-participants li[data-user=%s]:not(.connecting)') !== null`, jsString(user))
}

// TestBrowserVoice is issue 9's browser test: ann and bob, logged in on
// two different chat servers (run as processes on loopback), join one
// room's voice channel in headless chromium with fake devices, and each
// page's RTCPeerConnection.getStats() shows inbound audio bytes rising
// from the other; with the cameras on, inbound video frames rise too and
// the other's video tile shows. Bob leaves and ann's page drops him; in
// their direct chat the button reads "Call".
func TestBrowserVoice(t *testing.T) {
	needChromium(t)
	h := newClusterWith(t, clusterOptions{servers: 2, host: "127.0.0.1", web: true})
	ann := newBrowserWith(t, "ann", "", voiceFlags...)
	bob := newBrowserWith(t, "bob", "", voiceFlags...)
	signupWeb(ann, h.centralWeb, "ann", password("ann"), false)
	signupWeb(bob, h.centralWeb, "bob", password("bob"), false)
	loginWeb(ann, h.centralWeb, "ann", password("ann"))
	loginWeb(bob, h.centralWeb, "bob", password("bob"))
	if ann.origin() == bob.origin() {
		t.Fatalf("ann and bob both on %s: want two chat servers", ann.origin())
	}
	ann.roomDialog("#create-room", "talk")
	bob.roomDialog("#join-room", "talk")

	for _, b := range []*browser{ann, bob} {
		b.waitJS("the Join voice button", `document.querySelector('#voice-join')?.textContent === 'Join voice'`)
		b.do("join voice", chromedp.Click(chromedp.CSS("#voice-join")))
	}
	for _, b := range []*browser{ann, bob} {
		b.waitJS("ann and bob connected in the channel", inVoiceJS("ann")+" && "+inVoiceJS("bob"))
	}
	ann.waitInbound("bob", "audio")
	bob.waitInbound("ann", "audio")

	for _, b := range []*browser{ann, bob} {
		b.do("camera on", chromedp.Click(chromedp.CSS("#voice-camera")))
	}
	ann.waitJS("bob's video tile", `document.querySelector('#voice-videos video[data-user="bob"]') !== null`)
	bob.waitJS("ann's video tile", `document.querySelector('#voice-videos video[data-user="ann"]') !== null`)
	ann.waitInbound("bob", "video")
	bob.waitInbound("ann", "video")
	ann.screenshot("voice")

	bob.do("leave voice", chromedp.Click(chromedp.CSS("#voice-leave")))
	ann.waitJS("bob gone from the channel and the tiles", `!document.querySelector('#voice-participants [data-user="bob"]') &&
		!document.querySelector('#voice-videos [data-user="bob"]')`)
	bob.waitJS("bob's bar back to Join voice", `!document.querySelector('#voice-join').hidden && document.querySelector('#voice-leave').hidden`)

	dm := centralapi.DirectRoomName("ann", "bob")
	result := `#user-results li[data-user="bob"]`
	ann.do("search bob", chromedp.Click(chromedp.CSS("#new-direct")), fill("#user-search", "bo"))
	ann.waitSel(result)
	ann.do("open the chat with bob", chromedp.Click(chromedp.CSS(result)))
	ann.waitSel(roomSel(dm))
	ann.waitJS("the voice button of a direct chat reads Call", `document.querySelector('#voice-join')?.textContent === 'Call'`)

	// The incoming-call banner, shown by a ring (here a made-up one),
	// is declined with Esc.
	bob.do("a ring from zed", chromedp.Evaluate[chromedp.Void](
		`document.querySelector('#voice-ring').ring.onPush({type: 'ring', room: 'dm:bob:zed', user: 'zed'})`))
	bob.waitJS("the banner for zed's call", ringShownJS("zed"))
	bob.do("press Esc", pressEscape)
	bob.waitJS("the banner hidden by Esc", `document.querySelector('#voice-ring').hidden`)

	// Ann calls bob: his page, on the other chat server, rings; he
	// accepts from the keyboard, and they hear each other.
	ann.do("call bob", chromedp.Click(chromedp.CSS("#voice-join")))
	bob.waitJS("the banner for ann's call", ringShownJS("ann"))
	bob.do("accept with Enter", chromedp.Focus(chromedp.CSS("#voice-accept")), chromedp.KeyEvent("\r"))
	bob.waitJS("the banner gone and the chat with ann open", `document.querySelector('#voice-ring').hidden &&
		document.querySelector('#room-title').textContent === '@ ann'`)
	for _, b := range []*browser{ann, bob} {
		b.waitJS("ann and bob connected in the call", inVoiceJS("ann")+" && "+inVoiceJS("bob"))
	}
	if room := mustEval[string](bob, `document.querySelector('#voice-bar').voice.room`); room != dm {
		t.Fatalf("bob's page is in the voice channel of %q, want %q", room, dm)
	}
	ann.waitInbound("bob", "audio")
	bob.waitInbound("ann", "audio")
}

// ringShownJS is true when the incoming-call banner shows a call from
// user, with its two buttons.
func ringShownJS(user string) string {
	return fmt.Sprintf(`(() => {
		const r = document.querySelector('#voice-ring');
		return !r.hidden && r.querySelector('#voice-ring-text').textContent === %s &&
			!!r.querySelector('#voice-accept') && !!r.querySelector('#voice-decline');
	})()`, jsString(user+" is calling"))
}

// pressEscape presses and releases the Esc key in the page.
var pressEscape = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: "Escape", Code: "Escape", WindowsVirtualKeyCode: 27, NativeVirtualKeyCode: 27,
		})
		if err != nil {
			return fmt.Errorf("press Esc: %w", err)
		}
	}
	return nil
})
