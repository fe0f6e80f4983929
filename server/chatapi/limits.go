package chatapi

import (
	"fmt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
)

// Limits on the arguments a chat server accepts, enforced by rmi before a
// method runs (see rmi.ArgLimits): the encoded size and the lengths of
// maps and arrays are checked before the arguments are decoded, field
// limits (CheckLimits) after. A caller that breaks one gets
// rmi.ErrTooLarge. They are far above what a well-behaved caller sends,
// and small enough that a hostile one cannot make the server allocate
// more than a few hundred KiB per request.
const (
	// MaxServers is the most chat servers a cluster may have: a Have map
	// names at most this many origin servers.
	MaxServers = 256
	// MaxPostBatch is the most messages one PostBatch may carry; the
	// whole batch must also fit in MaxPostBatchBytes.
	MaxPostBatch = 256
	// MaxPostBatchBytes caps a PostBatch's encoding: the request size a
	// chat server accepts from a client.
	MaxPostBatchBytes = 64 << 10
	// MaxForwardMessages is the most messages one Forward may carry.
	MaxForwardMessages = 4 * MaxSyncLimit

	// smallArgBytes caps arguments made of a token and a name or two.
	smallArgBytes = 1 << 10
	// smallArgLen caps the entries of the maps and arrays of arguments
	// with no collection of their own: their structs have a few fields.
	smallArgLen = 16
	// batchArgLen caps the maps and arrays of the batches servers send
	// (messages, rooms, watermarks), so that even a batch of empty entries
	// decodes to a few MiB at most.
	batchArgLen = 1 << 16
	// haveArgBytes caps arguments carrying a Have map: MaxServers entries
	// of a server name and a uint64 take at most 20 KiB; the rest leaves
	// a malformed room name room to be refused by the method itself, with
	// a clearer error than "too large". CheckLimits bounds the map.
	haveArgBytes = 128 << 10
)

// checkHave reports a Have map naming more origin servers than a cluster
// may have.
func checkHave(have map[string]uint64) error {
	if len(have) > MaxServers {
		return fmt.Errorf("Have names %d servers, at most %d: %w", len(have), MaxServers, rmi.ErrTooLarge)
	}
	return nil
}

// ArgCaps implements rmi.ArgLimits.
func (AttachArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (AttachArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (TokenArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (TokenArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits: a message text of at most MaxText
// bytes and a few names.
func (PostArgs) ArgCaps() rmi.ArgCaps {
	return rmi.ArgCaps{Bytes: MaxText + smallArgBytes, Len: smallArgLen}
}

// CheckLimits implements rmi.ArgLimits.
func (PostArgs) CheckLimits() error { return nil }

// TooLarge implements rmi.ArgTooLarge: a post too large to accept is one
// whose text is too large.
func (PostArgs) TooLarge() error { return ErrTooLarge }

// postBatchOverhead bounds the encoding of a PostBatchArgs without its
// posts: a token, a stamp and the field names.
const postBatchOverhead = 1 << 10

// FitsPostBatch reports whether a PostBatch holding posts is within
// MaxPostBatch and MaxPostBatchBytes, whatever its token and Seen: a
// client adds posts to a batch while it does.
func FitsPostBatch(posts []BatchPost) bool {
	if len(posts) > MaxPostBatch {
		return false
	}
	n := postBatchOverhead
	for _, p := range posts {
		// Three names, three string headers and a map header: 32 bytes.
		n += len(p.Room) + len(p.ID) + len(p.Text) + 32
	}
	return n <= MaxPostBatchBytes
}

// ArgCaps implements rmi.ArgLimits: at most MaxPostBatch messages in
// MaxPostBatchBytes.
func (PostBatchArgs) ArgCaps() rmi.ArgCaps {
	return rmi.ArgCaps{Bytes: MaxPostBatchBytes, Len: MaxPostBatch}
}

// CheckLimits implements rmi.ArgLimits.
func (a PostBatchArgs) CheckLimits() error {
	if len(a.Posts) > MaxPostBatch {
		return fmt.Errorf("%d messages in one PostBatch, at most %d: %w", len(a.Posts), MaxPostBatch, rmi.ErrTooLarge)
	}
	return nil
}

// ArgCaps implements rmi.ArgLimits: a Have map of at most MaxServers
// entries.
func (SyncArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: haveArgBytes, Len: MaxServers} }

// CheckLimits implements rmi.ArgLimits.
func (a SyncArgs) CheckLimits() error { return checkHave(a.Have) }

// ArgCaps implements rmi.ArgLimits.
func (RoomArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (RoomArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (DirectArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (DirectArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits: a batch of messages is bounded by
// the transport's cap on cluster requests and batchArgLen.
func (ForwardArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Len: batchArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (a ForwardArgs) CheckLimits() error {
	if len(a.Messages) > MaxForwardMessages {
		return fmt.Errorf("%d messages in one Forward, at most %d: %w", len(a.Messages), MaxForwardMessages, rmi.ErrTooLarge)
	}
	return nil
}

// ArgCaps implements rmi.ArgLimits: a Have map of at most MaxServers
// entries.
func (FetchArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: haveArgBytes, Len: MaxServers} }

// CheckLimits implements rmi.ArgLimits.
func (a FetchArgs) CheckLimits() error { return checkHave(a.Have) }

// ArgCaps implements rmi.ArgLimits: the rooms whose membership changed
// are bounded by the transport's cap on cluster requests and batchArgLen.
func (RoomChangedArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Len: batchArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (RoomChangedArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits: central names at most the sessions
// a server may hold.
func (EndSessionsArgs) ArgCaps() rmi.ArgCaps {
	return rmi.ArgCaps{Len: centralapi.MaxServerSessions}
}

// CheckLimits implements rmi.ArgLimits.
func (EndSessionsArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits: a delivery batch (from the chat
// server the client chose) is bounded by the transport's cap and
// batchArgLen.
func (DeliverArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Len: batchArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (DeliverArgs) CheckLimits() error { return nil }

// voiceArgBytes caps arguments carrying a VoiceSignal: an SDP of at most
// MaxVoiceSDP bytes, a candidate, and a few names.
const voiceArgBytes = MaxVoiceSDP + MaxVoiceCandidate + smallArgBytes

// checkSignal refuses a signal over the voice package's size limits.
func checkSignal(sig VoiceSignal) error {
	if len(sig.SDP) > MaxVoiceSDP || len(sig.Candidate) > MaxVoiceCandidate || len(sig.SDPMid) > smallArgBytes {
		return fmt.Errorf("voice signal over the size limits: %w", rmi.ErrTooLarge)
	}
	return nil
}

// ArgCaps implements rmi.ArgLimits.
func (VoiceArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: voiceArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (a VoiceArgs) CheckLimits() error { return checkSignal(a.Signal) }

// ArgCaps implements rmi.ArgLimits.
func (VoiceRelayArgs) ArgCaps() rmi.ArgCaps {
	return rmi.ArgCaps{Bytes: voiceArgBytes, Len: smallArgLen}
}

// CheckLimits implements rmi.ArgLimits.
func (a VoiceRelayArgs) CheckLimits() error { return checkSignal(a.Signal) }

// ArgCaps implements rmi.ArgLimits.
func (VoiceReturnArgs) ArgCaps() rmi.ArgCaps {
	return rmi.ArgCaps{Bytes: voiceArgBytes, Len: smallArgLen}
}

// CheckLimits implements rmi.ArgLimits.
func (a VoiceReturnArgs) CheckLimits() error { return checkSignal(a.Signal) }

// ArgCaps implements rmi.ArgLimits.
func (RingArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (RingArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (VoiceDeliverArgs) ArgCaps() rmi.ArgCaps {
	return rmi.ArgCaps{Bytes: voiceArgBytes, Len: smallArgLen}
}

// CheckLimits implements rmi.ArgLimits.
func (a VoiceDeliverArgs) CheckLimits() error { return checkSignal(a.Signal) }
