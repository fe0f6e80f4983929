package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
)

// certRetry is how long a chat server waits to try again after a failed
// certificate renewal (there is time: renewal starts a month before
// expiry).
const certRetry = time.Minute

// certKeeper keeps a chat server's certificate current: it asks central for
// one when the server registers (if it has none, it is due for renewal, or
// it covers other hosts), and again, on its own, when it is due.
type certKeeper struct {
	member *pki.Member
	ca     centralapi.CertAuthority
	name   string
	dir    string
	hosts  []string
	clk    clock.Clock
	log    *slog.Logger

	mu     sync.Mutex
	timer  *clock.Timer
	closed bool
}

// ensure gets a certificate from central if the server needs one, and
// arms the renewal timer.
func (k *certKeeper) ensure(ctx context.Context) error {
	if k.member.NeedsCertificate(k.hosts) {
		csr, err := k.member.CertificateRequest(k.name, k.hosts)
		if err != nil {
			return err
		}
		rep, err := k.ca.IssueCertificate(ctx, centralapi.CertArgs{Name: k.name, Request: csr})
		if err != nil {
			if errors.Is(err, rmi.ErrHandshake) && k.member.CA() != nil {
				err = fmt.Errorf("%w (if the cluster CA was replaced, delete %s and %s)", err,
					filepath.Join(k.dir, pki.CACertFile), filepath.Join(k.dir, pki.MemberCertFile))
			}
			return fmt.Errorf("certificate from central: %w", err)
		}
		if err := k.member.Install(rep.Certificate, rep.CA); err != nil {
			return fmt.Errorf("certificate from central: %w", err)
		}
		k.log.Info("got a certificate from central", "server", k.name, "hosts", k.hosts,
			"expires", k.member.Certificate().NotAfter, "ca", pki.Fingerprint(k.member.CA()))
	}
	k.schedule(k.member.RenewAt().Sub(k.clk.Now()))
	return nil
}

// schedule arms the renewal timer to fire after d.
func (k *certKeeper) schedule(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	if k.timer != nil {
		k.timer.Stop()
	}
	k.timer = k.clk.AfterFunc(max(d, 0), k.renew)
}

// renew is the renewal timer's work.
func (k *certKeeper) renew() {
	ctx, cancel := k.clk.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.ensure(ctx); err != nil {
		k.log.Warn("renewing the certificate failed; will retry", "server", k.name, "in", certRetry, "err", err)
		k.schedule(certRetry)
	}
}

// close stops the renewal timer.
func (k *certKeeper) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	if k.timer != nil {
		k.timer.Stop()
	}
}
