package term

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// TestTerminalExitsWhenSessionEnds: an Ended status, even in the middle of
// a /wait, prints "session ended: ..." and Run returns ErrSessionEnded
// without reading the next command.
func TestTerminalExitsWhenSessionEnds(t *testing.T) {
	feed := NewFeed()
	sess := newFakeSession(feed)
	in, inW := io.Pipe()
	defer inW.Close()
	var out, errOut rmitest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), sess, in, &out, &errOut, Options{Clock: clocktest.New(), Feed: feed})
	}()
	if _, err := io.WriteString(inW, "/wait 1h\n"); err != nil {
		t.Fatal(err)
	}
	feed.Status(client.Status{Kind: client.Ended, Server: "s1", Err: chatapi.ErrSessionEnded})
	var err error
	rmitest.WaitFor(t, "Run to return", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if !errors.Is(err, ErrSessionEnded) || !errors.Is(err, chatapi.ErrSessionEnded) {
		t.Fatalf("Run returned %v, want ErrSessionEnded", err)
	}
	if !strings.Contains(out.String(), "session ended: ") {
		t.Fatalf("output %q does not say the session ended", out.String())
	}
}

// TestTerminalExitsWhenCommandFindsSessionEnded: a command refused with
// chatapi.ErrSessionEnded prints its error and ends Run; the commands
// after it do not run.
func TestTerminalExitsWhenCommandFindsSessionEnded(t *testing.T) {
	feed := NewFeed()
	sess := &endedSession{fakeSession: newFakeSession(feed)}
	var out, errOut rmitest.SyncBuffer
	err := Run(context.Background(), sess, strings.NewReader("/say lobby hi\n/say lobby again\n"), &out, &errOut, Options{Feed: feed})
	if !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("Run returned %v, want ErrSessionEnded", err)
	}
	if sess.says != 1 {
		t.Fatalf("%d posts tried, want 1: Run must stop at the first refusal", sess.says)
	}
	if e := errOut.Lines(); len(e) != 1 || !strings.Contains(e[0], "session ended") {
		t.Fatalf("errors %q", e)
	}
}

// endedSession is a session whose posts are refused as ended.
type endedSession struct {
	*fakeSession
	says int
}

func (s *endedSession) Say(ctx context.Context, room, text string) (chatapi.Message, error) {
	s.says++
	return chatapi.Message{}, fmt.Errorf("say in %s: %w", room, chatapi.ErrSessionEnded)
}
