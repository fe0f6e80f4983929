package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/benbjohnson/clock"
)

// measure makes warmup calls, then n more one after the other, timing
// each of those on clk, and returns their round trips sorted. It stops at
// the first error.
func measure(ctx context.Context, clk clock.Clock, n, warmup int, call func(context.Context) error) ([]time.Duration, error) {
	for i := range warmup {
		if err := call(ctx); err != nil {
			return nil, fmt.Errorf("warm-up call %d: %w", i+1, err)
		}
	}
	rtt := make([]time.Duration, n)
	for i := range rtt {
		t0 := clk.Now()
		if err := call(ctx); err != nil {
			return nil, fmt.Errorf("call %d: %w", i+1, err)
		}
		rtt[i] = clk.Since(t0)
	}
	slices.Sort(rtt)
	return rtt, nil
}

// quantile returns the q-quantile of sorted by the nearest rank, as the
// Java client computes it.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}

// mean returns the mean of d.
func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// writeResult prints the one line the Java client prints too, so that a
// script can put the two side by side.
func writeResult(w io.Writer, impl, transport string, warmup int, sorted []time.Duration) error {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	_, err := fmt.Fprintf(w, "impl=%s transport=%s n=%d warmup=%d p50_us=%.1f p99_us=%.1f mean_us=%.1f\n",
		impl, transport, len(sorted), warmup, us(quantile(sorted, 0.50)), us(quantile(sorted, 0.99)), us(mean(sorted)))
	return err
}
