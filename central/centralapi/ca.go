package centralapi

import (
	"context"

	"github.com/distchat/distchat/rmi"
)

// CAObjectName is the name the central process exports its
// [CertAuthority] under, cluster-only.
const CAObjectName = "CentralCA"

// ErrBadCertRequest is the error of a certificate request central will not
// sign (not a valid request, a bad server name, no or too many hosts).
var ErrBadCertRequest = rmi.NewError("central.bad_cert_request", "certificate request refused")

// CertAuthority is the cluster's certificate authority, run by central:
// chat servers, proving the cluster secret, get the certificates they
// serve TLS with and present to each other (mutual TLS).
type CertAuthority interface {
	// IssueCertificate signs a chat server's certificate request for the
	// host names and IP addresses it names, and returns the certificate
	// with the CA's own.
	IssueCertificate(ctx context.Context, args CertArgs) (CertReply, error)
}

// CertArgs are the arguments of IssueCertificate.
type CertArgs struct {
	// Name is the chat server's name; it becomes the certificate's subject.
	Name string
	// Request is a PKCS #10 certificate request (DER), signed with the
	// chat server's key, naming its DNS names and IP addresses.
	Request []byte
}

// CertReply is a certificate central issued.
type CertReply struct {
	// Certificate is the chat server's certificate (DER).
	Certificate []byte
	// CA is the cluster CA's certificate (DER), which signed it.
	CA []byte
}

// CAStub calls a remote CertAuthority through Inv.
type CAStub struct{ Inv rmi.Invoker }

// IssueCertificate implements CertAuthority.
func (s CAStub) IssueCertificate(ctx context.Context, a CertArgs) (CertReply, error) {
	return rmi.Call[CertReply](ctx, s.Inv, CAObjectName, "IssueCertificate", a)
}
