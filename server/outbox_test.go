package server

import (
	"reflect"
	"testing"
	"time"

	"github.com/distchat/distchat/server/chatapi"
)

// own returns this server's ("a") messages of room with seqs from..to.
func own(room string, from, to uint64) []chatapi.Message {
	var ms []chatapi.Message
	for seq := from; seq <= to; seq++ {
		ms = append(ms, chatapi.Message{Room: room, Stamp: chatapi.Stamp{Time: int64(seq), Server: "a", Seq: seq}})
	}
	return ms
}

func TestOutboxOwe(t *testing.T) {
	cases := []struct {
		name    string
		durable uint64
		acked   uint64
		want    bool
	}{
		{"nothing stamped", 0, 0, false},
		{"all acknowledged", 5, 5, false},
		{"some not acknowledged", 5, 3, true},
		{"none acknowledged", 5, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutbox(10, map[string]uint64{"r": tc.durable}, map[string]map[string]uint64{"b": {"r": tc.acked}})
			if got := o.owe("b", "r"); got != tc.want {
				t.Fatalf("owe = %v, want %v", got, tc.want)
			}
			if got := o.dest("b").pending["r"]; got != tc.want {
				t.Fatalf("pending = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOutboxNextSpans(t *testing.T) {
	cases := []struct {
		name    string
		batch   int
		durable map[string]uint64
		acked   map[string]uint64
		want    []span
	}{
		{
			name: "one room", batch: 10,
			durable: map[string]uint64{"r": 3}, want: []span{{"r", 0, 3}},
		},
		{
			name: "from the cursor", batch: 10,
			durable: map[string]uint64{"r": 7}, acked: map[string]uint64{"r": 4}, want: []span{{"r", 4, 7}},
		},
		{
			name: "rooms in name order in one Forward", batch: 10,
			durable: map[string]uint64{"s": 2, "r": 3}, want: []span{{"r", 0, 3}, {"s", 0, 2}},
		},
		{
			name: "at most batch messages in all", batch: 4,
			durable: map[string]uint64{"r": 3, "s": 5, "t": 1}, want: []span{{"r", 0, 3}, {"s", 0, 1}},
		},
		{
			name: "acknowledged rooms are skipped", batch: 10,
			durable: map[string]uint64{"r": 3, "s": 2}, acked: map[string]uint64{"r": 3}, want: []span{{"s", 0, 2}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutbox(tc.batch, tc.durable, map[string]map[string]uint64{"b": tc.acked})
			for room := range tc.durable {
				o.dest("b").pending[room] = true // as if owed before the acks
			}
			if !o.kick("b") {
				t.Fatal("kick of an idle destination did not start it")
			}
			spans, wm, ok := o.next("b")
			if !ok || wm != nil || !reflect.DeepEqual(spans, tc.want) {
				t.Fatalf("next = %v, %v, %v; want %v", spans, wm, ok, tc.want)
			}
		})
	}
}

func TestOutboxForwardCycle(t *testing.T) {
	o := newOutbox(10, map[string]uint64{}, map[string]map[string]uint64{})
	o.stored("r", 1)
	o.stored("r", 2)
	if !o.owe("b", "r") || !o.kick("b") {
		t.Fatal("a stored message did not start forwarding")
	}
	o.stored("r", 3)
	if !o.owe("b", "r") || o.kick("b") {
		t.Fatal("a second task started while one runs")
	}
	spans, _, _ := o.next("b")
	if want := []span{{"r", 0, 3}}; !reflect.DeepEqual(spans, want) {
		t.Fatalf("spans %v, want %v", spans, want)
	}
	// The acknowledgement advances the cursor over what was sent and
	// asks for one flush of the dirty cursors.
	if !o.sent("b", spans, own("r", 1, 3)) {
		t.Fatal("first dirty cursor did not ask for a flush")
	}
	if o.acked["b"]["r"] != 3 || o.owe("b", "r") {
		t.Fatalf("cursor %d after the ack, want 3 and nothing owed", o.acked["b"]["r"])
	}
	// Nothing more to send: the task ends, and a later kick starts a new one.
	if _, _, ok := o.next("b"); ok {
		t.Fatal("next found work after everything was acknowledged")
	}
	o.stored("r", 4)
	if !o.owe("b", "r") || !o.kick("b") {
		t.Fatal("a new message after the task ended did not start one")
	}
	spans, _, _ = o.next("b")
	if o.sent("b", spans, own("r", 4, 4)) {
		t.Fatal("a second flush scheduled while one is pending")
	}
	if got, want := o.takeDirty(), map[string]map[string]uint64{"b": {"r": 4}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("dirty cursors %v, want %v", got, want)
	}
	if got := o.takeDirty(); len(got) != 0 {
		t.Fatalf("dirty cursors after take: %v", got)
	}
	// A commit that took the cursors leaves the flush scheduled: a cursor
	// dirty since does not schedule another.
	o.stored("r", 5)
	o.owe("b", "r")
	spans, _, _ = o.next("b")
	if o.sent("b", spans, own("r", 5, 5)) {
		t.Fatal("a second flush scheduled after a commit took the cursors")
	}
	// When the flush comes due, it writes that cursor.
	if !o.flushDue() {
		t.Fatal("the flush came due with a dirty cursor and had nothing to write")
	}
	o.takeDirty()
	// After the flush, the next dirty cursor schedules one again.
	o.stored("r", 6)
	o.owe("b", "r")
	spans, _, _ = o.next("b")
	if !o.sent("b", spans, own("r", 6, 6)) {
		t.Fatal("no flush scheduled after the last one ran")
	}
	// A flush whose cursors a commit took along writes nothing.
	o.takeDirty()
	if o.flushDue() {
		t.Fatal("the flush came due after a commit took the cursors and wants to write")
	}
	// Cursors whose write failed are taken back, for the next write; a
	// cursor that moved on since is kept.
	o.stored("r", 7)
	o.owe("b", "r")
	spans, _, _ = o.next("b")
	o.sent("b", spans, own("r", 7, 7))
	failed := o.takeDirty()
	o.stored("r", 8)
	o.owe("b", "r")
	spans, _, _ = o.next("b")
	o.sent("b", spans, own("r", 8, 8))
	o.restoreDirty(map[string]map[string]uint64{"b": {"r": 7, "q": 2}, "c": {"r": 1}})
	if got, want := o.takeDirty(), map[string]map[string]uint64{"b": {"r": 8, "q": 2}, "c": {"r": 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("dirty cursors after a failed write of %v: %v, want %v", failed, got, want)
	}
}

func TestOutboxSentOnlyWhatWasSent(t *testing.T) {
	o := newOutbox(10, map[string]uint64{"r": 5, "s": 2}, map[string]map[string]uint64{})
	o.owe("b", "r")
	o.owe("b", "s")
	o.kick("b")
	spans, _, _ := o.next("b")
	// The store returned fewer than planned: only those are acknowledged.
	o.sent("b", spans, own("r", 1, 2))
	if o.acked["b"]["r"] != 2 || o.acked["b"]["s"] != 0 {
		t.Fatalf("cursors %v, want r=2 and s untouched", o.acked["b"])
	}
	// The store had nothing past the cursors: the spans were stale and
	// their rooms are no longer pending.
	spans, _, _ = o.next("b")
	o.sent("b", spans, nil)
	if len(o.dest("b").pending) != 0 {
		t.Fatalf("pending %v after an empty read, want none", o.dest("b").pending)
	}
}

func TestOutboxFailureBacksOff(t *testing.T) {
	o := newOutbox(10, map[string]uint64{"r": 1}, map[string]map[string]uint64{})
	o.owe("b", "r")
	var waits []time.Duration
	for i := 0; i < 10; i++ {
		if !o.kick("b") {
			t.Fatalf("try %d: kick refused", i)
		}
		o.next("b")
		waits = append(waits, o.failed("b", nil))
		if o.kick("b") {
			t.Fatalf("try %d: kicked while waiting to retry", i)
		}
		o.retry("b")
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 16 * time.Second, maxRetry, maxRetry, maxRetry}
	if !reflect.DeepEqual(waits, want) {
		t.Fatalf("back-off %v, want %v", waits, want)
	}
	// A success starts the back-off over.
	o.kick("b")
	spans, _, _ := o.next("b")
	o.sent("b", spans, own("r", 1, 1))
	o.stored("r", 2)
	o.owe("b", "r")
	o.next("b")
	if w := o.failed("b", nil); w != 250*time.Millisecond {
		t.Fatalf("first failure after a success waits %v, want 250ms", w)
	}
}

func TestOutboxWatermarks(t *testing.T) {
	// Rooms: r fully acknowledged by b, s not, t never had own messages.
	o := newOutbox(10, map[string]uint64{"r": 3, "s": 2, "t": 0}, map[string]map[string]uint64{"b": {"r": 3, "s": 1}})
	o.promise("b", 100, o.durableSeqs())
	o.kick("b")
	spans, wm, ok := o.next("b")
	if !ok || len(spans) != 0 {
		t.Fatalf("next = %v, %v; want watermarks only", spans, ok)
	}
	if want := map[string]int64{"": 100, "r": 100, "s": 0}; !reflect.DeepEqual(wm, want) {
		t.Fatalf("watermarks %v, want %v", wm, want)
	}
	// Taken: not sent twice.
	if _, again, ok := o.next("b"); ok || again != nil {
		t.Fatalf("watermarks sent twice: %v", again)
	}
	// A failed Forward puts them back, under any newer ones.
	o.kick("b")
	o.failed("b", wm)
	o.dest("b").wm["r"] = 150
	o.failed("b", wm)
	if want := map[string]int64{"": 100, "r": 150, "s": 0}; !reflect.DeepEqual(o.dest("b").wm, want) {
		t.Fatalf("restored watermarks %v, want %v", o.dest("b").wm, want)
	}
	// A new promise supersedes unsent ones; the durable seqs are those
	// of when it was made.
	snap := o.durableSeqs()
	o.stored("r", 4)
	o.promise("b", 200, snap)
	if want := map[string]int64{"": 200, "r": 200, "s": 0}; !reflect.DeepEqual(o.dest("b").wm, want) {
		t.Fatalf("watermarks %v, want %v", o.dest("b").wm, want)
	}
}

func TestRetryWait(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{1, 250 * time.Millisecond},
		{2, 500 * time.Millisecond},
		{5, 4 * time.Second},
		{8, maxRetry},
		{1000, maxRetry},
	} {
		if got := retryWait(tc.n); got != tc.want {
			t.Fatalf("retryWait(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
