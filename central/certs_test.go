package central

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/rmi/rmitest"
)

// TestCertIssuerOnlyForCluster: a chat server that proved the cluster
// secret gets a certificate for its hosts; anyone else is refused.
func TestCertIssuerOnlyForCluster(t *testing.T) {
	clk := clock.New()
	ca, _, err := pki.LoadOrCreateCA(t.TempDir(), clk)
	if err != nil {
		t.Fatal(err)
	}
	table := rmi.NewTable(rmitest.QuietLogger())
	if err := NewCertIssuer(ca, rmitest.QuietLogger()).Export(table); err != nil {
		t.Fatal(err)
	}
	m, err := pki.OpenMember(t.TempDir(), clk)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := m.CertificateRequest("s1", []string{"10.0.0.7", "chat1.lan"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	args := centralapi.CertArgs{Name: "s1", Request: csr}

	anon := centralapi.CAStub{Inv: rmi.Local{Table: table, Peer: rmi.NewPeer(1, "client", false, nil)}}
	if _, err := anon.IssueCertificate(ctx, args); !errors.Is(err, rmi.ErrUnauthorized) {
		t.Fatalf("without the cluster secret: %v", err)
	}
	member := centralapi.CAStub{Inv: rmi.Local{Table: table, Peer: rmi.NewPeer(2, "chat server", true, nil)}}
	rep, err := member.IssueCertificate(ctx, args)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(rep.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "s1" || len(cert.IPAddresses) != 1 || cert.DNSNames[0] != "chat1.lan" {
		t.Fatalf("certificate for %s, %v, %v", cert.Subject.CommonName, cert.IPAddresses, cert.DNSNames)
	}
	if err := m.Install(rep.Certificate, rep.CA); err != nil {
		t.Fatal(err)
	}
	_, err = member.IssueCertificate(ctx, centralapi.CertArgs{Name: "s1", Request: []byte("junk")})
	if !errors.Is(err, centralapi.ErrBadCertRequest) {
		t.Fatalf("junk request: %v", err)
	}
	_, err = member.IssueCertificate(ctx, centralapi.CertArgs{Name: "bad name!", Request: csr})
	if !errors.Is(err, centralapi.ErrBadName) {
		t.Fatalf("bad name: %v", err)
	}
}
