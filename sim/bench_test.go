package sim

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSimulate runs the README's scale workload: 5 servers, 50
// clients, 10 rooms (each user in two) and 100,000 posts at 5,000 posts/s
// of virtual time (a busy system, where batching shows), reporting the
// simulator's speed in events per second of wall time. Run it with
//
//	go test ./sim -run '^$' -bench Simulate -benchtime 1x
func BenchmarkSimulate(b *testing.B) {
	for _, posts := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("posts=%d", posts), func(b *testing.B) {
			var events int64
			for i := 0; i < b.N; i++ {
				s, err := New(Config{Seed: uint64(i + 1), Settled: true})
				if err != nil {
					b.Fatal(err)
				}
				r, err := s.RunWorkload(Workload{Servers: 5, Clients: 50, Rooms: 10, Posts: posts, Gap: 200 * time.Microsecond})
				if err != nil {
					b.Fatal(err)
				}
				if r.Failed() || r.Acked != posts {
					b.Fatalf("run failed:\n%s", r.Summary())
				}
				events += r.Events
				s.Close()
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		})
	}
}
