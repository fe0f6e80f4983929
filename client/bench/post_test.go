package bench

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// fakePost is a post whose outcome the test gives.
type fakePost struct{ outcome chan error }

func (p *fakePost) Wait(ctx context.Context) (chatapi.Message, error) {
	select {
	case err := <-p.outcome:
		return chatapi.Message{}, err
	case <-ctx.Done():
		return chatapi.Message{}, ctx.Err()
	}
}

// posts records what postInOrder made, and fails the test when more than
// inflight are unacknowledged or they are made out of order.
type posts struct {
	t        *testing.T
	inflight int
	mu       sync.Mutex
	made     []*fakePost
	acked    int
}

func (ps *posts) post(seq int) waiter {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if seq != len(ps.made) {
		ps.t.Errorf("post %d made after %d others", seq, len(ps.made))
	}
	if len(ps.made)+1-ps.acked > ps.inflight {
		ps.t.Errorf("post %d made with %d unacknowledged: want at most %d in flight", seq, len(ps.made)-ps.acked, ps.inflight)
	}
	p := &fakePost{outcome: make(chan error, 1)}
	ps.made = append(ps.made, p)
	return p
}

func (ps *posts) count() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.made)
}

// ack gives post seq its outcome.
func (ps *posts) ack(seq int, err error) {
	ps.mu.Lock()
	ps.acked++
	p := ps.made[seq]
	ps.mu.Unlock()
	p.outcome <- err
}

func TestPostInOrderKeepsInflightAndOrder(t *testing.T) {
	const n, inflight = 12, 3
	ps := &posts{t: t, inflight: inflight}
	failure := errors.New("refused")
	var seqs []int
	var errs []error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		postInOrder(t.Context(), n, inflight, ps.post, func(seq int, err error) {
			seqs = append(seqs, seq)
			errs = append(errs, err)
		})
	}()
	for seq := range n {
		// Not one more is made before the next acknowledgement.
		rmitest.WaitFor(t, "posts made", func() bool { return ps.count() >= min(n, seq+inflight) })
		var err error
		if seq == 4 {
			err = failure
		}
		ps.ack(seq, err)
	}
	<-finished
	if !slices.Equal(seqs, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
		t.Fatalf("outcomes in order %v", seqs)
	}
	for seq, err := range errs {
		if (seq == 4) != errors.Is(err, failure) {
			t.Errorf("post %d: outcome %v", seq, err)
		}
	}
}

// When the run's context ends, postInOrder makes no more posts, hands
// every post made its outcome (the context's error) and returns.
func TestPostInOrderStopsWithItsContext(t *testing.T) {
	const n, inflight = 12, 3
	ps := &posts{t: t, inflight: inflight}
	ctx, cancel := context.WithCancel(t.Context())
	var outcomes []error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		postInOrder(ctx, n, inflight, ps.post, func(seq int, err error) { outcomes = append(outcomes, err) })
	}()
	rmitest.WaitFor(t, "posts made", func() bool { return ps.count() >= inflight })
	ps.ack(0, nil)
	rmitest.WaitFor(t, "posts made", func() bool { return ps.count() >= inflight+1 })
	cancel()
	<-finished
	if len(outcomes) != ps.count() || outcomes[0] != nil {
		t.Fatalf("%d posts made, outcomes %v", ps.count(), outcomes)
	}
	for _, err := range outcomes[1:] {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("outcomes %v: want the context's error after the first", outcomes)
		}
	}
}
