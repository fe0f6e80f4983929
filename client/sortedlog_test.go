package client

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"pgregory.net/rapid"

	"github.com/distchat/distchat/server/chatapi"
)

// TestSortedLogMatchesASortedSlice runs random inserts, removals and
// reads on a sortedLog with tiny chunks (so that chunks fill, split and
// empty all the time; 1 is taken as 2) and on a plain sorted slice, and requires the same
// answers from both.
func TestSortedLogMatchesASortedSlice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		l := newSortedLog(rapid.IntRange(1, 4).Draw(t, "chunk"))
		var want []chatapi.Message
		seq := uint64(0)
		stamp := func(label string) chatapi.Stamp {
			return chatapi.Stamp{
				Time:   int64(rapid.IntRange(0, 30).Draw(t, label+"-time")),
				Server: rapid.SampledFrom([]string{"s1", "s2"}).Draw(t, label+"-server"),
				Seq:    uint64(rapid.IntRange(0, 3).Draw(t, label+"-seq")),
			}
		}
		for range rapid.IntRange(0, 60).Draw(t, "steps") {
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0, 1, 2: // insert a message with a new stamp
				seq++
				// Any room, sender, id and text: the log keeps them in
				// its own form and must give back exactly the message.
				name := rapid.SampledFrom([]string{"", "a", "bob", "lobby"})
				m := chatapi.Message{Room: name.Draw(t, "room"), ID: rapid.StringN(0, 4, -1).Draw(t, "id"),
					From: name.Draw(t, "from"), Text: rapid.StringN(0, 6, -1).Draw(t, "text"), Stamp: stamp("insert")}
				m.Stamp.Seq = seq
				i := 0
				for i < len(want) && !m.Stamp.Less(want[i].Stamp) {
					i++
				}
				e, late := l.insert(m)
				if late != (i < len(want)) {
					t.Fatalf("insert %v: late %v, but %d of %d messages sort after it", m.Stamp, late, len(want)-i, len(want))
				}
				if got := l.message(&e); got != m {
					t.Fatalf("insert returned an entry of %+v, want %+v", got, m)
				}
				want = slices.Insert(want, i, m)
			case 3: // remove a present message, or an absent stamp
				s := stamp("remove")
				if len(want) > 0 && rapid.Bool().Draw(t, "present") {
					s = want[rapid.IntRange(0, len(want)-1).Draw(t, "which")].Stamp
				}
				l.remove(s)
				want = slices.DeleteFunc(want, func(m chatapi.Message) bool { return m.Stamp == s })
			case 4: // the page before a stamp
				s, n := stamp("before"), rapid.IntRange(0, 6).Draw(t, "n")
				end := 0
				for end < len(want) && want[end].Stamp.Less(s) {
					end++
				}
				got := l.before(l.search(func(t chatapi.Stamp) bool { return s.Compare(t) <= 0 }), n)
				if exp := want[max(end-n, 0):end]; !slices.Equal(got, exp) {
					t.Fatalf("%d before %v: got %v, want %v", n, s, got, exp)
				}
				if got, exp := l.before(l.end(), n), want[max(len(want)-n, 0):]; !slices.Equal(got, exp) {
					t.Fatalf("last %d: got %v, want %v", n, got, exp)
				}
			case 5: // the message after a stamp
				s := stamp("next")
				i := 0
				for i < len(want) && !s.Less(want[i].Stamp) {
					i++
				}
				got, ok := l.at(l.search(s.Less))
				if ok != (i < len(want)) || ok && got != want[i] {
					t.Fatalf("next after %v: got %v %v", s, got, ok)
				}
			}
			if l.Len() != len(want) || !slices.Equal(l.all(), want) {
				t.Fatalf("log %v, want %v", l.all(), want)
			}
			if got := slices.Collect(l.each()); !slices.Equal(got, want) {
				t.Fatalf("each yields %v, want %v", got, want)
			}
			if len(want) > 0 { // and stops when told to
				k := rapid.IntRange(1, len(want)).Draw(t, "stop")
				var got []chatapi.Message
				for m := range l.each() {
					if got = append(got, m); len(got) == k {
						break
					}
				}
				if !slices.Equal(got, want[:k]) {
					t.Fatalf("each stopped after %d: %v, want %v", k, got, want[:k])
				}
			}
			last, ok := l.last()
			if ok != (len(want) > 0) || ok && last != want[len(want)-1] {
				t.Fatalf("last %v %v, want %v", last, ok, want)
			}
			for ci, c := range l.chunks {
				if len(c) == 0 || len(c) > l.chunk {
					t.Fatalf("chunk %d holds %d messages (at most %d, at least 1)", ci, len(c), l.chunk)
				}
			}
		}
	})
}

// TestSortedLogStaysFullWithLateArrivals inserts messages as a fan-out's
// members receive them (three servers' streams, each in order, interleaved
// up to a few messages out of stamp order) and requires the chunks to stay
// mostly full: splitting a full chunk in the middle for an arrival late by
// a few messages left half of every chunk empty, twice the memory a long
// history needs.
func TestSortedLogStaysFullWithLateArrivals(t *testing.T) {
	const n, chunk = 30000, 256
	l := newSortedLog(chunk)
	seq := map[string]uint64{}
	for i := range n {
		srv := []string{"s1", "s2", "s3"}[i%3]
		seq[srv]++
		// Each server's clock lags the others' by up to 2 ms; a message
		// every 50 µs.
		l.insert(chatapi.Message{Stamp: chatapi.Stamp{Time: int64(i)*50_000 + int64(i%3)*700_000, Server: srv, Seq: seq[srv]}})
	}
	slots := 0
	for _, c := range l.chunks {
		slots += cap(c)
	}
	if l.Len() != n {
		t.Fatalf("log holds %d messages, want %d", l.Len(), n)
	}
	if fill := float64(n) / float64(slots); fill < 0.9 {
		t.Fatalf("%d messages in %d chunks of %d slots in all: %.0f%% full, want at least 90%%", n, len(l.chunks), slots, 100*fill)
	}
}

// A decoded message's strings are parts of one allocation (chatapi's
// decoder): the log keeps none of them, so that keeping a name or a text
// never keeps the whole decoded message alive.
func TestSortedLogKeepsNoPartOfADecodedMessage(t *testing.T) {
	for _, id := range []string{"p-1", ""} {
		m := chatapi.Message{Room: "lobby", ID: id, From: "ann", Text: "hello", Stamp: chatapi.Stamp{Time: 1, Server: "s1", Seq: 1}}
		enc, err := m.MarshalMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		var dec chatapi.Message
		if _, err := dec.UnmarshalMsg(enc); err != nil {
			t.Fatal(err)
		}
		// The decoded strings lie in one block, from the first field's
		// start to the last's end.
		lo, hi := uintptr(unsafe.Pointer(unsafe.StringData(dec.Room))), uintptr(unsafe.Pointer(unsafe.StringData(dec.Stamp.Server)))+uintptr(len(dec.Stamp.Server))
		inside := func(s string) bool {
			p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
			return len(s) > 0 && p >= lo && p < hi
		}
		l := newSortedLog(4)
		l.insert(dec)
		e := l.chunks[0][0]
		for _, s := range append(slices.Clone(l.names.list), l.texts.body(&e)) {
			if inside(s) {
				t.Fatalf("id %q: the log keeps %q, part of the decoded message", id, s)
			}
		}
	}
}

// A textArena gives back exactly what was added, across blocks that grow
// from minTextBlock to maxTextBlock and a text larger than any block; a
// string it gave back keeps its bytes and its place however much is added
// after it; a message that fills a block exactly stays in it, and one a
// byte too long starts the next.
func TestTextArenaAcrossBlocks(t *testing.T) {
	var a textArena
	type added struct {
		e    entry
		want string
		got  string // body, as read right after add
	}
	var all []added
	add := func(id, text string) {
		blk, off := a.add(id, text)
		e := entry{blk: blk, off: off, n: uint32(len(id) + len(text)), idLen: uint32(len(id))}
		all = append(all, added{e, id + text, a.body(&e)})
	}
	for i := range 3000 {
		size := (i * 37) % 200
		if i == 1500 {
			size = 3 * maxTextBlock
		}
		add(strconv.Itoa(i), strings.Repeat(string(rune('a'+i%26)), size))
	}
	for i, x := range all {
		if got := a.body(&x.e); got != x.want || x.got != x.want || unsafe.StringData(got) != unsafe.StringData(x.got) {
			t.Fatalf("message %d: %d bytes back (%d right after it was added), want %d, at the same place", i, len(got), len(x.got), len(x.want))
		}
	}
	for i, b := range a.blocks {
		if want := min(minTextBlock<<i, maxTextBlock); cap(b) < want || cap(b) > maxTextBlock && len(b) != cap(b) {
			t.Fatalf("block %d: %d of %d bytes, want a capacity of %d (or one text's)", i, len(b), cap(b), want)
		}
	}
	if len(a.blocks) < 8 {
		t.Fatalf("%d blocks for %d messages: did not grow through the sizes", len(a.blocks), len(all))
	}

	// The edges of a block, with an ID counted: a new arena's first block
	// holds minTextBlock bytes.
	a = textArena{}
	all = nil
	add("id", strings.Repeat("x", minTextBlock-2)) // fills it exactly
	add("", "")                                    // nothing, at a full block
	if len(a.blocks) != 1 || len(a.blocks[0]) != minTextBlock {
		t.Fatalf("a message of exactly a block: %d blocks, the first holding %d", len(a.blocks), len(a.blocks[0]))
	}
	add("i", "")     // one byte more starts the next block
	add("id", "y\n") // and fits after it
	if len(a.blocks) != 2 || len(a.blocks[1]) != 5 || cap(a.blocks[1]) != 2*minTextBlock {
		t.Fatalf("after a full block: %d blocks", len(a.blocks))
	}
	for i, x := range all {
		if got := a.body(&x.e); got != x.want || x.got != x.want {
			t.Fatalf("edge message %d: %q, want %q", i, got, x.want)
		}
	}
}
