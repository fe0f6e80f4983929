package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/distchat/distchat/central/kv/etcdkv"
)

// etcdFlags are the flags that connect to an etcd cluster: central's
// --etcd, and admin migrate's --to-etcd.
type etcdFlags struct {
	name         string // the endpoints flag
	endpoints    *string
	prefix       *string
	caFile       *string
	certFile     *string
	keyFile      *string
	user         *string
	passwordFile *string
}

// addEtcdFlags adds the etcd connection flags to f, the endpoints under
// --name.
func addEtcdFlags(f *flagSet, name, usage string) *etcdFlags {
	return &etcdFlags{
		name:         name,
		endpoints:    f.String(name, "", usage),
		prefix:       f.String("etcd-prefix", etcdkv.DefaultPrefix, "the key `PREFIX` of distchat's state in etcd"),
		caFile:       f.String("etcd-ca", "", "the CA certificate `FILE` (PEM) that signed the etcd members' certificates (https endpoints)"),
		certFile:     f.String("etcd-cert", "", "a client certificate `FILE` (PEM) for etcd's --client-cert-auth"),
		keyFile:      f.String("etcd-key", "", "the key `FILE` (PEM) of --etcd-cert"),
		user:         f.String("etcd-user", "", "the etcd user `NAME`, when etcd has auth enabled"),
		passwordFile: f.String("etcd-password-file", "", "`FILE` with the etcd user's password (default: $DISTCHAT_ETCD_PASSWORD)"),
	}
}

// set reports whether the endpoints flag was given.
func (ef *etcdFlags) set() bool { return *ef.endpoints != "" }

// config turns the flags into an etcdkv.Config, reading the files they
// name.
func (ef *etcdFlags) config(e *env) (etcdkv.Config, error) {
	cfg := etcdkv.Config{Prefix: *ef.prefix, Username: *ef.user}
	for _, ep := range strings.Split(*ef.endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			cfg.Endpoints = append(cfg.Endpoints, ep)
		}
	}
	if len(cfg.Endpoints) == 0 {
		return cfg, usagef("--%s: no endpoint in %q", ef.name, *ef.endpoints)
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || !strings.HasSuffix(cfg.Prefix, "/") {
		return cfg, usagef("--etcd-prefix %q: want a path that starts and ends with /", cfg.Prefix)
	}
	if (*ef.certFile == "") != (*ef.keyFile == "") {
		return cfg, usagef("give both --etcd-cert and --etcd-key, or neither")
	}
	if *ef.caFile != "" || *ef.certFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if *ef.caFile != "" {
			pem, err := os.ReadFile(*ef.caFile)
			if err != nil {
				return cfg, fmt.Errorf("--etcd-ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("--etcd-ca %s: no PEM certificate in it", *ef.caFile)
			}
		}
		if *ef.certFile != "" {
			cert, err := tls.LoadX509KeyPair(*ef.certFile, *ef.keyFile)
			if err != nil {
				return cfg, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cfg.TLS = tc
	}
	if cfg.Username != "" {
		if *ef.passwordFile != "" {
			b, err := os.ReadFile(*ef.passwordFile)
			if err != nil {
				return cfg, fmt.Errorf("--etcd-password-file: %w", err)
			}
			cfg.Password = strings.TrimRight(string(b), "\r\n")
		} else {
			cfg.Password = e.getenv("DISTCHAT_ETCD_PASSWORD")
		}
		if cfg.Password == "" {
			return cfg, usagef("--etcd-user %s needs a password: --etcd-password-file FILE or $DISTCHAT_ETCD_PASSWORD", cfg.Username)
		}
	}
	return cfg, nil
}

// open connects to the cluster the flags name.
func (ef *etcdFlags) open(ctx context.Context, e *env) (*etcdkv.Store, error) {
	cfg, err := ef.config(e)
	if err != nil {
		return nil, err
	}
	return etcdkv.Open(ctx, cfg)
}
