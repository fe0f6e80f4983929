package server

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/seglog"
)

// The chat server's durable state is one append-only log (package seglog,
// in DIR/log), and everything it needs to find its way in the log is an
// index in memory, rebuilt from the log when the server opens.
//
// The log's records (logrec.go) are the server's name (the first record),
// messages, forwarding cursors, the largest stamp time ("last") and the
// chat servers ever seen ("known"); a later cursor, last or known record
// replaces an earlier one. From the messages the index rebuilds each
// origin's messages of each room by seq (also their stamp order; a room's
// order is the merge of its origins') and contiguous head, and the
// dedupe table of posts first stamped here (by sender and post id). A
// group commit is one append: one write and one fdatasync.
//
// Nothing is ever rewritten in place, so a crash can only leave a torn
// record at the very end, which opening cuts off (it was never
// acknowledged).

// logDir is the log's directory inside the server's data directory.
const logDir = "log"

// probeSize is how much a storage probe writes: four times the largest
// message, so that it needs fresh space on the disk, as a post may.
const probeSize = 4 * chatapi.MaxText

// store is the chat server's durable state: the log and its index.
type store struct {
	log  *seglog.Log
	self string
	// fault, if set, fails writes (Config.WriteFault, for tests): it is
	// asked after each append's write and before its sync, and the
	// append is then cut off again.
	fault func() error

	mu      sync.RWMutex
	rooms   map[string]*roomLog
	dedupe  dedupeIndex                  // posts first stamped here, by sender and ID
	cursors map[string]map[string]uint64 // dest -> room -> own seq dest acknowledged
	last    int64
	known   []string
}

// roomLog is the index of one room's messages.
type roomLog struct {
	name string // the room (one copy, shared by the index)
	// origins holds the room's stored messages by origin, each in seq
	// order, which is also stamp order (an origin's stamp times strictly
	// increase): the room's order is their merge (scan).
	origins map[string]*originLog
	// pending are messages from other servers handed to local delivery
	// before they are stored (accept): reads see them, so that a member
	// who syncs before their write misses nothing. They leave when
	// stored, and are lost in a crash (their origin sends them again).
	pending map[chatapi.Stamp]chatapi.Message
}

// originLog is one origin's messages in a room.
type originLog struct {
	name    string     // the origin (one copy, shared by its entries' stamps)
	entries []logEntry // by seq
	head    uint64     // contiguous head: seqs 1..head are all here
}

// logEntry locates one stored message of an origin, whose originLog
// holds the origin's name: the rest of its stamp and where it lies. It
// holds no pointer, so the garbage collector skips the index, which
// grows with the server's whole history.
type logEntry struct {
	time int64
	seq  uint64
	pos  seglog.Pos
}

// roomDisk is what load returns per room.
type roomDisk struct {
	heads  map[string]uint64 // contiguous head per origin
	ownSeq uint64            // largest seq this server stamped in the room
}

// loadedState is everything Open needs from disk.
type loadedState struct {
	last    int64
	known   []string
	rooms   map[string]*roomDisk
	cursors map[string]map[string]uint64 // dest -> room -> acked own seq
}

// openStore opens (or creates) the log in dir/log and rebuilds the index.
// The log belongs to the chat server named in its first record.
func openStore(dir, name string, noSync bool) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := migrateBolt(dir, name, noSync); err != nil {
		return nil, err
	}
	st := &store{
		self: name, rooms: map[string]*roomLog{}, dedupe: newDedupeIndex(),
		cursors: map[string]map[string]uint64{},
	}
	path := filepath.Join(dir, logDir)
	owner := ""
	opts := seglog.Options{NoSync: noSync, Fault: st.writeFault}
	lg, err := seglog.Open(path, opts, func(p seglog.Pos, b []byte) error {
		if owner == "" {
			if b[0] != recName {
				return fmt.Errorf("%s does not start with the server's name: %w", path, errBadRecord)
			}
			r := &recReader{b: b[1:]}
			owner = r.str()
			return r.end()
		}
		if err := st.index(p, b); err != nil {
			return fmt.Errorf("%s: record at %d/%d: %w", path, p.Seg, p.Off, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st.log = lg
	switch owner {
	case name:
	case "":
		if _, err := lg.Append([][]byte{encodeName(name)}); err != nil {
			lg.Close()
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
	default:
		lg.Close()
		return nil, fmt.Errorf("%s belongs to chat server %q, not %q", path, owner, name)
	}
	return st, nil
}

// tornBytes returns how many bytes of a torn last write opening cut off
// the log (0 if none), for the server to log.
func (st *store) tornBytes() int64 { return st.log.TornBytes() }

func (st *store) writeFault() error {
	if st.fault != nil {
		return st.fault()
	}
	return nil
}

func (st *store) close() error { return st.log.Close() }

// index adds one record read from the log to the index. Callers hold
// st.mu, or own st alone (openStore).
func (st *store) index(p seglog.Pos, b []byte) error {
	switch b[0] {
	case recMessage:
		m, err := decodeMessage(b)
		if err != nil {
			return err
		}
		st.addLocked(m, p)
		return nil
	case recCursors:
		return decodeCursors(b, st.cursors)
	case recLast:
		r := &recReader{b: b[1:]}
		st.last = max(st.last, r.varint())
		return r.end()
	case recKnown:
		known, err := decodeKnown(b)
		st.known = known
		return err
	case recProbe:
		return nil
	}
	return fmt.Errorf("kind %q: %w", b[0], errBadRecord)
}

// roomLocked returns the index of room, creating it. Callers hold st.mu.
func (st *store) roomLocked(room string) *roomLog {
	r := st.rooms[room]
	if r == nil {
		// The index keeps its own copy of the name: a decoded message's
		// strings share one allocation with the rest of its record.
		r = &roomLog{name: strings.Clone(room), origins: map[string]*originLog{}}
		st.rooms[r.name] = r
	}
	return r
}

// addLocked indexes a stored message and returns its origin's contiguous
// head and whether the message moved it, with the index's own copies of
// the room's and the origin's names. Callers hold st.mu.
func (st *store) addLocked(m chatapi.Message, p seglog.Pos) (room, origin string, head uint64, moved bool) {
	r := st.roomLocked(m.Room)
	o := r.origins[m.Stamp.Server]
	if o == nil {
		o = &originLog{name: strings.Clone(m.Stamp.Server)}
		r.origins[o.name] = o
	}
	e := logEntry{time: m.Stamp.Time, seq: m.Stamp.Seq, pos: p}
	// Almost always an append: an origin stamps and sends its messages in
	// order. (The room's order by stamp is not kept as well: messages of
	// other origins arrive late, each of them inserted behind all that
	// came meanwhile, and at C=20 with 64 posts in flight those moves
	// were 9% of the servers' CPU.)
	i := sort.Search(len(o.entries), func(i int) bool { return o.entries[i].seq >= m.Stamp.Seq })
	o.entries = slices.Insert(o.entries, i, e)
	delete(r.pending, m.Stamp)
	for o.head < uint64(len(o.entries)) && o.entries[o.head].seq == o.head+1 {
		o.head++
		moved = true
	}
	if m.Stamp.Server == st.self {
		st.dedupe.add(postKey{m.From, m.ID}, p)
	}
	return r.name, o.name, o.head, moved
}

// hasLocked reports whether the message with stamp s is stored in room.
// Callers hold st.mu.
func (st *store) hasLocked(room string, s chatapi.Stamp) bool {
	r := st.rooms[room]
	if r == nil {
		return false
	}
	o := r.origins[s.Server]
	if o == nil {
		return false
	}
	if s.Seq <= o.head {
		return true
	}
	i := sort.Search(len(o.entries), func(i int) bool { return o.entries[i].seq >= s.Seq })
	return i < len(o.entries) && o.entries[i].seq == s.Seq
}

// load reads the counters the server keeps in memory.
func (st *store) load(self string) (*loadedState, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	ls := &loadedState{
		last: st.last, known: slices.Clone(st.known), rooms: map[string]*roomDisk{},
		cursors: map[string]map[string]uint64{},
	}
	for name, r := range st.rooms {
		rd := &roomDisk{heads: map[string]uint64{}}
		for origin, o := range r.origins {
			if o.head > 0 {
				rd.heads[origin] = o.head
			}
		}
		// Own seqs are stamped and committed in order, so they are
		// contiguous and our own head is our counter.
		rd.ownSeq = rd.heads[self]
		ls.rooms[name] = rd
	}
	for dest, rooms := range st.cursors {
		ls.cursors[dest] = maps.Clone(rooms)
	}
	return ls, nil
}

// roomStamp names a message: its room and stamp.
type roomStamp struct {
	room  string
	stamp chatapi.Stamp
}

// writeBatch is one group commit.
type writeBatch struct {
	msgs    []chatapi.Message // to store (duplicates by room/origin/seq are skipped)
	cursors map[string]map[string]uint64
	last    int64
	// isNew[i] reports whether msgs[i] was stored (not a duplicate); set by commit.
	isNew []bool
	// heads are the rooms' contiguous heads after the commit, for rooms
	// and origins whose head moved; set by commit.
	heads map[string]map[string]uint64
	// known, if not nil, replaces the list of known chat servers.
	known []string
}

// probe tells whether writes work (again): it appends a probe record of
// probeSize bytes.
func (st *store) probe() error {
	_, err := st.log.Append([][]byte{encodeProbe()})
	return err
}

// commit writes b with one append (one fdatasync) and then indexes it.
// Only one commit runs at a time (the committer's leader), so what it
// finds stored before the append is still all that is stored after it.
func (st *store) commit(b *writeBatch) error {
	b.isNew = make([]bool, len(b.msgs))
	b.heads = map[string]map[string]uint64{}
	recs := make([][]byte, 0, len(b.msgs)+3)
	st.mu.RLock()
	var inBatch map[roomStamp]bool // made only for a batch of several messages
	if len(b.msgs) > 1 {
		inBatch = make(map[roomStamp]bool, len(b.msgs))
	}
	for i, m := range b.msgs {
		k := roomStamp{m.Room, m.Stamp}
		if st.hasLocked(m.Room, m.Stamp) || inBatch[k] {
			continue
		}
		if inBatch != nil {
			inBatch[k] = true
		}
		b.isNew[i] = true
		recs = append(recs, encodeMessage(m))
	}
	writeLast := b.last > st.last
	st.mu.RUnlock()
	if len(b.cursors) > 0 {
		recs = append(recs, encodeCursors(b.cursors))
	}
	if b.known != nil {
		recs = append(recs, encodeKnown(b.known))
	}
	if writeLast {
		recs = append(recs, encodeLast(b.last))
	}
	pos, err := st.log.Append(recs)
	if err != nil {
		return err
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	k := 0
	for i, m := range b.msgs {
		if !b.isNew[i] {
			continue
		}
		if room, origin, head, moved := st.addLocked(m, pos[k]); moved {
			if b.heads[room] == nil {
				b.heads[room] = map[string]uint64{}
			}
			b.heads[room][origin] = head
		}
		k++
	}
	for dest, rooms := range b.cursors {
		if st.cursors[dest] == nil {
			st.cursors[dest] = map[string]uint64{}
		}
		maps.Copy(st.cursors[dest], rooms)
	}
	if b.known != nil {
		st.known = slices.Clone(b.known)
	}
	st.last = max(st.last, b.last)
	return nil
}

// accept marks which of msgs, from another server, are neither stored nor
// pending, and makes them pending, so that the caller hands each to local
// delivery once, before it is stored (storeForeign). Pending messages are
// read like stored ones, but nothing is written: the commit that follows
// decides what to write, by what is stored then.
func (st *store) accept(msgs []chatapi.Message) []bool {
	fresh := make([]bool, len(msgs))
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, m := range msgs {
		if st.hasLocked(m.Room, m.Stamp) {
			continue
		}
		r := st.roomLocked(m.Room)
		if _, ok := r.pending[m.Stamp]; ok {
			continue
		}
		if r.pending == nil {
			r.pending = map[chatapi.Stamp]chatapi.Message{}
		}
		r.pending[m.Stamp] = m
		fresh[i] = true
	}
	return fresh
}

// read reads the messages at ps from the log.
func (st *store) read(room string, ps []seglog.Pos) ([]chatapi.Message, error) {
	out := make([]chatapi.Message, 0, len(ps))
	err := st.log.ReadMany(ps, func(b []byte) error {
		m, err := decodeMessage(b)
		out = append(out, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("room %q: corrupt message: %w", room, err)
	}
	return out, nil
}

// scan returns up to limit messages of room in stamp order whose seq is
// above have[origin] for their origin, and whether more remain. Pending
// messages (accept) are among them.
func (st *store) scan(room string, have map[string]uint64, limit int) ([]chatapi.Message, bool, error) {
	var ps []seglog.Pos
	var pending []chatapi.Message
	more := false
	st.mu.RLock()
	if r := st.rooms[room]; r != nil {
		// Each origin's messages above have[origin], in seq order and so
		// in stamp order; merged by stamp (origins are few) up to limit.
		type cursor struct {
			origin string
			es     []logEntry
		}
		next := make([]cursor, 0, len(r.origins))
		for origin, o := range r.origins {
			i := sort.Search(len(o.entries), func(i int) bool { return o.entries[i].seq > have[origin] })
			if i < len(o.entries) {
				next = append(next, cursor{o.name, o.entries[i:]})
			}
		}
		for len(next) > 0 {
			// The origin whose next message has the smallest stamp: by
			// time, then by origin (Stamp.Compare; two origins' stamps
			// never tie on both).
			k := 0
			for j := 1; j < len(next); j++ {
				a, b := &next[j], &next[k]
				if a.es[0].time < b.es[0].time || a.es[0].time == b.es[0].time && a.origin < b.origin {
					k = j
				}
			}
			if len(ps) == limit {
				more = true
				break
			}
			ps = append(ps, next[k].es[0].pos)
			if next[k].es = next[k].es[1:]; len(next[k].es) == 0 {
				next = slices.Delete(next, k, k+1)
			}
		}
		for s, m := range r.pending {
			if s.Seq > have[s.Server] {
				pending = append(pending, m)
			}
		}
	}
	st.mu.RUnlock()
	out, err := st.read(room, ps)
	if err != nil || len(pending) == 0 {
		return out, more, err
	}
	// The stored messages read are the first limit of their kind, so the
	// first limit of them and the pending ones together are the answer.
	out = append(out, pending...)
	slices.SortFunc(out, func(a, b chatapi.Message) int { return a.Stamp.Compare(b.Stamp) })
	if len(out) > limit {
		out, more = out[:limit], true
	}
	return out, more, nil
}

// ownRange returns this server's own messages of room with seq in
// (from, to], at most limit of them, in seq order.
func (st *store) ownRange(room, self string, from, to uint64, limit int) ([]chatapi.Message, error) {
	var ps []seglog.Pos
	st.mu.RLock()
	if r := st.rooms[room]; r != nil && r.origins[self] != nil {
		es := r.origins[self].entries
		i := sort.Search(len(es), func(i int) bool { return es[i].seq > from })
		for ; i < len(es) && es[i].seq <= to && len(ps) < limit; i++ {
			ps = append(ps, es[i].pos)
		}
	}
	st.mu.RUnlock()
	return st.read(room, ps)
}
