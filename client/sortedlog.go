package client

import (
	"fmt"
	"iter"
	"math"
	"sort"
	"strings"
	"unsafe"

	"github.com/distchat/distchat/server/chatapi"
)

// defaultChunk is how many messages a sortedLog chunk holds at most: 256
// messages of ~100 bytes, about 24 KB.
const defaultChunk = 256

// sortedLog is a view's visible messages sorted by stamp, kept in chunks
// of at most chunk messages rather than one slice. A late arrival shifts
// the rest of its chunk only, and a long history grows a chunk at a time
// instead of being copied into a slice twice its size: in a fan-out run
// (20 members, 30,000 messages each) the one-slice log spent more CPU in
// those copies and in faulting in their fresh pages than in everything
// else the view does.
//
// Every chunk holds at least one message (an emptied chunk is dropped);
// chunks are in stamp order and so are the messages within each. A
// message is kept as an entry, and read back as a chatapi.Message.
type sortedLog struct {
	chunk  int       // most messages in one chunk
	chunks [][]entry // in stamp order
	n      int       // messages in all
	names  nameTable // the rooms, senders and origin servers of the entries
	texts  textArena // the entries' IDs and texts
	// The number of the last entry's room, which every entry of a view's
	// log shares: one comparison instead of a map lookup.
	lastRoom  string // a string of names.list
	lastRoomN uint32
	hasRoom   bool
}

// entry is one message of a sortedLog in 48 bytes, where a
// chatapi.Message takes 96: its ID and text are one run of bytes in the
// log's textArena, and its room, sender and origin server, which repeat
// through a room's history, are numbers in the log's table of names. It
// holds no pointer where a Message holds five, so the chunks of entries
// are nothing for the garbage collector to trace. A client keeps every
// message of the rooms it shows, so this is most of its memory: in the
// load process of distchat bench, where 100 clients keep theirs, faulting
// in the fresh pages of a growing heap was a fifth of the CPU.
type entry struct {
	time   int64
	seq    uint64
	blk    uint32 // the ID, then the text: n bytes at off in block blk of the textArena
	off    uint32
	n      uint32
	idLen  uint32
	room   uint32 // numbers in sortedLog.names
	from   uint32
	origin uint32
}

// Text blocks: the first of a log holds minTextBlock bytes, each next one
// twice the last, up to maxTextBlock (a larger text gets a block of its
// size), so that a room of few messages keeps little.
const (
	minTextBlock = 1 << 10
	maxTextBlock = 64 << 10
)

// textArena holds the IDs and texts of a log's messages, appended to
// blocks whose bytes are never written again. An entry's ID and text are
// a place in it, so entries hold no pointer and each message costs no
// allocation of its own. A message read back is a string over the block's
// bytes, not a copy (it keeps the block alive, as the log does). The
// bytes of a removed message stay in their block.
type textArena struct {
	blocks [][]byte
}

// add copies a then b into the arena and returns where they start.
func (t *textArena) add(a, b string) (blk, off uint32) {
	n := len(a) + len(b)
	if uint64(n) > math.MaxUint32 {
		// An entry counts its bytes in 32 bits; servers refuse texts
		// over 16 KiB (chatapi.MaxText) long before this.
		panic(fmt.Sprintf("client: a message of %d bytes", n))
	}
	last := len(t.blocks) - 1
	if last < 0 || len(t.blocks[last])+n > cap(t.blocks[last]) {
		size := minTextBlock
		if last >= 0 {
			size = min(2*cap(t.blocks[last]), maxTextBlock)
		}
		t.blocks = append(t.blocks, make([]byte, 0, max(size, n)))
		last++
	}
	b0 := t.blocks[last]
	off = uint32(len(b0))
	t.blocks[last] = append(append(b0, a...), b...)
	return uint32(last), off
}

// body returns e's ID and text, one string.
func (t *textArena) body(e *entry) string {
	if e.n == 0 {
		return ""
	}
	return unsafe.String(&t.blocks[e.blk][e.off], e.n)
}

// nameTable numbers the names a log's entries refer to, one copy each.
type nameTable struct {
	list   []string
	number map[string]uint32
}

// of returns the number of name, adding it if it is new.
func (t *nameTable) of(name string) uint32 {
	if n, ok := t.number[name]; ok {
		return n
	}
	if t.number == nil {
		t.number = map[string]uint32{}
	}
	// A copy: name is likely part of a decoded message's one string
	// (chatapi's decoder), which it would otherwise keep alive whole.
	name = strings.Clone(name)
	n := uint32(len(t.list))
	t.list = append(t.list, name)
	t.number[name] = n
	return n
}

// newSortedLog returns an empty log of chunks of at most chunk messages
// (at least 2, so that a full chunk can be split in two).
func newSortedLog(chunk int) sortedLog { return sortedLog{chunk: max(chunk, 2)} }

// Len returns how many messages the log holds.
func (l *sortedLog) Len() int { return l.n }

// entry returns m as an entry of l.
func (l *sortedLog) entry(m chatapi.Message) entry {
	blk, off := l.texts.add(m.ID, m.Text)
	return entry{
		time: m.Stamp.Time, seq: m.Stamp.Seq, blk: blk, off: off, n: uint32(len(m.ID) + len(m.Text)), idLen: uint32(len(m.ID)),
		room: l.roomNumber(m.Room), from: l.names.of(m.From), origin: l.names.of(m.Stamp.Server),
	}
}

// roomNumber is names.of(room), remembering the last room.
func (l *sortedLog) roomNumber(room string) uint32 {
	if !l.hasRoom || room != l.lastRoom {
		n := l.names.of(room)
		l.lastRoom, l.lastRoomN, l.hasRoom = l.names.list[n], n, true
	}
	return l.lastRoomN
}

// stamp returns e's stamp.
func (l *sortedLog) stamp(e *entry) chatapi.Stamp {
	return chatapi.Stamp{Time: e.time, Server: l.names.list[e.origin], Seq: e.seq}
}

// message returns e as the message it was made from.
func (l *sortedLog) message(e *entry) chatapi.Message {
	body := l.texts.body(e)
	return chatapi.Message{
		Room: l.names.list[e.room], ID: body[:e.idLen], From: l.names.list[e.from], Text: body[e.idLen:],
		Stamp: l.stamp(e),
	}
}

// insert places m after every message whose stamp is not above its own,
// and returns its entry and whether it went above one already present (a
// late arrival).
func (l *sortedLog) insert(m chatapi.Message) (e entry, late bool) {
	// The first chunk whose last message sorts after m is where m goes.
	ci := sort.Search(len(l.chunks), func(i int) bool {
		c := l.chunks[i]
		return m.Stamp.Less(l.stamp(&c[len(c)-1]))
	})
	e = l.entry(m)
	if ci == len(l.chunks) {
		// After everything: onto the last chunk, or a new one if it is full.
		if ci == 0 || len(l.chunks[ci-1]) >= l.chunk {
			c := make([]entry, 1, l.chunk)
			c[0] = e
			l.chunks = append(l.chunks, c)
		} else {
			l.chunks[ci-1] = append(l.chunks[ci-1], e)
		}
		l.n++
		return e, false
	}
	c := l.chunks[ci]
	i := sort.Search(len(c), func(i int) bool { return m.Stamp.Less(l.stamp(&c[i])) })
	if len(c) >= l.chunk {
		// Split where m goes if that is in the chunk's back half (a late
		// arrival usually is: it is late by a few messages), so that the
		// front stays nearly full; else in the middle. Either way m then
		// goes into the front part.
		l.split(ci, max(len(c)/2, i))
		c = l.chunks[ci]
	}
	c = append(c, entry{})
	copy(c[i+1:], c[i:])
	c[i] = e
	l.chunks[ci] = c
	l.n++
	return e, true
}

// split moves the messages of chunk ci from index at (0 < at < its
// length) into a new chunk after it. The new chunk gets room to fill up
// if it is the last one, where appends go; else only what it holds, and
// grows if a late arrival lands in it.
func (l *sortedLog) split(ci, at int) {
	c := l.chunks[ci]
	room := len(c) - at
	if ci == len(l.chunks)-1 {
		room = l.chunk
	}
	back := make([]entry, len(c)-at, room)
	copy(back, c[at:])
	l.chunks[ci] = c[:at]
	l.chunks = append(l.chunks, nil)
	copy(l.chunks[ci+2:], l.chunks[ci+1:])
	l.chunks[ci+1] = back
}

// pos is a position in the log: chunk ci, message i of it.
type pos struct{ ci, i int }

// search returns the position of the first message for which after
// holds (after must be false, then true, along the log), or the end.
func (l *sortedLog) search(after func(chatapi.Stamp) bool) pos {
	ci := sort.Search(len(l.chunks), func(i int) bool {
		c := l.chunks[i]
		return after(l.stamp(&c[len(c)-1]))
	})
	if ci == len(l.chunks) {
		return pos{ci, 0}
	}
	c := l.chunks[ci]
	return pos{ci, sort.Search(len(c), func(i int) bool { return after(l.stamp(&c[i])) })}
}

// end returns the position just past the last message.
func (l *sortedLog) end() pos { return pos{len(l.chunks), 0} }

// at returns the message at p and whether p is inside the log.
func (l *sortedLog) at(p pos) (chatapi.Message, bool) {
	if p.ci >= len(l.chunks) {
		return chatapi.Message{}, false
	}
	return l.message(&l.chunks[p.ci][p.i]), true
}

// locate returns the position of the message stamped s and the message,
// if it is present.
func (l *sortedLog) locate(s chatapi.Stamp) (pos, chatapi.Message, bool) {
	p := l.search(func(t chatapi.Stamp) bool { return s.Compare(t) <= 0 })
	m, ok := l.at(p)
	return p, m, ok && m.Stamp == s
}

// find returns the message stamped s, if present.
func (l *sortedLog) find(s chatapi.Stamp) (chatapi.Message, bool) {
	_, m, ok := l.locate(s)
	return m, ok
}

// findPost returns the stamp of the message posted by from with id, if
// the log holds one, searching from the newest message back.
func (l *sortedLog) findPost(from, id string) (chatapi.Stamp, bool) {
	f, ok := l.names.number[from]
	if !ok {
		return chatapi.Stamp{}, false
	}
	for ci := len(l.chunks) - 1; ci >= 0; ci-- {
		c := l.chunks[ci]
		for i := len(c) - 1; i >= 0; i-- {
			if e := &c[i]; e.from == f && int(e.idLen) == len(id) && l.texts.body(e)[:e.idLen] == id {
				return l.stamp(e), true
			}
		}
	}
	return chatapi.Stamp{}, false
}

// remove deletes the message stamped s, if present.
func (l *sortedLog) remove(s chatapi.Stamp) {
	p, _, ok := l.locate(s)
	if !ok {
		return
	}
	c := l.chunks[p.ci]
	copy(c[p.i:], c[p.i+1:])
	l.chunks[p.ci] = c[:len(c)-1]
	if len(c) == 1 {
		l.chunks = append(l.chunks[:p.ci], l.chunks[p.ci+1:]...)
	}
	l.n--
}

// before returns copies of up to n messages just before p, in order.
func (l *sortedLog) before(p pos, n int) []chatapi.Message {
	var parts [][]entry
	got := 0
	for ci := p.ci; got < n && ci >= 0; ci-- {
		var c []entry
		switch {
		case ci == len(l.chunks):
			continue
		case ci == p.ci:
			c = l.chunks[ci][:p.i]
		default:
			c = l.chunks[ci]
		}
		if take := min(len(c), n-got); take > 0 {
			parts = append(parts, c[len(c)-take:])
			got += take
		}
	}
	out := make([]chatapi.Message, 0, got)
	for k := len(parts) - 1; k >= 0; k-- {
		out = l.appendMessages(out, parts[k])
	}
	return out
}

// appendMessages appends the messages of es to out.
func (l *sortedLog) appendMessages(out []chatapi.Message, es []entry) []chatapi.Message {
	for i := range es {
		out = append(out, l.message(&es[i]))
	}
	return out
}

// all returns a copy of the whole log in order.
func (l *sortedLog) all() []chatapi.Message {
	out := make([]chatapi.Message, 0, l.n)
	for _, c := range l.chunks {
		out = l.appendMessages(out, c)
	}
	return out
}

// each returns the messages in stamp order, built one at a time from the
// entries: nothing is copied but the message being yielded.
func (l *sortedLog) each() iter.Seq[chatapi.Message] {
	return func(yield func(chatapi.Message) bool) {
		for _, c := range l.chunks {
			for i := range c {
				if !yield(l.message(&c[i])) {
					return
				}
			}
		}
	}
}

// last returns the message with the largest stamp, if any.
func (l *sortedLog) last() (chatapi.Message, bool) {
	if len(l.chunks) == 0 {
		return chatapi.Message{}, false
	}
	c := l.chunks[len(l.chunks)-1]
	return l.message(&c[len(c)-1]), true
}
