package seglog

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// openAll opens the log in dir and returns it with every payload read.
func openAll(t *testing.T, dir string, opts Options) (*Log, []string) {
	t.Helper()
	var got []string
	l, err := Open(dir, opts, func(_ Pos, p []byte) error {
		got = append(got, string(p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, got
}

func recs(ss ...string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	l, got := openAll(t, dir, Options{SegmentSize: 64})
	if len(got) != 0 {
		t.Fatalf("a new log has %q", got)
	}
	var want []string
	var all []Pos
	for i := range 10 {
		batch := []string{fmt.Sprintf("record %d.a", i), fmt.Sprintf("record %d.b", i)}
		pos, err := l.Append(recs(batch...))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
		all = append(all, pos...)
	}
	for i, p := range all {
		b, err := l.Read(p)
		if err != nil || string(b) != want[i] {
			t.Fatalf("Read(%v) = %q, %v; want %q", p, b, err, want[i])
		}
	}
	if last := all[len(all)-1].Seg; last < 3 {
		t.Fatalf("20 records of 18 bytes in segments of 64 bytes ended in segment %d, want rolled segments", last)
	}
	l.Close()
	_, got = openAll(t, dir, Options{SegmentSize: 64})
	if !slices.Equal(got, want) {
		t.Fatalf("reopened: %q, want %q", got, want)
	}
}

// lastSegment returns the path of dir's last segment.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	nums, err := listSegments(dir)
	if err != nil || len(nums) == 0 {
		t.Fatalf("segments of %s: %v, %v", dir, nums, err)
	}
	return segName(dir, nums[len(nums)-1])
}

// A crash in the middle of an append leaves a record cut short at the end
// of the file: reopening keeps every complete record, drops the torn one,
// and appends after the last complete record.
func TestTornTailIsCutOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(size int64, last Pos) int64 // the length to truncate the file to
	}{
		{"mid-payload", func(size int64, last Pos) int64 { return last.Off + headerSize + 3 }},
		{"mid-header", func(size int64, last Pos) int64 { return last.Off + 5 }},
		{"header only", func(size int64, last Pos) int64 { return last.Off + headerSize }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openAll(t, dir, Options{})
			if _, err := l.Append(recs("one", "two")); err != nil {
				t.Fatal(err)
			}
			pos, err := l.Append(recs("three", "four, never acknowledged"))
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			path := lastSegment(t, dir)
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, tc.tear(fi.Size(), pos[1])); err != nil {
				t.Fatal(err)
			}
			l, got := openAll(t, dir, Options{})
			if want := []string{"one", "two", "three"}; !slices.Equal(got, want) {
				t.Fatalf("after a torn append: %q, want %q", got, want)
			}
			if l.TornBytes() == 0 {
				t.Fatal("TornBytes() = 0 after cutting a torn record")
			}
			if _, err := l.Append(recs("five")); err != nil {
				t.Fatal(err)
			}
			l.Close()
			_, got = openAll(t, dir, Options{})
			if want := []string{"one", "two", "three", "five"}; !slices.Equal(got, want) {
				t.Fatalf("appended after the cut: %q, want %q", got, want)
			}
		})
	}
}

// Zeros at the end of the file (the file grew but its data never reached
// the disk) are a torn tail too.
func TestZeroTailIsCutOff(t *testing.T) {
	dir := t.TempDir()
	l, _ := openAll(t, dir, Options{})
	if _, err := l.Append(recs("one")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	path := lastSegment(t, dir)
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()+4096); err != nil {
		t.Fatal(err)
	}
	_, got := openAll(t, dir, Options{})
	if !slices.Equal(got, []string{"one"}) {
		t.Fatalf("after a zero tail: %q", got)
	}
}

// A record whose bytes changed in the middle of the log is not a torn
// tail: Open fails with ErrCorrupt, naming the file and the offset, and
// drops nothing silently.
func TestCorruptRecordInTheMiddleFailsOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  func(p Pos) int64
	}{
		{"payload", func(p Pos) int64 { return p.Off + headerSize + 1 }},
		{"crc", func(p Pos) int64 { return p.Off + 5 }},
		{"length", func(p Pos) int64 { return p.Off }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openAll(t, dir, Options{})
			pos, err := l.Append(recs("one", "two", "three"))
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			path := lastSegment(t, dir)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte{0x7f}, tc.off(pos[1])); err != nil {
				t.Fatal(err)
			}
			f.Close()
			_, err = Open(dir, Options{}, func(Pos, []byte) error { return nil })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open with a corrupt record: %v, want ErrCorrupt", err)
			}
			if want := fmt.Sprintf("%s at offset %d", path, pos[1].Off); !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
			// And the file was left as it was.
			if fi, _ := os.Stat(path); fi.Size() != pos[2].Off+headerSize+int64(pos[2].Len) {
				t.Fatalf("the corrupt file was changed: %d bytes", fi.Size())
			}
		})
	}
}

// A bad record in a segment that is not the last one is corruption even
// at its end: full segments were synced before the next began.
func TestBadEndOfAFullSegmentIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	l, _ := openAll(t, dir, Options{SegmentSize: 16})
	for _, r := range []string{"first segment", "second segment"} {
		if _, err := l.Append(recs(r)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if err := os.Truncate(segName(dir, 1), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}, func(Pos, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a short full segment: %v, want ErrCorrupt", err)
	}
}

// A failed append (here the fault hook, as a full disk) leaves nothing in
// the log: the next append and a reopen see only the records before it.
func TestFailedAppendIsCutOff(t *testing.T) {
	dir := t.TempDir()
	errFull := errors.New("disk full")
	var fail bool
	opts := Options{Fault: func() error {
		if fail {
			return errFull
		}
		return nil
	}}
	l, _ := openAll(t, dir, opts)
	if _, err := l.Append(recs("one")); err != nil {
		t.Fatal(err)
	}
	fail = true
	if _, err := l.Append(recs("refused")); !errors.Is(err, errFull) {
		t.Fatalf("append on a failing disk: %v, want %v", err, errFull)
	}
	fail = false
	pos, err := l.Append(recs("two"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := l.Read(pos[0]); err != nil || string(b) != "two" {
		t.Fatalf("Read = %q, %v", b, err)
	}
	l.Close()
	_, got := openAll(t, dir, Options{})
	if want := []string{"one", "two"}; !slices.Equal(got, want) {
		t.Fatalf("after a failed append: %q, want %q", got, want)
	}
}

func TestBadInput(t *testing.T) {
	l, _ := openAll(t, t.TempDir(), Options{})
	if _, err := l.Append([][]byte{{}}); err == nil {
		t.Fatal("an empty record was accepted")
	}
	if _, err := l.Read(Pos{Seg: 9, Len: 1}); err == nil {
		t.Fatal("Read of a segment that does not exist succeeded")
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/x.seg", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}, func(Pos, []byte) error { return nil }); err == nil {
		t.Fatal("Open accepted a segment named x.seg")
	}
}

// corrupt overwrites every byte of path with x, keeping its size.
func corrupt(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'x'
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The last bytes appended are read from memory: with the file on disk
// overwritten, the last records still read back, and the first, long out
// of the tail, reads as corrupt from the disk. After a reopen the tail
// holds the end of what Open read.
func TestRecentRecordsAreReadFromMemory(t *testing.T) {
	opts := Options{TailCache: 40} // records of 3 bytes take 11: 3 to 7 of them are kept
	fill := func(l *Log) (all []Pos) {
		for i := range 10 {
			pos, err := l.Append(recs(fmt.Sprintf("r%02d", i)))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, pos...)
		}
		return all
	}
	check := func(when, dir string, l *Log, all []Pos) {
		t.Helper()
		corrupt(t, segName(dir, 1))
		if _, err := l.Read(all[0]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: the first record, out of the tail, read %v; want it read from the overwritten file (ErrCorrupt)", when, err)
		}
		for i := 7; i < 10; i++ {
			if b, err := l.Read(all[i]); err != nil || string(b) != fmt.Sprintf("r%02d", i) {
				t.Errorf("%s: record %d read %q, %v; want it from memory", when, i, b, err)
			}
		}
	}
	dir := t.TempDir()
	l, _ := openAll(t, dir, opts)
	check("appended", dir, l, fill(l))

	dir = t.TempDir()
	l, _ = openAll(t, dir, opts)
	all := fill(l)
	l.Close()
	l, _ = openAll(t, dir, opts)
	check("reopened", dir, l, all)
}

// A new segment starts a new tail: the records of the full segment are
// read from its file.
func TestTailFollowsTheLastSegment(t *testing.T) {
	dir := t.TempDir()
	l, _ := openAll(t, dir, Options{SegmentSize: 30})
	var all []Pos
	for i := range 4 {
		pos, err := l.Append(recs(fmt.Sprintf("r%02d", i)))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, pos...)
	}
	if all[0].Seg == all[3].Seg {
		t.Fatalf("4 records of 11 bytes in segments of 30 stayed in segment %d", all[0].Seg)
	}
	corrupt(t, segName(dir, all[0].Seg))
	if _, err := l.Read(all[0]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a record of a full segment read %v; want it read from the overwritten file", err)
	}
	if b, err := l.Read(all[3]); err != nil || string(b) != "r03" {
		t.Errorf("the last record read %q, %v", b, err)
	}
}

// Whatever the tail's size, the segment size and the batches, every
// record reads back as appended, from memory or from disk, and a reopened
// log reads the same.
func TestReadMatchesAppendsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp("", "seglog")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		opts := Options{
			TailCache:   rapid.IntRange(-1, 200).Draw(t, "tail"),
			SegmentSize: int64(rapid.IntRange(16, 400).Draw(t, "segment")),
		}
		l, err := Open(dir, opts, func(Pos, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		var all []Pos
		var want []string
		readAll := func(l *Log) {
			for i, p := range all {
				if b, err := l.Read(p); err != nil || string(b) != want[i] {
					t.Fatalf("record %d at %+v read %q, %v; want %q", i, p, b, err, want[i])
				}
			}
			// ReadMany, of all in order and of a scrambled pick (out of
			// order, with repeats; not drawn, so that the failure files
			// of this test stay valid), reads what Read does.
			var inOrder, picks []int
			for k := range all {
				inOrder = append(inOrder, k)
			}
			for k := range len(all) + 2 {
				picks = append(picks, (k*7+3)%len(all))
			}
			for _, idx := range [][]int{inOrder, picks} {
				ps := make([]Pos, len(idx))
				for k, i := range idx {
					ps[k] = all[i]
				}
				k := 0
				err := l.ReadMany(ps, func(b []byte) error {
					if string(b) != want[idx[k]] {
						t.Fatalf("ReadMany: record %d at %+v read %q; want %q", idx[k], ps[k], b, want[idx[k]])
					}
					k++
					return nil
				})
				if err != nil || k != len(ps) {
					t.Fatalf("ReadMany of %d records: %d read, %v", len(ps), k, err)
				}
			}
		}
		for range rapid.IntRange(1, 30).Draw(t, "batches") {
			var batch []string
			for j := range rapid.IntRange(1, 5).Draw(t, "records") {
				batch = append(batch, fmt.Sprintf("%d.%d.%s", len(want), j, strings.Repeat("z", rapid.IntRange(0, 60).Draw(t, "size"))))
			}
			pos, err := l.Append(recs(batch...))
			if err != nil {
				t.Fatal(err)
			}
			all, want = append(all, pos...), append(want, batch...)
			readAll(l)
		}
		l.Close()
		l, err = Open(dir, opts, func(Pos, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		readAll(l)
	})
}

// A damaged record among those ReadMany reads in one span fails it with
// ErrCorrupt, after the records before it were handed on.
func TestReadManyFindsACorruptRecord(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{NoSync: true, TailCache: -1}, func(Pos, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var texts []string
	for i := range 10 {
		texts = append(texts, fmt.Sprintf("record %d", i))
	}
	ps, err := l.Append(recs(texts...))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(segName(dir, ps[5].Seg), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), ps[5].Off+headerSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var got []string
	err = l.ReadMany(ps, func(b []byte) error { got = append(got, string(b)); return nil })
	if !errors.Is(err, ErrCorrupt) || !slices.Equal(got, texts[:5]) {
		t.Fatalf("ReadMany over a damaged record: read %q, %v; want the 5 before it and ErrCorrupt", got, err)
	}
}

// benchLog returns a log (closed when b ends) of n records of 144 bytes
// appended one at a time, with the tail cache given, and their positions.
func benchLog(b *testing.B, n, tail int) (*Log, []Pos) {
	l, err := Open(b.TempDir(), Options{NoSync: true, TailCache: tail}, func(Pos, []byte) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	var all []Pos
	for i := range n {
		pos, err := l.Append(recs(fmt.Sprintf("%04d%s", i, strings.Repeat("m", 140))))
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, pos...)
	}
	return l, all
}

// BenchmarkReadMany reads a page of 100 records appended one after
// another, as a Sync reads a room's history: one pread each (Read), or
// one for the page (ReadMany).
func BenchmarkReadMany(b *testing.B) {
	l, all := benchLog(b, 100, -1)
	b.Run("Read", func(b *testing.B) {
		for b.Loop() {
			for _, p := range all {
				if _, err := l.Read(p); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("ReadMany", func(b *testing.B) {
		for b.Loop() {
			if err := l.ReadMany(all, func([]byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReadRecent reads records just appended: from the tail kept in
// memory, against a pread each (TailCache -1).
func BenchmarkReadRecent(b *testing.B) {
	for _, tc := range []struct {
		name string
		tail int
	}{{"pread", -1}, {"tail", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			l, all := benchLog(b, 1000, tc.tail)
			recent := all[len(all)-100:]
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := l.Read(recent[i%len(recent)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
