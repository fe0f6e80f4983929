package client

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// borrow encodes a and decodes it borrowing the encoding, buf, as the
// client's callback decodes a Deliver.
func borrow(t interface{ Fatal(...any) }, a chatapi.DeliverArgs) (borrowed chatapi.DeliverArgs, buf []byte) {
	buf, err := rmi.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := borrowed.UnmarshalMsgBorrowed(buf); err != nil {
		t.Fatal(err)
	}
	return borrowed, buf
}

// roomSetState is everything a roomSet and the result of its deliveries
// hold, as text: two states compare equal only if every string in them
// reads the same.
func roomSetState(s *roomSet, ds []delivered) string {
	var b strings.Builder
	fmt.Fprintf(&b, "members %v left %v unsynced %v\n", slices.Sorted(maps.Keys(s.member)),
		slices.Sorted(maps.Keys(s.left)), slices.Sorted(maps.Keys(s.unsynced)))
	for _, room := range slices.Sorted(maps.Keys(s.views)) {
		v := s.views[room]
		fv, _ := v.FirstSettledViolation()
		fmt.Fprintf(&b, "view %q (%q): %+v\nmax %+v have %v stats %+v violation %+v\n",
			room, v.Room(), v.Messages(), v.Max(), v.Have(), v.Stats(), fv)
		for _, o := range slices.Sorted(maps.Keys(v.origins)) {
			fmt.Fprintf(&b, "origin %q\n", o)
		}
	}
	for i, d := range ds {
		fmt.Fprintf(&b, "delivery %d: shown %+v full %v gaps %v move %v\n", i, d.shown, d.full, d.gaps, d.move)
	}
	return b.String()
}

// A client decodes a Deliver borrowing the request's bytes (rmi.BorrowArgs,
// chatapi.DeliverArgs.UnmarshalMsgBorrowed). Whatever the deliveries, the
// room set and what it hands on (the messages for OnMessage, the rooms to
// sync) are the same as with copies, and stay so once the requests' bytes
// have been overwritten: nothing keeps a borrowed string.
func TestRoomSetKeepsNoBorrowedString(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rooms := []string{"lobby", "side", "dm-ann-bob"}
		settled := map[string]int64{}
		var batches []chatapi.DeliverArgs
		for range rapid.IntRange(1, 4).Draw(t, "deliveries") {
			var a chatapi.DeliverArgs
			for _, m := range genMessages(t) {
				m.Room = rapid.SampledFrom(rooms).Draw(t, "room")
				a.Messages = append(a.Messages, m)
			}
			if rapid.Bool().Draw(t, "event") {
				a.Events = append(a.Events, chatapi.Event{Kind: chatapi.EventJoined, Room: rapid.SampledFrom(rooms).Draw(t, "joined"), User: "me"})
			}
			if rapid.Bool().Draw(t, "settled") {
				// Settled notices count only for synced rooms without a
				// hole; some later messages then fall inside the prefix.
				room := rapid.SampledFrom(rooms).Draw(t, "settled room")
				settled[room] = int64(rapid.IntRange(0, 20).Draw(t, "settled at"))
				a.Settled = map[string]int64{room: settled[room]}
			}
			batches = append(batches, a)
		}

		owned, borrowing := newRoomSet(), newRoomSet()
		var ownedDs, borrowedDs []delivered
		var bufs [][]byte
		for i, a := range batches {
			borrowed, buf := borrow(t, a)
			var copied chatapi.DeliverArgs
			if _, err := copied.UnmarshalMsg(buf); err != nil {
				t.Fatal(err)
			}
			ownedDs = append(ownedDs, owned.deliver("me", copied))
			borrowedDs = append(borrowedDs, borrowing.deliver("me", borrowed))
			if i == 0 {
				for _, room := range rooms {
					// Synced, so that settled notices count.
					owned.markSynced(room)
					borrowing.markSynced(room)
				}
			}
			bufs = append(bufs, buf)
		}
		want := roomSetState(owned, ownedDs)
		if got := roomSetState(borrowing, borrowedDs); got != want {
			t.Fatalf("borrowing the requests' bytes:\n%s\nwith copies:\n%s", got, want)
		}
		for _, buf := range bufs {
			copy(buf, bytes.Repeat([]byte{'#'}, len(buf))) // as a reused buffer would be
		}
		if got := roomSetState(borrowing, borrowedDs); got != want {
			t.Fatalf("once the requests' bytes were overwritten:\n%s\nwith copies:\n%s", got, want)
		}
	})
}

// A message that arrives inside the settled prefix is kept as the view's
// first violation: a copy of it, not the borrowed one.
func TestSettledViolationKeepsNoBorrowedString(t *testing.T) {
	msg := func(seq uint64, at int64) chatapi.Message {
		return chatapi.Message{Room: "lobby", ID: fmt.Sprint("id", seq), From: "ann", Text: "hi",
			Stamp: chatapi.Stamp{Time: at, Server: "s1", Seq: seq}}
	}
	batches := []chatapi.DeliverArgs{
		{Messages: []chatapi.Message{msg(1, 10)}},
		{Settled: map[string]int64{"lobby": 20}},
		{Messages: []chatapi.Message{msg(2, 5)}}, // inside the settled prefix
	}
	s := newRoomSet()
	var ds []delivered
	var bufs [][]byte
	for i, a := range batches {
		borrowed, buf := borrow(t, a)
		ds = append(ds, s.deliver("me", borrowed))
		if i == 0 {
			s.markSynced("lobby")
		}
		bufs = append(bufs, buf)
	}
	for _, buf := range bufs {
		copy(buf, bytes.Repeat([]byte{'#'}, len(buf)))
	}
	fv, ok := s.views["lobby"].FirstSettledViolation()
	if want := msg(2, 5); !ok || fv.Message != want || fv.Settled != 20 {
		t.Fatalf("first violation %+v (%v), want %+v under 20\n%s", fv, ok, want, roomSetState(s, ds))
	}
}
