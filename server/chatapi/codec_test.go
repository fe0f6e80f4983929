package chatapi_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"pgregory.net/rapid"
)

// reflectHandle encodes as rmi's go-msgpack handle does (the settings that
// shape the bytes), for comparing the generated encoders with it.
var reflectHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{WriteExt: true}
	h.RawToString = true
	return h
}()

// checkSameEncoding checks, for random values of T, that the generated
// encoder (rmi.Marshal) and go-msgpack's reflection write encodings of the
// same length that each decoder, generated (rmi.Unmarshal) and reflection,
// reads back as the value written: peers may use either.
func checkSameEncoding[T any](t *testing.T) {
	t.Run(reflect.TypeFor[T]().Name(), func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			v := rapid.Make[T]().Draw(t, "v")
			gen, err := rmi.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var refl []byte
			if err := codec.NewEncoderBytes(&refl, reflectHandle).Encode(v); err != nil {
				t.Fatal(err)
			}
			if len(gen) != len(refl) {
				t.Fatalf("generated encoding is %d bytes, reflection's %d:\n% x\n% x", len(gen), len(refl), gen, refl)
			}
			var fromRefl T
			if err := rmi.Unmarshal(refl, &fromRefl); err != nil {
				t.Fatalf("generated decoder on reflection's encoding: %v", err)
			}
			if !reflect.DeepEqual(fromRefl, v) {
				t.Fatalf("generated decoder read %#v, want %#v", fromRefl, v)
			}
			var fromGen T
			if err := codec.NewDecoderBytes(gen, reflectHandle).Decode(&fromGen); err != nil {
				t.Fatalf("reflection's decoder on the generated encoding: %v", err)
			}
			if !reflect.DeepEqual(fromGen, v) {
				t.Fatalf("reflection's decoder read %#v, want %#v", fromGen, v)
			}
		})
	})
}

// TestGeneratedCodecMatchesReflection covers every type with a generated
// encoder.
func TestGeneratedCodecMatchesReflection(t *testing.T) {
	checkSameEncoding[chatapi.Stamp](t)
	checkSameEncoding[chatapi.Message](t)
	checkSameEncoding[chatapi.Event](t)
	checkSameEncoding[chatapi.AttachArgs](t)
	checkSameEncoding[chatapi.AttachReply](t)
	checkSameEncoding[chatapi.TokenArgs](t)
	checkSameEncoding[chatapi.PostArgs](t)
	checkSameEncoding[chatapi.PostReply](t)
	checkSameEncoding[chatapi.PostBatchArgs](t)
	checkSameEncoding[chatapi.PostBatchReply](t)
	checkSameEncoding[chatapi.SyncArgs](t)
	checkSameEncoding[chatapi.SyncReply](t)
	checkSameEncoding[chatapi.RoomArgs](t)
	checkSameEncoding[chatapi.DirectArgs](t)
	checkSameEncoding[chatapi.ForwardArgs](t)
	checkSameEncoding[chatapi.ForwardReply](t)
	checkSameEncoding[chatapi.FetchArgs](t)
	checkSameEncoding[chatapi.FetchReply](t)
	checkSameEncoding[chatapi.RoomChangedArgs](t)
	checkSameEncoding[chatapi.EndSessionsArgs](t)
	checkSameEncoding[chatapi.DeliverArgs](t)
}

// FuzzGeneratedDecoders hands arbitrary bytes to every generated decoder,
// as a hostile server's replies and a hostile peer's arguments would reach
// them: none may panic, and what one accepts must encode and decode again
// to the same value.
func FuzzGeneratedDecoders(f *testing.F) {
	seeds := []any{
		chatapi.SyncReply{Messages: []chatapi.Message{{Room: "r", ID: "1", From: "u", Text: "hi", Stamp: chatapi.Stamp{Time: 1, Server: "s", Seq: 1}}}, More: true},
		chatapi.FetchReply{Heads: map[string]uint64{"s": 3}},
		chatapi.DeliverArgs{Events: []chatapi.Event{{Kind: chatapi.EventJoined, Room: "r", User: "u"}}, Settled: map[string]int64{"r": 5}},
		chatapi.AttachReply{User: "u", Rooms: []string{"a", "b"}, LeaseTTL: 30e9},
	}
	for i, s := range seeds {
		b, err := rmi.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	decoders := []func([]byte) error{
		roundTrip[chatapi.SyncReply], roundTrip[chatapi.FetchReply], roundTrip[chatapi.DeliverArgs],
		roundTrip[chatapi.AttachReply], roundTrip[chatapi.PostReply], roundTrip[chatapi.ForwardArgs],
		roundTrip[chatapi.PostArgs], roundTrip[chatapi.PostBatchArgs], roundTrip[chatapi.PostBatchReply], roundTrip[chatapi.SyncArgs], roundTrip[chatapi.FetchArgs],
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		if err := decoders[int(which)%len(decoders)](b); err != nil {
			t.Fatal(err)
		}
	})
}

// roundTrip decodes b as a T; if that succeeds, the value must survive
// encoding and decoding unchanged.
func roundTrip[T any](b []byte) error {
	var v T
	if rmi.Unmarshal(b, &v) != nil {
		return nil
	}
	again, err := rmi.Marshal(v)
	if err != nil {
		return fmt.Errorf("%T decoded from % x does not encode: %w", v, b, err)
	}
	var w T
	if err := rmi.Unmarshal(again, &w); err != nil {
		return fmt.Errorf("%T decoded from % x: its own encoding does not decode: %w", v, b, err)
	}
	if !reflect.DeepEqual(v, w) {
		return fmt.Errorf("decoded %#v, then %#v after a round trip", v, w)
	}
	return nil
}
