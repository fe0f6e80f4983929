package etcdkv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/central/kv/etcdkv"
	"github.com/distchat/distchat/central/kv/etcdkv/etcdtest"
	"github.com/distchat/distchat/central/kv/kvtest"
)

// The conformance suite, on one etcd member embedded in the test process;
// each test gets its own key prefix, so that they share the member.
func TestConformance(t *testing.T) {
	ep := etcdtest.Start(t)
	n := 0
	kvtest.Run(t, kvtest.Harness{
		Open: func(t *testing.T) kv.Store {
			n++
			s, err := etcdkv.Open(context.Background(), etcdkv.Config{Endpoints: []string{ep}, Prefix: fmt.Sprintf("/test%d/", n)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		TTL: time.Second,
	})
}
