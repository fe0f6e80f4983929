package chatapi

import (
	"fmt"
	"testing"

	"github.com/distchat/distchat/rmi"
)

// benchDeliver is a DeliverArgs as the fan-out sends them: a batch of 64
// messages of one room.
func benchDeliver() DeliverArgs {
	var a DeliverArgs
	for i := range 64 {
		a.Messages = append(a.Messages, Message{Room: "bench", ID: fmt.Sprint(i), From: "u001",
			Text: "benchmark message", Stamp: Stamp{Time: 1700000000000000000 + int64(i), Server: "server-1", Seq: uint64(i + 1)}})
	}
	a.Settled = map[string]int64{"bench": 1700000000000000000}
	return a
}

// BenchmarkDeliverCodec measures encoding and decoding a batch of 64
// messages, the hot path of every callback and forward.
func BenchmarkDeliverCodec(b *testing.B) {
	a := benchDeliver()
	b.ReportAllocs()
	for b.Loop() {
		buf, err := rmi.Marshal(a)
		if err != nil {
			b.Fatal(err)
		}
		var out DeliverArgs
		if err := rmi.Unmarshal(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}
