package client

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/distchat/distchat/server/chatapi"
)

// genMessages draws a set of messages of one room as chat servers would
// stamp them: per origin, sequence numbers 1..k with some left out (not yet
// arrived), times drawn from a small range so they collide across origins,
// and some posts stored twice (a retry stamped by a second server).
func genMessages(t *rapid.T) []chatapi.Message {
	origins := []string{"s1", "s2", "s3"}
	users := []string{"ann", "bob", "cy"}
	var all []chatapi.Message
	ids := 0
	for _, o := range origins {
		n := rapid.IntRange(0, 12).Draw(t, "n-"+o)
		for seq := 1; seq <= n; seq++ {
			from := rapid.SampledFrom(users).Draw(t, "from")
			var id string
			if len(all) > 0 && rapid.IntRange(0, 9).Draw(t, "retry") == 0 {
				// A retried post: same author and id as an earlier one,
				// stamped again by this origin.
				prev := all[rapid.IntRange(0, len(all)-1).Draw(t, "prev")]
				from, id = prev.From, prev.ID
			} else {
				ids++
				id = fmt.Sprintf("id%d", ids)
			}
			all = append(all, chatapi.Message{
				Room: "r", ID: id, From: from, Text: "t-" + id,
				Stamp: chatapi.Stamp{Time: int64(rapid.IntRange(0, 20).Draw(t, "time")), Server: o, Seq: uint64(seq)},
			})
		}
	}
	// Drop some messages: they have not arrived (yet).
	var kept []chatapi.Message
	for _, m := range all {
		if rapid.IntRange(0, 5).Draw(t, "drop") != 0 {
			kept = append(kept, m)
		}
	}
	return kept
}

// arrival draws an arrival order of msgs: a permutation, with some
// messages arriving more than once.
func arrival(t *rapid.T, msgs []chatapi.Message, label string) []chatapi.Message {
	order := slices.Clone(msgs)
	for _, m := range msgs {
		for range rapid.IntRange(0, 2).Draw(t, label+"-dups") {
			order = append(order, m)
		}
	}
	return rapid.Permutation(order).Draw(t, label)
}

// expectedLog computes the log the rules define: one message per post
// (From, ID), the one with the smallest stamp, sorted by stamp.
func expectedLog(msgs []chatapi.Message) []chatapi.Message {
	best := map[postKey]chatapi.Message{}
	for _, m := range msgs {
		k := postKey{m.From, m.ID}
		if b, ok := best[k]; !ok || m.Stamp.Less(b.Stamp) {
			best[k] = m
		}
	}
	var out []chatapi.Message
	for _, m := range best {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b chatapi.Message) int { return a.Stamp.Compare(b.Stamp) })
	return out
}

// expectedHave computes the contiguous head of each origin.
func expectedHave(msgs []chatapi.Message) map[string]uint64 {
	present := map[string]map[uint64]bool{}
	for _, m := range msgs {
		if present[m.Stamp.Server] == nil {
			present[m.Stamp.Server] = map[uint64]bool{}
		}
		present[m.Stamp.Server][m.Stamp.Seq] = true
	}
	have := map[string]uint64{}
	for o, seqs := range present {
		n := uint64(0)
		for seqs[n+1] {
			n++
		}
		if n > 0 {
			have[o] = n
		}
	}
	return have
}

func TestViewOrderIndependent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		msgs := genMessages(t)
		a, b := NewView("r"), NewView("r")
		inserts := 0
		for _, m := range arrival(t, msgs, "a") {
			a.Insert(m)
			inserts++
		}
		for _, m := range arrival(t, msgs, "b") {
			b.Insert(m)
		}
		want := expectedLog(msgs)
		if got := a.Messages(); !equalLogs(got, want) {
			t.Fatalf("log A:\n%v\nwant:\n%v", got, want)
		}
		if got := b.Messages(); !equalLogs(got, want) {
			t.Fatalf("log B:\n%v\nwant:\n%v", got, want)
		}
		wantHave := expectedHave(msgs)
		if got := a.Have(); !reflect.DeepEqual(got, wantHave) {
			t.Fatalf("Have = %v, want %v", got, wantHave)
		}
		if got := b.Have(); !reflect.DeepEqual(got, wantHave) {
			t.Fatalf("Have B = %v, want %v", got, wantHave)
		}
		for o, n := range wantHave {
			if a.Head(o) != n {
				t.Fatalf("Head(%s) = %d, want %d", o, a.Head(o), n)
			}
		}
		wantGaps := false
		for _, m := range msgs {
			if m.Stamp.Seq > wantHave[m.Stamp.Server] {
				wantGaps = true
			}
		}
		if a.Gaps() != wantGaps {
			t.Fatalf("Gaps = %v, want %v", a.Gaps(), wantGaps)
		}
		var max chatapi.Stamp
		for _, m := range msgs {
			if max.Less(m.Stamp) {
				max = m.Stamp
			}
		}
		if a.Max() != max {
			t.Fatalf("Max = %v, want %v", a.Max(), max)
		}
		st := a.Stats()
		if st.Added != len(want) {
			t.Fatalf("Stats.Added = %d, want %d", st.Added, len(want))
		}
		if st.Added+st.Collapsed != len(msgs) || st.Added+st.Collapsed+st.Duplicates != inserts {
			t.Fatalf("stats %+v do not add up: %d distinct messages, %d inserts", st, len(msgs), inserts)
		}
	})
}

func equalLogs(a, b []chatapi.Message) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestViewSortedArrivalHasNoReorders(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		msgs := genMessages(t)
		slices.SortFunc(msgs, func(a, b chatapi.Message) int { return a.Stamp.Compare(b.Stamp) })
		v := NewView("r")
		for _, m := range msgs {
			v.Insert(m)
		}
		if r := v.Reorders(); r != 0 {
			t.Fatalf("sorted arrival gave %d reorders", r)
		}
	})
}

func TestViewInsertResults(t *testing.T) {
	v := NewView("r")
	m := func(id string, tm int64, srv string, seq uint64) chatapi.Message {
		return chatapi.Message{Room: "r", ID: id, From: "ann", Text: id, Stamp: chatapi.Stamp{Time: tm, Server: srv, Seq: seq}}
	}
	steps := []struct {
		msg  chatapi.Message
		want InsertResult
	}{
		{m("a", 10, "s1", 1), Added},
		{m("a", 10, "s1", 1), Duplicate},
		{m("b", 5, "s1", 3), Added},      // late arrival, gap at s1/2
		{m("c", 20, "s2", 1), Added},     // in order
		{m("c", 30, "s3", 1), Collapsed}, // same post stamped again later
		{m("b", 2, "s2", 2), Replaced},   // same post stamped earlier elsewhere
		{m("d", 7, "s1", 2), Added},      // fills the gap
	}
	for i, s := range steps {
		if got := v.Insert(s.msg); got != s.want {
			t.Fatalf("step %d: Insert(%v) = %v, want %v", i, s.msg.Stamp, got, s.want)
		}
	}
	var got []string
	for _, m := range v.Messages() {
		got = append(got, fmt.Sprintf("%s@%d", m.ID, m.Stamp.Time))
	}
	want := []string{"b@2", "d@7", "a@10", "c@20"}
	if !slices.Equal(got, want) {
		t.Fatalf("log = %v, want %v", got, want)
	}
	if h := v.Have(); !reflect.DeepEqual(h, map[string]uint64{"s1": 3, "s2": 2, "s3": 1}) {
		t.Fatalf("Have = %v", h)
	}
	st := v.Stats()
	want2 := ViewStats{Added: 4, Reordered: 3, Duplicates: 1, Collapsed: 2}
	if st != want2 {
		t.Fatalf("Stats = %+v, want %+v", st, want2)
	}
	if v.Gaps() {
		t.Fatal("Gaps after the hole was filled")
	}
}

func TestViewLast(t *testing.T) {
	v := NewView("r")
	if _, ok := v.Last(); ok {
		t.Fatal("empty view has a last message")
	}
	v.Insert(chatapi.Message{Room: "r", ID: "b", From: "x", Stamp: chatapi.Stamp{Time: 2, Server: "s", Seq: 2}})
	v.Insert(chatapi.Message{Room: "r", ID: "a", From: "x", Stamp: chatapi.Stamp{Time: 1, Server: "s", Seq: 1}})
	if m, ok := v.Last(); !ok || m.ID != "b" {
		t.Fatalf("last = %v %v, want b", m, ok)
	}
}
