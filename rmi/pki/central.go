package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
)

// CentralCert is the central server's own certificate: signed by the
// cluster CA for the central server's host names and IPs, issued on first
// use and again whenever it is due for renewal (it is never written to
// disk: the CA can always sign another). It is safe for concurrent use.
type CentralCert struct {
	ca  *CA
	dns []string
	ips []net.IP

	mu  sync.Mutex
	cur *tls.Certificate
}

// CentralCert returns the central server's certificate for hosts (host
// names and IP addresses).
func (ca *CA) CentralCert(hosts []string) *CentralCert {
	dns, ips := splitHosts(hosts)
	return &CentralCert{ca: ca, dns: dns, ips: ips}
}

// current returns the certificate, issuing a new one first if there is
// none or it is due for renewal.
func (c *CentralCert) current() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && !needsRenewal(c.cur.Leaf, c.ca.clk.Now()) {
		return c.cur, nil
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	der, err := c.ca.sign("central", &key.PublicKey, c.dns, c.ips)
	if err != nil {
		return nil, err
	}
	cert, err := tlsCertificate(der, c.ca.cert, key)
	if err != nil {
		return nil, err
	}
	c.cur = cert
	return cert, nil
}

// ServerConfig returns the central server's TLS configuration: its
// certificate, with the CA in the chain it sends (so that clients can pin
// the CA on first use), and client certificates verified against the CA
// when presented (chat servers present theirs).
func (c *CentralCert) ServerConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(c.ca.cert)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  pool,
		Time:       c.ca.clk.Now,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.current()
		},
	}
}

// ClientConfig returns the TLS configuration for the central server to
// dial a chat server at addr (with the cluster secret): the chat server
// must have a certificate for addr's host signed by the CA, and central
// presents its own certificate, as chat servers require of cluster peers.
func (c *CentralCert) ClientConfig(addr string) *tls.Config {
	host := hostOf(addr)
	cfg := verifyingConfig(func(chain []*x509.Certificate) error {
		return verifyServer(chain, c.ca.cert, host, c.ca.clk.Now())
	})
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return c.current()
	}
	return cfg
}
