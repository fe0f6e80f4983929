package web

import "github.com/distchat/distchat/server/chatapi"

// VoiceClient is the voice operations a session uses, for tests that give
// a Handler their own (SetVoice).
type VoiceClient = voiceClient

// SetVoice makes h's sessions use, instead of their Client's voice
// operations, those newVoice returns for the session's user, which hand
// the SFU's signals to deliver (the session's OnVoice). Call it before
// the first WebSocket.
func SetVoice(h *Handler, newVoice func(user string, deliver func(room string, sig chatapi.VoiceSignal)) VoiceClient) {
	h.testVoice = newVoice
}
