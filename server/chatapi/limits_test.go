package chatapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/argtest"
	"github.com/distchat/distchat/server/chatapi"
)

func TestEveryArgumentHasLimits(t *testing.T) {
	argtest.EveryArgumentHasLimits[chatapi.ChatServer](t)
	argtest.EveryArgumentHasLimits[chatapi.Peer](t)
	argtest.EveryArgumentHasLimits[chatapi.Callback](t)
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
	bigSignal := chatapi.VoiceSignal{Kind: chatapi.VoiceAnswer, SDP: strings.Repeat("s", chatapi.MaxVoiceSDP),
		Candidate: strings.Repeat("c", chatapi.MaxVoiceCandidate), SDPMid: strings.Repeat("m", 64), SDPMLineIndex: 1<<16 - 1}
	// The largest batches a client builds (FitsPostBatch): of the
	// longest messages, and of the most.
	var longest, most []chatapi.BatchPost
	for p := (chatapi.BatchPost{Room: room, ID: strings.Repeat("i", chatapi.MaxID), Text: strings.Repeat("x", chatapi.MaxText)}); chatapi.FitsPostBatch(append(longest, p)); {
		longest = append(longest, p)
	}
	for p := (chatapi.BatchPost{Room: room, ID: strings.Repeat("i", chatapi.MaxID), Text: "x"}); chatapi.FitsPostBatch(append(most, p)); {
		most = append(most, p)
	}
	if len(longest) < 2 || len(most) != chatapi.MaxPostBatch {
		t.Fatalf("batches of %d longest and %d shortest messages; want at least 2 and %d", len(longest), len(most), chatapi.MaxPostBatch)
	}
	seen := chatapi.Stamp{Time: 1<<63 - 1, Server: server, Seq: 1<<64 - 1}
	argtest.LargestFit(t,
		chatapi.PostBatchArgs{Token: token, Posts: longest, Seen: seen},
		chatapi.PostBatchArgs{Token: token, Posts: most, Seen: seen},
		chatapi.AttachArgs{Token: token},
		chatapi.TokenArgs{Token: token},
		chatapi.PostArgs{Token: token, Room: room, ID: strings.Repeat("i", chatapi.MaxID),
			Text: strings.Repeat("x", chatapi.MaxText), Seen: chatapi.Stamp{Time: 1<<63 - 1, Server: server, Seq: 1<<64 - 1}},
		chatapi.SyncArgs{Token: token, Room: room, Have: have, Limit: chatapi.MaxSyncLimit},
		chatapi.FetchArgs{Room: room, Have: have, Limit: chatapi.MaxSyncLimit},
		chatapi.RoomArgs{Token: token, Room: room},
		chatapi.DirectArgs{Token: token, Peer: strings.Repeat("p", 32)},
		chatapi.VoiceArgs{Token: token, Room: room, Signal: bigSignal},
		chatapi.VoiceRelayArgs{Op: chatapi.VoiceOpSignal, From: server, FromAddr: strings.Repeat("h", 253) + ":65535", Session: strings.Repeat("v", 64),
			Room: room, User: strings.Repeat("u", 32), Signal: bigSignal},
		chatapi.VoiceReturnArgs{Session: strings.Repeat("v", 64), Room: room, User: strings.Repeat("u", 32), Signal: bigSignal},
		chatapi.VoiceDeliverArgs{Room: room, Signal: bigSignal},
		chatapi.RingArgs{Room: room, Caller: strings.Repeat("a", 32), Callee: strings.Repeat("b", 32)},
	)
}

// limitsChecker implements every remote interface of the package, doing
// nothing but check that its arguments are within their limits.
type limitsChecker struct{}

func (limitsChecker) Attach(_ context.Context, a chatapi.AttachArgs) (chatapi.AttachReply, error) {
	return chatapi.AttachReply{}, argtest.Within(a)
}
func (limitsChecker) Ping(_ context.Context, a chatapi.TokenArgs) error   { return argtest.Within(a) }
func (limitsChecker) Detach(_ context.Context, a chatapi.TokenArgs) error { return argtest.Within(a) }
func (limitsChecker) Post(_ context.Context, a chatapi.PostArgs) (chatapi.PostReply, error) {
	return chatapi.PostReply{}, argtest.Within(a)
}
func (limitsChecker) PostBatch(_ context.Context, a chatapi.PostBatchArgs) (chatapi.PostBatchReply, error) {
	return chatapi.PostBatchReply{}, argtest.Within(a)
}
func (limitsChecker) Sync(_ context.Context, a chatapi.SyncArgs) (chatapi.SyncReply, error) {
	return chatapi.SyncReply{}, argtest.Within(a)
}
func (limitsChecker) CreateRoom(_ context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) JoinRoom(_ context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) EndSessions(_ context.Context, a chatapi.EndSessionsArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) LeaveRoom(_ context.Context, a chatapi.RoomArgs) error { return argtest.Within(a) }
func (limitsChecker) Direct(_ context.Context, a chatapi.DirectArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) ListRooms(_ context.Context, a chatapi.TokenArgs) (centralapi.ListReply, error) {
	return centralapi.ListReply{}, argtest.Within(a)
}
func (limitsChecker) Who(_ context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	return centralapi.RoomInfo{}, argtest.Within(a)
}
func (limitsChecker) Forward(_ context.Context, a chatapi.ForwardArgs) (chatapi.ForwardReply, error) {
	return chatapi.ForwardReply{}, argtest.Within(a)
}
func (limitsChecker) Fetch(_ context.Context, a chatapi.FetchArgs) (chatapi.FetchReply, error) {
	return chatapi.FetchReply{}, argtest.Within(a)
}
func (limitsChecker) RoomChanged(_ context.Context, a chatapi.RoomChangedArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) VoiceJoin(_ context.Context, a chatapi.VoiceArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) VoiceSignal(_ context.Context, a chatapi.VoiceArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) VoiceLeave(_ context.Context, a chatapi.VoiceArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) VoiceWho(_ context.Context, a chatapi.VoiceArgs) (chatapi.VoiceWhoReply, error) {
	return chatapi.VoiceWhoReply{}, argtest.Within(a)
}
func (limitsChecker) VoiceRelay(_ context.Context, a chatapi.VoiceRelayArgs) (chatapi.VoiceWhoReply, error) {
	return chatapi.VoiceWhoReply{}, argtest.Within(a)
}
func (limitsChecker) VoiceReturn(_ context.Context, a chatapi.VoiceReturnArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) Ring(_ context.Context, a chatapi.RingArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) Voice(_ context.Context, a chatapi.VoiceDeliverArgs) error {
	return argtest.Within(a)
}
func (limitsChecker) Deliver(_ context.Context, a chatapi.DeliverArgs) error {
	return argtest.Within(a)
}

// FuzzArguments hands arbitrary bytes, as the arguments of each remote
// method of the package, to rmi's Table.Handle: decoding and the limits
// must refuse what breaks them, before the method runs, without panicking.
// Run with: go test -run '^$' -fuzz '^FuzzArguments$' -fuzztime 10s ./server/chatapi
func FuzzArguments(f *testing.F) {
	z := argtest.NewFuzzer()
	if err := argtest.Export[chatapi.ChatServer](z, chatapi.ObjectName, limitsChecker{}); err != nil {
		f.Fatal(err)
	}
	if err := argtest.Export[chatapi.Peer](z, chatapi.PeerObjectName, limitsChecker{}); err != nil {
		f.Fatal(err)
	}
	if err := argtest.Export[chatapi.Callback](z, chatapi.CallbackObjectName, limitsChecker{}); err != nil {
		f.Fatal(err)
	}
	z.Seed(f, "Sync", chatapi.SyncArgs{Token: "t", Room: "lobby", Have: map[string]uint64{"s1": 4}})
	z.Seed(f, "Post", chatapi.PostArgs{Token: "t", Room: "lobby", ID: "1", Text: "hello"})
	z.Seed(f, "PostBatch", chatapi.PostBatchArgs{Token: "t", Posts: []chatapi.BatchPost{{Room: "lobby", ID: "1", Text: "hello"}, {Room: "lobby", ID: "2", Text: "again"}}})
	z.Seed(f, "Forward", chatapi.ForwardArgs{From: "s1", Messages: []chatapi.Message{{Room: "lobby", ID: "1", Text: "x"}}})
	z.Seed(f, "Deliver", chatapi.DeliverArgs{Events: []chatapi.Event{{Kind: chatapi.EventJoined, Room: "r", User: "u"}}})
	z.Fuzz(f)
}
