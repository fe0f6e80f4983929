package server

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/seglog"
)

// BenchmarkStoreCommit measures the store's group commit of a batch of
// 1, 16 or 256 new posts (64-byte texts) with fsync on: one append and
// one fdatasync per batch, whatever its size, so posts/s grows with the
// batch. (The same benchmark on the bbolt store this replaced gives the
// figures the commit message and the README compare with.)
func BenchmarkStoreCommit(b *testing.B) {
	text := strings.Repeat("x", 64)
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			st, err := openStore(b.TempDir(), "a", os.Getenv("NOSYNC") != "")
			if err != nil {
				b.Fatal(err)
			}
			defer st.close()
			var seq uint64
			b.ResetTimer()
			for range b.N {
				msgs := make([]chatapi.Message, n)
				for j := range msgs {
					seq++
					msgs[j] = chatapi.Message{Room: "bench", ID: fmt.Sprint(seq), From: "user", Text: text,
						Stamp: chatapi.Stamp{Time: int64(seq), Server: "a", Seq: seq}}
				}
				if err := st.commit(&writeBatch{msgs: msgs, last: int64(seq)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "posts/s")
		})
	}
}

// BenchmarkStoreScan measures a Sync's read of the log: a page of 500
// messages (64-byte texts) of a room of 20,000 from three origins, read
// from the log and decoded, as a client that fell behind asks for them.
func BenchmarkStoreScan(b *testing.B) {
	st, err := openStore(b.TempDir(), "a", true)
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	text := strings.Repeat("x", 64)
	const n, page = 20000, 500
	for i := 0; i < n; i += 1000 {
		msgs := make([]chatapi.Message, 1000)
		for j := range msgs {
			seq := uint64(i+j)/3 + 1
			origin := []string{"a", "b", "c"}[(i+j)%3]
			msgs[j] = chatapi.Message{Room: "bench", ID: fmt.Sprint(i + j), From: fmt.Sprint("user-", (i+j)%100), Text: text,
				Stamp: chatapi.Stamp{Time: int64(i + j), Server: origin, Seq: seq}}
		}
		if err := st.commit(&writeBatch{msgs: msgs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	pages := 0
	for b.Loop() {
		have := map[string]uint64{"a": uint64(pages%10) * 500, "b": uint64(pages%10) * 500, "c": uint64(pages%10) * 500}
		msgs, _, err := st.scan("bench", have, page)
		if err != nil || len(msgs) != page {
			b.Fatalf("scan: %d messages, %v", len(msgs), err)
		}
		pages++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*page), "ns/message")
}

// BenchmarkStoreIndexLate measures indexing stored messages (addLocked,
// no disk) as a server does at C=20 with many posts in flight: its own
// messages as they are stamped, and those of two other origins, stamped
// at the same times, arriving 1,000 messages late.
func BenchmarkStoreIndexLate(b *testing.B) {
	const n, lag = 60000, 1000
	msgs := make([]chatapi.Message, 0, n)
	for i := range n / 3 {
		for k, origin := range []string{"a", "b", "c"} {
			msgs = append(msgs, chatapi.Message{Room: "bench", ID: fmt.Sprint(3*i + k), From: "u",
				Stamp: chatapi.Stamp{Time: int64(10 * i), Server: origin, Seq: uint64(i + 1)}})
		}
	}
	// Arrival: own (a) at once, b and c lag lines behind.
	arrival := make([]chatapi.Message, 0, n)
	for i := 0; i < n; i += 3 {
		arrival = append(arrival, msgs[i])
		if j := i - 3*lag; j >= 0 {
			arrival = append(arrival, msgs[j+1], msgs[j+2])
		}
	}
	for j := max(n-3*lag, 0); j < n; j += 3 {
		arrival = append(arrival, msgs[j+1], msgs[j+2])
	}
	b.ReportAllocs()
	for b.Loop() {
		st := &store{self: "a", rooms: map[string]*roomLog{}, dedupe: newDedupeIndex()}
		for i, m := range arrival {
			st.addLocked(m, seglog.Pos{Off: int64(i)})
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/message")
}

// BenchmarkGCWithLargeIndex measures a full garbage collection while a
// server's index of 600,000 messages (three origins) is live: the index
// stays for the server's whole history, so what it makes the collector
// trace is paid at every cycle.
func BenchmarkGCWithLargeIndex(b *testing.B) {
	const n = 600000
	st := &store{self: "a", rooms: map[string]*roomLog{}, dedupe: newDedupeIndex()}
	for i := range n {
		origin := []string{"a", "b", "c"}[i%3]
		st.addLocked(chatapi.Message{Room: "bench", ID: fmt.Sprint(i), From: "u",
			Stamp: chatapi.Stamp{Time: int64(i), Server: origin, Seq: uint64(i/3 + 1)}}, seglog.Pos{Off: int64(i)})
	}
	runtime.GC()
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(st)
}
