package voice

import (
	"errors"
	"fmt"
)

// The kinds of Signal.
const (
	// KindOffer carries the SFU's SDP offer to a participant. Only the SFU
	// sends offers.
	KindOffer = "offer"
	// KindAnswer carries a participant's SDP answer to the SFU's last offer.
	KindAnswer = "answer"
	// KindCandidate carries one ICE candidate a participant gathered after
	// its answer (trickle ICE, as browsers do). The SFU never sends one: its
	// offers already list all its candidates.
	KindCandidate = "candidate"
	// KindCamera tells the SFU that the participant turned its camera on or
	// off (Signal.Camera), so that the SFU adds or removes its video for the
	// others.
	KindCamera = "camera"
	// KindBye ends a participant's session: from the participant, it leaves
	// the channel; from the SFU, the participant was removed (the SFU closed,
	// or the participant joined again elsewhere).
	KindBye = "bye"
)

// Signal is one signalling message between the SFU and a participant. It is
// plain data, so that it travels as well over RMI (msgpack) as over a
// WebSocket (JSON). Which fields are set depends on Kind.
type Signal struct {
	// Kind is one of KindOffer, KindAnswer, KindCandidate, KindCamera,
	// KindBye.
	Kind string `json:"kind"`
	// SDP is the session description of an offer or an answer.
	SDP string `json:"sdp,omitempty"`
	// Candidate is the "candidate:..." attribute of a trickled ICE
	// candidate, as a browser's RTCIceCandidate.candidate gives it.
	Candidate string `json:"candidate,omitempty"`
	// SDPMid and SDPMLineIndex name the media section the candidate is
	// for (RTCIceCandidate.sdpMid and sdpMLineIndex).
	SDPMid        string `json:"sdpMid,omitempty"`
	SDPMLineIndex uint16 `json:"sdpMLineIndex,omitempty"`
	// Camera is the camera's new state in a KindCamera signal.
	Camera bool `json:"camera,omitempty"`
}

// Size limits of a participant's signals: an SDP answer for a few dozen
// media sections is a few kilobytes, a candidate line a hundred bytes.
const (
	MaxSDPSize       = 64 << 10
	MaxCandidateSize = 1 << 10
)

// checkSize refuses a signal over the size limits.
func checkSize(sig Signal) error {
	if len(sig.SDP) > MaxSDPSize || len(sig.Candidate) > MaxCandidateSize || len(sig.SDPMid) > maxIDLen {
		return fmt.Errorf("%w: %q signal over the size limits", ErrBadSignal, sig.Kind)
	}
	return nil
}

// ErrChannelFull is what a ChannelFullError matches with errors.Is.
var ErrChannelFull = errors.New("voice channel full")

// ChannelFullError refuses a join past the per-channel participant cap.
type ChannelFullError struct {
	Channel string // the channel refused
	Max     int    // its cap
}

// Error says which channel is full and what its cap is.
func (e *ChannelFullError) Error() string {
	return fmt.Sprintf("voice channel %q is full (at most %d participants)", e.Channel, e.Max)
}

// Is makes errors.Is(err, ErrChannelFull) hold.
func (e *ChannelFullError) Is(target error) bool { return target == ErrChannelFull }

// Errors the SFU and the Peer return.
var (
	// ErrClosed: the SFU or the Peer is closed.
	ErrClosed = errors.New("voice: closed")
	// ErrNotJoined: a signal or a leave names a participant that is not in
	// the channel (it left, vanished, or never joined).
	ErrNotJoined = errors.New("voice: not in the channel")
	// ErrBadID: a channel or participant name is empty, too long, or has a
	// character other than letters, digits and "-_.@".
	ErrBadID = errors.New("voice: bad channel or participant name")
	// ErrBadSignal: a signal of an unknown kind, or one that comes out of
	// turn (an answer with no offer outstanding).
	ErrBadSignal = errors.New("voice: bad signal")
	// ErrVanished is the reason given to Config.OnLeave for a participant
	// whose connection failed (ICE found no path for FailedTimeout).
	ErrVanished = errors.New("voice: participant vanished")
)

// maxIDLen bounds channel and participant names.
const maxIDLen = 64

// checkID accepts a name for a channel or a participant: it becomes a
// media stream id in the SDP and a file name in a recording directory, so
// it is kept to a token.
func checkID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.' || r == '@'
		if !ok {
			return fmt.Errorf("%w: %q", ErrBadID, id)
		}
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return nil
}
