package server

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/distchat/distchat/server/chatapi"
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
