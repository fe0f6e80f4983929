package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/server/chatapi"
)

// TestPostBatchStampsInOrder: a batch's messages are stamped in the order
// given, in one commit, and reach a member on another server in that
// order; a bad message fails alone, and a retried one returns its first
// stamp.
func TestPostBatchStampsInOrder(t *testing.T) {
	c, alice, bob := twoServers(t, server.ClockWall)
	ctx := context.Background()
	first := say(t, alice, "lobby", "m0", "before the batch")
	posts := []chatapi.BatchPost{
		{Room: "lobby", ID: "m1", Text: "one"},
		{Room: "lobby", ID: "m2", Text: "two"},
		{Room: "nowhere", ID: "m3", Text: "lost"},
		{Room: "lobby", ID: "m4", Text: ""},
		{Room: "lobby", ID: "m0", Text: "before the batch"}, // a retry
		{Room: "lobby", ID: "m5", Text: "three"},
	}
	commits := c.Server(alice.Server).Commits()
	rep, err := alice.Chat.PostBatch(ctx, chatapi.PostBatchArgs{Token: alice.Token, Posts: posts})
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Server(alice.Server).Commits() - commits; n != 1 {
		t.Errorf("%d commits for one batch; want 1", n)
	}
	if len(rep.Results) != len(posts) {
		t.Fatalf("%d results for %d posts", len(rep.Results), len(posts))
	}
	wantErr := []error{nil, nil, centralapi.ErrNoSuchRoom, chatapi.ErrEmpty, nil, nil}
	for i, r := range rep.Results {
		var err error
		if r.ErrCode != "" || r.ErrMsg != "" {
			err = &rmi.RemoteError{Code: r.ErrCode, Message: r.ErrMsg}
		}
		if (wantErr[i] == nil) != (err == nil) || (err != nil && !errors.Is(err, wantErr[i])) {
			t.Errorf("post %d (%q): %v, want %v", i, posts[i].Text, err, wantErr[i])
		}
	}
	if r := rep.Results[4]; !r.Duplicate || r.Stamp != first.Stamp {
		t.Errorf("retried post: %+v, want its first stamp %v as a duplicate", r, first.Stamp)
	}
	s1, s2, s5 := rep.Results[0].Stamp, rep.Results[1].Stamp, rep.Results[5].Stamp
	if !first.Stamp.Less(s1) || !s1.Less(s2) || !s2.Less(s5) || s5.Seq != s1.Seq+2 {
		t.Errorf("stamps %v %v %v after %v: want them in the order given, seqs consecutive", s1, s2, s5, first.Stamp)
	}
	want := []string{"before the batch", "one", "two", "three"}
	rmitest.WaitFor(t, "bob receives the batch", func() bool { return slices.Equal(delivered(bob, "lobby"), want) })
	if got := texts(history(t, bob, "lobby")); !slices.Equal(got, want) {
		t.Fatalf("bob's history %q, want %q", got, want)
	}
}

// TestPostBatchOfManyKeepsOrder: concurrent batches from two users
// interleave, but each user's messages keep the order they were sent.
func TestPostBatchOfManyKeepsOrder(t *testing.T) {
	_, alice, bob := twoServers(t, server.ClockHLC)
	ctx := context.Background()
	const batches, per = 5, 40
	errs := make(chan error, 2)
	for _, cl := range []struct {
		name string
		post func(context.Context, chatapi.PostBatchArgs) (chatapi.PostBatchReply, error)
		tok  string
	}{{"alice", alice.Chat.PostBatch, alice.Token}, {"bob", bob.Chat.PostBatch, bob.Token}} {
		go func() {
			for b := range batches {
				var posts []chatapi.BatchPost
				for i := range per {
					n := b*per + i
					posts = append(posts, chatapi.BatchPost{Room: "lobby", ID: fmt.Sprint(n), Text: fmt.Sprintf("%s %03d", cl.name, n)})
				}
				rep, err := cl.post(ctx, chatapi.PostBatchArgs{Token: cl.tok, Posts: posts})
				if err == nil {
					for _, r := range rep.Results {
						if r.ErrCode != "" || r.ErrMsg != "" {
							err = errors.New(r.ErrMsg)
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rmitest.WaitFor(t, "both receive everything", func() bool {
		return len(delivered(alice, "lobby")) == 2*batches*per && len(delivered(bob, "lobby")) == 2*batches*per
	})
	got := delivered(bob, "lobby")
	if !slices.Equal(got, delivered(alice, "lobby")) {
		t.Fatal("alice and bob see different orders")
	}
	for _, name := range []string{"alice", "bob"} {
		var mine []string
		for _, s := range got {
			if s[:len(name)] == name {
				mine = append(mine, s)
			}
		}
		if !slices.IsSorted(mine) {
			t.Errorf("%s's messages out of the order sent: %q", name, mine)
		}
	}
}
