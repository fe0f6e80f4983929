package web

import (
	"context"
	"fmt"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/server/chatapi"
)

// Voice chat (issue 9). A page joins a room's voice channel with
// voice-join; the channel's SFU then sends it offers, which the page
// answers with voice-signal (answer, candidate, camera), and it leaves
// with voice-leave. The session's Client carries the signals to and from
// the SFU (on whichever chat server hosts the channel) and hands the
// SFU's signals to OnVoice, which the session routes to the one WebSocket
// (tab) that joined that room's voice: the channel knows each user once,
// so a second tab that joins takes the call over from the first.

// Limits of the page's voice signals, the same as the SFU's
// (voice.MaxSDPSize, voice.MaxCandidateSize): the gateway refuses larger
// ones before they travel.
const (
	maxSDP       = 64 << 10
	maxCandidate = 1 << 10
	// voiceQueue is how many voice commands of one WebSocket may wait
	// for the one before them; one more is refused as too fast.
	voiceQueue = 64
	// voiceRate and voiceBurst limit a user's voice-join and
	// voice-signal commands: a negotiation takes an answer and a few
	// candidates.
	voiceRate  = 20
	voiceBurst = 100
)

// voiceClient is the part of client.Client the voice commands use.
type voiceClient interface {
	VoiceJoin(ctx context.Context, room string) error
	VoiceSignal(ctx context.Context, room string, s chatapi.VoiceSignal) error
	VoiceLeave(ctx context.Context, room string) error
	VoiceWho(ctx context.Context, room string) ([]chatapi.VoiceParticipant, error)
}

// voiceFor returns the voice operations of session s: its Client's,
// unless a test gave the Handler others (export_test.go).
func (h *Handler) voiceFor(s *session) (voiceClient, error) {
	if h.testVoice != nil {
		return h.testVoice(s.client().User(), s.onVoice), nil
	}
	return s.client(), nil
}

var _ voiceClient = (*client.Client)(nil)

// wireSignal is a chatapi.VoiceSignal as the page sends and receives it,
// with voice.Signal's JSON names (which a browser's RTCSessionDescription
// and RTCIceCandidate use too).
type wireSignal struct {
	Kind          string `json:"kind"`
	SDP           string `json:"sdp,omitempty"`
	Candidate     string `json:"candidate,omitempty"`
	SDPMid        string `json:"sdpMid,omitempty"`
	SDPMLineIndex uint16 `json:"sdpMLineIndex,omitempty"`
	Camera        bool   `json:"camera,omitempty"`
}

// toVoiceSignal converts the page's signal, refusing the kinds a page may
// not send and the sizes the SFU would refuse.
func (w *wireSignal) toVoiceSignal() (chatapi.VoiceSignal, error) {
	if w == nil {
		return chatapi.VoiceSignal{}, fmt.Errorf("voice-signal: no signal: %w", ErrBadRequest)
	}
	switch w.Kind {
	case "answer", "candidate", "camera":
	default:
		return chatapi.VoiceSignal{}, fmt.Errorf("voice-signal: a page may not send %q: %w", w.Kind, ErrBadRequest)
	}
	if len(w.SDP) > maxSDP || len(w.Candidate) > maxCandidate || len(w.SDPMid) > maxName {
		return chatapi.VoiceSignal{}, fmt.Errorf("voice-signal: %s too large: %w", w.Kind, ErrBadRequest)
	}
	return chatapi.VoiceSignal{
		Kind: w.Kind, SDP: w.SDP, Candidate: w.Candidate,
		SDPMid: w.SDPMid, SDPMLineIndex: w.SDPMLineIndex, Camera: w.Camera,
	}, nil
}

// toWireSignal converts a signal of the SFU for the page.
func toWireSignal(s chatapi.VoiceSignal) wireSignal {
	return wireSignal{
		Kind: s.Kind, SDP: s.SDP, Candidate: s.Candidate,
		SDPMid: s.SDPMid, SDPMLineIndex: s.SDPMLineIndex, Camera: s.Camera,
	}
}

// wireParticipant is one user in a voice channel as the page sees it.
type wireParticipant struct {
	User      string `json:"user"`
	Connected bool   `json:"connected"`
	Camera    bool   `json:"camera"`
	Speaking  bool   `json:"speaking"`
	Level     int    `json:"level"` // 0 (loudest) .. 127 (silence), -dBov
}

// voicePush is the push of one of the SFU's signals for room.
func voicePush(room string, s wireSignal) map[string]any {
	return map[string]any{"type": "voice", "room": room, "signal": s}
}

// isOrderedVoiceOp reports whether op is a voice command that must reach
// the SFU in the page's order (an answer before the candidates that
// follow it), so the WebSocket runs them one at a time.
func isOrderedVoiceOp(op string) bool {
	return op == "voice-join" || op == "voice-signal" || op == "voice-leave"
}

// voiceLoop runs the WebSocket's ordered voice commands from q, one at a
// time, until the WebSocket ends.
func (cn *conn) voiceLoop(s *session, q <-chan request) {
	for {
		select {
		case req := <-q:
			result, err := cn.h.runVoice(cn.ctx, s, cn, req)
			cn.reply(req.Req, result, err)
		case <-cn.ctx.Done():
			return
		}
	}
}

// runVoice carries out one voice command of the page on cn.
func (h *Handler) runVoice(ctx context.Context, s *session, cn *conn, req request) (map[string]any, error) {
	c := s.client()
	vc, err := h.voiceFor(s)
	if err != nil {
		return nil, err
	}
	if req.Room == "" || len(req.Room) > maxName {
		return nil, fmt.Errorf("%s: no room, or its name too long: %w", req.Op, ErrBadRequest)
	}
	switch req.Op {
	case "voice-join":
		if !h.voiceLimit.allow(c.User()) {
			return nil, ErrRateLimited
		}
		// The route first: the SFU's offer may come before VoiceJoin
		// returns.
		if old := s.voiceTake(req.Room, cn); old != nil && old != cn {
			// The other tab's call is over: tell it, so that it does not
			// join again by itself.
			old.send(map[string]any{"type": "voice", "room": req.Room, "signal": wireSignal{Kind: "bye"}, "elsewhere": true})
		}
		if err := vc.VoiceJoin(ctx, req.Room); err != nil {
			s.voiceDrop(req.Room, cn)
			return nil, err
		}
		return map[string]any{"room": req.Room}, nil

	case "voice-signal":
		sig, err := req.Signal.toVoiceSignal()
		if err != nil {
			return nil, err
		}
		if s.voiceConn(req.Room) != cn {
			return nil, fmt.Errorf("voice-signal: this page is not in the voice of %q: %w", req.Room, ErrBadRequest)
		}
		if !h.voiceLimit.allow(c.User()) {
			return nil, ErrRateLimited
		}
		return nil, vc.VoiceSignal(ctx, req.Room, sig)

	case "voice-leave":
		if !s.voiceDrop(req.Room, cn) {
			return nil, nil // another tab has the call, or none does
		}
		return nil, vc.VoiceLeave(ctx, req.Room)

	case "voice-who":
		list, err := vc.VoiceWho(ctx, req.Room)
		if err != nil {
			return nil, err
		}
		out := make([]wireParticipant, len(list))
		for i, p := range list {
			out[i] = wireParticipant{User: p.User, Connected: p.Connected, Camera: p.Camera, Speaking: p.Speaking, Level: p.AudioLevel}
		}
		return map[string]any{"room": req.Room, "participants": out}, nil
	}
	return nil, fmt.Errorf("unknown op %q: %w", req.Op, ErrBadRequest)
}

// voiceHangUp leaves the voice channels that cn (a WebSocket that ended)
// was in.
func (s *session) voiceHangUp(cn *conn) {
	rooms := s.voiceDropAll(cn)
	if len(rooms) == 0 {
		return
	}
	vc, err := s.h.voiceFor(s)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	for _, room := range rooms {
		if err := vc.VoiceLeave(ctx, room); err != nil {
			s.h.log.Info("web: leave voice of a closed page", "room", room, "err", err)
		}
	}
}

// onVoice is the Client's OnVoice: the SFU's signal for room goes to the
// WebSocket in that room's voice, if one is.
func (s *session) onVoice(room string, sig chatapi.VoiceSignal) {
	if cn := s.voiceConn(room); cn != nil {
		cn.send(voicePush(room, toWireSignal(sig)))
	}
}

// voiceTake makes cn the session's WebSocket in room's voice and returns
// the one that was, if any.
func (s *session) voiceTake(room string, cn *conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.voice[room]
	s.voice[room] = cn
	return old
}

// voiceDrop removes cn from room's voice, and reports whether it was
// there.
func (s *session) voiceDrop(room string, cn *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.voice[room] != cn {
		return false
	}
	delete(s.voice, room)
	return true
}

// voiceDropAll removes cn from every voice channel and returns their
// rooms.
func (s *session) voiceDropAll(cn *conn) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rooms []string
	for room, c := range s.voice {
		if c == cn {
			rooms = append(rooms, room)
			delete(s.voice, room)
		}
	}
	return rooms
}

// voiceConn returns the WebSocket in room's voice, or nil.
func (s *session) voiceConn(room string) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.voice[room]
}
