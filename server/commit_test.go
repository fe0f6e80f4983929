package server

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// The forwarding cursors a failed write took along are handed back, to be
// written with a later commit.
func TestCommitterGivesBackCursorsOfAFailedWrite(t *testing.T) {
	st, err := openStore(t.TempDir(), "a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	errFull := errors.New("disk full")
	st.fault = func() error { return errFull }
	cursors := map[string]map[string]uint64{"b": {"r": 3}}
	var back map[string]map[string]uint64
	c := &committer{
		st:        st,
		extra:     func() map[string]map[string]uint64 { return cursors },
		unwritten: func(m map[string]map[string]uint64) { back = m },
	}
	if err := c.submit(&commitReq{last: 1}); !errors.Is(err, errFull) {
		t.Fatalf("submit on a failing disk: %v, want %v", err, errFull)
	}
	if !reflect.DeepEqual(back, cursors) {
		t.Fatalf("cursors given back %v, want %v", back, cursors)
	}
}

// The leader yields before each write, with the committer's lock free, so
// that tasks started before the commit run before the disk flush; a
// request submitted meanwhile goes into that write.
func TestCommitterYieldsBeforeEachWrite(t *testing.T) {
	st, err := openStore(t.TempDir(), "a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	var order []string
	st.fault = func() error { order = append(order, "write"); return nil }
	c := &committer{st: st}
	joined := &commitReq{msgs: []chatapi.Message{testMsg("a", 2, 20)}, own: true}
	joinedDone := make(chan error, 1)
	c.yield = func() {
		order = append(order, "yield")
		if !c.mu.TryLock() {
			t.Error("the committer's lock is held while it yields")
			return
		}
		if len(order) == 1 {
			c.mu.Unlock()
			go func() { joinedDone <- c.submit(joined) }()
			rmitest.WaitFor(t, "the request to queue behind the leader", func() bool { return c.queued(joined) })
			return
		}
		c.mu.Unlock()
	}
	if err := c.submit(&commitReq{msgs: []chatapi.Message{testMsg("a", 1, 10)}, own: true}); err != nil {
		t.Fatal(err)
	}
	if err := <-joinedDone; err != nil {
		t.Fatal(err)
	}
	if want := []string{"yield", "write"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	if n := c.commits.Load(); n != 1 || !slices.Equal(joined.isNew, []bool{true}) {
		t.Fatalf("%d commits (the request that came during the yield: isNew %v), want 1", n, joined.isNew)
	}
	// The next commit yields again before its write.
	if err := c.submit(&commitReq{msgs: []chatapi.Message{testMsg("a", 3, 30)}, own: true}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"yield", "write", "yield", "write"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

// queued reports whether r waits in the committer's queue.
func (c *committer) queued(r *commitReq) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.queue, r)
}

// BenchmarkTaskStartedBeforeACommit measures how long a task started
// (on a zero-delay timer, as Server.after starts delivery and forwarding
// tasks) just before a commit waits to run, with the committer's yield
// and without it, on this machine's disk. task-start-µs is the median
// wait; commit-µs the median commit.
func BenchmarkTaskStartedBeforeACommit(b *testing.B) {
	for _, bc := range []struct {
		name  string
		yield func()
	}{{"yield", nil}, {"no-yield", func() {}}} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := openStore(b.TempDir(), "a", false)
			if err != nil {
				b.Fatal(err)
			}
			defer st.close()
			c := &committer{st: st, yield: bc.yield}
			started := make(chan time.Duration, 1)
			waits := make([]time.Duration, 0, b.N)
			commits := make([]time.Duration, 0, b.N)
			for i := range b.N {
				t0 := time.Now()
				time.AfterFunc(0, func() { started <- time.Since(t0) })
				if err := c.submit(&commitReq{msgs: []chatapi.Message{testMsg("a", uint64(i+1), int64(i+1))}, own: true}); err != nil {
					b.Fatal(err)
				}
				commits = append(commits, time.Since(t0))
				waits = append(waits, <-started)
			}
			slices.Sort(waits)
			slices.Sort(commits)
			b.ReportMetric(float64(waits[len(waits)/2])/float64(time.Microsecond), "task-start-µs")
			b.ReportMetric(float64(commits[len(commits)/2])/float64(time.Microsecond), "commit-µs")
		})
	}
}
