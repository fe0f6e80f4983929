package bench

import (
	"fmt"
	"sync"
	"testing"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/server/chatapi"
)

// BenchmarkLedgerReceive is what accounting for one arrival costs the load
// process (receive, as each client's OnMessage): C=20, M=2000, every
// member getting every message, the senders' streams interleaved as a
// fan-out delivers them. Its CPU is counted as the clients' in what bench
// reports, so it should be small next to theirs. With workers=2 two
// goroutines share the members, as the clients' callbacks run on both
// CPUs of the load process: what the members write in common moves
// between the CPUs' caches.
func BenchmarkLedgerReceive(b *testing.B) {
	cfg := Config{Clients: 20, Messages: 2000, RunID: "x", Clock: clock.New()}
	users := make([]string, cfg.Clients)
	for i := range users {
		users[i] = "bench-x-" + string(rune('a'+i))
	}
	msgs := make([]chatapi.Message, 0, cfg.Clients*cfg.Messages)
	for seq := range cfg.Messages {
		for s := range cfg.Clients {
			msgs = append(msgs, chatapi.Message{Room: cfg.room(), From: users[s], ID: id(s, seq)})
		}
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l := newLedger(cfg, users)
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for _, m := range msgs {
							for r := w; r < cfg.Clients; r += workers {
								l.receive(r, m)
							}
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)*cfg.Clients), "ns/arrival")
		})
	}
}
