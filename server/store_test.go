package server

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"pgregory.net/rapid"

	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/seglog"
)

func TestScanServesOriginsWithGaps(t *testing.T) {
	st, err := openStore(t.TempDir(), "a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	msg := func(origin string, seq uint64, t int64) chatapi.Message {
		return chatapi.Message{Room: "r", ID: origin + string(rune('0'+seq)), From: "u", Text: "x", Stamp: chatapi.Stamp{Time: t, Server: origin, Seq: seq}}
	}
	// b's seq 1 is missing: b has no contiguous head at all.
	if err := st.commit(&writeBatch{msgs: []chatapi.Message{msg("a", 1, 10), msg("b", 2, 20), msg("a", 2, 30), msg("b", 3, 40)}}); err != nil {
		t.Fatal(err)
	}
	got, more, err := st.scan("r", nil, 10)
	if err != nil || more || len(got) != 4 {
		t.Fatalf("full scan: %d messages, more=%v, err=%v; want all 4", len(got), more, err)
	}
	for i := 1; i < len(got); i++ {
		if !got[i-1].Stamp.Less(got[i].Stamp) {
			t.Fatalf("not in stamp order: %v then %v", got[i-1].Stamp, got[i].Stamp)
		}
	}
	got, _, _ = st.scan("r", map[string]uint64{"a": 2, "b": 2}, 10)
	if len(got) != 1 || got[0].Stamp.Seq != 3 || got[0].Stamp.Server != "b" {
		t.Fatalf("scan above have: %v, want b/3 only", got)
	}
	got, more, _ = st.scan("r", nil, 2)
	if len(got) != 2 || !more || got[1].Stamp.Server != "b" {
		t.Fatalf("paged scan: %v more=%v", got, more)
	}
}

// testMsg is message seq of origin in room r, stamped at time t.
func testMsg(origin string, seq uint64, t int64) chatapi.Message {
	return chatapi.Message{Room: "r", ID: fmt.Sprintf("%s-%d", origin, seq), From: "u", Text: "text " + fmt.Sprint(seq),
		Stamp: chatapi.Stamp{Time: t, Server: origin, Seq: seq}}
}

// reopen closes st and opens dir again as server a.
func reopen(t *testing.T, st *store, dir string) *store {
	t.Helper()
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(dir, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.close() })
	return st
}

// Everything the server reads back (history, own ranges, dedupe, heads,
// cursors, the largest stamp, the known servers) is the same after a
// reopen, which rebuilds the index from the log.
func TestStoreReopenRebuildsTheIndex(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	err = st.commit(&writeBatch{
		msgs:    []chatapi.Message{testMsg("a", 1, 10), testMsg("b", 1, 5), testMsg("a", 2, 30), testMsg("b", 3, 40)},
		cursors: map[string]map[string]uint64{"b": {"r": 1}}, last: 30, known: []string{"a", "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.commit(&writeBatch{msgs: []chatapi.Message{testMsg("a", 3, 50), testMsg("b", 3, 40)}, cursors: map[string]map[string]uint64{"b": {"r": 2}}}); err != nil {
		t.Fatal(err)
	}
	type view struct {
		scan  []chatapi.Message
		own   []chatapi.Message
		ls    *loadedState
		dedup dedupeRec
	}
	look := func(st *store) view {
		var v view
		var err error
		if v.scan, _, err = st.scan("r", nil, 100); err != nil {
			t.Fatal(err)
		}
		if v.own, err = st.ownRange("r", "a", 1, 3, 10); err != nil {
			t.Fatal(err)
		}
		if v.ls, err = st.load("a"); err != nil {
			t.Fatal(err)
		}
		rec, ok, err := st.lookupDedupe("u", "a-2")
		if err != nil || !ok {
			t.Fatalf("dedupe of a-2: %v, %v", ok, err)
		}
		v.dedup = rec
		return v
	}
	before := look(st)
	if len(before.scan) != 5 || len(before.own) != 2 || before.ls.rooms["r"].ownSeq != 3 ||
		before.ls.rooms["r"].heads["b"] != 1 || before.ls.cursors["b"]["r"] != 2 || before.ls.last != 30 {
		t.Fatalf("before reopen: %+v, rooms %+v", before, before.ls.rooms["r"])
	}
	st = reopen(t, st, dir)
	after := look(st)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("after reopen:\n%+v\nwant\n%+v", after, before)
	}
	if _, ok, _ := st.lookupDedupe("u", "b-1"); ok {
		t.Fatal("a message stamped elsewhere is in the dedupe table")
	}
}

// A crash in the middle of a write leaves a torn record at the end of the
// log: the store reopens with every complete record (the acknowledged
// posts), without the torn one, and goes on.
func TestStoreSurvivesATornWrite(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, "a", false)
	if err != nil {
		t.Fatal(err)
	}
	acked := []chatapi.Message{testMsg("a", 1, 10), testMsg("a", 2, 20)}
	if err := st.commit(&writeBatch{msgs: acked}); err != nil {
		t.Fatal(err)
	}
	if err := st.commit(&writeBatch{msgs: []chatapi.Message{testMsg("a", 3, 30)}}); err != nil {
		t.Fatal(err)
	}
	// Cut the last record in half, as a crash during its write would.
	seg := filepath.Join(dir, logDir, "0000000001.seg")
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, fi.Size()-5); err != nil {
		t.Fatal(err)
	}
	st = reopen(t, st, dir)
	if st.tornBytes() == 0 {
		t.Fatal("tornBytes() = 0 after a torn write")
	}
	got, _, err := st.scan("r", nil, 10)
	if err != nil || !reflect.DeepEqual(got, acked) {
		t.Fatalf("after the torn write: %v, %v; want %v", got, err, acked)
	}
	if _, ok, _ := st.lookupDedupe("u", "a-3"); ok {
		t.Fatal("the torn post is in the dedupe table")
	}
	ls, _ := st.load("a")
	if ls.rooms["r"].ownSeq != 2 {
		t.Fatalf("own seq %d after the torn write, want 2", ls.rooms["r"].ownSeq)
	}
	// Seq 3 is stamped again and stored after the complete records.
	again := testMsg("a", 3, 35)
	if err := st.commit(&writeBatch{msgs: []chatapi.Message{again}}); err != nil {
		t.Fatal(err)
	}
	st = reopen(t, st, dir)
	if got, _, _ := st.scan("r", nil, 10); !reflect.DeepEqual(got, append(acked, again)) {
		t.Fatalf("after the next write: %v", got)
	}
}

// A record corrupted in the middle of the log is not dropped silently:
// the store does not open, and says where the damage is.
func TestStoreRefusesACorruptRecord(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := st.commit(&writeBatch{msgs: []chatapi.Message{testMsg("a", seq, int64(seq))}}); err != nil {
			t.Fatal(err)
		}
	}
	st.close()
	seg := filepath.Join(dir, logDir, "0000000001.seg")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("text 2"))
	b[i] ^= 0xff
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openStore(dir, "a", true)
	if !errors.Is(err, seglog.ErrCorrupt) || !strings.Contains(err.Error(), seg) {
		t.Fatalf("open with a corrupt record: %v, want seglog.ErrCorrupt naming %s", err, seg)
	}
}

// A write that fails leaves nothing behind: not in the index, not in the
// log after a reopen.
func TestStoreFailedWriteLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	errFull := errors.New("disk full")
	st.fault = func() error { return errFull }
	if err := st.commit(&writeBatch{msgs: []chatapi.Message{testMsg("a", 1, 10)}, last: 10}); !errors.Is(err, errFull) {
		t.Fatalf("commit on a failing disk: %v", err)
	}
	for _, st := range []*store{st, reopen(t, st, dir)} {
		got, _, _ := st.scan("r", nil, 10)
		ls, _ := st.load("a")
		if len(got) != 0 || ls.last != 0 || len(ls.rooms) != 0 {
			t.Fatalf("after a failed write: %v, last %d, rooms %v", got, ls.last, ls.rooms)
		}
	}
}

func TestStoreBelongsToOneServer(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	st.close()
	if _, err := openStore(dir, "b", true); err == nil || !strings.Contains(err.Error(), `belongs to chat server "a"`) {
		t.Fatalf("open a's log as b: %v", err)
	}
}

// accept hands each message from elsewhere to local delivery once,
// whether it is stored yet or not, and reads see it from then on.
func TestStoreAcceptsEachMessageOnce(t *testing.T) {
	st, err := openStore(t.TempDir(), "a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	m1, m2, m3 := testMsg("b", 1, 10), testMsg("b", 2, 20), testMsg("c", 1, 15)
	if got := st.accept([]chatapi.Message{m1, m1}); !reflect.DeepEqual(got, []bool{true, false}) {
		t.Fatalf("first accept %v", got)
	}
	if err := st.commit(&writeBatch{msgs: []chatapi.Message{m1}}); err != nil {
		t.Fatal(err)
	}
	if got := st.accept([]chatapi.Message{m1, m2, m3}); !reflect.DeepEqual(got, []bool{false, true, true}) {
		t.Fatalf("accept after m1 was stored: %v", got)
	}
	if n := len(st.rooms["r"].pending); n != 2 {
		t.Fatalf("%d pending, want m2 and m3", n)
	}
	// A member who syncs before m2 and m3 are written gets them, in
	// stamp order, page by page.
	got, more, err := st.scan("r", nil, 2)
	if err != nil || !more || !reflect.DeepEqual(got, []chatapi.Message{m1, m3}) {
		t.Fatalf("first page with pending messages: %v, more=%v, %v", got, more, err)
	}
	got, more, err = st.scan("r", map[string]uint64{"b": 1, "c": 1}, 2)
	if err != nil || more || !reflect.DeepEqual(got, []chatapi.Message{m2}) {
		t.Fatalf("second page: %v, more=%v, %v", got, more, err)
	}
	if err := st.commit(&writeBatch{msgs: []chatapi.Message{m2, m3}}); err != nil {
		t.Fatal(err)
	}
	if n := len(st.rooms["r"].pending); n != 0 {
		t.Fatalf("%d pending after the write", n)
	}
	if got, _, _ := st.scan("r", nil, 10); !reflect.DeepEqual(got, []chatapi.Message{m1, m3, m2}) {
		t.Fatalf("after the write: %v", got)
	}
}

// A message read from the log costs one allocation for its five strings,
// and decodes to what was encoded; a record cut short is refused.
func TestDecodeMessageAllocatesOnce(t *testing.T) {
	m := chatapi.Message{Room: "lobby", ID: "p-1", From: "ann", Text: strings.Repeat("x", 64),
		Stamp: chatapi.Stamp{Time: 1234567, Server: "server-1", Seq: 42}}
	rec := encodeMessage(m)
	got, err := decodeMessage(rec)
	if err != nil || got != m {
		t.Fatalf("decoded %+v (%v), want %+v", got, err, m)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeMessage(rec) }); n != 1 {
		t.Fatalf("decodeMessage made %v allocations, want 1", n)
	}
	for cut := 1; cut < len(rec); cut++ {
		if _, err := decodeMessage(rec[:cut]); !errors.Is(err, errBadRecord) {
			t.Fatalf("record cut to %d of %d bytes: err %v, want errBadRecord", cut, len(rec), err)
		}
	}
}

// scan gives, for any stored messages and any have and limit, the first
// limit messages in stamp order whose seq is above have[origin], and
// whether more remain: what sorting all of them would give.
func TestScanIsTheStampOrderOfWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	runs := 0
	rapid.Check(t, func(t *rapid.T) {
		runs++
		st, err := openStore(filepath.Join(dir, fmt.Sprint(runs)), "a", true)
		if err != nil {
			t.Fatal(err)
		}
		defer st.close()
		origins := []string{"a", "b", "c"}
		var all []chatapi.Message
		last := map[string]int64{}
		seq := map[string]uint64{}
		for range rapid.IntRange(0, 40).Draw(t, "messages") {
			o := rapid.SampledFrom(origins).Draw(t, "origin")
			// An origin's times strictly increase; across origins they
			// interleave and collide.
			last[o] += int64(rapid.IntRange(1, 5).Draw(t, "step"))
			seq[o]++
			all = append(all, chatapi.Message{Room: "r", ID: fmt.Sprint(len(all)), From: "u", Text: "x",
				Stamp: chatapi.Stamp{Time: last[o], Server: o, Seq: seq[o]}})
		}
		// Stored in batches, in an order where an origin's messages may
		// come late and out of seq order (a catch-up fills a gap).
		stored := rapid.Permutation(all).Draw(t, "arrival")
		for len(stored) > 0 {
			n := rapid.IntRange(1, len(stored)).Draw(t, "batch")
			if err := st.commit(&writeBatch{msgs: stored[:n]}); err != nil {
				t.Fatal(err)
			}
			stored = stored[n:]
		}
		have := map[string]uint64{}
		for _, o := range origins {
			have[o] = uint64(rapid.IntRange(0, 6).Draw(t, "have "+o))
		}
		limit := rapid.IntRange(1, 50).Draw(t, "limit")
		var want []chatapi.Message
		for _, m := range all {
			if m.Stamp.Seq > have[m.Stamp.Server] {
				want = append(want, m)
			}
		}
		slices.SortFunc(want, func(a, b chatapi.Message) int { return a.Stamp.Compare(b.Stamp) })
		wantMore := len(want) > limit
		want = want[:min(limit, len(want))]
		got, more, err := st.scan("r", have, limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) || more != wantMore {
			t.Fatalf("scan(have %v, limit %d) = %v, more %v; want %v, more %v", have, limit, got, more, want, wantMore)
		}
	})
}

// A message decoded from the wire keeps its strings in one allocation:
// the index and the heads a commit reports keep none of them, so that a
// room's or an origin's name never keeps a whole message alive.
func TestStoreKeepsNoPartOfADecodedMessage(t *testing.T) {
	st, err := openStore(t.TempDir(), "a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	enc, err := (&chatapi.Message{Room: "lobby", ID: "p-1", From: "ann", Text: "hi", Stamp: chatapi.Stamp{Time: 1, Server: "b", Seq: 1}}).MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	var m chatapi.Message
	if _, err := m.UnmarshalMsg(enc); err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(m.Room)))
	hi := uintptr(unsafe.Pointer(unsafe.StringData(m.Stamp.Server))) + uintptr(len(m.Stamp.Server))
	part := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return len(s) > 0 && p >= lo && p < hi
	}
	b := &writeBatch{msgs: []chatapi.Message{m}}
	if err := st.commit(b); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for room, heads := range b.heads {
		kept = append(kept, room)
		for origin := range heads {
			kept = append(kept, origin)
		}
	}
	for name, r := range st.rooms {
		kept = append(kept, name, r.name)
		for origin, o := range r.origins {
			kept = append(kept, origin, o.name)
		}
	}
	if len(kept) < 6 {
		t.Fatalf("only %v kept: the commit did not index the message", kept)
	}
	for _, s := range kept {
		if part(s) {
			t.Fatalf("the store keeps %q, part of the decoded message", s)
		}
	}
}

// The dedupe index answers exactly, however often hashes collide: every
// post stamped here is found with its stamp, by its sender and ID, and no
// other post is found. (TestStoreReopenRebuildsTheIndex covers reopening.)
func TestDedupeIsExactWhenHashesCollide(t *testing.T) {
	dir := t.TempDir()
	runs := 0
	rapid.Check(t, func(t *rapid.T) {
		runs++
		path := filepath.Join(dir, fmt.Sprint(runs))
		st, err := openStore(path, "a", true)
		if err != nil {
			t.Fatal(err)
		}
		buckets := uint64(rapid.IntRange(1, 4).Draw(t, "buckets"))
		st.dedupe.collide = func(k postKey) uint64 { return maphash.Comparable(st.dedupe.seed, k) % buckets }
		name := rapid.SampledFrom([]string{"ann", "bob", "a", "b", ""})
		posted := map[postKey]chatapi.Stamp{}
		var msgs []chatapi.Message
		for i := range rapid.IntRange(0, 20).Draw(t, "posts") {
			k := postKey{name.Draw(t, "from"), name.Draw(t, "id")}
			if _, dup := posted[k]; dup {
				continue // the server answers a retry; it never stores one twice
			}
			m := chatapi.Message{Room: "r", ID: k.id, From: k.from, Text: "x", Stamp: chatapi.Stamp{Time: int64(i + 1), Server: "a", Seq: uint64(len(msgs) + 1)}}
			posted[k] = m.Stamp
			msgs = append(msgs, m)
		}
		if err := st.commit(&writeBatch{msgs: msgs}); err != nil {
			t.Fatal(err)
		}
		check := func(st *store) {
			for _, from := range []string{"ann", "bob", "a", "b", "", "cat"} {
				for _, id := range []string{"ann", "bob", "a", "b", "", "z"} {
					k := postKey{from, id}
					rec, ok, err := st.lookupDedupe(from, id)
					want, wantOK := posted[k]
					if err != nil || ok != wantOK || ok && rec.Stamp != want {
						t.Fatalf("lookup %q/%q: %+v %v %v; want %v %v", from, id, rec, ok, err, want, wantOK)
					}
				}
			}
		}
		check(st)
		if err := st.close(); err != nil {
			t.Fatal(err)
		}
	})
}
