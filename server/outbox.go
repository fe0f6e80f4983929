package server

import (
	"maps"
	"slices"
	"time"

	"github.com/distchat/distchat/server/chatapi"
)

// outbox is the forwarding core: it decides what this server's own
// messages still owe each other server, what to send in one Forward, and
// what an acknowledgement releases. It keeps no copy of the messages: the
// room logs in the store and the per-destination cursors are the outbox,
// so whatever was not acknowledged is sent again after a crash.
//
// It is a plain value with no lock, no I/O and no clock. The server calls
// it under its lock and carries out what it returns (fanout.go): it starts
// a destination's forwarding task when told to, reads the spans next
// returns from the store, makes the Forward call, and writes the cursors
// takeDirty returns along with a commit.
type outbox struct {
	batch    int                          // messages per Forward
	durable  map[string]uint64            // room -> last own seq that is durable
	acked    map[string]map[string]uint64 // dest -> room -> own seq dest acknowledged (the cursors)
	dirty    map[string]map[string]uint64 // cursors not yet written
	flushing bool                         // a write of the dirty cursors is scheduled (flushDue ends it)
	dests    map[string]*outboxDest
}

// outboxDest is the forwarding state of one destination server.
type outboxDest struct {
	pending  map[string]bool  // rooms that may have messages past the cursor
	running  bool             // a forwarding task is running
	waiting  bool             // a retry is scheduled
	failures int              // failed Forwards in a row
	wm       map[string]int64 // watermarks to send, by room (see settled.go)
}

// span is one room's share of a Forward: own seqs in (from, to].
type span struct {
	room     string
	from, to uint64
}

// newOutbox returns an outbox with the durable own seqs and acknowledged
// cursors read from disk.
func newOutbox(batch int, durable map[string]uint64, acked map[string]map[string]uint64) *outbox {
	return &outbox{batch: batch, durable: durable, acked: acked, dests: map[string]*outboxDest{}}
}

func (o *outbox) dest(name string) *outboxDest {
	d := o.dests[name]
	if d == nil {
		d = &outboxDest{pending: map[string]bool{}}
		o.dests[name] = d
	}
	return d
}

// stored records that the server's own message seq of room is durable:
// from now on it is owed to the room's other servers.
func (o *outbox) stored(room string, seq uint64) {
	if seq > o.durable[room] {
		o.durable[room] = seq
	}
}

// has reports whether the server has stamped any message in room.
func (o *outbox) has(room string) bool { return o.durable[room] > 0 }

// owe notes that dest needs room's own messages and reports whether dest
// lacks some; if it does, the caller kicks dest.
func (o *outbox) owe(dest, room string) bool {
	if o.acked[dest][room] >= o.durable[room] {
		return false
	}
	o.dest(dest).pending[room] = true
	return true
}

// kick reports whether a forwarding task must start for dest: not when one
// runs or a retry is scheduled. A true answer marks the task running.
func (o *outbox) kick(dest string) bool {
	d := o.dest(dest)
	if d.running || d.waiting {
		return false
	}
	d.running = true
	return true
}

// next returns what the next Forward to dest carries: spans of own
// messages (rooms in name order, at most batch messages in all) and
// watermarks. ok is false when there is nothing to send; the task then
// ends. The watermarks are taken: failed puts them back.
func (o *outbox) next(dest string) (spans []span, wm map[string]int64, ok bool) {
	d := o.dest(dest)
	budget := uint64(o.batch)
	for _, room := range slices.Sorted(maps.Keys(d.pending)) {
		acked := o.acked[dest][room]
		if acked >= o.durable[room] {
			delete(d.pending, room)
			continue
		}
		to := min(o.durable[room], acked+budget)
		spans = append(spans, span{room, acked, to})
		if budget -= to - acked; budget == 0 {
			break
		}
	}
	if len(spans) == 0 && len(d.wm) == 0 {
		d.running = false
		return nil, nil, false
	}
	wm, d.wm = d.wm, nil
	return spans, wm, true
}

// sent records that dest acknowledged a Forward of msgs (read for spans)
// and advances its cursors over what was actually sent. flush reports
// whether the caller must schedule a write of the dirty cursors.
func (o *outbox) sent(dest string, spans []span, msgs []chatapi.Message) (flush bool) {
	d := o.dest(dest)
	d.failures = 0
	top := map[string]uint64{}
	for _, m := range msgs {
		top[m.Room] = max(top[m.Room], m.Stamp.Seq)
	}
	if o.acked[dest] == nil {
		o.acked[dest] = map[string]uint64{}
	}
	for room, seq := range top {
		if seq > o.acked[dest][room] {
			o.acked[dest][room] = seq
			if o.dirty == nil {
				o.dirty = map[string]map[string]uint64{}
			}
			if o.dirty[dest] == nil {
				o.dirty[dest] = map[string]uint64{}
			}
			o.dirty[dest][room] = seq
			if !o.flushing {
				o.flushing, flush = true, true
			}
		}
	}
	if len(top) == 0 {
		// The store had nothing past the cursors: the spans are stale.
		for _, sp := range spans {
			delete(d.pending, sp.room)
		}
	}
	return flush
}

// failed records that a Forward to dest carrying wm failed, and returns
// how long to wait before retry; the caller then calls retry.
func (o *outbox) failed(dest string, wm map[string]int64) time.Duration {
	d := o.dest(dest)
	for r, w := range wm {
		if d.wm == nil {
			d.wm = map[string]int64{}
		}
		d.wm[r] = max(d.wm[r], w)
	}
	d.running = false
	d.failures++
	d.waiting = true
	return retryWait(d.failures)
}

// retry ends dest's wait after a failure; the caller then kicks dest.
func (o *outbox) retry(dest string) { o.dest(dest).waiting = false }

// promise sets the watermarks dest gets with its next Forward, superseding
// any unsent ones: w for every room where dest has acknowledged all of
// this server's messages durable when w was made (durable, a snapshot of
// durableSeqs), 0 where it has not, and "" = w for every other room.
func (o *outbox) promise(dest string, w int64, durable map[string]uint64) {
	wm := map[string]int64{"": w}
	for room, seq := range durable {
		if seq == 0 {
			continue // nothing of ours in this room: the default covers it
		}
		if o.acked[dest][room] >= seq {
			wm[room] = w
		} else {
			wm[room] = 0 // it lacks some of ours: no promise yet
		}
	}
	o.dest(dest).wm = wm
}

// durableSeqs returns a snapshot of the last durable own seq per room.
func (o *outbox) durableSeqs() map[string]uint64 { return maps.Clone(o.durable) }

// takeDirty returns the cursors to write with the next commit. Losing
// them in a crash only means sending some messages again, which receivers
// drop as duplicates. A scheduled flush stays scheduled: its time comes
// once, whatever commits took the cursors before it (flushDue).
func (o *outbox) takeDirty() map[string]map[string]uint64 {
	d := o.dirty
	o.dirty = nil
	if d == nil {
		d = map[string]map[string]uint64{}
	}
	return d
}

// flushDue ends the scheduled flush and reports whether it has cursors to
// write: none when commits since took them all along. The next cursor
// that becomes dirty schedules a flush again (sent).
func (o *outbox) flushDue() bool {
	o.flushing = false
	return len(o.dirty) > 0
}

// restoreDirty takes back cursors that takeDirty returned but that were
// not written: they go with the next commit, unless a cursor taken since
// is already further on.
func (o *outbox) restoreDirty(cursors map[string]map[string]uint64) {
	for dest, rooms := range cursors {
		for room, seq := range rooms {
			if o.dirty == nil {
				o.dirty = map[string]map[string]uint64{}
			}
			if o.dirty[dest] == nil {
				o.dirty[dest] = map[string]uint64{}
			}
			o.dirty[dest][room] = max(o.dirty[dest][room], seq)
		}
	}
}

// retryWait is the back-off before retry number n (from 1): 250ms,
// doubling up to maxRetry.
func retryWait(n int) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < n && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}
