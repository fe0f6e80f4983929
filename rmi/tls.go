package rmi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// TLS runs under the handshake: when DialConfig.TLS and ServerConfig.TLS
// are set, the TCP connection first becomes a TLS 1.3 session, and the
// protocol handshake and everything after it travel inside. The cluster
// proofs then cover the session's channel binding (see channelBinding), so
// a proof is worth nothing on any other TLS session.

// bindingLabel and bindingLen name the keying material exported from a TLS
// session (RFC 8446 section 7.5, RFC 9266) for the cluster proofs.
const (
	bindingLabel = "EXPORTER-distchat-rmi-channel-binding"
	bindingLen   = 32
)

// errNoClusterCert marks a client that proved the cluster secret but
// presented no certificate signed by the cluster CA, where one is required.
var errNoClusterCert = errors.New("cluster peers must present a certificate signed by the cluster CA")

// tls13 returns a copy of cfg that accepts nothing older than TLS 1.3.
func tls13(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	c.MinVersion = tls.VersionTLS13
	if c.MaxVersion != 0 && c.MaxVersion < tls.VersionTLS13 {
		c.MaxVersion = tls.VersionTLS13
	}
	return c
}

// channelBinding returns the keying material exported from tc's session:
// both ends of one TLS session compute the same bytes, and no one else,
// not even a man in the middle running a TLS session with each end, can.
// It refuses a session older than TLS 1.3 whatever the configuration said
// (a GetConfigForClient callback can bring its own MinVersion), since the
// binding relies on TLS 1.3's exporter.
func channelBinding(tc *tls.Conn) ([]byte, error) {
	cs := tc.ConnectionState()
	if cs.Version != tls.VersionTLS13 {
		return nil, fmt.Errorf("TLS version %s negotiated; only TLS 1.3 is accepted", tls.VersionName(cs.Version))
	}
	b, err := cs.ExportKeyingMaterial(bindingLabel, nil, bindingLen)
	if err != nil {
		return nil, fmt.Errorf("TLS channel binding: %w", err)
	}
	return b, nil
}

// clientTLS runs the client side of a TLS handshake on raw, naming (and
// verifying) the host of addr unless cfg sets ServerName. It returns the
// TLS connection and its channel binding. The caller bounds it in time by
// closing raw.
func clientTLS(raw net.Conn, cfg *tls.Config, addr string) (*tls.Conn, []byte, error) {
	c := tls13(cfg)
	if c.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			c.ServerName = host
		}
	}
	tc := tls.Client(raw, c)
	if err := tc.Handshake(); err != nil {
		return nil, nil, fmt.Errorf("%w: TLS: %w", ErrHandshake, err)
	}
	b, err := channelBinding(tc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return tc, b, nil
}

// serverTLS runs the server side of a TLS handshake on raw with cfg (in
// which tls13 has been applied). It returns the TLS connection, its channel
// binding, and whether the client presented a certificate that verified
// against cfg.ClientCAs. Plaintext, or anything else that is not a TLS 1.3
// ClientHello, fails here.
func serverTLS(raw net.Conn, cfg *tls.Config) (tc *tls.Conn, binding []byte, certOK bool, err error) {
	tc = tls.Server(raw, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, nil, false, fmt.Errorf("TLS: %w", err)
	}
	if binding, err = channelBinding(tc); err != nil {
		return nil, nil, false, err
	}
	return tc, binding, len(tc.ConnectionState().VerifiedChains) > 0, nil
}
