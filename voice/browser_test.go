package voice

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/distchat/distchat/rmi/rmitest"
)

// TestTrickleAndAudioLevel joins a participant that behaves as a browser
// does: it answers at once, trickles its ICE candidates after the answer,
// and sends the audio-level header extension, which the SFU turns into a
// speaking indicator. A Go peer in the channel receives its audio.
func TestTrickleAndAudioLevel(t *testing.T) {
	r := newRig(t, Config{})
	ann := r.join("room", "ann", PeerConfig{Audio: mediaFile("tone_a.ogg")})

	tr, err := newAPI(loopback)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := tr.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(opusCodec, "audio", "mic")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // the browser's signals, in order
	sendUp := func(sig Signal) {
		mu.Lock()
		defer mu.Unlock()
		// As for the rig's peers: a candidate that trickles once the test
		// is over meets its context canceled.
		if err := r.sfu.HandleSignal(r.ctx, "room", "web", sig); err != nil && !errors.Is(err, ErrNotJoined) && !errors.Is(err, context.Canceled) {
			r.fail(err)
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		sendUp(Signal{Kind: KindCandidate, Candidate: init.Candidate, SDPMid: *init.SDPMid,
			SDPMLineIndex: *init.SDPMLineIndex})
	})
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	var offers sync.WaitGroup
	var closeMu sync.Mutex
	closed := false
	t.Cleanup(func() {
		closeMu.Lock()
		closed = true
		closeMu.Unlock()
		offers.Wait()
		pc.Close()
		tr.close()
	})
	// The browser's side of the signalling: answer each offer at once,
	// before gathering, so that its candidates trickle after the answer.
	// Offers that come once the test is over are ignored.
	web := func(sig Signal) {
		closeMu.Lock()
		defer closeMu.Unlock()
		if sig.Kind != KindOffer || closed {
			return
		}
		offers.Go(func() {
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sig.SDP}); err != nil {
				r.fail(err)
				return
			}
			answer, err := pc.CreateAnswer(nil)
			if err == nil {
				err = pc.SetLocalDescription(answer)
			}
			if err != nil {
				r.fail(err)
				return
			}
			sendUp(Signal{Kind: KindAnswer, SDP: answer.SDP})
		})
	}
	if err := r.sfu.Join(r.ctx, "room", "web", web); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(rmitest.Bound):
		t.Fatal("the browser-like participant never connected")
	}

	// Send loud packets with their audio level until the SFU shows the
	// participant speaking and ann has received some.
	levelID := uint8(0)
	for _, e := range sender.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			levelID = uint8(e.ID)
		}
	}
	if levelID == 0 {
		t.Fatal("the audio-level extension was not negotiated")
	}
	level, err := rtp.AudioLevelExtension{Level: 20, Voice: true}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	seq := uint16(0)
	rmitest.WaitForWhy(t, "web speaking, heard by ann", func() (bool, string) {
		seq++
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960},
			Payload: []byte{0xf8, 0xff, 0xfe}} // an Opus CELT 20 ms frame of silence
		if err := pkt.Header.SetExtension(levelID, level); err != nil {
			return false, err.Error()
		}
		if err := track.WriteRTP(pkt); err != nil {
			return false, err.Error()
		}
		i := slices.IndexFunc(r.sfu.Participants("room"), func(p ParticipantInfo) bool { return p.ID == "web" })
		if i < 0 {
			return false, "web is not in the channel"
		}
		info := r.sfu.Participants("room")[i]
		heard := audioFrom(ann, "web")
		return info.Speaking && info.AudioLevel == 20 && heard > 5,
			"web " + mustJSON(info) + ", ann's stats " + mustJSON(ann.Stats())
	})
}

// TestSignalJSON: the JSON field names a browser's code reads and writes.
func TestSignalJSON(t *testing.T) {
	b, err := json.Marshal(Signal{Kind: KindCandidate, Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
		SDPMid: "0", SDPMLineIndex: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":1}`
	if string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var back Signal
	if err := json.Unmarshal([]byte(`{"kind":"camera","camera":true}`), &back); err != nil ||
		back != (Signal{Kind: KindCamera, Camera: true}) {
		t.Errorf("decoded %+v (%v), want a camera-on signal", back, err)
	}
}

// TestSignalLimits: signals over the size limits are refused before they
// reach pion.
func TestSignalLimits(t *testing.T) {
	r := newRig(t, Config{})
	r.join("room", "ann", PeerConfig{})
	for _, sig := range []Signal{
		{Kind: KindAnswer, SDP: strings.Repeat("a", MaxSDPSize+1)},
		{Kind: KindCandidate, Candidate: strings.Repeat("c", MaxCandidateSize+1)},
	} {
		if err := r.sfu.HandleSignal(r.ctx, "room", "ann", sig); !errors.Is(err, ErrBadSignal) {
			t.Errorf("%s signal over the limit: %v, want ErrBadSignal", sig.Kind, err)
		}
	}
	if got := members(r.sfu, "room"); !slices.Equal(got, []string{"ann"}) {
		t.Errorf("members %v, want ann still in", got)
	}
}

// TestRejoinReplaces: joining again under the same name replaces the old
// session, which is sent a bye; the channel keeps one participant of that
// name, and the new session receives the others.
func TestRejoinReplaces(t *testing.T) {
	r := newRig(t, Config{})
	r.join("room", "ann", PeerConfig{Audio: mediaFile("tone_a.ogg")})
	old := r.join("room", "bob", PeerConfig{})
	waitAudio(t, "old bob", old, 5, "ann")
	bob := r.join("room", "bob", PeerConfig{})
	<-old.Done()
	if !errors.Is(old.Err(), ErrRemoved) {
		t.Errorf("old bob ended with %v, want ErrRemoved", old.Err())
	}
	waitAudio(t, "new bob", bob, 5, "ann")
	if got := members(r.sfu, "room"); !slices.Equal(got, []string{"ann", "bob"}) {
		t.Errorf("members %v, want ann, bob", got)
	}
	if got := r.leaveReasons(); len(got) != 0 {
		t.Errorf("OnLeave reported %v for a replaced session, want nothing", got)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
