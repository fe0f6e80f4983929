package chatapi

import "github.com/distchat/distchat/rmi"

// Errors of the voice methods, besides ErrVoiceFull (voice.go) and
// central's ErrNotMember for a user who is not a member of the room.
var (
	ErrVoiceNotJoined = rmi.NewError("chat.voice_not_joined", "not in the room's voice channel; join it first")
	ErrVoiceBadSignal = rmi.NewError("chat.voice_bad_signal", "bad or out-of-turn voice signal")
	ErrVoiceHostGone  = rmi.NewError("chat.voice_host_gone", "the server hosting the room's voice channel is unreachable; join again")
)

// Kinds of VoiceSignal (the voice package's constants, which chatapi
// cannot import).
const (
	VoiceOffer     = "offer"
	VoiceAnswer    = "answer"
	VoiceCandidate = "candidate"
	VoiceCamera    = "camera"
	VoiceBye       = "bye"
)

// Size limits of a VoiceSignal, as the voice package has them.
const (
	MaxVoiceSDP       = 64 << 10
	MaxVoiceCandidate = 1 << 10
)

// Operations a participant's chat server relays to the host of the
// room's voice channel (VoiceRelayArgs.Op).
const (
	VoiceOpJoin   = "join"
	VoiceOpSignal = "signal"
	VoiceOpLeave  = "leave"
	VoiceOpWho    = "who"
)

// VoiceArgs are the arguments of the ChatServer's voice methods: a
// session, a room, and for VoiceSignal the participant's signal.
type VoiceArgs struct {
	Token  string
	Room   string
	Signal VoiceSignal
}

// VoiceWhoReply lists who is in a room's voice channel, sorted by user.
type VoiceWhoReply struct {
	Participants []VoiceParticipant
}

// VoiceRelayArgs carry a participant's operation from its own chat server
// (From) to the chat server hosting the room's voice channel.
type VoiceRelayArgs struct {
	Op   string // VoiceOpJoin, VoiceOpSignal, VoiceOpLeave or VoiceOpWho
	From string // the participant's chat server, where the SFU's signals go back
	// FromAddr is From's address (the host may not have it yet: it
	// learns of new servers at its lease renewals).
	FromAddr string
	// Session names this join of the participant, chosen by From: the
	// SFU's signals for it carry it back, and a signal or leave for
	// another (older) session of the same user is refused.
	Session string
	Room    string
	User    string
	Signal  VoiceSignal
}

// VoiceReturnArgs carry one of the SFU's signals from the host of a voice
// channel back to the participant's chat server, which hands it to the
// participant (Callback.Voice).
type VoiceReturnArgs struct {
	Session string // VoiceRelayArgs.Session of the join it belongs to
	Room    string
	User    string
	Signal  VoiceSignal
}

// VoiceDeliverArgs carry one of the SFU's signals to a client.
type VoiceDeliverArgs struct {
	Room   string
	Signal VoiceSignal
}

// RingArgs carry a ring from the caller's chat server to a server the
// callee is attached to (Peer.Ring).
type RingArgs struct {
	Room   string // a direct room of Caller and Callee
	Caller string
	Callee string
}
