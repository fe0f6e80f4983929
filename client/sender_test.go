package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// TestSenderKeepsOrderWithManyInFlight: 300 messages sent at once go in
// a few PostBatch calls, are stamped in the order sent, and show in that
// order at a member on the other server; one the server refuses fails
// alone.
func TestSenderKeepsOrderWithManyInFlight(t *testing.T) {
	w, ann, _, bob, _ := annAndBobInRoom(t)
	ctx := context.Background()
	s := ann.NewSender()
	var pend []*Pending
	var want []string
	for i := range 300 {
		room, text := "r", fmt.Sprintf("line %03d", i)
		if i == 150 {
			room = "not-mine"
		} else {
			want = append(want, text)
		}
		pend = append(pend, s.Send(room, fmt.Sprint("id-", i), text))
	}
	var last chatapi.Stamp
	for i, p := range pend {
		m, err := p.Wait(ctx)
		if i == 150 {
			if !errors.Is(err, centralapi.ErrNoSuchRoom) {
				t.Fatalf("post to a room that does not exist: %v, want ErrNoSuchRoom", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		if !last.Less(m.Stamp) {
			t.Fatalf("post %d stamped %v, not after the one before (%v)", i, m.Stamp, last)
		}
		last = m.Stamp
	}
	if n := w.count("ann", "server-1", "PostBatch"); n < 2 || n > 150 {
		t.Errorf("%d PostBatch calls for 300 posts; want a few (at least 2: at most %d a batch)", n, chatapi.MaxPostBatch)
	}
	waitView(t, bob, "r", len(want))
	if got := texts(bob.View("r")); !slices.Equal(got, want) {
		t.Fatalf("bob sees %d messages, not in the order sent", len(got))
	}
	if got := texts(ann.View("r")); !slices.Equal(got, want) {
		t.Fatalf("ann's own view is not in the order sent")
	}
}

// TestSenderBreaksAfterAFailedBatch: when a batch's call fails, its
// messages fail with the error and those queued behind it with
// ErrPipelineBroken, unsent; sending them again in order works, and a
// message stored before the failure returns its first stamp.
func TestSenderBreaksAfterAFailedBatch(t *testing.T) {
	_, ann, _, _, _ := annAndBobInRoom(t)
	ctx := context.Background()
	s := ann.NewSender()
	if _, err := s.Send("r", "a", "first").Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ann.Close(); err != nil {
		t.Fatal(err)
	}
	p1 := s.Send("r", "b", "second")
	p2 := s.Send("r", "c", "third")
	_, err1 := p1.Wait(ctx)
	_, err2 := p2.Wait(ctx)
	if !errors.Is(err1, ErrClosed) {
		t.Errorf("post after Close: %v, want ErrClosed", err1)
	}
	if !errors.Is(err2, ErrPipelineBroken) && !errors.Is(err2, ErrClosed) {
		t.Errorf("post queued behind it: %v, want ErrPipelineBroken or ErrClosed", err2)
	}
	rmitest.WaitFor(t, "sender idle", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.sending
	})
}

// TestSenderRetriesALostReplyOnce: when a batch's reply is lost, the
// client fails over and sends the batch again; the server answers the
// stored messages with their first stamps, so each is shown once.
func TestSenderRetriesALostReplyOnce(t *testing.T) {
	w, ann, _, bob, _ := annAndBobInRoom(t)
	ctx := context.Background()
	w.loseReply("ann", "PostBatch", nil)
	s := ann.NewSender()
	var pend []*Pending
	for i := range 5 {
		pend = append(pend, s.Send("r", fmt.Sprint("id-", i), fmt.Sprint("m", i)))
	}
	for i, p := range pend {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	want := []string{"m0", "m1", "m2", "m3", "m4"}
	waitView(t, bob, "r", len(want))
	if got := texts(bob.View("r")); !slices.Equal(got, want) {
		t.Fatalf("bob sees %q, want %q once each", got, want)
	}
}
