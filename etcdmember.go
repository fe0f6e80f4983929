package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/benbjohnson/clock"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// memberOptions configure the etcd member 'distchat central --etcd-member'
// embeds.
type memberOptions struct {
	name           string // this member's name in initialCluster
	dir            string // its data directory
	initialCluster string // NAME=PEER-URL,... of every member, as etcd's --initial-cluster
	clientURL      string // where it serves clients (the front-ends)
	// certFile, keyFile and caFile, if set, make both its client and its
	// peer port require TLS with a certificate the CA signed.
	certFile, keyFile, caFile string
}

// memberReadyTimeout bounds the wait for the cluster to form (the other
// members to start).
const memberReadyTimeout = 5 * time.Minute

// memberConfig turns the options into etcd's configuration.
func memberConfig(o memberOptions) (*embed.Config, error) {
	cfg := embed.NewConfig()
	cfg.Name = o.name
	cfg.Dir = o.dir
	cfg.InitialCluster = o.initialCluster
	cfg.InitialClusterToken = "distchat"
	// etcd logs every request at warn in 3.6 ("request stats"): errors only.
	cfg.LogLevel = "error"
	var peer string
	for _, m := range strings.Split(o.initialCluster, ",") {
		if name, u, ok := strings.Cut(m, "="); ok && name == o.name {
			peer = u
		}
	}
	if peer == "" {
		return nil, usagef("--etcd-initial-cluster %q names no member %q", o.initialCluster, o.name)
	}
	pu, err := url.Parse(peer)
	if err != nil {
		return nil, usagef("--etcd-initial-cluster: member %s: %v", o.name, err)
	}
	cu, err := url.Parse(o.clientURL)
	if err != nil {
		return nil, usagef("--etcd-client-url: %v", err)
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	if (o.certFile == "") != (o.keyFile == "") || (o.certFile != "") != (o.caFile != "") {
		return nil, usagef("give --etcd-member-cert, --etcd-member-key and --etcd-member-ca together, or none")
	}
	if o.certFile != "" {
		tls := transport.TLSInfo{CertFile: o.certFile, KeyFile: o.keyFile, TrustedCAFile: o.caFile, ClientCertAuth: true}
		cfg.ClientTLSInfo, cfg.PeerTLSInfo = tls, tls
	}
	if err := cfg.Validate(); err != nil {
		return nil, usagef("etcd member: %v", err)
	}
	return cfg, nil
}

// startMember starts the embedded etcd member and waits, at most
// memberReadyTimeout on clk, until the cluster has formed (a quorum of
// members is up) and it serves clients.
func startMember(ctx context.Context, clk clock.Clock, o memberOptions) (*embed.Etcd, error) {
	cfg, err := memberConfig(o)
	if err != nil {
		return nil, err
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd member %s: %w", o.name, err)
	}
	timer := clk.Timer(memberReadyTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd member %s: %w", o.name, err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("etcd member %s: no quorum within %v (are the other members of %s up?)", o.name, memberReadyTimeout, o.initialCluster)
	}
}

// memberDir is where a member keeps its data under central's DIR.
func memberDir(data string) string { return filepath.Join(data, "etcd") }
