package chatapi_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"pgregory.net/rapid"
)

// A DeliverBatch of encoded messages is, on the wire, the DeliverArgs of
// those messages: the same bytes (with at most one settled room, so that
// map order cannot differ), and with more, what decodes to the same
// DeliverArgs.
func TestDeliverBatchEncodesAsDeliverArgs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		args := rapid.Make[chatapi.DeliverArgs]().Draw(t, "args")
		if len(args.Messages) == 0 && rapid.Bool().Draw(t, "empty messages, not nil") {
			args.Messages = []chatapi.Message{}
		}
		batch := chatapi.DeliverBatch{Events: args.Events, Settled: args.Settled}
		if args.Messages != nil {
			batch.Messages = chatapi.EncodeMessages(args.Messages)
		}
		want, err := rmi.Marshal(args)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rmi.Marshal(batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("DeliverBatch encodes to %d bytes, DeliverArgs to %d:\n% x\n% x", len(got), len(want), got, want)
		}
		if len(args.Settled) <= 1 && !bytes.Equal(got, want) {
			t.Fatalf("DeliverBatch encodes to\n% x\nDeliverArgs to\n% x", got, want)
		}
		var back chatapi.DeliverArgs
		if err := rmi.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, args) {
			t.Fatalf("decoded %#v, want %#v", back, args)
		}
		if size := (&batch).Msgsize(); size < len(got) {
			t.Fatalf("Msgsize %d, below the %d bytes written", size, len(got))
		}
	})
}

// EncodeMessages puts each message in its own slice of one buffer: a
// message appended to one of them cannot overwrite the next.
func TestEncodeMessagesSlicesDoNotOverlap(t *testing.T) {
	msgs := []chatapi.Message{{Room: "a", ID: "1", Text: "one"}, {Room: "a", ID: "2", Text: "two"}}
	enc := chatapi.EncodeMessages(msgs)
	second := bytes.Clone(enc[1])
	_ = append(enc[0], 0xff, 0xff, 0xff)
	if !bytes.Equal(enc[1], second) {
		t.Fatal("appending to the first encoding changed the second")
	}
	for i, e := range enc {
		var m chatapi.Message
		if _, err := m.UnmarshalMsg(e); err != nil || !reflect.DeepEqual(m, msgs[i]) {
			t.Fatalf("encoding %d decodes to %+v (%v), want %+v", i, m, err, msgs[i])
		}
	}
}
