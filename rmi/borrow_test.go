package rmi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// note is an argument that can be decoded borrowing its input: Borrowed
// tells which decoder ran (it is not encoded).
type note struct {
	S        string
	Borrowed bool
}

func (n note) MarshalMsg(o []byte) ([]byte, error) { return msgp.AppendString(o, n.S), nil }

func (n note) Msgsize() int { return msgp.StringPrefixSize + len(n.S) }

func (n *note) UnmarshalMsg(in []byte) ([]byte, error) {
	s, rest, err := msgp.ReadStringBytes(in)
	n.S, n.Borrowed = s, false
	return rest, err
}

func (n *note) UnmarshalMsgBorrowed(in []byte) ([]byte, error) {
	b, rest, err := msgp.ReadStringZC(in)
	n.S, n.Borrowed = msgp.UnsafeString(b), true
	return rest, err
}

type noteAPI interface {
	// Read returns how its argument was decoded, and a copy of it.
	Read(ctx context.Context, n note) (string, error)
}

type noteSvc struct{}

func (noteSvc) Read(_ context.Context, n note) (string, error) {
	how := "copied"
	if n.Borrowed {
		how = "borrowed"
	}
	return how + " " + strings.Clone(n.S), nil
}

// An argument is decoded borrowing the request's bytes only for an object
// exported with BorrowArgs.
func TestBorrowArgsOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		opts []ExportOption
		want string
	}{
		{nil, "copied hello"},
		{[]ExportOption{ClusterOnly()}, "copied hello"},
		{[]ExportOption{BorrowArgs()}, "borrowed hello"},
	} {
		tab := NewTable(nil)
		if err := Export[noteAPI](tab, "note", noteSvc{}, tc.opts...); err != nil {
			t.Fatal(err)
		}
		got, err := Call[string](ctxT(t), Local{Table: tab, Peer: &Peer{Cluster: true}}, "note", "Read", note{S: "hello"})
		if err != nil || got != tc.want {
			t.Errorf("%d options: got %q (%v), want %q", len(tc.opts), got, err, tc.want)
		}
	}
}

// Over a connection, where requests are read into pooled buffers, a
// borrowed argument holds its own caller's bytes until the method
// returns, under many concurrent calls.
func TestBorrowedArgsValidUntilReturn(t *testing.T) {
	ts := startServer(t, ServerConfig{}, func(tab *Table) {
		if err := Export[noteAPI](tab, "note", noteSvc{}, BorrowArgs()); err != nil {
			t.Fatal(err)
		}
	})
	c := dial(t, ts.addr, DialConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				s := strings.Repeat(fmt.Sprintf("%d.%d;", g, i), 1+(g*i)%700)
				got, err := Call[string](ctxT(t), c, "note", "Read", note{S: s})
				if err == nil && got != "borrowed "+s {
					err = fmt.Errorf("goroutine %d call %d: got %d bytes back, not the %d sent", g, i, len(got), len(s))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
