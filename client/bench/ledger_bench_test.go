package bench

import (
	"testing"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/server/chatapi"
)

// BenchmarkLedgerReceive is what accounting for one arrival costs the load
// process (receive, as each client's OnMessage): C=20, M=2000, every
// member getting every message, the senders' streams interleaved as a
// fan-out delivers them. Its CPU is counted as the clients' in what bench
// reports, so it should be small next to theirs.
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
	b.ReportAllocs()
	for b.Loop() {
		l := newLedger(cfg, users)
		for _, m := range msgs {
			for r := range cfg.Clients {
				l.receive(r, m)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)*cfg.Clients), "ns/arrival")
}
