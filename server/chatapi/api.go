// Package chatapi is the remote interface of a chat server, the part of
// the original's shared interface library that concerns chat servers:
// [ChatServer] (what clients call), [Peer] (what chat servers call on each
// other), [Callback] (what a client exports for its server to call back),
// their argument and reply types, [Message] and its ordering [Stamp], the
// error codes, and typed stubs.
//
// It imports only rmi and centralapi, so a client links no storage. The
// implementation is package server.
package chatapi

import (
	"context"
	"fmt"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
)

// Names under which a chat server exports its remote objects, and under
// which a client exports its callback object on its own connection.
const (
	ObjectName         = "ChatServer"
	PeerObjectName     = "ChatPeer"
	CallbackObjectName = "ChatClient"
)

// Limits on what a client may send.
const (
	// MaxText is the largest message text, in bytes, a server accepts.
	MaxText = 16 << 10
	// MaxID is the longest client-chosen message id.
	MaxID = 64
	// MaxSyncLimit caps the messages one Sync or Fetch reply carries.
	MaxSyncLimit = 1000
)

// Errors returned by a chat server. They keep their codes across the wire.
var (
	ErrTooLarge     = rmi.NewError("server.too_large", fmt.Sprintf("message text too large (limit %d bytes)", MaxText))
	ErrEmpty        = rmi.NewError("server.empty", "message text is empty")
	ErrBadText      = rmi.NewError("server.bad_text", "message text is not valid UTF-8")
	ErrInProgress   = rmi.NewError("server.in_progress", "a post with this id is being stored; retry")
	ErrBadID        = rmi.NewError("server.bad_id", fmt.Sprintf("message id must be 1 to %d printable characters", MaxID))
	ErrNotAttached  = rmi.NewError("server.not_attached", "session not attached to this server; call Attach first")
	ErrNoCallback   = rmi.NewError("server.no_callback", "Attach needs a connection that exports the client callback object")
	ErrStorage      = rmi.NewError("server.storage", "chat server storage failed; message not accepted")
	ErrShuttingDown = rmi.NewError("server.shutting_down", "chat server is shutting down")
	ErrSessionEnded = rmi.NewError("server.session_ended", "session ended (logged out, password reset or expired); log in again")
)

// Stamp orders messages: (Time, Server, Seq), compared lexicographically.
// Time comes from the clock of the first chat server the post reached (wall
// time, or a hybrid logical clock in hlc mode) in Unix nanoseconds; Server is
// that server's name; Seq counts that server's messages in that room from 1,
// so each server's stream of a room is gap-free and a gap is detectable.
type Stamp struct {
	Time   int64
	Server string
	Seq    uint64
}

// Compare returns -1, 0 or +1 as s sorts before, equal to, or after t.
func (s Stamp) Compare(t Stamp) int {
	switch {
	case s.Time != t.Time:
		if s.Time < t.Time {
			return -1
		}
		return 1
	case s.Server != t.Server:
		if s.Server < t.Server {
			return -1
		}
		return 1
	case s.Seq != t.Seq:
		if s.Seq < t.Seq {
			return -1
		}
		return 1
	}
	return 0
}

// Less reports whether s sorts before t.
func (s Stamp) Less(t Stamp) bool { return s.Compare(t) < 0 }

// IsZero reports whether s is the zero stamp.
func (s Stamp) IsZero() bool { return s == Stamp{} }

// String formats s as time/server/seq.
func (s Stamp) String() string {
	return fmt.Sprintf("%s/%s/%d", time.Unix(0, s.Time).UTC().Format("15:04:05.000000000"), s.Server, s.Seq)
}

// Message is one chat message.
type Message struct {
	Room string
	// ID is chosen by the sending client and unique among its sender's
	// posts; a retried post with the same ID is stored once.
	ID   string
	From string // set by the first server from the session, never by the client
	Text string
	// Stamp is set by the first server.
	Stamp Stamp
}

// ChatServer is the client-facing remote interface of a chat server. Every
// method but Attach needs a session token that Attach accepted on this
// server; the acting user always comes from the session.
type ChatServer interface {
	// Attach binds a session (from central's Login or Reassign) to this
	// server and to the calling connection's callback object, through
	// which the server then delivers messages. It returns the user's rooms.
	Attach(ctx context.Context, args AttachArgs) (AttachReply, error)
	// Ping renews the attachment's lease; a client that stops pinging is
	// detached after the lease TTL.
	Ping(ctx context.Context, args TokenArgs) error
	// Detach ends the attachment (the session stays valid).
	Detach(ctx context.Context, args TokenArgs) error
	// Post stamps and durably stores a message, then fans it out. It
	// returns once the message is durable here. Posting the same ID again
	// returns the first stamp with Duplicate set.
	Post(ctx context.Context, args PostArgs) (PostReply, error)
	// PostBatch posts several messages at once, stamped in the order
	// given and made durable together, and returns each one's outcome:
	// a client that keeps many posts in flight sends them as successive
	// batches, so they are stamped in the order it sent them. A message
	// refused (not a member, too long, ...) fails alone; one already
	// posted returns its first stamp, as Post does.
	PostBatch(ctx context.Context, args PostBatchArgs) (PostBatchReply, error)
	// Sync returns the room's messages the caller lacks, in stamp order:
	// for each origin server, those with Seq above Have[origin]. With an
	// empty Have it returns the whole history, page by page (More).
	Sync(ctx context.Context, args SyncArgs) (SyncReply, error)
	// CreateRoom creates a room with the caller as first member.
	CreateRoom(ctx context.Context, args RoomArgs) (centralapi.RoomInfo, error)
	// JoinRoom joins an existing room; its history then comes by Sync.
	JoinRoom(ctx context.Context, args RoomArgs) (centralapi.RoomInfo, error)
	// LeaveRoom leaves a room.
	LeaveRoom(ctx context.Context, args RoomArgs) error
	// Direct returns (creating on first use) the caller's direct room with
	// another user.
	Direct(ctx context.Context, args DirectArgs) (centralapi.RoomInfo, error)
	// ListRooms lists public rooms and the caller's direct rooms.
	ListRooms(ctx context.Context, args TokenArgs) (centralapi.ListReply, error)
	// Who returns a room's members (members only for direct rooms).
	Who(ctx context.Context, args RoomArgs) (centralapi.RoomInfo, error)
	// VoiceJoin joins the room's voice channel (members only), replacing
	// the user's earlier connection to it: the host's SFU then sends its
	// offer through Callback.Voice.
	VoiceJoin(ctx context.Context, args VoiceArgs) error
	// VoiceSignal hands the SFU the participant's answer, an ICE
	// candidate, or its camera turned on or off.
	VoiceSignal(ctx context.Context, args VoiceArgs) error
	// VoiceLeave leaves the room's voice channel.
	VoiceLeave(ctx context.Context, args VoiceArgs) error
	// VoiceWho lists who is in the room's voice channel (members only).
	VoiceWho(ctx context.Context, args VoiceArgs) (VoiceWhoReply, error)
}

// Peer is the remote interface between chat servers (exported ClusterOnly).
type Peer interface {
	// Forward delivers messages first stamped elsewhere. The receiver stores
	// them durably (dropping ones it has) before replying; a reply means the
	// sender may drop them from its outbox.
	Forward(ctx context.Context, args ForwardArgs) (ForwardReply, error)
	// Fetch returns, in stamp order, the messages of a room this server
	// holds with Seq above Have[origin] for their origin, and its contiguous
	// heads per origin.
	Fetch(ctx context.Context, args FetchArgs) (FetchReply, error)
	// RoomChanged tells a server that the membership of rooms changed, so it
	// refreshes what it knows before fanning out again.
	RoomChanged(ctx context.Context, args RoomChangedArgs) error
	// EndSessions tells a server that sessions ended at central (logout,
	// password reset, expiry): it detaches them at once and refuses their
	// tokens from then on with ErrSessionEnded. Central calls it.
	EndSessions(ctx context.Context, args EndSessionsArgs) error
	// VoiceRelay carries a participant's voice operation from its own
	// server to the server hosting the room's voice channel (central's
	// VoiceHost), which applies it to its SFU. VoiceOpWho's reply lists
	// the channel; the others' is empty.
	VoiceRelay(ctx context.Context, args VoiceRelayArgs) (VoiceWhoReply, error)
	// VoiceReturn carries one of the SFU's signals from the host back to
	// the participant's server, which delivers it to the participant.
	VoiceReturn(ctx context.Context, args VoiceReturnArgs) error
	// Ring tells the server that Caller, alone in the voice channel of
	// the direct room Room, calls Callee: it delivers an EventRing to
	// Callee's clients attached there. The caller's server calls it.
	Ring(ctx context.Context, args RingArgs) error
}

// Callback is the remote interface a client exports (as
// CallbackObjectName) over its own connection to its chat server.
type Callback interface {
	// Deliver hands the client messages and events, in the order the
	// server learned of them (not necessarily stamp order).
	Deliver(ctx context.Context, args DeliverArgs) error
	// Voice hands the client one signal of the SFU hosting a room's voice
	// channel (an offer, or a bye). A client's signals come one call at
	// a time, in the order the SFU sent them.
	Voice(ctx context.Context, args VoiceDeliverArgs) error
}

// AttachArgs are the arguments of Attach.
type AttachArgs struct {
	Token string
}

// AttachReply describes an attachment.
type AttachReply struct {
	User   string
	Server string
	Rooms  []string `msg:",allownil"` // the user's rooms, sorted
	// LeaseTTL is how long the attachment lives without a Ping.
	LeaseTTL time.Duration
}

// TokenArgs carry just a session token.
type TokenArgs struct {
	Token string
}

// PostArgs are the arguments of Post.
type PostArgs struct {
	Token string
	Room  string
	ID    string
	Text  string
	// Seen is the largest stamp the client has seen (used in hlc mode so
	// the new stamp orders after everything the author saw).
	Seen Stamp
}

// PostReply acknowledges a durable post.
type PostReply struct {
	Stamp     Stamp
	Duplicate bool
}

// PostBatchArgs are the arguments of PostBatch.
type PostBatchArgs struct {
	Token string
	Posts []BatchPost `msg:",allownil"`
	// Seen is as in PostArgs.
	Seen Stamp
}

// BatchPost is one message of a PostBatch.
type BatchPost struct {
	Room string
	ID   string
	Text string
}

// PostBatchReply holds the outcome of each message of a PostBatch, in
// the order they were given.
type PostBatchReply struct {
	Results []PostResult `msg:",allownil"`
}

// PostResult is one message's outcome: as PostReply, or, when ErrCode or
// ErrMsg is set, why it was refused (an error code of this package, as
// a *rmi.RemoteError carries it).
type PostResult struct {
	Stamp     Stamp
	Duplicate bool
	ErrCode   string
	ErrMsg    string
}

// SyncArgs are the arguments of Sync.
type SyncArgs struct {
	Token string
	Room  string
	Have  map[string]uint64 `msg:",allownil"`
	Limit int               // 0 or above MaxSyncLimit means MaxSyncLimit
}

// SyncReply is one page of a room's history.
type SyncReply struct {
	Messages []Message `msg:",allownil"`
	More     bool
}

// RoomArgs name a room.
type RoomArgs struct {
	Token string
	Room  string
}

// DirectArgs name the other user of a direct room.
type DirectArgs struct {
	Token string
	Peer  string
}

// ForwardArgs carry a batch of messages between servers.
type ForwardArgs struct {
	From     string
	Messages []Message `msg:",allownil"`
	// Watermarks are the sender's promises, by room: every message of the
	// room the sender stamped at or below the time has been acknowledged by
	// the receiver already, and the sender will stamp nothing at or below
	// it again.
	Watermarks map[string]int64 `msg:",allownil"`
}

// ForwardReply acknowledges a forwarded batch.
type ForwardReply struct {
	Stored int // how many were new
}

// FetchArgs are the arguments of Fetch.
type FetchArgs struct {
	Room  string
	Have  map[string]uint64 `msg:",allownil"`
	Limit int
}

// FetchReply is one page of a room's log.
type FetchReply struct {
	Messages []Message         `msg:",allownil"`
	Heads    map[string]uint64 `msg:",allownil"`
	More     bool
}

// RoomChangedArgs name rooms whose membership changed.
type RoomChangedArgs struct {
	Rooms []string `msg:",allownil"`
}

// EndSessionsArgs name ended sessions by [centralapi.SessionID].
type EndSessionsArgs struct {
	Sessions []string `msg:",allownil"`
}

// Event kinds carried by DeliverArgs.
const (
	// EventJoined: User joined Room.
	EventJoined = "joined"
	// EventLeft: User left Room.
	EventLeft = "left"
	// EventResync: the server dropped queued deliveries for this client
	// (it was too slow); the client must Sync every room it shows.
	EventResync = "resync"
	// EventMove: the server can no longer serve the client (its storage
	// is failing); the client should ask central for another server
	// (Reassign, naming this one as failed). Room and User are empty.
	EventMove = "move"

	// EventSessionEnded: the session ended at central (logout, password
	// reset, expiry); the server detached it and will refuse it from now
	// on. It is the last delivery the client gets.
	EventSessionEnded = "session_ended"

	// EventRing: User is in the voice channel of the direct room Room,
	// alone, and calls the client's user. It repeats every few seconds
	// while the caller waits (a client shows one call per room), and
	// stops when the callee joins, the caller leaves, or the caller gives
	// up.
	EventRing = "ring"
)

// Event is a notice about a room, or about the client's server (EventMove).
type Event struct {
	Kind string
	Room string
	User string
}

// DeliverArgs carry messages and events to a client.
type DeliverArgs struct {
	Messages []Message `msg:",allownil"`
	Events   []Event   `msg:",allownil"`
	// Settled tells, by room, a stamp time at or below which the room is
	// settled: every message of the room with a stamp time at or below it
	// has already reached the client (through this or an earlier Deliver,
	// or through the Sync that followed Attach), and no other will ever
	// exist. It is computed from every chat server's watermark, so it
	// assumes the set of chat servers is fixed (see the README).
	Settled map[string]int64 `msg:",allownil"`
}

// Stub implements ChatServer by calling a remote chat server.
type Stub struct{ Inv rmi.Invoker }

// Attach implements ChatServer.
func (s Stub) Attach(ctx context.Context, a AttachArgs) (AttachReply, error) {
	return rmi.Call[AttachReply](ctx, s.Inv, ObjectName, "Attach", a)
}

// Ping implements ChatServer.
func (s Stub) Ping(ctx context.Context, a TokenArgs) error {
	return s.Inv.Invoke(ctx, ObjectName, "Ping", a, nil)
}

// Detach implements ChatServer.
func (s Stub) Detach(ctx context.Context, a TokenArgs) error {
	return s.Inv.Invoke(ctx, ObjectName, "Detach", a, nil)
}

// Post implements ChatServer.
func (s Stub) Post(ctx context.Context, a PostArgs) (PostReply, error) {
	return rmi.Call[PostReply](ctx, s.Inv, ObjectName, "Post", a)
}

// PostBatch implements ChatServer.
func (s Stub) PostBatch(ctx context.Context, a PostBatchArgs) (PostBatchReply, error) {
	return rmi.Call[PostBatchReply](ctx, s.Inv, ObjectName, "PostBatch", a)
}

// Sync implements ChatServer.
func (s Stub) Sync(ctx context.Context, a SyncArgs) (SyncReply, error) {
	return rmi.Call[SyncReply](ctx, s.Inv, ObjectName, "Sync", a)
}

// CreateRoom implements ChatServer.
func (s Stub) CreateRoom(ctx context.Context, a RoomArgs) (centralapi.RoomInfo, error) {
	return rmi.Call[centralapi.RoomInfo](ctx, s.Inv, ObjectName, "CreateRoom", a)
}

// JoinRoom implements ChatServer.
func (s Stub) JoinRoom(ctx context.Context, a RoomArgs) (centralapi.RoomInfo, error) {
	return rmi.Call[centralapi.RoomInfo](ctx, s.Inv, ObjectName, "JoinRoom", a)
}

// LeaveRoom implements ChatServer.
func (s Stub) LeaveRoom(ctx context.Context, a RoomArgs) error {
	return s.Inv.Invoke(ctx, ObjectName, "LeaveRoom", a, nil)
}

// Direct implements ChatServer.
func (s Stub) Direct(ctx context.Context, a DirectArgs) (centralapi.RoomInfo, error) {
	return rmi.Call[centralapi.RoomInfo](ctx, s.Inv, ObjectName, "Direct", a)
}

// ListRooms implements ChatServer.
func (s Stub) ListRooms(ctx context.Context, a TokenArgs) (centralapi.ListReply, error) {
	return rmi.Call[centralapi.ListReply](ctx, s.Inv, ObjectName, "ListRooms", a)
}

// Who implements ChatServer.
func (s Stub) Who(ctx context.Context, a RoomArgs) (centralapi.RoomInfo, error) {
	return rmi.Call[centralapi.RoomInfo](ctx, s.Inv, ObjectName, "Who", a)
}

// VoiceJoin implements ChatServer.
func (s Stub) VoiceJoin(ctx context.Context, a VoiceArgs) error {
	return s.Inv.Invoke(ctx, ObjectName, "VoiceJoin", a, nil)
}

// VoiceSignal implements ChatServer.
func (s Stub) VoiceSignal(ctx context.Context, a VoiceArgs) error {
	return s.Inv.Invoke(ctx, ObjectName, "VoiceSignal", a, nil)
}

// VoiceLeave implements ChatServer.
func (s Stub) VoiceLeave(ctx context.Context, a VoiceArgs) error {
	return s.Inv.Invoke(ctx, ObjectName, "VoiceLeave", a, nil)
}

// VoiceWho implements ChatServer.
func (s Stub) VoiceWho(ctx context.Context, a VoiceArgs) (VoiceWhoReply, error) {
	return rmi.Call[VoiceWhoReply](ctx, s.Inv, ObjectName, "VoiceWho", a)
}

// PeerStub implements Peer by calling another chat server.
type PeerStub struct{ Inv rmi.Invoker }

// Forward implements Peer.
func (s PeerStub) Forward(ctx context.Context, a ForwardArgs) (ForwardReply, error) {
	return rmi.Call[ForwardReply](ctx, s.Inv, PeerObjectName, "Forward", a)
}

// Fetch implements Peer.
func (s PeerStub) Fetch(ctx context.Context, a FetchArgs) (FetchReply, error) {
	return rmi.Call[FetchReply](ctx, s.Inv, PeerObjectName, "Fetch", a)
}

// RoomChanged implements Peer.
func (s PeerStub) RoomChanged(ctx context.Context, a RoomChangedArgs) error {
	return s.Inv.Invoke(ctx, PeerObjectName, "RoomChanged", a, nil)
}

// EndSessions implements Peer.
func (s PeerStub) EndSessions(ctx context.Context, a EndSessionsArgs) error {
	return s.Inv.Invoke(ctx, PeerObjectName, "EndSessions", a, nil)
}

// VoiceRelay implements Peer.
func (s PeerStub) VoiceRelay(ctx context.Context, a VoiceRelayArgs) (VoiceWhoReply, error) {
	return rmi.Call[VoiceWhoReply](ctx, s.Inv, PeerObjectName, "VoiceRelay", a)
}

// VoiceReturn implements Peer.
func (s PeerStub) VoiceReturn(ctx context.Context, a VoiceReturnArgs) error {
	return s.Inv.Invoke(ctx, PeerObjectName, "VoiceReturn", a, nil)
}

// Ring implements Peer.
func (s PeerStub) Ring(ctx context.Context, a RingArgs) error {
	return s.Inv.Invoke(ctx, PeerObjectName, "Ring", a, nil)
}

// CallbackStub implements Callback by calling back into a client.
type CallbackStub struct{ Inv rmi.Invoker }

// Deliver implements Callback.
func (s CallbackStub) Deliver(ctx context.Context, a DeliverArgs) error {
	return s.Inv.Invoke(ctx, CallbackObjectName, "Deliver", a, nil)
}

// Voice implements Callback.
func (s CallbackStub) Voice(ctx context.Context, a VoiceDeliverArgs) error {
	return s.Inv.Invoke(ctx, CallbackObjectName, "Voice", a, nil)
}

var (
	_ ChatServer = Stub{}
	_ Peer       = PeerStub{}
	_ Callback   = CallbackStub{}
)
