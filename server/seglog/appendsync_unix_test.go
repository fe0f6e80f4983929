//go:build unix

package seglog

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAppendSync appends one batch of 20 records of 150 bytes (a
// group commit of 20 posts) per op, with its fdatasync, to a segment
// filled ahead with zeros and to one that grows with every append
// (Prealloc -1, as before filling). It reports the process's CPU per
// append too: on a VM an fdatasync that also writes the file's size costs
// more of both.
func BenchmarkAppendSync(b *testing.B) {
	batch := make([][]byte, 20)
	for i := range batch {
		batch[i] = []byte(strings.Repeat("m", 150))
	}
	for _, tc := range []struct {
		name     string
		prealloc int64
	}{{"grow", -1}, {"filled", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{Prealloc: tc.prealloc}, func(Pos, []byte) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			cpu0 := processCPU(b)
			for b.Loop() {
				if _, err := l.Append(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU returns the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Skip("no getrusage:", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
