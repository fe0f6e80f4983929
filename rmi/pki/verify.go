package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// verifyServer checks that chain, as a server sent it (leaf first), holds a
// certificate for host (a DNS name or an IP address) signed by ca and
// valid at now.
func verifyServer(chain []*x509.Certificate, ca *x509.Certificate, host string, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("the server sent no certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: host, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("server certificate for %s: %w", host, err)
	}
	return nil
}

// verifyingConfig returns a client TLS configuration whose server check is
// verify, given the server's chain: crypto/tls's built-in check is turned
// off (InsecureSkipVerify) only because VerifyConnection does it instead,
// against a CA that may be learned while the process runs.
func verifyingConfig(verify func(chain []*x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		VerifyConnection:   func(cs tls.ConnectionState) error { return verify(cs.PeerCertificates) },
	}
}

// hostOf returns the host part of "host:port" (addr itself if it has no
// port).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
