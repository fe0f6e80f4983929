package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/clock"
)

// File names in the directory of the cluster secret (the CA) and in a chat
// server's data directory (ca.crt, server.crt, server.key).
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	MemberCertFile = "server.crt"
	MemberKeyFile  = "server.key"
)

// Lifetimes. A leaf certificate is renewed once two thirds of its lifetime
// have passed (see needsRenewal).
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 90 * 24 * time.Hour
	// backdate is how far before "now" a certificate becomes valid, for
	// clocks a little behind the issuer's.
	backdate = time.Hour
	// maxHosts caps the names and addresses of one certificate.
	maxHosts = 64
)

// ErrBadRequest is the error of a certificate request that cannot be
// signed (it wraps the reason).
var ErrBadRequest = errors.New("bad certificate request")

// CA is the cluster certificate authority. It is safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	clk  clock.Clock
}

// LoadOrCreateCA loads the CA from dir (ca.crt and ca.key), creating both
// if neither exists: a self-signed P-256 CA valid for ten years, the key
// written with mode 0600. It reports whether it created them.
//
// The key is written first and the certificate last, so the certificate
// is the commit point: a key without its certificate is what a creation
// cut short (a crash, a full disk) leaves, and the CA is created afresh.
// A certificate without its key is a CA that existed and lost its key,
// which only an operator can decide about: that is an error.
func LoadOrCreateCA(dir string, clk clock.Clock) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certPath)
	if errors.Is(certErr, fs.ErrNotExist) {
		ca, err := createCA(clk)
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("cluster CA: %w", err)
		}
		if err := writeKey(keyPath, ca.key); err != nil {
			return nil, false, fmt.Errorf("cluster CA: %w", err)
		}
		if err := writeCert(certPath, ca.cert.Raw); err != nil {
			return nil, false, fmt.Errorf("cluster CA: %w", err)
		}
		return ca, true, nil
	}
	cert, err := readCert(certPath)
	if err != nil {
		return nil, false, fmt.Errorf("cluster CA: %w", err)
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, false, fmt.Errorf("cluster CA: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, false, fmt.Errorf("cluster CA: %s does not belong to %s", keyPath, certPath)
	}
	if !cert.IsCA {
		return nil, false, fmt.Errorf("cluster CA: %s is not a CA certificate", certPath)
	}
	return &CA{cert: cert, key: key, clk: clk}, false, nil
}

func createCA(clk clock.Clock) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	now := clk.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "distchat cluster CA"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return &CA{cert: cert, key: key, clk: clk}, nil
}

// Certificate returns the CA's certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Fingerprint returns the CA certificate's fingerprint (see Fingerprint).
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert) }

// Issue signs a certificate request (DER PKCS #10) for the chat server
// name: the certificate names it as its subject, covers the DNS names and
// IP addresses of the request, serves for both server and client
// authentication, and lasts 90 days. It returns the certificate's DER.
func (ca *CA) Issue(name string, csrDER []byte) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("%w: the key must be ECDSA", ErrBadRequest)
	}
	if n := len(csr.DNSNames) + len(csr.IPAddresses); n == 0 || n > maxHosts {
		return nil, fmt.Errorf("%w: %d host names and addresses; want 1 to %d", ErrBadRequest, n, maxHosts)
	}
	if len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return nil, fmt.Errorf("%w: only DNS names and IP addresses may be certified", ErrBadRequest)
	}
	return ca.sign(name, csr.PublicKey, csr.DNSNames, csr.IPAddresses)
}

// sign issues a leaf certificate for pub.
func (ca *CA) sign(name string, pub any, dns []string, ips []net.IP) ([]byte, error) {
	now := ca.clk.Now()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing a certificate for %s: %w", name, err)
	}
	return der, nil
}

// tlsCertificate assembles a certificate chain (leaf, then the CA) with
// its key.
func tlsCertificate(leafDER []byte, ca *x509.Certificate, key *ecdsa.PrivateKey) (*tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{leafDER, ca.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// needsRenewal reports whether two thirds of cert's lifetime have passed
// at now (or it is not yet valid).
func needsRenewal(cert *x509.Certificate, now time.Time) bool {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return now.Before(cert.NotBefore) || !now.Before(cert.NotBefore.Add(life*2/3))
}

// splitHosts splits host names from IP addresses, dropping duplicates and
// empty entries.
func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	seen := map[string]bool{}
	for _, h := range hosts {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	return key, nil
}

// newSerial returns a random 128-bit serial number.
func newSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}
