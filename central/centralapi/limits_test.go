package centralapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/argtest"
)

func TestEveryArgumentHasLimits(t *testing.T) {
	argtest.EveryArgumentHasLimits[centralapi.CentralServer](t)
	argtest.EveryArgumentHasLimits[centralapi.Cluster](t)
}

// TestLargestValidArgumentsFit checks that the byte caps leave room for
// the largest arguments a well-behaved caller sends. RegisterArgs and
// RenewArgs carry a server's sessions: the transport's cluster cap bounds
// their bytes (they declare no byte cap), MaxServerSessions their length.
func TestLargestValidArgumentsFit(t *testing.T) {
	token := strings.Repeat("f", 64)
	user := strings.Repeat("u", 32)
	room := centralapi.DirectRoomName(strings.Repeat("a", 32), strings.Repeat("b", 32))
	password := strings.Repeat("p", 1024)
	server := strings.Repeat("s", 32)
	argtest.LargestFit(t,
		centralapi.SignUpArgs{User: user, Password: password},
		centralapi.LoginArgs{User: user, Password: password},
		centralapi.ReassignArgs{Token: token, Failed: server},
		centralapi.ResetArgs{User: user, RecoveryCode: strings.Repeat("c", 128), NewPassword: password},
		centralapi.LogoutArgs{Token: token},
		centralapi.UnregisterArgs{Name: server},
		centralapi.SessionArgs{Token: token, Server: server},
		centralapi.RoomArgs{User: user, Room: room},
		centralapi.DirectArgs{User: user, Peer: user},
		centralapi.RoomQuery{Room: room},
		centralapi.UserArgs{User: user},
	)
}

// limitsChecker implements both remote interfaces of the package, doing
// nothing but check that its arguments are within their limits.
type limitsChecker struct{}

func (limitsChecker) SignUp(_ context.Context, a centralapi.SignUpArgs) (centralapi.SignUpReply, error) {
	return centralapi.SignUpReply{}, argtest.Within(a)
}
func (limitsChecker) Login(_ context.Context, a centralapi.LoginArgs) (centralapi.LoginReply, error) {
	return centralapi.LoginReply{}, argtest.Within(a)
}
func (limitsChecker) Reassign(_ context.Context, a centralapi.ReassignArgs) (centralapi.LoginReply, error) {
	return centralapi.LoginReply{}, argtest.Within(a)
}
func (limitsChecker) ResetPassword(_ context.Context, a centralapi.ResetArgs) (centralapi.ResetReply, error) {
	return centralapi.ResetReply{}, argtest.Within(a)
}
func (limitsChecker) Logout(_ context.Context, a centralapi.LogoutArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) RegisterServer(_ context.Context, a centralapi.RegisterArgs) (centralapi.RegisterReply, error) {
	return centralapi.RegisterReply{}, argtest.Within(a)
}
func (limitsChecker) RenewServer(_ context.Context, a centralapi.RenewArgs) (centralapi.RenewReply, error) {
	return centralapi.RenewReply{}, argtest.Within(a)
}
func (limitsChecker) UnregisterServer(_ context.Context, a centralapi.UnregisterArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) CheckSession(_ context.Context, a centralapi.SessionArgs) (centralapi.SessionInfo, error) {
	return centralapi.SessionInfo{}, argtest.Within(a)
}
func (limitsChecker) EndSession(_ context.Context, a centralapi.SessionArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) CreateRoom(_ context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) JoinRoom(_ context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) LeaveRoom(_ context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) DirectRoom(_ context.Context, a centralapi.DirectArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) Room(_ context.Context, a centralapi.RoomQuery) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) SearchUsers(_ context.Context, a centralapi.SearchArgs) (centralapi.SearchReply, error) {
	return centralapi.SearchReply{}, argtest.Within(a)
}
func (limitsChecker) RedeemTicket(_ context.Context, a centralapi.TicketArgs) (centralapi.TicketReply, error) {
	return centralapi.TicketReply{}, argtest.Within(a)
}
func (limitsChecker) IssueResetCode(_ context.Context, a centralapi.UserArgs) (centralapi.ResetReply, error) {
	return centralapi.ResetReply{}, argtest.Within(a)
}
func (limitsChecker) VoiceHost(_ context.Context, a centralapi.RoomArgs) (centralapi.VoiceHostReply, error) {
	return centralapi.VoiceHostReply{}, argtest.Within(a)
}
func (limitsChecker) ListRooms(_ context.Context, a centralapi.UserArgs) (centralapi.ListReply, error) {
	return centralapi.ListReply{}, argtest.Within(a)
}
func (limitsChecker) UserRooms(_ context.Context, a centralapi.UserArgs) (centralapi.UserRoomsReply, error) {
	return centralapi.UserRoomsReply{}, argtest.Within(a)
}

// FuzzArguments hands arbitrary bytes, as the arguments of each remote
// method of the package, to rmi's Table.Handle: decoding and the limits
// must refuse what breaks them, before the method runs, without panicking.
// Run with: go test -run '^$' -fuzz '^FuzzArguments$' -fuzztime 10s ./central/centralapi
func FuzzArguments(f *testing.F) {
	z := argtest.NewFuzzer()
	if err := argtest.Export[centralapi.CentralServer](z, centralapi.ObjectName, limitsChecker{}); err != nil {
		f.Fatal(err)
	}
	if err := argtest.Export[centralapi.Cluster](z, centralapi.ClusterObjectName, limitsChecker{}); err != nil {
		f.Fatal(err)
	}
	z.Seed(f, "Login", centralapi.LoginArgs{User: "alice", Password: "correct horse"})
	z.Seed(f, "RegisterServer", centralapi.RegisterArgs{Name: "s1", Addr: "127.0.0.1:1", Sessions: []string{"t1", "t2"}})
	z.Seed(f, "JoinRoom", centralapi.RoomArgs{User: "alice", Room: "lobby"})
	z.Fuzz(f)
}
