package centralapi_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
)

// checkArgLimits fails unless every method of the remote interface I takes
// an argument type that declares its limits.
func checkArgLimits[I any](t *testing.T) {
	it := reflect.TypeFor[I]()
	for i := range it.NumMethod() {
		m := it.Method(i)
		if at := m.Type.In(1); !at.Implements(reflect.TypeFor[rmi.ArgLimits]()) {
			t.Errorf("%v.%s: argument type %v does not implement rmi.ArgLimits", it, m.Name, at)
		}
	}
}

func TestEveryArgumentHasLimits(t *testing.T) {
	checkArgLimits[centralapi.CentralServer](t)
	checkArgLimits[centralapi.Cluster](t)
}

// TestLargestValidArgumentsFit checks that the byte caps leave room for
// the largest arguments a well-behaved caller sends. RegisterArgs and
// RenewArgs carry a server's sessions: the transport's cluster cap bounds
// their bytes, MaxServerSessions their length.
func TestLargestValidArgumentsFit(t *testing.T) {
	token := strings.Repeat("f", 64)
	user := strings.Repeat("u", 32)
	room := centralapi.DirectRoomName(strings.Repeat("a", 32), strings.Repeat("b", 32))
	password := strings.Repeat("p", 1024)
	server := strings.Repeat("s", 32)
	for _, a := range []rmi.ArgLimits{
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
	} {
		b, err := rmi.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if caps := a.ArgCaps(); len(b) > caps.Bytes {
			t.Errorf("%T: the largest valid argument takes %d bytes, over its cap of %d", a, len(b), caps.Bytes)
		}
		if err := a.CheckLimits(); err != nil {
			t.Errorf("%T: the largest valid argument breaks its limits: %v", a, err)
		}
	}
}

// within panics if a reached a method though it breaks its limits: rmi
// must refuse such arguments before the method runs.
func within(a rmi.ArgLimits) error {
	if err := a.CheckLimits(); err != nil {
		panic(fmt.Sprintf("%T reached its method though it breaks its limits: %v", a, err))
	}
	return nil
}

// limitsChecker implements both remote interfaces of the package, doing
// nothing but check that its arguments are within their limits.
type limitsChecker struct{}

func (limitsChecker) SignUp(_ context.Context, a centralapi.SignUpArgs) (centralapi.SignUpReply, error) {
	return centralapi.SignUpReply{}, within(a)
}
func (limitsChecker) Login(_ context.Context, a centralapi.LoginArgs) (centralapi.LoginReply, error) {
	return centralapi.LoginReply{}, within(a)
}
func (limitsChecker) Reassign(_ context.Context, a centralapi.ReassignArgs) (centralapi.LoginReply, error) {
	return centralapi.LoginReply{}, within(a)
}
func (limitsChecker) ResetPassword(_ context.Context, a centralapi.ResetArgs) (centralapi.ResetReply, error) {
	return centralapi.ResetReply{}, within(a)
}
func (limitsChecker) Logout(_ context.Context, a centralapi.LogoutArgs) error { return within(a) }
func (limitsChecker) RegisterServer(_ context.Context, a centralapi.RegisterArgs) (centralapi.RegisterReply, error) {
	return centralapi.RegisterReply{}, within(a)
}
func (limitsChecker) RenewServer(_ context.Context, a centralapi.RenewArgs) (centralapi.RenewReply, error) {
	return centralapi.RenewReply{}, within(a)
}
func (limitsChecker) UnregisterServer(_ context.Context, a centralapi.UnregisterArgs) error {
	return within(a)
}
func (limitsChecker) CheckSession(_ context.Context, a centralapi.SessionArgs) (centralapi.SessionInfo, error) {
	return centralapi.SessionInfo{}, within(a)
}
func (limitsChecker) EndSession(_ context.Context, a centralapi.SessionArgs) error { return within(a) }
func (limitsChecker) CreateRoom(_ context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) JoinRoom(_ context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) LeaveRoom(_ context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) DirectRoom(_ context.Context, a centralapi.DirectArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) Room(_ context.Context, a centralapi.RoomQuery) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) ListRooms(_ context.Context, a centralapi.UserArgs) (centralapi.ListReply, error) {
	return centralapi.ListReply{}, within(a)
}
func (limitsChecker) UserRooms(_ context.Context, a centralapi.UserArgs) (centralapi.UserRoomsReply, error) {
	return centralapi.UserRoomsReply{}, within(a)
}

// methodNames lists the methods of the remote interface I.
func methodNames[I any]() []string {
	it := reflect.TypeFor[I]()
	names := make([]string, it.NumMethod())
	for i := range names {
		names[i] = it.Method(i).Name
	}
	return names
}

// FuzzArguments hands arbitrary bytes, as the arguments of each remote
// method of the package, to rmi's Table.Handle: decoding and the limits
// must refuse what breaks them, before the method runs, without panicking.
// Run with: go test -run '^$' -fuzz '^FuzzArguments$' -fuzztime 10s ./central/centralapi
func FuzzArguments(f *testing.F) {
	tab := rmi.NewTable(nil)
	if err := rmi.Export[centralapi.CentralServer](tab, centralapi.ObjectName, limitsChecker{}); err != nil {
		f.Fatal(err)
	}
	if err := rmi.Export[centralapi.Cluster](tab, centralapi.ClusterObjectName, limitsChecker{}); err != nil {
		f.Fatal(err)
	}
	var calls []rmi.Request
	for _, m := range methodNames[centralapi.CentralServer]() {
		calls = append(calls, rmi.Request{Object: centralapi.ObjectName, Method: m})
	}
	for _, m := range methodNames[centralapi.Cluster]() {
		calls = append(calls, rmi.Request{Object: centralapi.ClusterObjectName, Method: m})
	}
	seed := func(method string, args any) {
		b, err := rmi.Marshal(args)
		if err != nil {
			f.Fatal(err)
		}
		for i, c := range calls {
			if c.Method == method {
				f.Add(uint8(i), b)
			}
		}
	}
	seed("Login", centralapi.LoginArgs{User: "alice", Password: "correct horse"})
	seed("RegisterServer", centralapi.RegisterArgs{Name: "s1", Addr: "127.0.0.1:1", Sessions: []string{"t1", "t2"}})
	seed("JoinRoom", centralapi.RoomArgs{User: "alice", Room: "lobby"})
	f.Fuzz(func(t *testing.T, which uint8, args []byte) {
		c := calls[int(which)%len(calls)]
		c.Args, c.Timeout = args, int64(time.Minute)
		peer := rmi.NewPeer(1, "fuzz", true, nil)
		resp := tab.Handle(rmi.WithPeer(context.Background(), peer), clock.New(), rmi.DefaultMaxRequestBytes, &c)
		if resp.ErrCode == rmi.ErrPanic.Code {
			t.Fatalf("%s.%s(%x): %s", c.Object, c.Method, args, resp.ErrMsg)
		}
	})
}
