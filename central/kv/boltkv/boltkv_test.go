package boltkv_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/central/kv/boltkv"
	"github.com/distchat/distchat/central/kv/kvtest"
	"github.com/distchat/distchat/rmi/clocktest"
)

// The conformance suite, on a mock clock.
func TestConformance(t *testing.T) {
	var clk *clocktest.Mock
	kvtest.Run(t, kvtest.Harness{
		Open: func(t *testing.T) kv.Store {
			clk = clocktest.New()
			s, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), boltkv.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		TTL:  10 * time.Second,
		Pass: func(d time.Duration) { clk.Add(d) },
	})
}
