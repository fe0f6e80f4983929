package server

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/distchat/distchat/server/chatapi"
)

// commitReq is one caller's share of a group commit.
type commitReq struct {
	msgs  []chatapi.Message
	last  int64    // a watermark to make durable (meta "last")
	known []string // the known chat servers to record
	own   bool     // msgs were stamped here (not from another server)
	// later marks messages from another server to hand to local members
	// once stored, if new (deliverForeign); the others went at once.
	later []bool
	done  chan struct{}
	err   error
	isNew []bool
	heads map[string]map[string]uint64
}

// committer group-commits: while one caller (the leader) writes a batch,
// others queue; the leader then writes everything queued with one append
// to the log (one write, one fdatasync: store.go). There is no background
// goroutine and no timer: with one caller at a time (as in the simulator)
// every commit is immediate.
//
// Yielding before the write: the leader lets other goroutines run
// (runtime.Gosched) before each write, and then takes the batch, with
// whatever was submitted meanwhile. A goroutine blocked in fdatasync
// keeps its processor (P) until the runtime takes it back, and the tasks
// started just before the write (a destination's delivery tasks, which
// deliverForeign starts right before it submits what it delivered; the
// forwarding and delivery tasks of the batch before) wait on that P, on
// its timers or its run queue. With two Ps and two servers flushing at
// once they waited for a flush to end: in paced runs a forwarded
// message's first Deliver left 0.60–0.63 ms after it was queued (p50),
// and 0.19–0.20 ms with the yield. The write starts that much later,
// which delays only acknowledgements that wait for the disk anyway.
// BenchmarkTaskStartedBeforeACommit measures it.
type committer struct {
	st *store
	// yield runs before each write; nil means runtime.Gosched.
	yield func()
	// after runs in the leader after each successful batch, before the
	// batch's callers return, so fan-out starts once data is durable
	// (Server.committed).
	after func([]*commitReq)
	// extra, if set, returns state to write along with the next batch
	// (forwarding cursors, which need no commit of their own:
	// Server.takeDirtyCursors).
	extra func() map[string]map[string]uint64
	// unwritten, if set, takes back what extra returned when the write
	// failed, to go with a later batch (Server.restoreCursors).
	unwritten func(map[string]map[string]uint64)
	// failed, if set, runs in the leader when a write fails while the
	// committer was healthy, before the batch's callers return
	// (Server.storageFailed, storage.go).
	failed func(error)

	// commits counts transactions written (for benchmarks: commits per
	// post shows group commit at work).
	commits atomic.Int64

	mu    sync.Mutex
	queue []*commitReq
	busy  bool
	// fail is the error of the write that failed: from then on every
	// write is refused at once, until resumeLocked clears it (storage.go
	// probes the disk first). So nothing is written, and nothing
	// acknowledged, while the disk is failing, and nothing written after
	// a failure depends on in-memory state the failed batch left behind.
	fail error
}

// submit queues r and returns once it is durable (or failed).
func (c *committer) submit(r *commitReq) error {
	c.mu.Lock()
	return c.submitLocked(r)
}

// submitLocked is submit for a caller that already holds c.mu (so that it
// could order its request against its own lock); it releases c.mu.
func (c *committer) submitLocked(r *commitReq) error {
	r.done = make(chan struct{})
	if err := c.fail; err != nil {
		c.mu.Unlock()
		return err
	}
	c.queue = append(c.queue, r)
	if c.busy {
		c.mu.Unlock()
		<-r.done
		return r.err
	}
	c.busy = true
	for len(c.queue) > 0 && c.fail == nil {
		c.mu.Unlock()
		if c.yield != nil {
			c.yield()
		} else {
			runtime.Gosched() // see "Yielding before the write" above
		}
		c.mu.Lock()
		batch := c.queue // with whatever arrived during the yield
		c.queue = nil
		c.mu.Unlock()
		err := c.write(batch)
		if err == nil && c.after != nil {
			c.after(batch)
		}
		c.mu.Lock()
		if err != nil {
			c.fail = err
			if c.failed != nil {
				// Before any caller hears of it, so that what they do
				// next already finds the server failing.
				c.mu.Unlock()
				c.failed(err)
				c.mu.Lock()
			}
		}
		for _, q := range batch {
			q.err = err
			if q != r {
				close(q.done)
			}
		}
	}
	for _, q := range c.queue { // failed: refuse what is left
		q.err = c.fail
		close(q.done)
	}
	c.queue = nil
	c.busy = false
	c.mu.Unlock()
	return r.err
}

// resumeLocked lets writes through again after a failure, once storage
// works (storage.go), and reports whether it did: not while the leader of
// the failed batch is still refusing the requests queued behind it (they
// were stamped before the failure, and must not be written after it).
// Callers hold c.mu.
func (c *committer) resumeLocked() bool {
	if c.busy {
		return false
	}
	c.fail = nil
	return true
}

// write stores a batch in one transaction and spreads the results back.
func (c *committer) write(batch []*commitReq) error {
	wb := &writeBatch{cursors: map[string]map[string]uint64{}}
	if c.extra != nil {
		wb.cursors = c.extra()
	}
	for _, r := range batch {
		wb.last = max(wb.last, r.last)
		if r.known != nil {
			wb.known = r.known
		}
		for _, m := range r.msgs {
			wb.msgs = append(wb.msgs, m)
			// Only our own stamps (and promises) floor our stamper after a
			// restart; in wall mode another server's clock must not.
			if r.own && m.Stamp.Time > wb.last {
				wb.last = m.Stamp.Time
			}
		}
	}
	c.commits.Add(1)
	if err := c.st.commit(wb); err != nil {
		if c.unwritten != nil {
			c.unwritten(wb.cursors)
		}
		return err
	}
	i := 0
	for _, r := range batch {
		r.isNew = wb.isNew[i : i+len(r.msgs)]
		r.heads = wb.heads
		i += len(r.msgs)
	}
	return nil
}

// committed runs in the committing leader once a batch is durable, and
// hands it on: the new own messages of each room go to its local members
// (fanout.go) and to the outbox for the room's other servers (outbox.go).
// Messages from other servers went to local members before they were
// written (storeForeign), but for those marked later, which go now, and
// whose stamps move the stamper's clock; those of a room whose membership
// is still being read are also held for the members the read makes local
// (holdLocked). The rooms' heads move past what was stored.
func (s *Server) committed(batch []*commitReq) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byRoom := map[string][]chatapi.Message{}
	var order []string
	ownRooms := map[string]bool{}
	for _, q := range batch {
		for i, m := range q.msgs {
			if !q.isNew[i] || (!q.own && !q.later[i]) {
				continue
			}
			if !q.own {
				s.holdLocked(s.room(m.Room), m)
			}
			if _, ok := byRoom[m.Room]; !ok {
				order = append(order, m.Room)
			}
			byRoom[m.Room] = append(byRoom[m.Room], m)
			if q.own {
				ownRooms[m.Room] = true
				s.out.stored(m.Room, m.Stamp.Seq) // durable now: the forwarders may send it
			} else {
				s.stamper.observe(m.Stamp.Time)
			}
		}
		for room, hs := range q.heads {
			r := s.room(room)
			for origin, h := range hs {
				if h > r.heads[origin] {
					r.heads[origin] = h
				}
			}
		}
	}
	for _, room := range order {
		s.deliverLocked(room, byRoom[room])
		if ownRooms[room] {
			s.dispatchLocked(s.room(room))
		}
	}
}

// holdLocked keeps m, a stored message from another server, for the
// members that the pending read of r's membership makes local
// (membersChangedLocked), so that they too receive it live, if that read
// is still to come. A room whose read does not come back holds at most
// maxQueue messages; past that the oldest go, and a member who gains the
// room syncs them anyway when told it joined.
func (s *Server) holdLocked(r *room, m chatapi.Message) {
	if r.members.valid {
		return
	}
	if len(r.held) >= s.maxQueue {
		r.held = slices.Delete(r.held, 0, len(r.held)/2)
	}
	r.held = append(r.held, m)
}

// takeDirtyCursors hands the committer the forwarding cursors to write.
func (s *Server) takeDirtyCursors() map[string]map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.takeDirty()
}

// restoreCursors takes back forwarding cursors whose write failed
// (takeDirtyCursors), so that they are written with a later commit.
func (s *Server) restoreCursors(cursors map[string]map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.restoreDirty(cursors)
}
