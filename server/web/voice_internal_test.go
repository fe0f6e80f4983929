package web

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/distchat/distchat/voice"
)

// TestWireSignalIsVoiceSignal: the page's signals have voice.Signal's
// JSON names, both ways, so the page speaks the SFU's documented shape.
func TestWireSignalIsVoiceSignal(t *testing.T) {
	for _, sig := range []voice.Signal{
		{Kind: voice.KindAnswer, SDP: "v=0\r\n"},
		{Kind: voice.KindCandidate, Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: "1", SDPMLineIndex: 1},
		{Kind: voice.KindCamera, Camera: true},
	} {
		b, err := json.Marshal(sig)
		if err != nil {
			t.Fatal(err)
		}
		var w wireSignal
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		vs, err := w.toVoiceSignal()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		back, err := json.Marshal(toWireSignal(vs))
		if err != nil {
			t.Fatal(err)
		}
		if string(back) != string(b) {
			t.Errorf("voice.Signal %s came back as %s", b, back)
		}
	}
}

// TestWireSignalRefused: a page may only answer, trickle and turn its
// camera on or off, within the SFU's size limits.
func TestWireSignalRefused(t *testing.T) {
	for _, w := range []*wireSignal{
		nil,
		{Kind: "offer", SDP: "v=0\r\n"},
		{Kind: "bye"},
		{Kind: ""},
		{Kind: "answer", SDP: strings.Repeat("a", voice.MaxSDPSize+1)},
		{Kind: "candidate", Candidate: strings.Repeat("c", voice.MaxCandidateSize+1)},
	} {
		if _, err := w.toVoiceSignal(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want ErrBadRequest", w, err)
		}
	}
	if maxSDP != voice.MaxSDPSize || maxCandidate != voice.MaxCandidateSize {
		t.Errorf("the gateway's limits %d, %d differ from the SFU's %d, %d", maxSDP, maxCandidate, voice.MaxSDPSize, voice.MaxCandidateSize)
	}
}
