package pki

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/benbjohnson/clock"
)

// ErrCAChanged is the error of a central server whose cluster CA is not the
// one pinned for its address (or for another address of its list).
var ErrCAChanged = errors.New("the cluster CA has changed")

// TrustOptions configure a ClientTrust.
type TrustOptions struct {
	// Centrals are the central servers' addresses as the user gave them
	// (host:port), all of one cluster: the keys under which its CA is
	// pinned.
	Centrals []string
	// CAFile, if set, is a copy of the cluster's ca.crt: servers are
	// verified against it, and nothing is pinned.
	CAFile string
	// KnownCentrals is the file where CAs are pinned, one "ADDRESS
	// FINGERPRINT" line per central server (used when CAFile is empty).
	KnownCentrals string
	// Notice receives the message shown when a CA is trusted on first use.
	Notice io.Writer
	// Clock gives the time certificates are checked at; default clock.New().
	Clock clock.Clock
}

// ClientTrust is how a client verifies the servers it connects to: every
// server, central or chat server, must present a certificate for the host
// dialed, signed by the cluster CA. The CA is read from TrustOptions.CAFile,
// or trusted on first use: the first central server contacted sends the
// CA along with its certificate; its fingerprint is shown and pinned for
// the central addresses in KnownCentrals, and from then on a central server
// with another CA is refused (ErrCAChanged), as SSH does with host keys.
//
// The central servers of one list are one cluster, with one CA: a CA
// pinned for any of them is the one every server must present, and it is
// pinned for the others of the list when first used with them. Addresses
// of one list pinned to different CAs are refused at once.
// It is safe for concurrent use.
type ClientTrust struct {
	o TrustOptions

	mu       sync.Mutex
	ca       *x509.Certificate // the CA servers are verified against; nil before first use
	pinned   string            // the fingerprint pinned for some of o.Centrals, if any
	pinnedAt []string          // the addresses it is pinned for
	unpinned []string          // the addresses without a pin yet
}

// NewClientTrust reads the CA file or the pins of the central addresses.
func NewClientTrust(o TrustOptions) (*ClientTrust, error) {
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	if o.Notice == nil {
		o.Notice = io.Discard
	}
	t := &ClientTrust{o: o}
	if o.CAFile != "" {
		ca, err := readCert(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster CA file: %w", err)
		}
		if !ca.IsCA {
			return nil, fmt.Errorf("cluster CA file %s: not a CA certificate", o.CAFile)
		}
		t.ca = ca
		return t, nil
	}
	if o.KnownCentrals == "" {
		return nil, errors.New("pki: neither a CA file nor a known-centrals file")
	}
	if len(o.Centrals) == 0 {
		return nil, errors.New("pki: no central server address to pin the cluster CA for")
	}
	for _, central := range o.Centrals {
		pin, err := lookupPin(o.KnownCentrals, central)
		switch {
		case err != nil:
			return nil, err
		case pin == "":
			t.unpinned = append(t.unpinned, central)
		case t.pinned != "" && pin != t.pinned:
			return nil, fmt.Errorf("%w: %s pins cluster CA %s for %s but %s for %s: "+
				"the central servers of one list must be one cluster", ErrCAChanged, o.KnownCentrals, t.pinned, t.pinnedAt[0], pin, central)
		default:
			t.pinned = pin
			t.pinnedAt = append(t.pinnedAt, central)
		}
	}
	return t, nil
}

// ClientConfig returns the TLS configuration for dialing addr.
func (t *ClientTrust) ClientConfig(addr string) *tls.Config {
	host := hostOf(addr)
	return verifyingConfig(func(chain []*x509.Certificate) error { return t.verify(chain, host) })
}

// verify checks a server's chain, trusting its CA on first use.
func (t *ClientTrust) verify(chain []*x509.Certificate, host string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.o.Clock.Now()
	if t.ca != nil {
		return verifyServer(chain, t.ca, host, now)
	}
	// First use: the chain must end in a self-signed CA that certifies
	// the server.
	if len(chain) < 2 {
		return errors.New("the server sent no cluster CA to trust; give its ca.crt with --ca")
	}
	ca := chain[len(chain)-1]
	if !ca.IsCA || ca.CheckSignatureFrom(ca) != nil {
		return errors.New("the server's chain does not end in a self-signed CA; give the cluster's ca.crt with --ca")
	}
	if err := verifyServer(chain, ca, host, now); err != nil {
		return err
	}
	fp := Fingerprint(ca)
	pinnedAt := strings.Join(t.pinnedAt, ", ")
	switch {
	case t.pinned != "" && fp != t.pinned:
		return fmt.Errorf("%w: central server %s presents cluster CA %s, but %s is pinned for %s in %s. "+
			"Someone may be intercepting the connection; or, if the cluster's CA was replaced on purpose, "+
			"delete the lines for %s from that file", ErrCAChanged, host, fp, t.pinned, pinnedAt, t.o.KnownCentrals, pinnedAt)
	case len(t.unpinned) == 0:
	case t.pinned != "":
		// Other central servers of the same cluster: the same CA.
		if err := appendPins(t.o.KnownCentrals, t.unpinned, fp); err != nil {
			return err
		}
		fmt.Fprintf(t.o.Notice, "Central server %s: the cluster CA %s pinned for %s; pinned for it too (in %s).\n",
			strings.Join(t.unpinned, ", "), fp, pinnedAt, t.o.KnownCentrals)
	default:
		if err := appendPins(t.o.KnownCentrals, t.unpinned, fp); err != nil {
			return err
		}
		fmt.Fprintf(t.o.Notice, "First connection to central server %s: trusting its cluster CA %s (pinned in %s).\n"+
			"Check it against the fingerprint the central server printed when it started.\n",
			strings.Join(t.unpinned, ", "), fp, t.o.KnownCentrals)
	}
	t.pinned, t.pinnedAt, t.unpinned = fp, append(t.pinnedAt, t.unpinned...), nil
	t.ca = ca
	return nil
}

// lookupPin returns the fingerprint pinned for central in the known-centrals
// file, or "" if none (or no file).
func lookupPin(path, central string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("known centrals: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && !strings.HasPrefix(fields[0], "#") && fields[0] == central {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("known centrals %s: %w", path, err)
	}
	return "", nil
}

// appendPins adds a "central fingerprint" line for each of centrals to the
// known-centrals file.
func appendPins(path string, centrals []string, fp string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("known centrals: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("known centrals: %w", err)
	}
	var lines strings.Builder
	for _, c := range centrals {
		fmt.Fprintf(&lines, "%s %s\n", c, fp)
	}
	_, werr := f.WriteString(lines.String())
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("known centrals %s: %w", path, err)
	}
	return nil
}
