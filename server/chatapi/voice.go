package chatapi

import "github.com/distchat/distchat/rmi"

// VoiceSignal is one WebRTC signalling message between a participant and the
// SFU hosting its room's voice channel (voice.Signal on the wire).
type VoiceSignal struct {
	Kind          string // "offer", "answer", "candidate", "camera", "bye"
	SDP           string
	Candidate     string
	SDPMid        string
	SDPMLineIndex uint16
	Camera        bool
}

// VoiceParticipant is one user in a room's voice channel.
type VoiceParticipant struct {
	User       string
	Connected  bool
	Camera     bool
	Speaking   bool
	AudioLevel int // 0 (loudest) .. 127 (silence), -dBov
}

// ErrVoiceFull refuses a join past the voice channel's participant cap.
var ErrVoiceFull = rmi.NewError("chat.voice_full", "the room's voice channel is full")
