package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
)

// countedConn counts itself open in open until it is closed.
type countedConn struct {
	client.Conn
	open *atomic.Int64
	once sync.Once
}

// Close implements client.Conn.
func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// TestIdle checks that Idle reads the servers' usage with no client
// connected and again with all of them logged in and idle (each connected
// to its chat server only: the connection to central closed once idle),
// and divides the difference among the clients. The fake usage charges
// 3000 bytes per open connection.
func TestIdle(t *testing.T) {
	cfg := cluster(t, 2)
	var open atomic.Int64
	dial := cfg.Dial
	cfg.Dial = func(ctx context.Context, addr string, cb *rmi.Table) (client.Conn, error) {
		c, err := dial(ctx, addr, cb)
		if err != nil {
			return nil, err
		}
		open.Add(1)
		return &countedConn{Conn: c, open: &open}, nil
	}
	var reads []int64
	cfg.ServerUsage = func() (ServerUsage, error) {
		n := open.Load()
		reads = append(reads, n)
		return ServerUsage{RSS: 1<<20 + 3000*n}, nil
	}
	cfg.Clients = 5
	rep, err := Idle(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(reads) != 2 || reads[0] != 0 || reads[1] != 5 {
		t.Fatalf("usage read with %v connections open, want [0 5]", reads)
	}
	if rep.Clients != 5 || rep.RSSBefore != 1<<20 || rep.RSSAfter != 1<<20+15000 || rep.BytesPerClient != 3000 {
		t.Fatalf("report %+v: want 5 clients at 3000 bytes each", rep)
	}
	placed := 0
	for _, n := range rep.Placement {
		placed += n
	}
	if placed != 5 {
		t.Errorf("placement %v: want 5 clients", rep.Placement)
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d connections still open after Idle", n)
	}
	wantText(t, rep, "per idle client     2.9 KiB")
}

func TestIdleNeedsServerUsage(t *testing.T) {
	cfg := cluster(t, 1)
	if _, err := Idle(t.Context(), cfg); err == nil {
		t.Fatal("Idle without ServerUsage: no error")
	}
}
