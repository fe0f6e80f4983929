package chatapi_test

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
	"github.com/distchat/distchat/server/chatapi"
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
	checkArgLimits[chatapi.ChatServer](t)
	checkArgLimits[chatapi.Peer](t)
	checkArgLimits[chatapi.Callback](t)
}

// TestLargestValidArgumentsFit checks that the byte caps leave room for
// the largest arguments a well-behaved caller sends.
func TestLargestValidArgumentsFit(t *testing.T) {
	token := strings.Repeat("f", 64)
	room := centralapi.DirectRoomName(strings.Repeat("a", 32), strings.Repeat("b", 32))
	server := strings.Repeat("s", 32)
	have := map[string]uint64{}
	for i := range chatapi.MaxServers {
		have[fmt.Sprintf("%s%04d", server[:28], i)] = 1<<64 - 1
	}
	for _, a := range []rmi.ArgLimits{
		chatapi.AttachArgs{Token: token},
		chatapi.TokenArgs{Token: token},
		chatapi.PostArgs{Token: token, Room: room, ID: strings.Repeat("i", chatapi.MaxID),
			Text: strings.Repeat("x", chatapi.MaxText), Seen: chatapi.Stamp{Time: 1<<63 - 1, Server: server, Seq: 1<<64 - 1}},
		chatapi.SyncArgs{Token: token, Room: room, Have: have, Limit: chatapi.MaxSyncLimit},
		chatapi.FetchArgs{Room: room, Have: have, Limit: chatapi.MaxSyncLimit},
		chatapi.RoomArgs{Token: token, Room: room},
		chatapi.DirectArgs{Token: token, Peer: strings.Repeat("p", 32)},
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

// limitsChecker implements every remote interface of the package, doing
// nothing but check that its arguments are within their limits.
type limitsChecker struct{}

func (limitsChecker) Attach(_ context.Context, a chatapi.AttachArgs) (chatapi.AttachReply, error) {
	return chatapi.AttachReply{}, within(a)
}
func (limitsChecker) Ping(_ context.Context, a chatapi.TokenArgs) error   { return within(a) }
func (limitsChecker) Detach(_ context.Context, a chatapi.TokenArgs) error { return within(a) }
func (limitsChecker) Post(_ context.Context, a chatapi.PostArgs) (chatapi.PostReply, error) {
	return chatapi.PostReply{}, within(a)
}
func (limitsChecker) Sync(_ context.Context, a chatapi.SyncArgs) (chatapi.SyncReply, error) {
	return chatapi.SyncReply{}, within(a)
}
func (limitsChecker) CreateRoom(_ context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) JoinRoom(_ context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) EndSessions(_ context.Context, a chatapi.EndSessionsArgs) error {
	return within(a)
}
func (limitsChecker) LeaveRoom(_ context.Context, a chatapi.RoomArgs) error { return within(a) }
func (limitsChecker) Direct(_ context.Context, a chatapi.DirectArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) ListRooms(_ context.Context, a chatapi.TokenArgs) (centralapi.ListReply, error) {
	return centralapi.ListReply{}, within(a)
}
func (limitsChecker) Who(_ context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, within(a)
}
func (limitsChecker) Forward(_ context.Context, a chatapi.ForwardArgs) (chatapi.ForwardReply, error) {
	return chatapi.ForwardReply{}, within(a)
}
func (limitsChecker) Fetch(_ context.Context, a chatapi.FetchArgs) (chatapi.FetchReply, error) {
	return chatapi.FetchReply{}, within(a)
}
func (limitsChecker) RoomChanged(_ context.Context, a chatapi.RoomChangedArgs) error {
	return within(a)
}
func (limitsChecker) Deliver(_ context.Context, a chatapi.DeliverArgs) error { return within(a) }

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
// Run with: go test -run '^$' -fuzz '^FuzzArguments$' -fuzztime 10s ./server/chatapi
func FuzzArguments(f *testing.F) {
	tab := rmi.NewTable(nil)
	var calls []rmi.Request
	for _, obj := range []struct {
		name    string
		methods []string
		export  func() error
	}{
		{chatapi.ObjectName, methodNames[chatapi.ChatServer](), func() error {
			return rmi.Export[chatapi.ChatServer](tab, chatapi.ObjectName, limitsChecker{})
		}},
		{chatapi.PeerObjectName, methodNames[chatapi.Peer](), func() error {
			return rmi.Export[chatapi.Peer](tab, chatapi.PeerObjectName, limitsChecker{})
		}},
		{chatapi.CallbackObjectName, methodNames[chatapi.Callback](), func() error {
			return rmi.Export[chatapi.Callback](tab, chatapi.CallbackObjectName, limitsChecker{})
		}},
	} {
		if err := obj.export(); err != nil {
			f.Fatal(err)
		}
		for _, m := range obj.methods {
			calls = append(calls, rmi.Request{Object: obj.name, Method: m})
		}
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
	seed("Sync", chatapi.SyncArgs{Token: "t", Room: "lobby", Have: map[string]uint64{"s1": 4}})
	seed("Post", chatapi.PostArgs{Token: "t", Room: "lobby", ID: "1", Text: "hello"})
	seed("Forward", chatapi.ForwardArgs{From: "s1", Messages: []chatapi.Message{{Room: "lobby", ID: "1", Text: "x"}}})
	seed("Deliver", chatapi.DeliverArgs{Events: []chatapi.Event{{Kind: chatapi.EventJoined, Room: "r", User: "u"}}})
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
