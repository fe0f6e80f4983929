package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/rmi/rmitest"
)

// flakyCA is a certificate authority that fails while down is set.
type flakyCA struct {
	centralapi.CertAuthority
	down  atomic.Bool
	calls atomic.Int32
}

func (f *flakyCA) IssueCertificate(ctx context.Context, a centralapi.CertArgs) (centralapi.CertReply, error) {
	// Decide before counting: a test that saw the count knows the outcome.
	down := f.down.Load()
	f.calls.Add(1)
	if down {
		return centralapi.CertReply{}, errors.New("central unreachable")
	}
	return f.CertAuthority.IssueCertificate(ctx, a)
}

// TestCertKeeperRenewsBeforeExpiry: a chat server gets its certificate
// when it registers, asks for a new one on its own when two thirds of its
// lifetime have passed, and retries a failed renewal.
func TestCertKeeperRenewsBeforeExpiry(t *testing.T) {
	clk := clocktest.New()
	clk.Set(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ca, _, err := pki.LoadOrCreateCA(t.TempDir(), clk)
	if err != nil {
		t.Fatal(err)
	}
	member, err := pki.OpenMember(t.TempDir(), clk)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &flakyCA{CertAuthority: central.NewCertIssuer(ca, rmitest.QuietLogger())}
	k := &certKeeper{member: member, ca: issuer, name: "s1", hosts: []string{"127.0.0.1"}, clk: clk, log: rmitest.QuietLogger()}
	defer k.close()

	if err := k.ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := member.Certificate()
	if first == nil || issuer.calls.Load() != 1 {
		t.Fatalf("no certificate at registration (%d calls)", issuer.calls.Load())
	}
	// Registering again (a restart, a lost lease) asks for nothing new.
	if err := k.ensure(context.Background()); err != nil || issuer.calls.Load() != 1 {
		t.Fatalf("asked again for a fresh certificate: %v, %d calls", err, issuer.calls.Load())
	}

	// The timers run their work on goroutines of their own: wait for it.
	issuer.down.Store(true)
	clk.Add(member.RenewAt().Sub(clk.Now()) - time.Second)
	if n := issuer.calls.Load(); n != 1 {
		t.Fatalf("renewed early: %d calls", n)
	}
	clk.Add(time.Second)
	rmitest.WaitFor(t, "a renewal at two thirds of the lifetime", func() bool { return issuer.calls.Load() == 2 })
	if member.Certificate() != first {
		t.Fatal("the certificate changed though central was down")
	}
	issuer.down.Store(false)
	// The retry is due a minute after the failure: step the clock until it
	// comes (the failed attempt arms it on its own goroutine).
	start := clk.Now()
	rmitest.WaitFor(t, "the renewal retried", func() bool {
		clk.Add(time.Second)
		return member.Certificate() != first
	})
	if waited := clk.Now().Sub(start); waited < certRetry {
		t.Fatalf("retried after %v, before %v", waited, certRetry)
	}
	if renewed := member.Certificate(); issuer.calls.Load() != 3 || !renewed.NotAfter.After(first.NotAfter) {
		t.Fatalf("renewal: %d calls, expires %v (was %v)", issuer.calls.Load(), renewed.NotAfter, first.NotAfter)
	}
}
