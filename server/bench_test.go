package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/rmi/workpool"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// countingClient is a callback that only counts deliveries and calls.
type countingClient struct{ n, calls atomic.Int64 }

// Deliver implements chatapi.Callback.
func (c *countingClient) Deliver(ctx context.Context, a chatapi.DeliverArgs) error {
	c.n.Add(int64(len(a.Messages)))
	c.calls.Add(1)
	return nil
}

// Voice implements chatapi.Callback; the benchmarks use no voice.
func (c *countingClient) Voice(context.Context, chatapi.VoiceDeliverArgs) error { return nil }

// benchUsers logs in members users, all placed on chat server name, in
// one room created by the first; it returns the first user's stub and
// token and every user's counter.
func benchUsers(b *testing.B, c *servertest.Cluster, name, prefix string, members int, room string, create bool) (chatapi.Stub, string, []*countingClient) {
	ctx := context.Background()
	var counters []*countingClient
	var first chatapi.Stub
	var firstTok string
	for i := 0; i < members; i++ {
		u := fmt.Sprintf("%s%03d", prefix, i)
		c.AddUser(u)
		c.Place(u, name)
		rep, err := c.Central().Login(ctx, centralapi.LoginArgs{User: u, Password: c.Password(u)})
		if err != nil {
			b.Fatal(err)
		}
		cc := &countingClient{}
		cbt := rmi.NewTable(rmitest.QuietLogger())
		if err := rmi.Export[chatapi.Callback](cbt, chatapi.CallbackObjectName, cc); err != nil {
			b.Fatal(err)
		}
		conn, err := c.Dial(ctx, rep.Server.Addr, cbt)
		if err != nil {
			b.Fatal(err)
		}
		stub := chatapi.Stub{Inv: conn}
		if _, err := stub.Attach(ctx, chatapi.AttachArgs{Token: rep.Token}); err != nil {
			b.Fatal(err)
		}
		if i == 0 && create {
			_, err = stub.CreateRoom(ctx, chatapi.RoomArgs{Token: rep.Token, Room: room})
		} else {
			_, err = stub.JoinRoom(ctx, chatapi.RoomArgs{Token: rep.Token, Room: room})
		}
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			first, firstTok = stub, rep.Token
		}
		counters = append(counters, cc)
	}
	return first, firstTok, counters
}

// postAll posts b.N messages from parallel senders.
func postAll(b *testing.B, poster chatapi.Stub, tok, room string, senders int) {
	var id atomic.Int64
	b.SetParallelism(senders)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := id.Add(1)
			if _, err := poster.Post(context.Background(), chatapi.PostArgs{Token: tok, Room: room, ID: fmt.Sprint(n), Text: "benchmark message"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func waitDelivered(b *testing.B, counters []*countingClient, want int64) {
	rmitest.WaitFor(b, "all deliveries", func() bool {
		for _, c := range counters {
			if c.n.Load() < want {
				return false
			}
		}
		return true
	})
}

// BenchmarkPost measures durable posts (fsync on) with 1 to 64 concurrent
// senders. Group commit shares one transaction and fsync among the posts
// that arrive while the previous commit is written: commits/post falls
// below 1 and posts/s rises with concurrency.
func BenchmarkPost(b *testing.B) {
	for _, senders := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			c := servertest.New(b, servertest.Options{})
			s := c.Server("server-1")
			poster, tok, _ := benchUsers(b, c, "server-1", "u", 1, "bench", true)
			before := s.Commits()
			b.ResetTimer()
			postAll(b, poster, tok, "bench", senders)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
			b.ReportMetric(float64(s.Commits()-before)/float64(b.N), "commits/post")
		})
	}
}

// BenchmarkFanOutLocal measures delivery to 100 members on the poster's
// server through their bounded queues, with callbacks batched (512) or
// not (1): batching cuts callbacks per delivery and raises deliveries/s.
func BenchmarkFanOutLocal(b *testing.B) {
	const members = 100
	for _, batch := range []int{1, server.DefaultDeliverBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			c := servertest.New(b, servertest.Options{})
			s := c.Server("server-1")
			s.SetDeliverBatch(batch)
			s.SetMaxQueue(1 << 30) // measure batching, not resync
			poster, tok, counters := benchUsers(b, c, "server-1", "u", members, "bench", true)
			b.ResetTimer()
			postAll(b, poster, tok, "bench", 16)
			waitDelivered(b, counters, int64(b.N))
			b.StopTimer()
			var calls int64
			for _, cc := range counters {
				calls += cc.calls.Load()
			}
			b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(calls)/float64(b.N*members), "callbacks/delivery")
		})
	}
}

// BenchmarkFanOutTasks measures BenchmarkFanOutLocal's fan-out (batched)
// on the real clock, whose timers each run their function on a goroutine
// of their own, and on a workpool.Clock over it, whose timers run theirs
// on kept goroutines, as the distchat command runs a chat server. A
// member's delivery is such a timer function: on a new goroutine it grows
// the small starting stack again, copying it, each time. It reports the
// process's CPU time per delivery: the server's and its in-process
// members' together.
func BenchmarkFanOutTasks(b *testing.B) {
	const members = 100
	for _, pooled := range []bool{false, true} {
		name := "clock=real"
		if pooled {
			name = "clock=workpool"
		}
		b.Run(name, func(b *testing.B) {
			var clk clock.Clock = clock.New()
			if pooled {
				wc := workpool.NewClock(clk, 64)
				defer wc.Close()
				clk = wc
			}
			c := servertest.New(b, servertest.Options{Clock: clk})
			poster, tok, counters := benchUsers(b, c, "server-1", "u", members, "bench", true)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			postAll(b, poster, tok, "bench", 16)
			waitDelivered(b, counters, int64(b.N))
			b.StopTimer()
			deliveries := float64(b.N * members)
			b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(cpuTime(b)-cpu0)/deliveries, "cpu-ns/delivery")
		})
	}
}

// cpuTime is the CPU time this process used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFanOutRemote measures fan-out to 50 members on another server:
// one Forward per destination server (not per member), batched across
// posts (512) or not (1).
func BenchmarkFanOutRemote(b *testing.B) {
	const members = 50
	for _, batch := range []int{1, server.DefaultForwardBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			c := servertest.New(b, servertest.Options{Servers: 2})
			c.Server("server-1").SetForwardBatch(batch)
			poster, tok, _ := benchUsers(b, c, "server-1", "p", 1, "bench", true)
			_, _, counters := benchUsers(b, c, "server-2", "m", members, "bench", false)
			before := c.Forwards("server-2")
			b.ResetTimer()
			postAll(b, poster, tok, "bench", 16)
			waitDelivered(b, counters, int64(b.N))
			b.StopTimer()
			b.ReportMetric(float64(b.N*members)/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(c.Forwards("server-2")-before)/float64(b.N), "forwards/post")
		})
	}
}
