// Package centralapi is the remote interface of the central server, the
// part of the original's shared interface library that concerns central:
// the [CentralServer] interface clients call (sign up, log in and be
// redirected to a chat server, reset a password, log out), the [Cluster]
// interface chat servers call (register and renew a lease, check sessions,
// create, join and leave rooms, read a room's members for fan-out), their
// argument and reply types, the error codes, and typed stubs.
//
// It imports only rmi, so a client links no storage or password hashing.
// The implementation is package central.
package centralapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"time"

	"github.com/distchat/distchat/rmi"
)

// Names under which the central process exports its remote objects, and the
// registry name clients look up (rmi://host:1099/CentralServer).
const (
	ObjectName        = "CentralServer"
	ClusterObjectName = "CentralCluster"
)

// DirectPrefix starts the canonical name of every direct (1:1) room:
// "dm:" + the two user names in sorted order, joined by ":".
const DirectPrefix = "dm:"

// DirectRoomName returns the canonical name of the direct room of users a
// and b: DirectPrefix + the two names in sorted order, joined by ":".
func DirectRoomName(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return DirectPrefix + a + ":" + b
}

// Errors returned by the central server. They keep their codes across the
// wire: errors.Is(err, central.ErrNoSuchRoom) works on the caller's side.
var (
	ErrBadName         = rmi.NewError("central.bad_name", "invalid name")
	ErrWeakPassword    = rmi.NewError("central.weak_password", "password must be 8 to 1024 bytes long")
	ErrUserExists      = rmi.NewError("central.user_exists", "user name already taken")
	ErrBadCredentials  = rmi.NewError("central.bad_credentials", "wrong user name or password")
	ErrBadRecoveryCode = rmi.NewError("central.bad_recovery_code", "wrong user name or recovery code")
	ErrBadSession      = rmi.NewError("central.bad_session", "session unknown or expired; log in again")
	ErrNoSuchUser      = rmi.NewError("central.no_such_user", "no such user")
	ErrNoSuchRoom      = rmi.NewError("central.no_such_room", "no such room")
	ErrRoomExists      = rmi.NewError("central.room_exists", "room already exists")
	ErrNotMember       = rmi.NewError("central.not_member", "not a member of this room")
	ErrDirectRoom      = rmi.NewError("central.direct_room", "direct rooms cannot be joined, left or created by name")
	ErrNoServers       = rmi.NewError("central.no_servers", "no chat server is available")
	ErrUnknownServer   = rmi.NewError("central.unknown_server", "chat server not registered (lease expired?); register again")
	ErrBadAddress      = rmi.NewError("central.bad_address", "invalid host:port address")
	ErrThrottled       = rmi.NewError("central.throttled", "too many failed attempts; wait and try again")
	ErrBusy            = rmi.NewError("central.busy", "server busy: too many password checks waiting; retry later")
	ErrBadTicket       = rmi.NewError("central.bad_ticket", "login link unknown, already used or expired; log in again")
)

// WebURL returns the base URL of a web port at hostport: plain HTTP on a
// loopback host, HTTPS anywhere else (browsers allow the microphone only
// on localhost or over HTTPS, and a LAN needs the encryption anyway).
func WebURL(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return "http://" + hostport
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "http://" + hostport
	}
	return "https://" + hostport
}

// SessionID names a session without revealing its token: the hex SHA-256
// of the token. Central keeps only this (never the token), and tells chat
// servers which sessions ended by it.
func SessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CentralServer is the client-facing remote interface of the central server.
type CentralServer interface {
	// SignUp creates an account. The reply carries a one-time recovery
	// code, the only way to reset a forgotten password; show it to the user.
	SignUp(ctx context.Context, args SignUpArgs) (SignUpReply, error)
	// Login checks the password, opens a session and places the user on the
	// least-loaded live chat server: the redirect.
	Login(ctx context.Context, args LoginArgs) (LoginReply, error)
	// Reassign places an existing session on another live chat server,
	// after the client lost its server (Failed names it).
	Reassign(ctx context.Context, args ReassignArgs) (LoginReply, error)
	// ResetPassword sets a new password using the recovery code and returns
	// a fresh recovery code (the old one is spent). All sessions end.
	ResetPassword(ctx context.Context, args ResetArgs) (ResetReply, error)
	// Logout ends a session.
	Logout(ctx context.Context, args LogoutArgs) error
}

// Cluster is the remote interface chat servers use. It is exported
// ClusterOnly: callers must prove the cluster secret.
type Cluster interface {
	// RegisterServer adds (or re-adds) a chat server and grants it a lease
	// of LeaseTTL that it must renew with RenewServer.
	RegisterServer(ctx context.Context, args RegisterArgs) (RegisterReply, error)
	// RenewServer renews a chat server's lease and reports its load. It
	// fails with ErrUnknownServer once the lease has expired.
	RenewServer(ctx context.Context, args RenewArgs) (RenewReply, error)
	// UnregisterServer removes a chat server at once (a graceful
	// shutdown), instead of waiting for its lease to expire. Removing a
	// server that is not registered is not an error.
	UnregisterServer(ctx context.Context, args UnregisterArgs) error
	// CheckSession validates a session token presented to chat server
	// args.Server and records that the session is attached there.
	CheckSession(ctx context.Context, args SessionArgs) (SessionInfo, error)
	// EndSession records that the session's client left chat server
	// args.Server (the token stays valid; see CentralServer.Logout).
	EndSession(ctx context.Context, args SessionArgs) error
	// CreateRoom creates a room with args.User as its first member.
	CreateRoom(ctx context.Context, args RoomArgs) (RoomInfo, error)
	// JoinRoom adds args.User to an existing room (joining twice is fine).
	JoinRoom(ctx context.Context, args RoomArgs) (RoomInfo, error)
	// LeaveRoom removes args.User from a room (ErrNotMember if absent).
	LeaveRoom(ctx context.Context, args RoomArgs) (RoomInfo, error)
	// DirectRoom returns the direct room of args.User and args.Peer,
	// creating it on first use; both are members.
	DirectRoom(ctx context.Context, args DirectArgs) (RoomInfo, error)
	// Room returns a room's members and the live servers they are on.
	Room(ctx context.Context, args RoomQuery) (RoomInfo, error)
	// ListRooms lists the public rooms and args.User's direct rooms.
	ListRooms(ctx context.Context, args UserArgs) (ListReply, error)
	// UserRooms lists the rooms args.User is a member of, sorted.
	UserRooms(ctx context.Context, args UserArgs) (UserRoomsReply, error)
	// SearchUsers lists the users whose names start with args.Prefix, in
	// name order, at most args.Limit (MaxSearchResults if zero or more):
	// how a user finds someone to start a direct chat with.
	SearchUsers(ctx context.Context, args SearchArgs) (SearchReply, error)
	// RedeemTicket exchanges a one-time web login ticket for its session.
	// Central's web login issues the ticket and redirects the browser to
	// chat server args.Server with it; only that server may redeem it,
	// once, within TicketTTL.
	RedeemTicket(ctx context.Context, args TicketArgs) (TicketReply, error)
	// IssueResetCode replaces args.User's recovery code with a fresh one
	// and returns it: the operator's help for a user who lost both the
	// password and the code (distchat admin reset-password). The code
	// works once, like any recovery code, with ResetPassword.
	IssueResetCode(ctx context.Context, args UserArgs) (ResetReply, error)
	// VoiceHost names the chat server that hosts the voice channel of
	// args.Room, for member args.User (ErrNotMember otherwise). The choice
	// is sticky: the same live server for every member, until it is no
	// longer live, when the least-loaded live server takes the channel
	// over.
	VoiceHost(ctx context.Context, args RoomArgs) (VoiceHostReply, error)
}

// VoiceHostReply names the chat server hosting a room's voice channel.
type VoiceHostReply struct {
	Server ServerInfo
}

// MaxSearchResults caps the users one SearchUsers returns.
const MaxSearchResults = 50

// SearchArgs are the arguments of SearchUsers.
type SearchArgs struct {
	Prefix string
	Limit  int
}

// SearchReply lists user names, sorted.
type SearchReply struct {
	Users []string
}

// TicketTTL is how long a web login ticket may be redeemed.
const TicketTTL = time.Minute

// TicketArgs are the arguments of RedeemTicket.
type TicketArgs struct {
	Ticket string
	Server string // the redeeming chat server's name
}

// TicketReply is the session a ticket stood for.
type TicketReply struct {
	User  string
	Token string
}

// SignUpArgs are the arguments of SignUp.
type SignUpArgs struct {
	User     string
	Password string
}

// SignUpReply carries the recovery code of a new account.
type SignUpReply struct {
	RecoveryCode string
}

// LoginArgs are the arguments of Login.
type LoginArgs struct {
	User     string
	Password string
}

// LoginReply is a new session and the chat server to use: the redirect.
type LoginReply struct {
	User   string
	Token  string
	Server ServerInfo
}

// ReassignArgs are the arguments of Reassign.
type ReassignArgs struct {
	Token  string
	Failed string // name of the chat server the client lost, if any
}

// ResetArgs are the arguments of ResetPassword.
type ResetArgs struct {
	User         string
	RecoveryCode string
	NewPassword  string
}

// ResetReply carries the next recovery code.
type ResetReply struct {
	RecoveryCode string
}

// LogoutArgs are the arguments of Logout.
type LogoutArgs struct {
	Token string
}

// ServerInfo describes a live chat server.
type ServerInfo struct {
	Name string
	Addr string // host:port of its RMI listener
	HTTP string // host:port of its web listener, if any
	// Sessions is the number of sessions attached to it (its load).
	Sessions int
}

// RegisterArgs are the arguments of RegisterServer.
type RegisterArgs struct {
	Name string
	Addr string
	HTTP string
	// Sessions are the tokens of the sessions already attached to this
	// server, when it registers again after losing its lease (or after a
	// central restart). They replace the server's attached sessions; a
	// fresh server sends none.
	Sessions []string
	// StorageFailing reports that the server cannot write to its storage
	// (a full disk): central places no session there until a renewal
	// reports it healthy again.
	StorageFailing bool
}

// RegisterReply grants a lease.
type RegisterReply struct {
	LeaseTTL time.Duration
	Servers  []ServerInfo // all live servers, sorted by name
	// Rejected lists the tokens of args.Sessions that are no longer valid
	// sessions (logged out, expired, password reset): the server should
	// drop those clients.
	Rejected []string
	// CentralHTTP is the host:port of central's web port, if it has one:
	// where the chat app sends a browser to log in again or to be placed
	// on another server (see WebURL).
	CentralHTTP string
}

// RenewArgs are the arguments of RenewServer.
type RenewArgs struct {
	Name string
	// StorageFailing: as in RegisterArgs. Each renewal sets it anew.
	StorageFailing bool
	// Sessions are the [SessionID]s of the sessions attached to this
	// server. Central answers which of them ended (the backstop for a lost
	// EndSessions push) and extends those in use.
	Sessions []string
}

// RenewReply lists the live servers (sorted by name) so each chat server
// knows its peers.
type RenewReply struct {
	LeaseTTL time.Duration
	Servers  []ServerInfo
	// Ended lists the args.Sessions that are no longer valid (logged out,
	// password reset, expired): the server must end those attachments.
	Ended []string
}

// UnregisterArgs are the arguments of UnregisterServer.
type UnregisterArgs struct {
	Name string
}

// SessionArgs name a session and the chat server it is presented to.
type SessionArgs struct {
	Token  string
	Server string
}

// SessionInfo is the identity behind a valid session.
type SessionInfo struct {
	User string
}

// RoomArgs name a room and the user acting on it.
type RoomArgs struct {
	User string
	Room string
}

// DirectArgs name the two users of a direct room.
type DirectArgs struct {
	User string
	Peer string
}

// RoomQuery names a room.
type RoomQuery struct {
	Room string
}

// UserArgs name a user.
type UserArgs struct {
	User string
}

// Member is one member of a room and the live chat servers where the member
// has an attached session (empty when offline).
type Member struct {
	User    string
	Servers []string
}

// RoomInfo is a room's membership: members sorted by name, and the live
// servers any member is attached to, sorted by name.
type RoomInfo struct {
	Name    string
	Direct  bool
	Members []Member
	Servers []ServerInfo
}

// RoomSummary is one line of a room listing.
type RoomSummary struct {
	Name    string
	Direct  bool
	Members int
	Joined  bool // whether the listing user is a member
}

// ListReply is a room listing, sorted by name.
type ListReply struct {
	Rooms []RoomSummary
}

// UserRoomsReply lists a user's rooms, sorted.
type UserRoomsReply struct {
	Rooms []string
}

// Stub implements CentralServer by calling a remote central server.
type Stub struct{ Inv rmi.Invoker }

// SignUp implements CentralServer.
func (s Stub) SignUp(ctx context.Context, a SignUpArgs) (SignUpReply, error) {
	return rmi.Call[SignUpReply](ctx, s.Inv, ObjectName, "SignUp", a)
}

// Login implements CentralServer.
func (s Stub) Login(ctx context.Context, a LoginArgs) (LoginReply, error) {
	return rmi.Call[LoginReply](ctx, s.Inv, ObjectName, "Login", a)
}

// Reassign implements CentralServer.
func (s Stub) Reassign(ctx context.Context, a ReassignArgs) (LoginReply, error) {
	return rmi.Call[LoginReply](ctx, s.Inv, ObjectName, "Reassign", a)
}

// ResetPassword implements CentralServer.
func (s Stub) ResetPassword(ctx context.Context, a ResetArgs) (ResetReply, error) {
	return rmi.Call[ResetReply](ctx, s.Inv, ObjectName, "ResetPassword", a)
}

// Logout implements CentralServer.
func (s Stub) Logout(ctx context.Context, a LogoutArgs) error {
	return s.Inv.Invoke(ctx, ObjectName, "Logout", a, nil)
}

// ClusterStub implements Cluster by calling a remote central server.
type ClusterStub struct{ Inv rmi.Invoker }

// RegisterServer implements Cluster.
func (s ClusterStub) RegisterServer(ctx context.Context, a RegisterArgs) (RegisterReply, error) {
	return rmi.Call[RegisterReply](ctx, s.Inv, ClusterObjectName, "RegisterServer", a)
}

// RenewServer implements Cluster.
func (s ClusterStub) RenewServer(ctx context.Context, a RenewArgs) (RenewReply, error) {
	return rmi.Call[RenewReply](ctx, s.Inv, ClusterObjectName, "RenewServer", a)
}

// UnregisterServer implements Cluster.
func (s ClusterStub) UnregisterServer(ctx context.Context, a UnregisterArgs) error {
	return s.Inv.Invoke(ctx, ClusterObjectName, "UnregisterServer", a, nil)
}

// CheckSession implements Cluster.
func (s ClusterStub) CheckSession(ctx context.Context, a SessionArgs) (SessionInfo, error) {
	return rmi.Call[SessionInfo](ctx, s.Inv, ClusterObjectName, "CheckSession", a)
}

// EndSession implements Cluster.
func (s ClusterStub) EndSession(ctx context.Context, a SessionArgs) error {
	return s.Inv.Invoke(ctx, ClusterObjectName, "EndSession", a, nil)
}

// CreateRoom implements Cluster.
func (s ClusterStub) CreateRoom(ctx context.Context, a RoomArgs) (RoomInfo, error) {
	return rmi.Call[RoomInfo](ctx, s.Inv, ClusterObjectName, "CreateRoom", a)
}

// JoinRoom implements Cluster.
func (s ClusterStub) JoinRoom(ctx context.Context, a RoomArgs) (RoomInfo, error) {
	return rmi.Call[RoomInfo](ctx, s.Inv, ClusterObjectName, "JoinRoom", a)
}

// LeaveRoom implements Cluster.
func (s ClusterStub) LeaveRoom(ctx context.Context, a RoomArgs) (RoomInfo, error) {
	return rmi.Call[RoomInfo](ctx, s.Inv, ClusterObjectName, "LeaveRoom", a)
}

// DirectRoom implements Cluster.
func (s ClusterStub) DirectRoom(ctx context.Context, a DirectArgs) (RoomInfo, error) {
	return rmi.Call[RoomInfo](ctx, s.Inv, ClusterObjectName, "DirectRoom", a)
}

// Room implements Cluster.
func (s ClusterStub) Room(ctx context.Context, a RoomQuery) (RoomInfo, error) {
	return rmi.Call[RoomInfo](ctx, s.Inv, ClusterObjectName, "Room", a)
}

// ListRooms implements Cluster.
func (s ClusterStub) ListRooms(ctx context.Context, a UserArgs) (ListReply, error) {
	return rmi.Call[ListReply](ctx, s.Inv, ClusterObjectName, "ListRooms", a)
}

// UserRooms implements Cluster.
func (s ClusterStub) UserRooms(ctx context.Context, a UserArgs) (UserRoomsReply, error) {
	return rmi.Call[UserRoomsReply](ctx, s.Inv, ClusterObjectName, "UserRooms", a)
}

// SearchUsers implements Cluster.
func (s ClusterStub) SearchUsers(ctx context.Context, a SearchArgs) (SearchReply, error) {
	return rmi.Call[SearchReply](ctx, s.Inv, ClusterObjectName, "SearchUsers", a)
}

// RedeemTicket implements Cluster.
func (s ClusterStub) RedeemTicket(ctx context.Context, a TicketArgs) (TicketReply, error) {
	return rmi.Call[TicketReply](ctx, s.Inv, ClusterObjectName, "RedeemTicket", a)
}

// IssueResetCode implements Cluster.
func (s ClusterStub) IssueResetCode(ctx context.Context, a UserArgs) (ResetReply, error) {
	return rmi.Call[ResetReply](ctx, s.Inv, ClusterObjectName, "IssueResetCode", a)
}

// VoiceHost implements Cluster.
func (s ClusterStub) VoiceHost(ctx context.Context, a RoomArgs) (VoiceHostReply, error) {
	return rmi.Call[VoiceHostReply](ctx, s.Inv, ClusterObjectName, "VoiceHost", a)
}

var (
	_ CentralServer = Stub{}
	_ Cluster       = ClusterStub{}
)
