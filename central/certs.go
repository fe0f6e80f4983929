package central

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
)

// CertIssuer is the cluster's certificate authority as a remote object: it
// implements [centralapi.CertAuthority] with a [pki.CA]. Export it
// cluster-only, so that only chat servers that prove the cluster secret
// (bound to their TLS session) get certificates.
type CertIssuer struct {
	ca  *pki.CA
	log *slog.Logger
}

// NewCertIssuer returns the certificate authority's remote object.
func NewCertIssuer(ca *pki.CA, log *slog.Logger) *CertIssuer {
	if log == nil {
		log = slog.Default()
	}
	return &CertIssuer{ca: ca, log: log.With("component", "ca")}
}

// Export exports the issuer under [centralapi.CAObjectName], cluster-only.
func (i *CertIssuer) Export(t *rmi.Table) error {
	if err := rmi.Export[centralapi.CertAuthority](t, centralapi.CAObjectName, i, rmi.ClusterOnly()); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	return nil
}

// IssueCertificate implements [centralapi.CertAuthority].
func (i *CertIssuer) IssueCertificate(ctx context.Context, a centralapi.CertArgs) (centralapi.CertReply, error) {
	if err := checkServer(a.Name); err != nil {
		return centralapi.CertReply{}, fmt.Errorf("issue certificate: %w", err)
	}
	der, err := i.ca.Issue(a.Name, a.Request)
	if err != nil {
		return centralapi.CertReply{}, fmt.Errorf("issue certificate for %s: %w: %w", q(a.Name), centralapi.ErrBadCertRequest, err)
	}
	i.log.Info("issued a certificate", "server", a.Name)
	return centralapi.CertReply{Certificate: der, CA: i.ca.Certificate().Raw}, nil
}

var _ centralapi.CertAuthority = (*CertIssuer)(nil)
