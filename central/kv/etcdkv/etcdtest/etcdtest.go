// Package etcdtest runs a single-member etcd inside a test process, on
// unix sockets in a temporary directory (no port is guessed), with short
// ticks so that a one-second lease expires about on time.
package etcdtest

import (
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Start starts an etcd member for the test, stopped at its end, and returns
// its client endpoint.
func Start(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = filepath.Join(dir, "etcd")
	// Quiet: a member shutting down logs its closed listeners as errors.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	// etcd listens on the sockets' paths. What a member advertises must
	// look like host:port; a single member never dials its own peer URL,
	// and the test's clients dial the socket, so a placeholder does.
	client := url.URL{Scheme: "unix", Path: filepath.Join(dir, "client.sock")}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{{Scheme: "unix", Path: filepath.Join(dir, "peer.sock")}}
	placeholder := url.URL{Scheme: "unix", Host: "localhost:1"}
	cfg.AdvertiseClientUrls = []url.URL{placeholder}
	cfg.AdvertisePeerUrls = []url.URL{placeholder}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcd failed: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("etcd not ready within a minute")
	}
	return client.String()
}
