package client

import (
	"context"
	"crypto/tls"

	"github.com/distchat/distchat/rmi"
)

// TLSDialer returns a Dialer that connects with [rmi.Dial] using cfg over
// TLS, with the TLS configuration tlsFor returns for the address dialed
// (pki.ClientTrust.ClientConfig verifies every server against the cluster
// CA). distchat's servers accept nothing else.
func TLSDialer(cfg rmi.DialConfig, tlsFor func(addr string) *tls.Config) Dialer {
	return func(ctx context.Context, addr string, callbacks *rmi.Table) (Conn, error) {
		dc := cfg
		dc.Callbacks = callbacks
		dc.TLS = tlsFor(addr)
		c, err := rmi.Dial(ctx, addr, dc)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
