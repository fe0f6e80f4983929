package term

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/servertest"
)

// TestTerminalOnRealClient runs the terminal on a real client of a real
// cluster whose chat server dies: the chat shows two short lines, and the
// details go to the log at debug level.
func TestTerminalOnRealClient(t *testing.T) {
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 2})
	c.AddUser("ann")
	c.Place("ann", "server-1")
	feed := NewFeed()
	var log rmitest.SyncBuffer
	cl, err := client.Login(ctx, client.Config{
		Central: c.RegistryAddr(), User: "ann", Password: c.Password("ann"),
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Dial: func(ctx context.Context, addr string, callbacks *rmi.Table) (client.Conn, error) {
			conn, err := c.Dial(ctx, addr, callbacks)
			if err != nil {
				return nil, err
			}
			return conn, nil
		},
		OnMessage: feed.Message, OnEvent: feed.Event, OnStatus: feed.Status,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	in, inW := io.Pipe()
	var out, errOut rmitest.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cl, in, &out, &errOut, Options{Feed: feed}) }()
	if _, err := io.WriteString(inW, "/create lobby\n"); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "the room", func() bool { return strings.Contains(out.String(), "created room lobby") })
	c.Crash("server-1")
	rmitest.WaitFor(t, "the client back", func() bool { return strings.Contains(out.String(), "back, on server-2") })
	if _, err := io.WriteString(inW, "still here\n"); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "the post", func() bool { return strings.Contains(out.String(), "ann: still here") })
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var status []string
	for _, l := range out.Lines() {
		if strings.HasPrefix(l, "connection") || strings.HasPrefix(l, "back") {
			status = append(status, l)
		}
	}
	if len(status) != 2 || status[0] != "connection to server-1 lost; reconnecting…" || status[1] != "back, on server-2" {
		t.Fatalf("status lines %q in:\n%s", status, out.String())
	}
	if e := errOut.String(); e != "" {
		t.Fatalf("errors: %s", e)
	}
	if l := log.String(); !strings.Contains(l, "level=DEBUG msg=\"client: lost chat server") || strings.Contains(l, "level=WARN") {
		t.Fatalf("log:\n%s", l)
	}
}
