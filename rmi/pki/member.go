package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// Member is a chat server's place in the cluster's PKI: its key, its
// certificate and the cluster CA, kept in its data directory (server.key,
// mode 0600; server.crt; ca.crt). It is safe for concurrent use.
type Member struct {
	dir string
	clk clock.Clock
	key *ecdsa.PrivateKey

	mu   sync.Mutex
	ca   *x509.Certificate // nil until learned from central
	cert *tls.Certificate  // nil until central issued one
	// served is the configuration handshakes are served with, made from
	// ca and cert on first use and again after they change: every
	// connection keeps its handshake's configuration, so one shared
	// config (and CA pool) rather than one each saves ~1.4 KB per
	// connection.
	served *tls.Config
}

// OpenMember loads a chat server's key, certificate and CA from dir,
// creating the key if there is none. A certificate that does not belong
// to the key or is not signed by the CA is ignored (a new one is asked
// for).
func OpenMember(dir string, clk clock.Clock) (*Member, error) {
	m := &Member{dir: dir, clk: clk}
	keyPath := filepath.Join(dir, MemberKeyFile)
	key, err := readKey(keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if key, err = newKey(); err != nil {
			return nil, err
		}
		if err := writeKey(keyPath, key); err != nil {
			return nil, fmt.Errorf("chat server key: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("chat server key: %w", err)
	}
	m.key = key
	ca, err := readCert(filepath.Join(dir, CACertFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return m, nil // first run: the CA comes from central
	case err != nil:
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	m.ca = ca
	cert, err := readCert(filepath.Join(dir, MemberCertFile))
	if err == nil && key.PublicKey.Equal(cert.PublicKey) && cert.CheckSignatureFrom(ca) == nil {
		m.cert = &tls.Certificate{Certificate: [][]byte{cert.Raw, ca.Raw}, PrivateKey: key, Leaf: cert}
	}
	return m, nil
}

// CA returns the cluster CA, or nil before it was learned.
func (m *Member) CA() *x509.Certificate {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ca
}

// Certificate returns the chat server's certificate, or nil before central
// issued one.
func (m *Member) Certificate() *x509.Certificate {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cert == nil {
		return nil
	}
	return m.cert.Leaf
}

// NeedsCertificate reports whether the chat server must ask central for a
// certificate covering hosts: it has none, or two thirds of its lifetime
// have passed, or it covers other hosts.
func (m *Member) NeedsCertificate(hosts []string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cert == nil || needsRenewal(m.cert.Leaf, m.clk.Now()) {
		return true
	}
	dns, ips := splitHosts(hosts)
	return !slices.Equal(sortedNames(dns, ips), sortedNames(m.cert.Leaf.DNSNames, m.cert.Leaf.IPAddresses))
}

// RenewAt returns when the current certificate is due for renewal (the
// zero time if there is none).
func (m *Member) RenewAt() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cert == nil {
		return time.Time{}
	}
	c := m.cert.Leaf
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

func sortedNames(dns []string, ips []net.IP) []string {
	out := slices.Clone(dns)
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

// CertificateRequest returns a certificate request (DER PKCS #10) for the
// chat server name, covering hosts (DNS names and IP addresses).
func (m *Member) CertificateRequest(name string, hosts []string) ([]byte, error) {
	dns, ips := splitHosts(hosts)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: dns, IPAddresses: ips,
	}, m.key)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return der, nil
}

// Install stores a certificate central issued (certDER) with the CA that
// signed it (caDER). The certificate must be for this chat server's key
// and signed by the CA; if the CA was known already, it must be the same.
func (m *Member) Install(certDER, caDER []byte) error {
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("cluster CA from central: %w", err)
	}
	cert, err := tlsCertificate(certDER, ca, m.key)
	if err != nil {
		return err
	}
	if !m.key.PublicKey.Equal(cert.Leaf.PublicKey) {
		return errors.New("central issued a certificate for another key")
	}
	if err := cert.Leaf.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("central's certificate is not signed by its CA: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ca != nil && !bytes.Equal(m.ca.Raw, ca.Raw) {
		return fmt.Errorf("central's CA %s is not the cluster CA %s in %s", Fingerprint(ca), Fingerprint(m.ca), filepath.Join(m.dir, CACertFile))
	}
	if m.ca == nil {
		if err := writeCert(filepath.Join(m.dir, CACertFile), ca.Raw); err != nil {
			return err
		}
	}
	if err := writeCert(filepath.Join(m.dir, MemberCertFile), certDER); err != nil {
		return err
	}
	m.ca, m.cert = ca, cert
	m.served = nil
	return nil
}

// ServerConfig returns the TLS configuration the chat server listens with:
// its current certificate, and client certificates (other chat servers')
// verified against the CA when presented. Until central issued a
// certificate, TLS handshakes fail.
func (m *Member) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.cert == nil {
				return nil, errors.New("no certificate yet: not registered with central")
			}
			if m.served == nil {
				pool := x509.NewCertPool()
				pool.AddCert(m.ca)
				m.served = &tls.Config{
					MinVersion:   tls.VersionTLS13,
					Certificates: []tls.Certificate{*m.cert},
					ClientAuth:   tls.VerifyClientCertIfGiven,
					ClientCAs:    pool,
					Time:         m.clk.Now,
				}
			}
			return m.served, nil
		},
	}
}

// ClientConfig returns the TLS configuration for dialing central or
// another chat server at addr: the server must have a certificate for
// addr's host signed by the cluster CA, and this chat server presents its
// own certificate (mutual TLS). Before the CA is known, on the first
// contact with central, any server certificate is accepted: the dial must
// then carry the cluster secret, whose proof, bound to the TLS session, is
// what authenticates central (see package rmi).
func (m *Member) ClientConfig(addr string) *tls.Config {
	host := hostOf(addr)
	cfg := verifyingConfig(func(chain []*x509.Certificate) error {
		ca := m.CA()
		if ca == nil {
			return nil // first contact: the cluster secret authenticates the server
		}
		return verifyServer(chain, ca, host, m.clk.Now())
	})
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.cert == nil {
			return &tls.Certificate{}, nil // none yet: present nothing
		}
		return m.cert, nil
	}
	return cfg
}
