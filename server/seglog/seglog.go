// Package seglog is an append-only log of records kept in segment files:
// the storage of a chat server's messages.
//
// A record on disk is its payload's length (4 bytes, big-endian), the
// CRC-32C (Castagnoli) of the payload (4 bytes), then the payload. Records
// are appended in batches: one write and one fdatasync per batch, so that
// a caller that groups its writes (group commit) pays one disk flush per
// group. When the current segment has passed Options.SegmentSize the next
// batch starts a new segment; a full segment is never written again.
//
// The most recent bytes of the current segment (Options.TailCache) are
// also kept in memory, so that reading what was appended recently, which
// is most of what a chat server reads (the messages it forwards, the
// history a member who reconnects asks for), costs no system call.
//
// Open reads every record back, in order. A record cut short at the end of
// the last segment (a crash in the middle of a write: a torn tail) is cut
// off the file, since it was never acknowledged; any other bad record is
// corruption, and Open fails with ErrCorrupt, naming the file and offset,
// rather than drop what follows it.
//
// A failed append (a full disk, a failing fsync) is cut off the file
// before the next append, so a failed batch never leaves bytes in the
// middle of the log.
//
// Why a log of its own: a chat server mostly appends, and reads what it
// appended recently. A B+tree (bbolt, which the chat server used before)
// copies the pages it changes on every commit and syncs twice; an LSM
// tree (Pebble) writes its own log first and then does the work of a
// sorted table in the background. This log does only the first part: one
// write and one fdatasync per group commit, and the index the chat
// server needs is kept in memory (server/store.go).
package seglog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// headerSize is the length and CRC in front of every record.
const headerSize = 8

// DefaultSegmentSize is the size past which a new segment is started.
const DefaultSegmentSize = 64 << 20

// DefaultTailCache is how many of the last bytes appended are kept in
// memory for Read when Options.TailCache is 0: 850 messages of 150 bytes
// or more, far more than a chat server's forwarders lag behind, for 128
// to 256 KiB of memory.
const DefaultTailCache = 128 << 10

// MaxRecord is the largest payload a record may have.
const MaxRecord = 16 << 20

// segSuffix ends every segment's file name; the name before it is the
// segment's number, in decimal, zero-padded so names sort in order.
const segSuffix = ".seg"

// ErrCorrupt reports a record whose CRC or length is wrong anywhere but
// at the torn tail.
var ErrCorrupt = errors.New("seglog: corrupt record")

// crcTable is the CRC-32C table (hardware-accelerated on amd64 and arm64).
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options configures a Log.
type Options struct {
	// SegmentSize is the size past which a new segment is started;
	// 0 means DefaultSegmentSize.
	SegmentSize int64
	// NoSync skips the fdatasync after each append (for the simulator,
	// whose crashes lose nothing written). Never in production.
	NoSync bool
	// TailCache is how many of the last bytes of the current segment are
	// kept in memory for Read (at most twice as many are held while it
	// slides); 0 means DefaultTailCache, and a negative value keeps none.
	TailCache int
	// Fault, if set, is asked after each append's write and before its
	// fdatasync; an error it returns fails the append as a failing disk
	// would (the bytes written are cut off again). Only for tests.
	Fault func() error
}

// Pos is where a record is: its segment, the offset of its header, and
// its payload's length.
type Pos struct {
	Seg uint32
	Len uint32
	Off int64
}

// Log is an open segment log. Its methods may be called from any
// goroutine; appends run one at a time (a group committer has one
// writer anyway), and reads run alongside them.
type Log struct {
	dir  string
	opts Options

	mu   sync.RWMutex // guards segs and the tail (Append changes them; Read looks up)
	segs []*segment   // in order; the last is the one appended to
	// tail holds bytes tailOff to tailOff+len(tail) of segment tailSeg,
	// the last one: the most recent bytes appended (keepTail).
	tail    []byte
	tailOff int64
	tailSeg uint32

	// wmu is held by Append throughout, and by Close, which so waits for
	// the append in flight. It guards the fields below.
	wmu    sync.Mutex
	closed bool
	size   int64  // bytes of complete records in the last segment
	dirty  bool   // a failed append may have left bytes past size
	buf    []byte // reused for each batch
	cut    int64  // bytes of torn tail Open cut off
}

// segment is one file of the log.
type segment struct {
	num  uint32
	path string
	f    *os.File
}

// Open opens the log in dir, creating dir and the first segment if
// needed, and calls fn with every record in order. The payload passed to
// fn is only valid during the call. An error from fn ends Open with that
// error.
func Open(dir string, opts Options, fn func(Pos, []byte) error) (*Log, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.TailCache == 0 {
		opts.TailCache = DefaultTailCache
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("seglog: %w", err)
	}
	nums, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	for i, num := range nums {
		last := i == len(nums)-1
		if err := l.openSegment(num, last, fn); err != nil {
			return nil, err
		}
	}
	if len(l.segs) == 0 {
		if err := l.newSegment(1); err != nil {
			return nil, err
		}
	}
	ok = true
	return l, nil
}

// listSegments returns the numbers of the segments in dir, in order.
func listSegments(dir string) ([]uint32, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("seglog: %w", err)
	}
	var nums []uint32
	for _, e := range entries {
		name, found := strings.CutSuffix(e.Name(), segSuffix)
		if !found || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("seglog: %s: not a segment name", filepath.Join(dir, e.Name()))
		}
		nums = append(nums, uint32(n))
	}
	slices.Sort(nums)
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			return nil, fmt.Errorf("seglog: %s: segment %d is missing: %w", dir, nums[i-1]+1, ErrCorrupt)
		}
	}
	return nums, nil
}

func segName(dir string, num uint32) string {
	return filepath.Join(dir, fmt.Sprintf("%010d%s", num, segSuffix))
}

// openSegment reads segment num's records into fn and adds it to the
// log. In the last segment a torn tail is cut off.
func (l *Log) openSegment(num uint32, last bool, fn func(Pos, []byte) error) error {
	path := segName(l.dir, num)
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return fmt.Errorf("seglog: %w", err)
	}
	seg := &segment{num: num, path: path, f: f}
	l.segs = append(l.segs, seg)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("seglog: %w", err)
	}
	off := int64(0)
	for off < int64(len(data)) {
		payload, ok := record(data[off:])
		if !ok {
			if !last || !tornTail(data[off:]) {
				return fmt.Errorf("seglog: %s at offset %d (%d bytes follow it; restore the file from a backup, or truncate it to %d bytes to drop them): %w",
					path, off, int64(len(data))-off, off, ErrCorrupt)
			}
			break
		}
		if err := fn(Pos{Seg: num, Len: uint32(len(payload)), Off: off}, payload); err != nil {
			return err
		}
		off += headerSize + int64(len(payload))
	}
	if last {
		l.size = off
		l.tailSeg, l.tailOff = num, off
		l.keepTail(data[:off], off)
		if cut := int64(len(data)) - off; cut > 0 {
			// The torn record was never acknowledged: cut it off, so the
			// next append follows the last complete record.
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("seglog: cut the torn tail of %s: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("seglog: cut the torn tail of %s: %w", path, err)
			}
			l.cut = cut
		}
	}
	return nil
}

// record returns the payload of the record at the start of b, and false
// if b does not start with a complete record whose CRC matches.
func record(b []byte) ([]byte, bool) {
	if len(b) < headerSize {
		return nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 || n > MaxRecord || int64(n) > int64(len(b)-headerSize) {
		return nil, false
	}
	payload := b[headerSize : headerSize+n]
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return nil, false
	}
	return payload, true
}

// tornTail reports whether b, the bytes from the first bad record to the
// end of the last segment, is what a crash during an append leaves: a
// record that runs past the end of the file, or zeros to the end (a file
// extended whose data never reached the disk). A bad record with more
// bytes after it is corruption, not a torn tail.
func tornTail(b []byte) bool {
	if len(b) < headerSize {
		return true
	}
	n := int64(binary.BigEndian.Uint32(b))
	if n > 0 && n <= MaxRecord && headerSize+n >= int64(len(b)) {
		return true
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TornBytes returns how many bytes of torn tail Open cut off the last
// segment (0 if none), for the caller to log.
func (l *Log) TornBytes() int64 { return l.cut }

// newSegment creates segment num and makes it the one appended to. The
// directory is synced so that the new file survives a crash.
func (l *Log) newSegment(num uint32) error {
	path := segName(l.dir, num)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("seglog: %w", err)
	}
	if !l.opts.NoSync {
		if err := syncDir(l.dir); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
	}
	l.mu.Lock()
	l.segs = append(l.segs, &segment{num: num, path: path, f: f})
	l.tail, l.tailOff, l.tailSeg = l.tail[:0], 0, num
	l.mu.Unlock()
	l.size = 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("seglog: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("seglog: sync %s: %w", dir, err)
	}
	return nil
}

// Append writes recs at the end of the log with one write and one
// fdatasync, and returns where each went. When it fails, none of recs is
// in the log: what was written is cut off (now, or before the next
// append if cutting fails too).
func (l *Log) Append(recs [][]byte) ([]Pos, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	seg := l.last()
	if l.dirty {
		if err := seg.f.Truncate(l.size); err != nil {
			return nil, fmt.Errorf("seglog: cut a failed append off %s: %w", seg.path, err)
		}
		l.dirty = false
	}
	total := int64(0)
	for _, r := range recs {
		if len(r) == 0 || len(r) > MaxRecord {
			return nil, fmt.Errorf("seglog: a record of %d bytes (want 1 to %d)", len(r), MaxRecord)
		}
		total += headerSize + int64(len(r))
	}
	if l.size > 0 && l.size+total > l.opts.SegmentSize {
		if err := l.newSegment(seg.num + 1); err != nil {
			return nil, err
		}
		seg = l.last()
	}
	buf := l.buf[:0]
	pos := make([]Pos, len(recs))
	off := l.size
	for i, r := range recs {
		pos[i] = Pos{Seg: seg.num, Len: uint32(len(r)), Off: off}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(r)))
		buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(r, crcTable))
		buf = append(buf, r...)
		off += headerSize + int64(len(r))
	}
	if cap(buf) <= 1<<20 {
		l.buf = buf // keep the buffer unless one batch was unusually large
	}
	err := l.write(seg, buf)
	if err != nil {
		l.dirty = true
		if seg.f.Truncate(l.size) == nil {
			l.dirty = false
		}
		return nil, err
	}
	l.size = off
	l.mu.Lock()
	l.keepTail(buf, off)
	l.mu.Unlock()
	return pos, nil
}

// keepTail adds b, the bytes of the last segment that end at offset end,
// to the tail kept in memory, dropping its oldest bytes to keep at most
// TailCache of them once it reaches twice that (so that sliding copies
// each byte at most once more). Callers hold l.mu, or own l alone (Open).
func (l *Log) keepTail(b []byte, end int64) {
	limit := l.opts.TailCache
	if limit <= 0 || len(b) == 0 {
		return
	}
	if cap(l.tail) < 2*limit {
		// Once, at its full size: growing it by appends would leave a
		// trail of smaller copies for the garbage collector.
		l.tail = append(make([]byte, 0, 2*limit), l.tail...)
	}
	switch {
	case len(b) >= limit:
		b = b[len(b)-limit:]
		l.tail = l.tail[:0]
	case len(l.tail)+len(b) > 2*limit:
		keep := limit - len(b)
		l.tail = l.tail[:copy(l.tail, l.tail[len(l.tail)-keep:])]
	}
	l.tail = append(l.tail, b...)
	l.tailOff = end - int64(len(l.tail))
}

// write writes buf at the end of seg and makes it durable.
func (l *Log) write(seg *segment, buf []byte) error {
	if _, err := seg.f.WriteAt(buf, l.size); err != nil {
		return fmt.Errorf("seglog: write %s: %w", seg.path, err)
	}
	if l.opts.Fault != nil {
		if err := l.opts.Fault(); err != nil {
			return fmt.Errorf("seglog: write %s: %w", seg.path, err)
		}
	}
	if l.opts.NoSync {
		return nil
	}
	if err := fdatasync(seg.f); err != nil {
		return fmt.Errorf("seglog: sync %s: %w", seg.path, err)
	}
	return nil
}

func (l *Log) last() *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segs[len(l.segs)-1]
}

// Read returns the payload of the record at p, checking its CRC.
func (l *Log) Read(p Pos) ([]byte, error) {
	b, path, err := l.readSpan(p.Seg, p.Off, p.Off+headerSize+int64(p.Len), nil)
	if err != nil {
		return nil, err
	}
	payload, ok := record(b)
	if !ok || len(payload) != int(p.Len) {
		return nil, fmt.Errorf("seglog: %s at offset %d: %w", path, p.Off, ErrCorrupt)
	}
	return payload, nil
}

// Records that ReadMany reads together: one read spans at most
// maxReadSpan bytes and skips at most maxReadGap bytes of other records
// between two it wants.
const (
	maxReadSpan = 256 << 10
	maxReadGap  = 16 << 10
)

// ReadMany calls fn with the payload of the record at each of ps in turn,
// checked as Read checks it, and stops at the first error (fn's own
// included). Records that lie close together, in order, in one segment (a
// page of a room's history mostly does) are read with one read system
// call rather than one each. The payload is only valid during the call.
func (l *Log) ReadMany(ps []Pos, fn func(payload []byte) error) error {
	var buf []byte
	for i := 0; i < len(ps); {
		first := ps[i]
		end := first.Off + headerSize + int64(first.Len)
		j := i + 1
		for ; j < len(ps); j++ {
			p := ps[j]
			pend := p.Off + headerSize + int64(p.Len)
			if p.Seg != first.Seg || p.Off < end || p.Off-end > maxReadGap || pend-first.Off > maxReadSpan {
				break
			}
			end = pend
		}
		var path string
		var err error
		buf, path, err = l.readSpan(first.Seg, first.Off, end, buf)
		if err != nil {
			return err
		}
		for _, p := range ps[i:j] {
			b := buf[p.Off-first.Off : p.Off-first.Off+headerSize+int64(p.Len)]
			payload, ok := record(b)
			if !ok || len(payload) != int(p.Len) {
				return fmt.Errorf("seglog: %s at offset %d: %w", path, p.Off, ErrCorrupt)
			}
			if err := fn(payload); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// readSpan returns bytes off to end of segment seg, in buf if it has room
// (else in a new slice): from the tail kept in memory if it holds them
// all, else with one pread. It returns the segment's path too, for errors.
func (l *Log) readSpan(seg uint32, off, end int64, buf []byte) ([]byte, string, error) {
	n := int(end - off)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	l.mu.RLock()
	if len(l.segs) == 0 {
		l.mu.RUnlock()
		return nil, "", errClosed
	}
	var s *segment
	if first := l.segs[0].num; seg >= first && int(seg-first) < len(l.segs) {
		s = l.segs[seg-first]
	}
	cached := s != nil && seg == l.tailSeg && off >= l.tailOff && end <= l.tailOff+int64(len(l.tail))
	if cached {
		copy(buf, l.tail[off-l.tailOff:])
	}
	l.mu.RUnlock()
	if s == nil {
		return nil, "", fmt.Errorf("seglog: no segment %d", seg)
	}
	if !cached {
		if _, err := s.f.ReadAt(buf, off); err != nil {
			return nil, "", fmt.Errorf("seglog: read %s at %d: %w", s.path, off, err)
		}
	}
	return buf, s.path, nil
}

// errClosed is returned by an append to a closed log.
var errClosed = errors.New("seglog: the log is closed")

// Close waits for an append in flight and closes the segment files.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.closed = true
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	l.segs = nil
	return errors.Join(errs...)
}
