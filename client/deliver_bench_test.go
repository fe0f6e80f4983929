package client

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// BenchmarkRoomSetDeliver is what the load process of distchat bench does
// with each Deliver: 20 clients each decode their own copy of a batch of
// 100 messages and apply it to their room set (views, the messages to hand
// to OnMessage). decode=copied copies each message's strings out of the
// frame (UnmarshalMsg), as the callback did before; decode=borrowed
// points them into it (UnmarshalMsgBorrowed, rmi.BorrowArgs), as it does
// now. It reports the CPU per message per client.
func BenchmarkRoomSetDeliver(b *testing.B) {
	const clients, n, batch = 20, 30000, 100
	servers := []string{"server-1", "server-2", "server-3"}
	seq := map[string]uint64{}
	var frames [][]byte
	for i := 0; i < n; i += batch {
		var a chatapi.DeliverArgs
		for j := i; j < i+batch; j++ {
			srv := servers[j%3]
			seq[srv]++
			a.Messages = append(a.Messages, chatapi.Message{
				Room: "bench-87d68f52", ID: fmt.Sprintf("%d.%d", j%20, j), From: "bench-87d68f52-u" + strconv.Itoa(j%20),
				Text:  "0123456789012345678901234567890123456789012345678901234567890123",
				Stamp: chatapi.Stamp{Time: int64(j)*50_000 + int64(j%3)*700_000, Server: srv, Seq: seq[srv]},
			})
		}
		enc, err := rmi.Marshal(a)
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, enc)
	}
	for _, borrow := range []bool{false, true} {
		name := "decode=copied"
		if borrow {
			name = "decode=borrowed"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			shown := 0
			for b.Loop() {
				sets := make([]*roomSet, clients)
				for i := range sets {
					sets[i] = newRoomSet()
				}
				for _, f := range frames {
					for _, s := range sets {
						var a chatapi.DeliverArgs
						var err error
						if borrow {
							_, err = a.UnmarshalMsgBorrowed(f)
						} else {
							_, err = a.UnmarshalMsg(f)
						}
						if err != nil {
							b.Fatal(err)
						}
						shown += len(s.deliver("me", a).shown)
					}
				}
			}
			if shown != b.N*clients*n {
				b.Fatalf("%d messages shown, want %d", shown, b.N*clients*n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*clients), "ns/message")
		})
	}
}
