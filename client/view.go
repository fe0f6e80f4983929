package client

import (
	"sort"
	"sync"

	"github.com/distchat/distchat/server/chatapi"
)

// InsertResult says what [View.Insert] did with a message.
type InsertResult int

// The outcomes of [View.Insert].
const (
	// Duplicate: a message with the same (Stamp.Server, Stamp.Seq) was
	// already present; nothing changed.
	Duplicate InsertResult = iota
	// Added: the message is new and now shown in the log.
	Added
	// Collapsed: the message is new (it counts for [View.Have]) but another
	// copy of the same post (same From and ID) is shown at a smaller stamp,
	// so this one is not shown.
	Collapsed
	// Replaced: the message is a copy of a post (same From and ID) already
	// shown at a larger stamp; the post now shows at this smaller stamp.
	Replaced
)

// String names the result.
func (r InsertResult) String() string {
	switch r {
	case Duplicate:
		return "duplicate"
	case Added:
		return "added"
	case Collapsed:
		return "collapsed"
	case Replaced:
		return "replaced"
	}
	return "unknown"
}

// ViewStats counts what happened to the messages offered to a [View].
type ViewStats struct {
	// Added counts messages that became visible as a new post.
	Added int
	// Reordered counts insertions (of a new post, or of a smaller copy of a
	// shown post) placed above a message already present in the log: late
	// arrivals, put in their place by stamp.
	Reordered int
	// Duplicates counts messages dropped because their (Server, Seq) was
	// already present.
	Duplicates int
	// Collapsed counts extra copies of one post (same From and ID, another
	// stamp), stored for Have but shown once.
	Collapsed int
	// Settles counts settled notices that moved the settled point.
	Settles int
	// SettledViolations counts messages that arrived at or below the
	// settled point: a settled prefix changed (it never should).
	SettledViolations int
}

// SettledViolation is a message that arrived inside the settled prefix.
type SettledViolation struct {
	Message chatapi.Message
	Settled int64 // the settled point (stamp time) it arrived under
}

// View is one room's log as a client shows it: the messages sorted by
// stamp ([server.Stamp.Compare]), with late arrivals inserted in their
// place, so that every client holding the same set of messages shows the
// same log whatever order they arrived in.
//
// Two rules make that so. Messages with the same (Stamp.Server, Stamp.Seq)
// are one message: the second is dropped. And a post retried on another
// server can, rarely, be stamped twice (its first server died after
// storing it): two messages with the same (From, ID) are shown once, at the
// smaller stamp. Both copies still count as present for [View.Have].
//
// A View is safe for concurrent use.
type View struct {
	room string

	mu      sync.Mutex
	log     []chatapi.Message // visible messages, sorted by stamp
	origins map[string]*originState
	shown   map[postKey]chatapi.Stamp // stamp at which each post is shown
	max     chatapi.Stamp             // largest stamp present (shown or not)
	stats   ViewStats
	// settled is the stamp time at or below which the room is settled:
	// no message at or below it can still arrive (0: nothing settled).
	settled        int64
	firstViolation *SettledViolation
}

// originState tracks which sequence numbers of one origin server are present.
type originState struct {
	head  uint64              // 1..head are all present
	above map[uint64]struct{} // present sequence numbers above head+1
}

// postKey identifies a post across retries: its author and client-chosen id.
type postKey struct{ from, id string }

// NewView returns an empty view of room.
func NewView(room string) *View {
	return &View{
		room:    room,
		origins: map[string]*originState{},
		shown:   map[postKey]chatapi.Stamp{},
	}
}

// Room returns the name of the view's room.
func (v *View) Room() string { return v.room }

// Insert adds m to the view, keeping the log sorted, and reports what it
// did. A message whose Room is empty is taken to belong to the view's room.
func (v *View) Insert(m chatapi.Message) InsertResult {
	if m.Room == "" {
		m.Room = v.room
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.markPresent(m.Stamp) {
		v.stats.Duplicates++
		return Duplicate
	}
	if v.max.Less(m.Stamp) {
		v.max = m.Stamp
	}
	if v.settled != 0 && m.Stamp.Time <= v.settled {
		// The server said nothing at or below the settled point could
		// still come: a settled prefix just changed.
		v.stats.SettledViolations++
		if v.firstViolation == nil {
			fv := SettledViolation{Message: m, Settled: v.settled}
			v.firstViolation = &fv
		}
	}
	key := postKey{m.From, m.ID}
	if m.ID == "" {
		// No id to match retries by: always its own post.
		v.place(m)
		v.stats.Added++
		return Added
	}
	old, ok := v.shown[key]
	switch {
	case !ok:
		v.shown[key] = m.Stamp
		v.place(m)
		v.stats.Added++
		return Added
	case old.Less(m.Stamp):
		v.stats.Collapsed++
		return Collapsed
	default:
		v.remove(old)
		v.shown[key] = m.Stamp
		v.place(m)
		v.stats.Collapsed++
		return Replaced
	}
}

// markPresent records that stamp's (Server, Seq) is present and reports
// whether it was new.
func (v *View) markPresent(s chatapi.Stamp) bool {
	o := v.origins[s.Server]
	if o == nil {
		o = &originState{above: map[uint64]struct{}{}}
		v.origins[s.Server] = o
	}
	if s.Seq <= o.head {
		return false
	}
	if _, ok := o.above[s.Seq]; ok {
		return false
	}
	if s.Seq != o.head+1 {
		o.above[s.Seq] = struct{}{}
		return true
	}
	o.head++
	for {
		if _, ok := o.above[o.head+1]; !ok {
			break
		}
		delete(o.above, o.head+1)
		o.head++
	}
	return true
}

// place inserts m into the sorted log.
func (v *View) place(m chatapi.Message) {
	i := sort.Search(len(v.log), func(i int) bool { return m.Stamp.Less(v.log[i].Stamp) })
	if i < len(v.log) {
		v.stats.Reordered++
	}
	v.log = append(v.log, chatapi.Message{})
	copy(v.log[i+1:], v.log[i:])
	v.log[i] = m
}

// remove deletes the visible message with stamp s.
func (v *View) remove(s chatapi.Stamp) {
	i := sort.Search(len(v.log), func(i int) bool { return s.Compare(v.log[i].Stamp) <= 0 })
	if i < len(v.log) && v.log[i].Stamp == s {
		v.log = append(v.log[:i], v.log[i+1:]...)
	}
}

// Messages returns a copy of the visible log in stamp order.
func (v *View) Messages() []chatapi.Message {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]chatapi.Message, len(v.log))
	copy(out, v.log)
	return out
}

// Settle records that the room is settled up to stamp time t (a point
// only moves forward).
func (v *View) Settle(t int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t > v.settled {
		v.settled = t
		v.stats.Settles++
	}
}

// Settled returns the stamp time up to which the room is settled (0 if
// nothing is): the messages of the log with a stamp time at or below it
// are final, in their final order.
func (v *View) Settled() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.settled
}

// FirstSettledViolation returns the first message that arrived inside the
// settled prefix, if any did.
func (v *View) FirstSettledViolation() (SettledViolation, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.firstViolation == nil {
		return SettledViolation{}, false
	}
	return *v.firstViolation, true
}

// Last returns the visible message with the largest stamp, if any.
func (v *View) Last() (chatapi.Message, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.log) == 0 {
		return chatapi.Message{}, false
	}
	return v.log[len(v.log)-1], true
}

// Len returns the number of visible messages.
func (v *View) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.log)
}

// Have returns, for each origin server with a message in the view, the
// highest n such that that origin's messages 1..n are all present: what
// [server.SyncArgs].Have wants. Origins with no contiguous prefix (message
// 1 missing) are left out.
func (v *View) Have() map[string]uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	have := make(map[string]uint64, len(v.origins))
	for name, o := range v.origins {
		if o.head > 0 {
			have[name] = o.head
		}
	}
	return have
}

// Head returns Have()[origin] without copying the map.
func (v *View) Head(origin string) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if o := v.origins[origin]; o != nil {
		return o.head
	}
	return 0
}

// Gaps reports whether some origin has a message present above a missing
// one: a hole that a Sync should fill.
func (v *View) Gaps() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, o := range v.origins {
		if len(o.above) > 0 {
			return true
		}
	}
	return false
}

// Max returns the largest stamp present in the view (shown or collapsed),
// or the zero stamp if it is empty.
func (v *View) Max() chatapi.Stamp {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.max
}

// Stats returns the view's insertion counters.
func (v *View) Stats() ViewStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stats
}

// Reorders returns how many times a message was inserted above one already
// present (Stats().Reordered).
func (v *View) Reorders() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stats.Reordered
}
