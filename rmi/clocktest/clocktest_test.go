package clocktest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestDeadline(t *testing.T) {
	m := New()
	ctx, cancel := m.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(m.Now().Add(time.Second)) {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	m.Add(999 * time.Millisecond)
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline: %v", err)
	}
	m.Add(time.Millisecond)
	<-ctx.Done()
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline: %v", err)
	}
}

func TestCancelAndParent(t *testing.T) {
	m := New()
	ctx, cancel := m.WithTimeout(context.Background(), time.Second)
	cancel()
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after cancel: %v", err)
	}
	m.Add(time.Hour) // the stopped timer does nothing
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after cancel and the deadline: %v", err)
	}

	parent, stop := context.WithCancel(context.Background())
	child, cancel2 := m.WithTimeout(parent, time.Second)
	defer cancel2()
	stop()
	<-child.Done()
	if err := child.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after the parent ended: %v", err)
	}

	// A parent deadline that comes first is kept.
	early, cancel3 := m.WithTimeout(context.Background(), time.Second)
	defer cancel3()
	late, cancel4 := m.WithTimeout(early, time.Minute)
	defer cancel4()
	if d, _ := late.Deadline(); !d.Equal(m.Now().Add(time.Second)) {
		t.Fatalf("Deadline %v, want the parent's", d)
	}
	// A deadline already passed ends the context at once.
	past, cancel5 := m.WithDeadline(context.Background(), m.Now().Add(-time.Second))
	defer cancel5()
	if err := past.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err of a past deadline: %v", err)
	}
}

// Err may be polled while another goroutine moves the clock past the
// deadline; under -race, clock.Mock's own contexts fail this test.
func TestErrWhileTheClockMoves(t *testing.T) {
	m := New()
	for range 50 {
		ctx, cancel := m.WithTimeout(context.Background(), time.Second)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
			}
		}()
		m.Add(time.Second)
		wg.Wait()
		cancel()
	}
}
