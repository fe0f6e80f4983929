package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/web"
	"github.com/distchat/distchat/server/web/browsertest"
	"github.com/distchat/distchat/voice"
)

// sfuVoice is a session's voice operations on an SFU in the test's
// process, standing in for the Client's (which relay to the SFU of the
// chat server hosting the channel): the gateway and the page are what is
// tested here.
type sfuVoice struct {
	sfu     *voice.SFU
	user    string
	deliver func(room string, sig chatapi.VoiceSignal)
}

func (v *sfuVoice) VoiceJoin(ctx context.Context, room string) error {
	return v.sfu.Join(ctx, room, v.user, func(s voice.Signal) { v.deliver(room, chatapi.VoiceSignal(s)) })
}

func (v *sfuVoice) VoiceSignal(ctx context.Context, room string, s chatapi.VoiceSignal) error {
	return v.sfu.HandleSignal(ctx, room, v.user, voice.Signal(s))
}

func (v *sfuVoice) VoiceLeave(_ context.Context, room string) error {
	return v.sfu.Leave(room, v.user)
}

func (v *sfuVoice) VoiceWho(_ context.Context, room string) ([]chatapi.VoiceParticipant, error) {
	var out []chatapi.VoiceParticipant
	for _, p := range v.sfu.Participants(room) {
		out = append(out, chatapi.VoiceParticipant{User: p.ID, Connected: p.Connected, Camera: p.Camera,
			Speaking: p.Speaking, AudioLevel: int(p.AudioLevel)})
	}
	return out, nil
}

// mediaFlags make headless chromium's microphone and camera fake devices
// (a beep and a test pattern) that need no permission prompt, and let its
// WebRTC use loopback.
var mediaFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("use-fake-device-for-media-stream", true),
	chromedp.Flag("use-fake-ui-for-media-stream", true),
	chromedp.Flag("allow-loopback-in-peer-connection", true),
	chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
}

// tab is one browser's page in the voice test.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
}

// openTab starts a chromium of its own (its own cookies) with extra
// flags, sets the session cookie for site and opens the app at path.
func openTab(t *testing.T, name, site string, cookie *http.Cookie, path string, flags ...chromedp.ExecAllocatorOption) *tab {
	t.Helper()
	ctx := startChromium(t, name, flags...)
	tb := &tab{t: t, name: name, ctx: ctx}
	tb.run("open the app", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		httpOnly := true
		_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
			Name: cookie.Name, Value: cookie.Value, URL: site, HTTPOnly: &httpOnly,
		})
		return err
	}), chromedp.Navigate(site+path))
	tb.waitJS("connected", `document.querySelector('#status')?.dataset.state === 'connected'`)
	return tb
}

// run runs actions, bounded.
func (tb *tab) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, rmitest.Bound)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, what, err)
	}
}

// eval evaluates js in the page (awaiting a promise), bounded.
func evalIn[T any](tb *tab, js string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, rmitest.Bound)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// waitJS waits until js is true in the page.
func (tb *tab) waitJS(what, js string) {
	tb.t.Helper()
	rmitest.WaitForWhy(tb.t, tb.name+": "+what, func() (bool, string) {
		ok, err := evalIn[bool](tb, js)
		if err != nil {
			return false, err.Error()
		}
		return ok, "still false: " + js + "\nvoice: " + tb.voiceState()
	})
}

// voiceStateJS describes the page's voice state, for failure messages.
const voiceStateJS = `(() => {
	const v = document.querySelector('#voice-bar')?.voice;
	if (!v) return 'no voice';
	return JSON.stringify({
		room: v.room, pc: v.pc?.connectionState, participants: v.participants,
		streams: [...v.streams].map(([u, s]) => u + ': ' + s.getTracks().map((t) => t.kind + ' ' + t.readyState + (t.muted ? ' muted' : '')).join(', ')),
		transceivers: v.pc?.getTransceivers().map((t) => t.mid + ' ' + t.receiver.track.kind + ' ' + t.direction + '/' + t.currentDirection),
		toast: document.querySelector('#toast')?.textContent,
	});
})()`

// voiceState is voiceStateJS's description, or why there is none.
func (tb *tab) voiceState() string {
	s, err := evalIn[string](tb, voiceStateJS)
	if err != nil {
		return err.Error()
	}
	return s
}

// click clicks the element sel.
func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.run("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// inboundJS sums, per remote user and kind, the bytes and the frames
// decoded that the page's voice connection received (getStats'
// inbound-rtp, matched to users by the stream ids of the tracks).
const inboundJS = `(async () => {
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

// inbound is what inboundJS returns for one user and kind.
type inbound struct {
	Bytes  int64 `json:"bytes"`
	Frames int64 `json:"frames"`
}

// waitInbound waits until the page has received, from user's kind
// ("audio" or "video"), more bytes (audio) or decoded frames (video) than
// at first, twice over: the stream is flowing, not just set up.
func (tb *tab) waitInbound(user, kind string) {
	tb.t.Helper()
	key := user + "/" + kind
	count := func(m map[string]inbound) int64 {
		if kind == "video" {
			return m[key].Frames
		}
		return m[key].Bytes
	}
	var first, last int64 = -1, -1
	rises := 0
	rmitest.WaitForWhy(tb.t, fmt.Sprintf("%s: inbound %s rising", tb.name, key), func() (bool, string) {
		m, err := evalIn[map[string]inbound](tb, inboundJS)
		if err != nil {
			return false, err.Error()
		}
		n := count(m)
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

// TestBrowserVoice joins ann's and bob's pages (on two chat servers' web
// ports) to a room's voice channel, on an SFU in the test's process, in
// headless chromium with fake devices: each page answers the SFU, hears
// the other (inbound audio bytes rise in getStats), shows who is in the
// channel and who speaks, sees the other's camera (a video tile, inbound
// frames decoded), mutes, and leaves; a browser with no devices shows
// why it cannot join.
func TestBrowserVoice(t *testing.T) {
	browsertest.Path(t)
	sfu, err := voice.New(voice.Config{
		Network: voice.Network{IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		Logger:  rmitest.QuietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sfu.Close() })
	e := newEnv(t, 2, nil)
	for _, h := range e.hs {
		web.SetVoice(h, func(user string, deliver func(string, chatapi.VoiceSignal)) web.VoiceClient {
			return &sfuVoice{sfu: sfu, user: user, deliver: deliver}
		})
	}
	annCookie, bobCookie := e.login("ann", "server-1"), e.login("bob", "server-2")
	e.open("server-1", annCookie).must("create", map[string]any{"room": "talk"})
	e.open("server-2", bobCookie).must("join", map[string]any{"room": "talk"})

	ann := openTab(t, "ann", e.sites["server-1"].URL, annCookie, "/#talk", mediaFlags...)
	bob := openTab(t, "bob", e.sites["server-2"].URL, bobCookie, "/#talk", mediaFlags...)
	for _, tb := range []*tab{ann, bob} {
		tb.waitJS("the Join voice button", `document.querySelector('#voice-join')?.textContent === 'Join voice'`)
		tb.click("#voice-join")
	}
	in := func(user string) string {
		return fmt.Sprintf(`document.querySelector('#voice-participants li[data-user=%q]:not(.connecting)') !== null`, user)
	}
	for _, tb := range []*tab{ann, bob} {
		tb.waitJS("ann and bob connected in the channel", in("ann")+" && "+in("bob"))
	}
	ann.waitInbound("bob", "audio")
	bob.waitInbound("ann", "audio")
	ann.waitJS("one <audio> playing bob's stream", `(() => {
		const a = document.querySelectorAll('#voice-audio audio[data-user="bob"]');
		return a.length === 1 && a[0].srcObject?.id === 'bob';
	})()`)
	// The fake microphone beeps: the SFU hears its levels.
	ann.waitJS("bob shown speaking", `document.querySelector('#voice-participants li[data-user="bob"].speaking') !== null`)

	bob.click("#voice-camera")
	ann.waitJS("bob's video tile", `document.querySelector('#voice-videos video[data-user="bob"]') !== null`)
	ann.waitInbound("bob", "video")
	bob.waitJS("bob's own preview", `document.querySelector('#voice-videos .tile.self video') !== null`)
	ann.click("#voice-camera")
	bob.waitInbound("ann", "video")

	ann.click("#voice-mute")
	ann.waitJS("the microphone muted", `(() => {
		const v = document.querySelector('#voice-bar').voice;
		return v.mic.enabled === false && document.querySelector('#voice-mute').getAttribute('aria-pressed') === 'true';
	})()`)
	bob.waitJS("ann not speaking once muted", `document.querySelector('#voice-participants li[data-user="ann"]:not(.speaking)') !== null`)

	bob.click("#voice-leave")
	ann.waitJS("bob gone from the channel, his tile and audio too", `!document.querySelector('#voice-participants [data-user="bob"]') &&
		!document.querySelector('#voice-videos [data-user="bob"]')`)
	bob.waitJS("bob's bar back to Join voice", `!document.querySelector('#voice-join').hidden && document.querySelector('#voice-leave').hidden`)
	rmitest.WaitForWhy(t, "bob out of the SFU's channel", func() (bool, string) {
		ps := sfu.Participants("talk")
		return len(ps) == 1 && ps[0].ID == "ann", fmt.Sprintf("%+v", ps)
	})

	// A browser with no microphone (no fake devices): a clear message.
	carolCookie := e.login("carol", "server-1")
	e.open("server-1", carolCookie).must("join", map[string]any{"room": "talk"})
	carol := openTab(t, "carol", e.sites["server-1"].URL, carolCookie, "/#talk")
	carol.click("#voice-join")
	carol.waitJS("a message that the microphone is missing or denied", `(() => {
		const t = document.querySelector('#toast');
		return !t.hidden && /microphone/i.test(t.textContent) && /(No microphone|denied)/.test(t.textContent);
	})()`)
	if ps := sfu.Participants("talk"); len(ps) != 1 {
		t.Errorf("carol's failed join left %+v in the channel", ps)
	}
}
