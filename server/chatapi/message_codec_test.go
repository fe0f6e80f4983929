package chatapi_test

import (
	"reflect"
	"testing"

	"github.com/distchat/distchat/server/chatapi"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/tinylib/msgp/msgp"
	"pgregory.net/rapid"
)

// The hand-written Message decoder reads any map go-msgpack's reflection
// reads the same way: fields in any order, repeated ones (the last
// counts), unknown ones (skipped), absent ones (left as they were, here
// as a previous message's values).
func TestMessageDecoderLikeReflection(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		str := rapid.StringN(0, 8, -1)
		type kv struct {
			key   string
			value func([]byte) []byte
		}
		stampPair := func() kv {
			switch rapid.IntRange(0, 3).Draw(t, "stamp field") {
			case 0:
				v := rapid.Int64().Draw(t, "time")
				return kv{"Time", func(b []byte) []byte { return msgp.AppendInt64(b, v) }}
			case 1:
				v := str.Draw(t, "server")
				return kv{"Server", func(b []byte) []byte { return msgp.AppendString(b, v) }}
			case 2:
				v := rapid.Uint64().Draw(t, "seq")
				return kv{"Seq", func(b []byte) []byte { return msgp.AppendUint64(b, v) }}
			}
			v := str.Draw(t, "other")
			return kv{"Other", func(b []byte) []byte { return msgp.AppendString(b, v) }}
		}
		var pairs []kv
		for range rapid.IntRange(0, 8).Draw(t, "fields") {
			key := rapid.SampledFrom([]string{"Room", "ID", "From", "Text", "Stamp", "Extra"}).Draw(t, "key")
			switch key {
			case "Stamp":
				var inner []kv
				for range rapid.IntRange(0, 4).Draw(t, "stamp fields") {
					inner = append(inner, stampPair())
				}
				pairs = append(pairs, kv{key, func(b []byte) []byte {
					b = msgp.AppendMapHeader(b, uint32(len(inner)))
					for _, p := range inner {
						b = p.value(msgp.AppendString(b, p.key))
					}
					return b
				}})
			case "Extra":
				v := rapid.SliceOfN(rapid.Int(), 0, 3).Draw(t, "extra")
				pairs = append(pairs, kv{key, func(b []byte) []byte {
					b = msgp.AppendArrayHeader(b, uint32(len(v)))
					for _, x := range v {
						b = msgp.AppendInt(b, x)
					}
					return b
				}})
			default:
				v := str.Draw(t, key)
				pairs = append(pairs, kv{key, func(b []byte) []byte { return msgp.AppendString(b, v) }})
			}
		}
		enc := msgp.AppendMapHeader(nil, uint32(len(pairs)))
		for _, p := range pairs {
			enc = p.value(msgp.AppendString(enc, p.key))
		}
		before := rapid.Make[chatapi.Message]().Draw(t, "before")

		want := before
		if err := codec.NewDecoderBytes(enc, reflectHandle).Decode(&want); err != nil {
			t.Fatalf("reflection: %v", err)
		}
		got := before
		rest, err := got.UnmarshalMsg(append(enc, 0xc0))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %#v, reflection %#v", got, want)
		}
		if len(rest) != 1 || rest[0] != 0xc0 {
			t.Fatalf("left % x after the message, want c0", rest)
		}
	})
}

// A message decodes with one allocation for its five strings, and an
// encoding cut short anywhere is refused.
func TestMessageDecodesWithOneAllocation(t *testing.T) {
	m := chatapi.Message{Room: "lobby", ID: "7.12", From: "ann", Text: "hello, all of you",
		Stamp: chatapi.Stamp{Time: 1764700000000000000, Server: "server-1", Seq: 99}}
	enc, err := m.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got chatapi.Message
	if n := testing.AllocsPerRun(100, func() { got = chatapi.Message{}; _, err = got.UnmarshalMsg(enc) }); err != nil || n != 1 {
		t.Fatalf("%v allocations (%v), want 1", n, err)
	}
	if got != m {
		t.Fatalf("decoded %+v, want %+v", got, m)
	}
	for cut := range len(enc) {
		var short chatapi.Message
		if _, err := short.UnmarshalMsg(enc[:cut]); err == nil {
			t.Fatalf("an encoding cut to %d of %d bytes decoded", cut, len(enc))
		}
	}
}
