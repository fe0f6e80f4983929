package client

import (
	"testing"

	"pgregory.net/rapid"
)

// A hashSet is a set: add reports a hash new exactly when a map of the
// hashes added so far (0 counted as 1) lacks it, across growth, with
// hashes that crowd a few slots and hashes drawn from the whole range. It
// is never more than half full.
func TestHashSetIsASet(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s hashSet
		model := map[uint64]bool{}
		crowd := rapid.Bool().Draw(t, "crowd")
		for i := range rapid.IntRange(0, 400).Draw(t, "adds") {
			var h uint64
			if crowd {
				// Low bits equal: every hash wants the same few slots.
				h = uint64(rapid.IntRange(0, 40).Draw(t, "h")) << 20
			} else {
				h = rapid.Uint64().Draw(t, "h")
			}
			k := h
			if k == 0 {
				k = 1
			}
			if got, want := s.add(h), !model[k]; got != want {
				t.Fatalf("add %d (#%d): new %v, want %v", h, i, got, want)
			}
			model[k] = true
			if s.n != len(model) || 2*s.n > len(s.slots) {
				t.Fatalf("%d hashes in %d slots, model has %d", s.n, len(s.slots), len(model))
			}
		}
		for k := range model { // all still there
			if s.add(k) {
				t.Fatalf("%d was lost", k)
			}
		}
	})
}
