package server

import (
	"maps"
	"slices"
)

// Settled prefixes.
//
// Every heartbeatEvery each server makes a promise, its watermark W: it
// will never again stamp at or below W. W is the larger of its clock and
// the last time it handed out, and it is made durable before it is sent,
// so a restart keeps the promise. It goes to every live peer on the
// forwarding path (after anything in flight there), with one entry per
// room the server has stamped messages in: W when the peer has
// acknowledged all of them (its cursor reached the room's durable seq,
// taken when W was made), 0 when it has not; and a default entry "" = W
// for every other room, where the server has nothing to send. Own posts
// stamped after W have larger stamps, so they do not break the promise
// while they are in flight.
//
// A server that holds, for a room, a watermark from every chat server it
// knows of — itself included — knows the room is settled up to their
// minimum: no message at or below it can still appear. It tells its
// attached members, in their delivery queues behind every message queued
// before, so a client is told only after it has received what the promise
// covers (clients also ignore the notice while they are syncing the room).
//
// The set of chat servers is every server this one has ever seen (kept on
// disk): a server that is down holds the settled point back until it is
// back, since it may hold messages nobody else has. A server added later
// whose clock is behind the others could stamp below a point already
// settled; settled prefixes therefore assume a fixed set of chat servers,
// as the original system had.
//
// settledTracker below is the core that does the arithmetic; the outbox
// (outbox.go) decides which watermark each peer gets, and heartbeat.go
// makes the promises and delivers the notices.

// settledTracker is the settled-prefix core: the watermarks this server
// holds from every chat server it knows, the settled point of each room
// (their minimum), and the point last told to the room's members. It is a
// plain value with no lock, no I/O and no clock: the server calls it under
// its lock and queues the notices it returns.
type settledTracker struct {
	self       string
	known      map[string]bool             // every chat server ever seen, self included
	knownDirty bool                        // known changed since takeKnown
	wm         map[string]map[string]int64 // room -> server -> watermark received
	wmDefault  map[string]int64            // server -> watermark for rooms it has no messages in
	told       map[string]int64            // room -> settled point last told to members
}

// settledNotice tells a room's members it is settled up to at.
type settledNotice struct {
	room string
	at   int64
}

// newSettledTracker returns a tracker for server self that knows the
// servers read from disk.
func newSettledTracker(self string, known []string) *settledTracker {
	t := &settledTracker{
		self: self, known: map[string]bool{self: true},
		wm: map[string]map[string]int64{}, wmDefault: map[string]int64{}, told: map[string]int64{},
	}
	for _, n := range known {
		t.known[n] = true
	}
	return t
}

// learn adds a chat server to the known set; from now on the settled
// point waits for its watermark.
func (t *settledTracker) learn(server string) {
	if !t.known[server] {
		t.known[server] = true
		t.knownDirty = true
	}
}

// takeKnown returns the known servers, sorted, if they changed since the
// last call (to be written to disk), else nil.
func (t *settledTracker) takeKnown() []string {
	if !t.knownDirty {
		return nil
	}
	t.knownDirty = false
	return slices.Sorted(maps.Keys(t.known))
}

// unsavedKnown undoes a takeKnown whose list was not written (its commit
// failed): the next takeKnown returns the list again. Without it, a
// server learned before a failed commit would never reach the disk, and
// after a restart the settled point would not wait for it.
func (t *settledTracker) unsavedKnown() { t.knownDirty = true }

// promise records this server's own watermark w, which covers every room:
// its own messages reach its members at commit.
func (t *settledTracker) promise(w int64) {
	t.wmDefault[t.self] = max(t.wmDefault[t.self], w)
}

// receive records the watermarks another server sent: the entry "" is its
// watermark for every room it has no messages in, and each other entry
// its watermark for one room (0: none yet). Watermarks never move back.
// It reports whether anything was recorded (an empty set, or one from
// self, is ignored).
func (t *settledTracker) receive(from string, wms map[string]int64) bool {
	if len(wms) == 0 || from == t.self {
		return false
	}
	t.learn(from)
	for room, w := range wms {
		if room == "" {
			t.wmDefault[from] = max(t.wmDefault[from], w)
			continue
		}
		if t.wm[room] == nil {
			t.wm[room] = map[string]int64{}
		}
		t.wm[room][from] = max(t.wm[room][from], w)
	}
	return true
}

// point is the settled point of room: the minimum, over every known chat
// server, of its watermark for the room. ok is false while some server
// has promised nothing.
func (t *settledTracker) point(room string) (settled int64, ok bool) {
	first := true
	for name := range t.known {
		v, explicit := t.wm[room][name]
		if !explicit {
			v = t.wmDefault[name]
		}
		if v == 0 {
			return 0, false
		}
		if first || v < settled {
			settled, first = v, false
		}
	}
	return settled, !first
}

// advance returns a notice for each of rooms (in the order given) whose
// settled point moved past what its members were last told, and records
// it as told.
func (t *settledTracker) advance(rooms []string) []settledNotice {
	var out []settledNotice
	for _, room := range rooms {
		settled, ok := t.point(room)
		if !ok || settled <= t.told[room] {
			continue
		}
		t.told[room] = settled
		out = append(out, settledNotice{room, settled})
	}
	return out
}
