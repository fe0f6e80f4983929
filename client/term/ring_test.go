package term

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// TestTerminalPrintsACallOnce: the server rings every few seconds while
// ann waits; the terminal prints her call once, and a call after a quiet
// while again.
func TestTerminalPrintsACallOnce(t *testing.T) {
	feed := NewFeed()
	clk := clocktest.New()
	in, inW := io.Pipe()
	var out, errOut rmitest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), newFakeSession(feed), in, &out, &errOut, Options{Clock: clk, Feed: feed})
	}()
	const line = "ann is calling you (dm:ann:bob): /voice join dm:ann:bob FILE to answer"
	calls := func() int { return strings.Count(out.String(), line) }
	ring := chatapi.Event{Kind: chatapi.EventRing, Room: "dm:ann:bob", User: "ann"}

	feed.Event(ring)
	rmitest.WaitFor(t, "the call", func() bool { return calls() == 1 })
	clk.Add(3 * time.Second)
	feed.Event(ring) // the same call, ringing again
	feed.Event(chatapi.Event{Kind: chatapi.EventJoined, Room: "lobby", User: "cy"})
	rmitest.WaitFor(t, "the event after the second ring", func() bool { return strings.Contains(out.String(), "cy joined lobby") })
	if n := calls(); n != 1 {
		t.Fatalf("one call printed %d times:\n%s", n, out.String())
	}
	clk.Add(ringQuiet)
	feed.Event(ring) // a new call
	rmitest.WaitFor(t, "the second call", func() bool { return calls() == 2 })

	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.Lines(); got[0] != line {
		t.Fatalf("first line %q, want %q", got[0], line)
	}
	if e := errOut.String(); e != "" {
		t.Fatalf("errors: %s", e)
	}
}
