package seglog

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
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
