package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/distchat/distchat/rmi"
)

// countingClient is a callback that only counts deliveries.
type countingClient struct{ n atomic.Int64 }

func (c *countingClient) Deliver(ctx context.Context, a DeliverArgs) error {
	c.n.Add(int64(len(a.Messages)))
	return nil
}

// benchRoom puts members users on server a in one room and returns the
// poster's token, the server's stub for the poster and the counters.
func benchRoom(b *testing.B, members int) (*testCluster, Stub, string, []*countingClient) {
	c := newTestCluster(b)
	c.startServer("a", ClockHLC)
	ctx := context.Background()
	var counters []*countingClient
	var posterTok string
	var poster Stub
	for i := 0; i < members; i++ {
		u := fmt.Sprintf("u%03d", i)
		c.signup(u)
		tc := c.login(u)
		cc := &countingClient{}
		cbt := rmi.NewTable(quietLogger())
		if err := cbt.Export(CallbackObjectName, cc); err != nil {
			b.Fatal(err)
		}
		// Re-attach the session with the counting callback.
		peer := rmi.NewPeer(c.peerID.Add(1), u, false, rmi.Local{Table: cbt})
		stub := Stub{Inv: rmi.Local{Table: c.tables["a:1"], Peer: peer}}
		if _, err := stub.Attach(ctx, AttachArgs{Token: tc.token}); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			posterTok, poster = tc.token, stub
			if _, err := stub.CreateRoom(ctx, RoomArgs{Token: tc.token, Room: "bench"}); err != nil {
				b.Fatal(err)
			}
		} else if _, err := stub.JoinRoom(ctx, RoomArgs{Token: tc.token, Room: "bench"}); err != nil {
			b.Fatal(err)
		}
		counters = append(counters, cc)
	}
	return c, poster, posterTok, counters
}

// BenchmarkPostGroupCommit measures durable posts from many concurrent
// senders: group commit shares one fsync among all posts that arrive
// while the previous commit is being written.
func BenchmarkPostGroupCommit(b *testing.B) {
	_, poster, tok, _ := benchRoom(b, 1)
	var id atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := id.Add(1)
			if _, err := poster.Post(context.Background(), PostArgs{Token: tok, Room: "bench", ID: fmt.Sprint(n), Text: "benchmark message"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
}

// BenchmarkFanOutLocal measures delivery to a room's local members: one
// durable post reaches 100 attached clients through their batched,
// bounded queues. It reports deliveries per second and server CPU time
// per delivery is roughly the inverse on a loaded core.
func BenchmarkFanOutLocal(b *testing.B) {
	const members = 100
	_, poster, tok, counters := benchRoom(b, members)
	var id atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := id.Add(1)
			if _, err := poster.Post(context.Background(), PostArgs{Token: tok, Room: "bench", ID: fmt.Sprint(n), Text: "benchmark message"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	want := int64(b.N)
	eventually(b, "all deliveries", func() bool {
		for _, c := range counters {
			if c.n.Load() < want {
				return false
			}
		}
		return true
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkStampKey measures the key encoding used for every stored message.
func BenchmarkStampKey(b *testing.B) {
	s := Stamp{Time: 1700000000000000000, Server: "server-1", Seq: 12345}
	var n int
	for i := 0; i < b.N; i++ {
		n += len(stampKey(s))
	}
	if n == 0 {
		b.Fatal("empty keys")
	}
}
