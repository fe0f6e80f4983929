package client_test

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// BenchmarkViewInsert inserts a room's messages as a client receives them
// in the fan-out benchmark (fanOutMessages), into one view or, as in the
// benchmark's load process, into 20. It reports the view's CPU per
// message, part of the client's CPU per delivery (issue 10 asks for 2 µs
// in all).
func BenchmarkViewInsert(b *testing.B) {
	for _, c := range []struct{ views, n int }{{1, 20000}, {20, 30000}} {
		b.Run(fmt.Sprintf("views=%d/messages=%d", c.views, c.n), func(b *testing.B) {
			msgs := fanOutMessages(c.n)
			b.ReportAllocs()
			for b.Loop() {
				// Like the load process of "distchat bench --clients 20
				// --messages 1500": each member's view gets every message.
				views := make([]*client.View, c.views)
				for i := range views {
					views[i] = client.NewView("r")
				}
				for _, m := range msgs {
					for _, v := range views {
						v.Insert(m)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.n*c.views), "ns/message")
		})
	}
}

// fanOutMessages returns n messages of one room as the fan-out benchmark's
// clients receive them: 20 senders on 3 servers, each server's messages
// in order, the servers' streams interleaved a little out of stamp order.
func fanOutMessages(n int) []chatapi.Message {
	servers := []string{"server-1", "server-2", "server-3"}
	msgs := make([]chatapi.Message, n)
	seq := map[string]uint64{}
	for i := range msgs {
		srv := servers[i%3]
		seq[srv]++
		// Each server's clock lags the others' by up to 2 ms.
		t := int64(i)*50_000 + int64(i%3)*700_000
		msgs[i] = chatapi.Message{
			Room: "r", ID: strconv.Itoa(i), From: "u" + strconv.Itoa(i%20), Text: "0123456789012345678901234567890123456789012345678901234567890123",
			Stamp: chatapi.Stamp{Time: t, Server: srv, Seq: seq[srv]},
		}
	}
	return msgs
}

// BenchmarkViewDeliver is BenchmarkViewInsert with messages that arrive
// as a client gets them: in Deliver batches of 100, each view decoding its
// own copy of every batch (rmi.Unmarshal, as the callback does), with the
// names distchat bench uses. So every string a view keeps is its own, as
// in the load process. Besides the CPU per message per view it reports
// the heap the views still hold at the end (retained-B/message): what a
// client's memory grows by per message it keeps.
func BenchmarkViewDeliver(b *testing.B) {
	const views, n, batch = 20, 30000, 100
	msgs := fanOutMessages(n)
	for i := range msgs {
		msgs[i].Room = "bench-87d68f52"
		msgs[i].From = "bench-87d68f52-" + msgs[i].From
		msgs[i].ID = strconv.Itoa(i%20) + "." + msgs[i].ID
	}
	var frames [][]byte
	for i := 0; i < n; i += batch {
		enc, err := rmi.Marshal(chatapi.DeliverArgs{Messages: msgs[i:min(i+batch, n)]})
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, enc)
	}
	b.ReportAllocs()
	var retained uint64
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		vs := make([]*client.View, views)
		for i := range vs {
			vs[i] = client.NewView("bench-87d68f52")
		}
		b.StartTimer()
		for _, f := range frames {
			for _, v := range vs {
				var a chatapi.DeliverArgs
				if err := rmi.Unmarshal(f, &a); err != nil {
					b.Fatal(err)
				}
				for _, m := range a.Messages {
					v.Insert(m)
				}
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		retained = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(vs)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*views), "ns/message")
	b.ReportMetric(float64(retained)/float64(n*views), "retained-B/message")
}
