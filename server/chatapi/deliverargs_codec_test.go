package chatapi_test

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/tinylib/msgp/msgp"
	"pgregory.net/rapid"
)

// deliverArgsEncoding draws a DeliverArgs map as any peer may write it:
// its fields in any order, repeated, nil, missing, or next to unknown ones.
func deliverArgsEncoding(t *rapid.T) []byte {
	n := rapid.IntRange(0, 5).Draw(t, "fields")
	b := msgp.AppendMapHeader(nil, uint32(n))
	for range n {
		key := rapid.SampledFrom([]string{"Messages", "Events", "Settled", "Extra"}).Draw(t, "key")
		b = msgp.AppendString(b, key)
		if key != "Extra" && rapid.IntRange(0, 4).Draw(t, "nil") == 0 {
			b = msgp.AppendNil(b)
			continue
		}
		switch key {
		case "Messages":
			ms := rapid.SliceOfN(rapid.Make[chatapi.Message](), 0, 4).Draw(t, "messages")
			b = msgp.AppendArrayHeader(b, uint32(len(ms)))
			for _, m := range ms {
				b, _ = m.MarshalMsg(b)
			}
		case "Events":
			es := rapid.SliceOfN(rapid.Make[chatapi.Event](), 0, 3).Draw(t, "events")
			b = msgp.AppendArrayHeader(b, uint32(len(es)))
			for _, e := range es {
				b, _ = e.MarshalMsg(b)
			}
		case "Settled":
			s := rapid.MapOfN(rapid.StringN(0, 6, -1), rapid.Int64(), 0, 3).Draw(t, "settled")
			b = msgp.AppendMapHeader(b, uint32(len(s)))
			for room, at := range s {
				b = msgp.AppendInt64(msgp.AppendString(b, room), at)
			}
		default:
			b = msgp.AppendArrayHeader(b, 2)
			b = msgp.AppendInt(msgp.AppendString(b, "x"), 7)
		}
	}
	return b
}

// UnmarshalMsgBorrowed reads every DeliverArgs the generated decoder
// reads, to the same value (starting from the same one: a field that is
// missing keeps its value), and refuses what it refuses.
func TestDeliverArgsBorrowedDecodesLikeGenerated(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		enc := deliverArgsEncoding(t)
		start, err := rmi.Marshal(rapid.Make[chatapi.DeliverArgs]().Draw(t, "before"))
		if err != nil {
			t.Fatal(err)
		}
		fromZero := rapid.Bool().Draw(t, "from the zero value")
		fresh := func() chatapi.DeliverArgs { // the same starting value, sharing nothing
			var a chatapi.DeliverArgs
			if fromZero {
				return a
			}
			if _, err := a.UnmarshalMsg(start); err != nil {
				t.Fatal(err)
			}
			return a
		}
		for cut := len(enc); cut >= 0; cut-- {
			in := append(enc[:cut:cut], 0xc0) // one more value after it
			want, got := fresh(), fresh()
			wantRest, wantErr := want.UnmarshalMsg(in)
			gotRest, gotErr := got.UnmarshalMsgBorrowed(in)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("cut to %d of %d bytes: borrowed decoder: %v; generated: %v", cut, len(enc), gotErr, wantErr)
			}
			if wantErr != nil {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("borrowed decoder read %#v, generated %#v", got, want)
			}
			if len(gotRest) != len(wantRest) {
				t.Fatalf("borrowed decoder left %d bytes, generated %d", len(gotRest), len(wantRest))
			}
		}
	})
}

// The strings of the borrowed messages point into the input, and those of
// the events and the settled map do not.
func TestDeliverArgsBorrowedPointsIntoItsInput(t *testing.T) {
	args := chatapi.DeliverArgs{
		Messages: []chatapi.Message{
			{Room: "lobby", ID: "1.1", From: "ann", Text: "hi", Stamp: chatapi.Stamp{Time: 5, Server: "s1", Seq: 1}},
			{Room: "lobby", ID: "2.1", From: "bob", Text: "hello", Stamp: chatapi.Stamp{Time: 6, Server: "s2", Seq: 1}},
		},
		Events:  []chatapi.Event{{Kind: chatapi.EventJoined, Room: "lobby", User: "cid"}},
		Settled: map[string]int64{"lobby": 4},
	}
	enc, err := rmi.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	var got chatapi.DeliverArgs
	if _, err := got.UnmarshalMsgBorrowed(enc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, args) {
		t.Fatalf("decoded %#v, want %#v", got, args)
	}
	first, last := uintptr(unsafe.Pointer(&enc[0])), uintptr(unsafe.Pointer(&enc[len(enc)-1]))
	inside := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= first && p <= last
	}
	for _, m := range got.Messages {
		for _, s := range []string{m.Room, m.ID, m.From, m.Text, m.Stamp.Server} {
			if !inside(s) {
				t.Errorf("message string %q is a copy, want it to point into the input", s)
			}
		}
	}
	for _, e := range got.Events {
		for _, s := range []string{e.Kind, e.Room, e.User} {
			if inside(s) {
				t.Errorf("event string %q points into the input, want a copy", s)
			}
		}
	}
	for room := range got.Settled {
		if inside(room) {
			t.Errorf("settled room %q points into the input, want a copy", room)
		}
	}
}
