package client

import (
	"fmt"
	"hash/maphash"
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
		// B's index of shown posts hashes them into a few buckets only:
		// posts collide all the time, and must still be told apart.
		buckets := uint64(rapid.IntRange(1, 3).Draw(t, "buckets"))
		b.shown.collide = func(k postKey) uint64 { return maphash.Comparable(b.shown.seed, k) % buckets }
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

// A retry whose first copy lies far back in a long log, chunks before the
// newest, is still recognised, and the post stays shown once, at the
// smaller stamp, whichever copy comes first.
func TestViewRetryOfAnOldPost(t *testing.T) {
	for _, retryFirst := range []bool{false, true} {
		v := NewView("r")
		n := 3*defaultChunk + 7
		for i := range n {
			v.Insert(chatapi.Message{Room: "r", ID: fmt.Sprint(i), From: "ann", Text: "x",
				Stamp: chatapi.Stamp{Time: int64(10 + i), Server: "s1", Seq: uint64(i + 1)}})
		}
		first := chatapi.Message{Room: "r", ID: "old", From: "bob", Text: "hi", Stamp: chatapi.Stamp{Time: 1, Server: "s2", Seq: 1}}
		retry := chatapi.Message{Room: "r", ID: "old", From: "bob", Text: "hi", Stamp: chatapi.Stamp{Time: int64(20 + n), Server: "s3", Seq: 1}}
		want := []InsertResult{Added, Collapsed}
		order := []chatapi.Message{first, retry}
		if retryFirst {
			want = []InsertResult{Added, Replaced}
			order = []chatapi.Message{retry, first}
		}
		for i, m := range order {
			if got := v.Insert(m); got != want[i] {
				t.Fatalf("retry first %v: insert %d (%v) = %v, want %v", retryFirst, i, m.Stamp, got, want[i])
			}
		}
		msgs := v.Messages()
		if len(msgs) != n+1 || msgs[0].Stamp != first.Stamp {
			t.Fatalf("retry first %v: %d messages, first stamped %v; want %d, the post at %v", retryFirst, len(msgs), msgs[0].Stamp, n+1, first.Stamp)
		}
		// Another sender's post with the same id is another post.
		if got := v.Insert(chatapi.Message{Room: "r", ID: "old", From: "cat", Stamp: chatapi.Stamp{Time: 5, Server: "s2", Seq: 2}}); got != Added {
			t.Fatalf("retry first %v: another sender's post with the same id: %v, want Added", retryFirst, got)
		}
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

func TestViewSettle(t *testing.T) {
	v := NewView("r")
	msg := func(id string, tm int64, seq uint64) chatapi.Message {
		return chatapi.Message{Room: "r", ID: id, From: "ann", Stamp: chatapi.Stamp{Time: tm, Server: "s1", Seq: seq}}
	}
	steps := []struct {
		name        string
		settle      int64            // if not 0, Settle(settle)
		insert      *chatapi.Message // else Insert(*insert)
		wantSettled int64
		wantSettles int
		wantViol    int
		wantFirst   string // id of the first violation, if any
	}{
		{name: "nothing settled yet", insert: ptr(msg("a", 5, 1))},
		{name: "a notice settles", settle: 10, wantSettled: 10, wantSettles: 1},
		{name: "the point never moves back", settle: 7, wantSettled: 10, wantSettles: 1},
		{name: "the same point again changes nothing", settle: 10, wantSettled: 10, wantSettles: 1},
		{name: "a message above the point is fine", insert: ptr(msg("b", 12, 2)), wantSettled: 10, wantSettles: 1},
		{name: "a message at the point violates it", insert: ptr(msg("c", 10, 3)), wantSettled: 10, wantSettles: 1, wantViol: 1, wantFirst: "c"},
		{name: "the first violation is kept", insert: ptr(msg("d", 3, 4)), wantSettled: 10, wantSettles: 1, wantViol: 2, wantFirst: "c"},
		{name: "a duplicate is no violation", insert: ptr(msg("a", 5, 1)), wantSettled: 10, wantSettles: 1, wantViol: 2, wantFirst: "c"},
		{name: "the point moves on", settle: 20, wantSettled: 20, wantSettles: 2, wantViol: 2, wantFirst: "c"},
	}
	for _, s := range steps {
		if s.settle != 0 {
			v.Settle(s.settle)
		} else {
			v.Insert(*s.insert)
		}
		st := v.Stats()
		first, ok := v.FirstSettledViolation()
		if v.Settled() != s.wantSettled || st.Settles != s.wantSettles || st.SettledViolations != s.wantViol ||
			ok != (s.wantFirst != "") || first.Message.ID != s.wantFirst {
			t.Fatalf("%s: settled %d, stats %+v, first violation %+v (%v)", s.name, v.Settled(), st, first, ok)
		}
		if ok && first.Settled != 10 {
			t.Fatalf("%s: the first violation arrived under %d, want 10", s.name, first.Settled)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestRoomSetDeliver runs the room set, the client's pure core, through
// deliveries one step at a time: what it shows, which syncs it asks for,
// which rooms the user is in, and when a settled notice counts.
func TestRoomSetDeliver(t *testing.T) {
	m := func(room, id string, seq uint64, tm int64) chatapi.Message {
		return chatapi.Message{Room: room, ID: id, From: "bob", Stamp: chatapi.Stamp{Time: tm, Server: "s1", Seq: seq}}
	}
	ev := func(kind, room, user string) chatapi.Event { return chatapi.Event{Kind: kind, Room: room, User: user} }
	type step struct {
		name        string
		synced      []string // rooms whose Sync completes before the delivery
		joining     []string // rooms a JoinRoom is joining during the delivery
		args        chatapi.DeliverArgs
		wantShown   []string // ids
		wantFull    []string
		wantGaps    []string
		wantMembers []string
		wantSettled map[string]int64
		wantMove    bool
	}
	steps := []step{{
		name:        "a message of an unknown room: the user is a member now, and the room needs a full sync",
		args:        chatapi.DeliverArgs{Messages: []chatapi.Message{m("r", "a", 1, 10)}},
		wantShown:   []string{"a"},
		wantFull:    []string{"r"},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"r": 0},
	}, {
		name:        "a settled notice does not count before the room's sync completed",
		args:        chatapi.DeliverArgs{Settled: map[string]int64{"r": 100}},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"r": 0},
	}, {
		name:        "it counts once the sync completed",
		synced:      []string{"r"},
		args:        chatapi.DeliverArgs{Settled: map[string]int64{"r": 100}},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"r": 100},
	}, {
		name:        "a message past a hole is shown, the hole asks for a sync, and settled notices wait",
		args:        chatapi.DeliverArgs{Messages: []chatapi.Message{m("r", "c", 3, 300)}, Settled: map[string]int64{"r": 200}},
		wantShown:   []string{"c"},
		wantGaps:    []string{"r"},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"r": 100},
	}, {
		name:        "the hole filled, the notice counts",
		args:        chatapi.DeliverArgs{Messages: []chatapi.Message{m("r", "b", 2, 200)}, Settled: map[string]int64{"r": 200}},
		wantShown:   []string{"b"},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"r": 200},
	}, {
		name:        "a duplicate shows nothing",
		args:        chatapi.DeliverArgs{Messages: []chatapi.Message{m("r", "a", 1, 10)}},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"r": 200},
	}, {
		name:        "told it joined q: a member, synced in full; its notices wait",
		args:        chatapi.DeliverArgs{Events: []chatapi.Event{ev(chatapi.EventJoined, "q", "ann")}, Settled: map[string]int64{"q": 50}},
		wantFull:    []string{"q"},
		wantMembers: []string{"q", "r"},
		wantSettled: map[string]int64{"q": 0, "r": 200},
	}, {
		name:        "someone else joining or leaving changes nothing",
		args:        chatapi.DeliverArgs{Events: []chatapi.Event{ev(chatapi.EventJoined, "r", "cy"), ev(chatapi.EventLeft, "q", "cy")}},
		wantMembers: []string{"q", "r"},
		wantSettled: map[string]int64{"q": 0, "r": 200},
	}, {
		name:        "told it left q: a late message of q is dropped",
		args:        chatapi.DeliverArgs{Events: []chatapi.Event{ev(chatapi.EventLeft, "q", "ann")}},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"q": 0, "r": 200},
	}, {
		name:        "(the late message)",
		args:        chatapi.DeliverArgs{Messages: []chatapi.Message{m("q", "x", 1, 60)}},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"q": 0, "r": 200},
	}, {
		name:        "a resync of r: synced in full, and its notices wait again",
		args:        chatapi.DeliverArgs{Events: []chatapi.Event{ev(chatapi.EventResync, "r", "")}, Settled: map[string]int64{"r": 300}},
		wantFull:    []string{"r"},
		wantMembers: []string{"r"},
		wantSettled: map[string]int64{"q": 0, "r": 200},
	}, {
		name:        "a resync without a room: every room the user is in",
		synced:      []string{"r"},
		args:        chatapi.DeliverArgs{Messages: []chatapi.Message{m("p", "y", 1, 70)}, Events: []chatapi.Event{ev(chatapi.EventResync, "", "")}},
		wantShown:   []string{"y"},
		wantFull:    []string{"p", "r"},
		wantMembers: []string{"p", "r"},
		wantSettled: map[string]int64{"p": 0, "r": 200},
	}, {
		name:        "a move event: the client is to check its server; nothing else changes",
		args:        chatapi.DeliverArgs{Events: []chatapi.Event{ev(chatapi.EventMove, "", "")}},
		wantMove:    true,
		wantMembers: []string{"p", "r"},
		wantSettled: map[string]int64{"p": 0, "r": 200},
	}, {
		name:        "during a JoinRoom of o, a message of o and the event that the user joined it: a member, no sync asked (JoinRoom makes it)",
		joining:     []string{"o"},
		args:        chatapi.DeliverArgs{Messages: []chatapi.Message{m("o", "z", 1, 80)}, Events: []chatapi.Event{ev(chatapi.EventJoined, "o", "ann")}},
		wantShown:   []string{"z"},
		wantMembers: []string{"o", "p", "r"},
		wantSettled: map[string]int64{"o": 0, "p": 0, "r": 200},
	}}
	s := newRoomSet()
	for _, st := range steps {
		for _, r := range st.synced {
			s.markSynced(r)
		}
		for _, r := range st.joining {
			s.startJoin(r)
		}
		d := s.deliver("ann", st.args)
		for _, r := range st.joining {
			s.endJoin(r)
		}
		if got := ids(d.shown); !slices.Equal(got, st.wantShown) {
			t.Fatalf("%s: shown %v, want %v", st.name, got, st.wantShown)
		}
		if !slices.Equal(d.full, st.wantFull) || !slices.Equal(d.gaps, st.wantGaps) {
			t.Fatalf("%s: full syncs %v, gap syncs %v; want %v, %v", st.name, d.full, d.gaps, st.wantFull, st.wantGaps)
		}
		if got := s.names(); !slices.Equal(got, st.wantMembers) {
			t.Fatalf("%s: member of %v, want %v", st.name, got, st.wantMembers)
		}
		if d.move != st.wantMove {
			t.Fatalf("%s: move %v, want %v", st.name, d.move, st.wantMove)
		}
		for room, want := range st.wantSettled {
			if got := s.view(room).Settled(); got != want {
				t.Fatalf("%s: %s settled at %d, want %d", st.name, room, got, want)
			}
		}
	}
	if got := s.seen(); got != (chatapi.Stamp{Time: 300, Server: "s1", Seq: 3}) {
		t.Fatalf("seen %v, want the largest stamp held", got)
	}
	// Attaching again: membership is what the server says, and every room
	// waits for its sync.
	s.markAllUnsynced()
	s.attached([]string{"q", "r"})
	if got := s.names(); !slices.Equal(got, []string{"q", "r"}) || s.left["q"] {
		t.Fatalf("after attach: member of %v, left %v", got, s.left)
	}
	if s.settle("r", 400) || s.settle("p", 400) || s.settle("q", 400) {
		t.Fatal("a settled notice counted before the catch-up")
	}
	s.markSynced("r")
	if !s.settle("r", 400) || s.view("r").Settled() != 400 {
		t.Fatal("a settled notice did not count after the catch-up")
	}
}

// TestViewPageAndNext pages a log from the newest end and finds where a
// message goes.
func TestViewPageAndNext(t *testing.T) {
	v := NewView("r")
	st := func(tm int64) chatapi.Stamp { return chatapi.Stamp{Time: tm, Server: "s", Seq: uint64(tm)} }
	for _, tm := range []int64{5, 1, 3, 2, 4} {
		v.Insert(chatapi.Message{ID: fmt.Sprint(tm), From: "ann", Stamp: st(tm)})
	}
	pageIDs := func(ms []chatapi.Message) []string { return ids(ms) }
	if got := pageIDs(v.Page(chatapi.Stamp{}, 2)); !slices.Equal(got, []string{"4", "5"}) {
		t.Errorf("newest page = %v, want [4 5]", got)
	}
	if got := pageIDs(v.Page(st(4), 2)); !slices.Equal(got, []string{"2", "3"}) {
		t.Errorf("page before 4 = %v, want [2 3]", got)
	}
	if got := pageIDs(v.Page(st(2), 2)); !slices.Equal(got, []string{"1"}) {
		t.Errorf("page before 2 = %v, want [1]", got)
	}
	if got := v.Page(st(1), 2); len(got) != 0 {
		t.Errorf("page before 1 = %v, want none", got)
	}
	between := chatapi.Stamp{Time: 3, Server: "t", Seq: 1} // after (3,s,3), before (4,s,4)
	if m, ok := v.Next(between); !ok || m.ID != "4" {
		t.Errorf("Next(%v) = %v %v, want message 4", between, m, ok)
	}
	if m, ok := v.Next(st(5)); ok {
		t.Errorf("Next(last) = %v, want none", m)
	}
}

// A batch of several rooms' messages, interleaved, some of a room the user
// left: each view gets its own, the left room's are dropped, and the
// messages to show stay in arrival order.
func TestRoomSetDeliverInterleavedRooms(t *testing.T) {
	s := newRoomSet()
	s.join("gone")
	s.leave("gone")
	m := func(room string, seq uint64) chatapi.Message {
		return chatapi.Message{Room: room, ID: fmt.Sprint(room, seq), From: "ann", Stamp: chatapi.Stamp{Time: int64(seq), Server: "s1", Seq: seq}}
	}
	args := chatapi.DeliverArgs{Messages: []chatapi.Message{m("a", 1), m("b", 2), m("b", 3), m("gone", 4), m("a", 5), m("gone", 6), m("b", 7)}}
	d := s.deliver("me", args)
	var shown []string
	for _, m := range d.shown {
		shown = append(shown, m.ID)
	}
	if want := []string{"a1", "b2", "b3", "a5", "b7"}; !slices.Equal(shown, want) {
		t.Errorf("shown %v, want %v", shown, want)
	}
	if want := []string{"a", "b"}; !slices.Equal(d.full, want) || !slices.Equal(s.names(), want) {
		t.Errorf("rooms to sync %v, members %v; want %v", d.full, s.names(), want)
	}
	for room, want := range map[string][]string{"a": {"a1", "a5"}, "b": {"b2", "b3", "b7"}, "gone": nil} {
		var got []string
		for _, m := range s.view(room).Messages() {
			if m.Room != room {
				t.Errorf("view %s holds %+v", room, m)
			}
			got = append(got, m.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("view %s holds %v, want %v", room, got, want)
		}
	}
}
