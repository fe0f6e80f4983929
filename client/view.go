package client

import (
	"iter"
	"maps"
	"slices"
	"strings"

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
// stamp ([chatapi.Stamp.Compare]), with late arrivals inserted in their
// place, so that every client holding the same set of messages shows the
// same log whatever order they arrived in.
//
// Two rules make that so. Messages with the same (Stamp.Server, Stamp.Seq)
// are one message: the second is dropped. And a post retried on another
// server can, rarely, be stamped twice (its first server died after
// storing it): two messages with the same (From, ID) are shown once, at the
// smaller stamp. Both copies still count as present for [View.Have].
//
// A View is a plain value with no lock, no I/O and no clock: a [Client]
// guards its views with its own lock. It is not safe for concurrent use.
type View struct {
	room    string
	log     sortedLog // visible messages, sorted by stamp
	origins map[string]*originState
	shown   postIndex     // which posts the log may show (by key hash)
	max     chatapi.Stamp // largest stamp present (shown or not)
	stats   ViewStats
	// settled is the stamp time at or below which the room is settled:
	// no message at or below it can still arrive (0: nothing settled).
	settled        int64
	firstViolation *SettledViolation
}

// originState tracks which sequence numbers of one origin server are present.
type originState struct {
	name  string              // the origin server, a string of the view's own
	head  uint64              // 1..head are all present
	above map[uint64]struct{} // present sequence numbers above head+1
}

// NewView returns an empty view of room.
func NewView(room string) *View {
	return &View{
		room:    room,
		log:     newSortedLog(defaultChunk),
		origins: map[string]*originState{},
		shown:   newPostIndex(),
	}
}

// Room returns the name of the view's room.
func (v *View) Room() string { return v.room }

// Insert adds m to the view, keeping the log sorted, and reports what it
// did. A message whose Room is empty is taken to belong to the view's room.
//
// The view keeps none of m's strings: m may borrow the bytes of a
// request (chatapi.DeliverArgs.UnmarshalMsgBorrowed).
func (v *View) Insert(m chatapi.Message) InsertResult {
	r, _ := v.insert(m)
	return r
}

// insert is Insert, also returning, when m is Added, the message as the
// view now holds it: its strings are the view's own, not m's.
func (v *View) insert(m chatapi.Message) (InsertResult, chatapi.Message) {
	if m.Room == "" {
		m.Room = v.room
	}
	o, fresh := v.markPresent(m.Stamp)
	if !fresh {
		v.stats.Duplicates++
		return Duplicate, chatapi.Message{}
	}
	if v.max.Less(m.Stamp) {
		v.max = chatapi.Stamp{Time: m.Stamp.Time, Server: o.name, Seq: m.Stamp.Seq}
	}
	if v.settled != 0 && m.Stamp.Time <= v.settled {
		// The server said nothing at or below the settled point could
		// still come: a settled prefix just changed.
		v.stats.SettledViolations++
		if v.firstViolation == nil {
			fv := SettledViolation{Message: cloneMessage(m), Settled: v.settled}
			v.firstViolation = &fv
		}
	}
	key := postKey{m.From, m.ID}
	if m.ID == "" {
		// No id to match retries by: always its own post.
		v.stats.Added++
		return Added, v.place(m)
	}
	if v.shown.addNew(v.shown.hash(key)) {
		// No post with its key's hash: surely a new post.
		v.stats.Added++
		return Added, v.place(m)
	}
	old, ok := v.shown.shownAt(key, &v.log)
	switch {
	case !ok:
		v.stats.Added++
		return Added, v.place(m)
	case old.Less(m.Stamp):
		v.stats.Collapsed++
		return Collapsed, chatapi.Message{}
	default:
		v.remove(old)
		v.place(m)
		v.stats.Collapsed++
		return Replaced, chatapi.Message{}
	}
}

// cloneMessage returns m with strings of its own.
func cloneMessage(m chatapi.Message) chatapi.Message {
	m.Room, m.ID, m.From, m.Text = strings.Clone(m.Room), strings.Clone(m.ID), strings.Clone(m.From), strings.Clone(m.Text)
	m.Stamp.Server = strings.Clone(m.Stamp.Server)
	return m
}

// markPresent records that stamp's (Server, Seq) is present and reports
// whether it was new, with the state of its origin.
func (v *View) markPresent(s chatapi.Stamp) (*originState, bool) {
	o := v.origins[s.Server]
	if o == nil {
		name := strings.Clone(s.Server) // not the decoded message's string
		o = &originState{name: name, above: map[uint64]struct{}{}}
		v.origins[name] = o
	}
	if s.Seq <= o.head {
		return o, false
	}
	if _, ok := o.above[s.Seq]; ok {
		return o, false
	}
	if s.Seq != o.head+1 {
		o.above[s.Seq] = struct{}{}
		return o, true
	}
	o.head++
	for {
		if _, ok := o.above[o.head+1]; !ok {
			break
		}
		delete(o.above, o.head+1)
		o.head++
	}
	return o, true
}

// place inserts m into the sorted log and returns it as the log holds it.
func (v *View) place(m chatapi.Message) chatapi.Message {
	e, late := v.log.insert(m)
	if late {
		v.stats.Reordered++
	}
	return v.log.message(&e)
}

// remove deletes the visible message with stamp s.
func (v *View) remove(s chatapi.Stamp) { v.log.remove(s) }

// insertAll inserts msgs, taking an empty Room as the view's, and
// returns the messages newly shown (in order, for Config.OnMessage) and
// how many were new at all (shown or collapsed: not duplicates).
func (v *View) insertAll(msgs []chatapi.Message) (shown []chatapi.Message, fresh int) {
	for _, m := range msgs {
		if m.Room == "" {
			m.Room = v.room
		}
		switch v.Insert(m) {
		case Added:
			fresh++
			shown = append(shown, m)
		case Collapsed, Replaced:
			fresh++
		}
	}
	return shown, fresh
}

// Messages returns a copy of the visible log in stamp order.
func (v *View) Messages() []chatapi.Message { return v.log.all() }

// All yields the visible log in stamp order without copying it. The view
// must not change while the loop runs.
func (v *View) All() iter.Seq[chatapi.Message] { return v.log.each() }

// Page returns up to n visible messages that come just before stamp
// before in the log, in stamp order; a zero before means the newest n. It
// is how a view is shown a page at a time, newest page first.
func (v *View) Page(before chatapi.Stamp, n int) []chatapi.Message {
	end := v.log.end()
	if !before.IsZero() {
		end = v.log.search(func(t chatapi.Stamp) bool { return before.Compare(t) <= 0 })
	}
	return v.log.before(end, n)
}

// Next returns the visible message that comes right after stamp s in the
// log, if any: the one a message stamped s is shown before.
func (v *View) Next(s chatapi.Stamp) (chatapi.Message, bool) {
	return v.log.at(v.log.search(s.Less))
}

// Settle records that the room is settled up to stamp time t (a point
// only moves forward).
func (v *View) Settle(t int64) {
	if t > v.settled {
		v.settled = t
		v.stats.Settles++
	}
}

// Settled returns the stamp time up to which the room is settled (0 if
// nothing is): the messages of the log with a stamp time at or below it
// are final, in their final order.
func (v *View) Settled() int64 {
	return v.settled
}

// FirstSettledViolation returns the first message that arrived inside the
// settled prefix, if any did.
func (v *View) FirstSettledViolation() (SettledViolation, bool) {
	if v.firstViolation == nil {
		return SettledViolation{}, false
	}
	return *v.firstViolation, true
}

// Last returns the visible message with the largest stamp, if any.
func (v *View) Last() (chatapi.Message, bool) {
	return v.log.last()
}

// Len returns the number of visible messages.
func (v *View) Len() int {
	return v.log.Len()
}

// Have returns, for each origin server with a message in the view, the
// highest n such that that origin's messages 1..n are all present: what
// [chatapi.SyncArgs].Have wants. Origins with no contiguous prefix (message
// 1 missing) are left out.
func (v *View) Have() map[string]uint64 {
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
	if o := v.origins[origin]; o != nil {
		return o.head
	}
	return 0
}

// Gaps reports whether some origin has a message present above a missing
// one: a hole that a Sync should fill.
func (v *View) Gaps() bool {
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
	return v.max
}

// Stats returns the view's insertion counters.
func (v *View) Stats() ViewStats {
	return v.stats
}

// Reorders returns how many times a message was inserted above one already
// present (Stats().Reordered).
func (v *View) Reorders() int {
	return v.stats.Reordered
}

// roomSet is the client's rooms as it knows them: which ones the user is a
// member of, which ones it left in this session, the view of each, and
// which views still wait for a completed Sync. Like View it is a plain
// value with no lock, no I/O and no clock: the [Client] calls it under its
// lock and carries out what it returns (callbacks to make, syncs to
// schedule).
type roomSet struct {
	member   map[string]bool  // rooms the user is a member of
	left     map[string]bool  // rooms left in this session: late deliveries are dropped
	unsynced map[string]bool  // rooms whose catch-up Sync has not completed
	views    map[string]*View // kept after leaving (frozen), so a rejoin catches up from there
	// joining counts the JoinRooms under way, by room: each syncs the
	// room itself once joined, so a delivery does not ask for another.
	joining map[string]int
}

func newRoomSet() *roomSet {
	return &roomSet{
		member:   map[string]bool{},
		left:     map[string]bool{},
		unsynced: map[string]bool{},
		views:    map[string]*View{},
		joining:  map[string]int{},
	}
}

// names returns the rooms the user is a member of, sorted.
func (s *roomSet) names() []string { return slices.Sorted(maps.Keys(s.member)) }

// view returns room's view, creating it if needed.
func (s *roomSet) view(room string) *View {
	v := s.views[room]
	if v == nil {
		v = NewView(strings.Clone(room)) // room may borrow a request's bytes (deliver)
		s.views[v.room] = v
	}
	return v
}

// join records that the user is a member of room and returns its view.
func (s *roomSet) join(room string) *View {
	s.member[room] = true
	delete(s.left, room)
	return s.view(room)
}

// startJoin records that a JoinRoom of room is under way; endJoin, that
// it ended. Meanwhile a delivery that makes the user a member of room, or
// tells it it joined, does not ask for a full sync (deliver): JoinRoom
// makes one once the server has joined it, and a second one started at the
// same time would fetch the room's history again.
func (s *roomSet) startJoin(room string) { s.joining[room]++ }

// endJoin: see startJoin.
func (s *roomSet) endJoin(room string) {
	if s.joining[room]--; s.joining[room] <= 0 {
		delete(s.joining, room)
	}
}

// leave records that the user left room. Its view is kept, frozen: late
// deliveries are dropped, and rejoining catches up from where it stopped
// and reports no message twice.
func (s *roomSet) leave(room string) {
	delete(s.member, room)
	s.left[room] = true
}

// markUnsynced records that room must complete a Sync before settled
// notices count for it: until then older messages may still come.
func (s *roomSet) markUnsynced(room string) { s.unsynced[room] = true }

// markSynced records that a Sync of room has completed.
func (s *roomSet) markSynced(room string) { delete(s.unsynced, room) }

// markAllUnsynced marks every view unsynced: the client is attaching to a
// chat server, which may send settled notices before the rooms caught up.
func (s *roomSet) markAllUnsynced() {
	for room := range s.views {
		s.markUnsynced(room)
	}
}

// attached resets the membership to rooms, the rooms a chat server's
// Attach reported, each with a view and unsynced until caught up.
func (s *roomSet) attached(rooms []string) {
	s.member = map[string]bool{}
	for _, r := range rooms {
		s.join(r)
		s.markUnsynced(r)
	}
}

// seen returns the largest stamp in any view: what a post tells the
// server its author has seen.
func (s *roomSet) seen() chatapi.Stamp {
	var max chatapi.Stamp
	for _, v := range s.views {
		if m := v.Max(); max.Less(m) {
			max = m
		}
	}
	return max
}

// delivered is what the Client must carry out after [roomSet.deliver].
type delivered struct {
	shown []chatapi.Message // newly shown messages, in arrival order: for OnMessage
	full  []string          // rooms to sync in full, in this order (may repeat)
	gaps  []string          // rooms with a hole, to sync if it is still open later
	move  bool              // the server asked the client to move (EventMove): check it
}

// deliver applies a delivery from the chat server to user's rooms: it
// inserts the messages into their views (a message of a room unknown until
// now makes the user a member, since the server delivers only to members;
// one of a room left in this session is dropped), follows the events that
// concern the user, and applies the settled notices.
//
// A room seen for the first time, a room the user was told it joined and
// a room named by a resync event are synced in full (the first two unless
// a JoinRoom of the room is under way: see startJoin); a resync event
// without a room means every room. A room where a message arrived before
// an earlier one of the same origin has a hole, which a Sync fills if it
// stays open. A move event asks the client to check its server (which
// then fails it over).
//
// The strings of args.Messages may borrow a request's bytes
// (callbackObject.Deliver): it keeps none of them, and the messages it
// returns to show are the views' own.
func (s *roomSet) deliver(user string, args chatapi.DeliverArgs) delivered {
	var d delivered
	if len(args.Messages) > 0 {
		d.shown = make([]chatapi.Message, 0, len(args.Messages))
	}
	var v *View // the last message's room's: a batch is mostly of one room
	for _, m := range args.Messages {
		if m.Room == "" {
			continue
		}
		if v == nil || m.Room != v.room {
			if s.left[m.Room] {
				continue
			}
			v = s.view(m.Room)
			if !s.member[v.room] {
				s.member[v.room] = true
				if s.joining[v.room] == 0 {
					d.full = append(d.full, v.room)
				}
			}
		}
		if r, shown := v.insert(m); r == Added {
			d.shown = append(d.shown, shown)
		}
		if v.Head(m.Stamp.Server) < m.Stamp.Seq && (len(d.gaps) == 0 || d.gaps[len(d.gaps)-1] != v.room) {
			d.gaps = append(d.gaps, v.room)
		}
	}
	resyncAll := false
	for _, e := range args.Events {
		switch {
		case e.Kind == chatapi.EventResync && e.Room != "":
			d.full = append(d.full, e.Room)
		case e.Kind == chatapi.EventResync:
			resyncAll = true
		case e.Kind == chatapi.EventJoined && e.User == user && e.Room != "":
			s.join(e.Room)
			if s.joining[e.Room] == 0 {
				d.full = append(d.full, e.Room)
			}
		case e.Kind == chatapi.EventLeft && e.User == user && e.Room != "":
			s.leave(e.Room)
		case e.Kind == chatapi.EventMove:
			d.move = true
		}
	}
	for _, r := range d.full {
		s.markUnsynced(r)
	}
	if resyncAll {
		for r := range s.member {
			s.markUnsynced(r)
		}
		d.full = s.names()
	}
	for _, room := range slices.Sorted(maps.Keys(args.Settled)) {
		s.settle(room, args.Settled[room])
	}
	return d
}

// settle applies a settled notice: room is settled up to stamp time t. It
// counts only for a room that has completed its catch-up Sync and whose
// view has no hole: the server's promise covers what it delivered, and a
// Sync under way, or one that fills a hole, may still bring older
// messages. It reports whether the notice counted.
func (s *roomSet) settle(room string, t int64) bool {
	v := s.views[room]
	if v == nil || s.unsynced[room] || v.Gaps() {
		return false
	}
	v.Settle(t)
	return true
}
