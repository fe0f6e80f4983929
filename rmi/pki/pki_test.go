package pki

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/distchat/distchat/rmi/clocktest"
)

// handshake runs a TLS handshake between a client and a server
// configuration over an in-memory pipe and returns both sides' states.
func handshake(t *testing.T, client, server *tls.Config) (cs, ss tls.ConnectionState, err error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srvDone := make(chan error, 1)
	srv := tls.Server(b, server)
	go func() {
		err := srv.Handshake()
		if err != nil {
			b.Close() // unblock the client
		}
		srvDone <- err
	}()
	cli := tls.Client(a, client)
	cerr := cli.Handshake()
	if cerr != nil {
		a.Close()
	}
	serr := <-srvDone
	return cli.ConnectionState(), srv.ConnectionState(), errors.Join(cerr, serr)
}

// withName sets the name a TLS client sends (crypto/tls needs one or
// InsecureSkipVerify; ours verify in VerifyConnection against the host
// they were made for).
func withName(cfg *tls.Config, name string) *tls.Config {
	cfg.ServerName = name
	return cfg
}

func newTestCA(t *testing.T, clk clock.Clock) (*CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, created, err := LoadOrCreateCA(dir, clk)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateCA: %v (created %v)", err, created)
	}
	return ca, dir
}

// member returns a chat server with a certificate from ca for hosts.
func member(t *testing.T, ca *CA, clk clock.Clock, name string, hosts ...string) *Member {
	t.Helper()
	m, err := OpenMember(t.TempDir(), clk)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := m.CertificateRequest(name, hosts)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.Issue(name, csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Install(der, ca.Certificate().Raw); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCACreatedOnceWithPrivateKey(t *testing.T) {
	clk := clock.New()
	ca, dir := newTestCA(t, clk)
	st, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v, %v", st, err)
	}
	again, created, err := LoadOrCreateCA(dir, clk)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateCA: %v (created %v)", err, created)
	}
	if again.Fingerprint() != ca.Fingerprint() {
		t.Fatal("the CA changed on reload")
	}
	if !strings.HasPrefix(ca.Fingerprint(), "SHA256:") {
		t.Fatalf("fingerprint %q", ca.Fingerprint())
	}
	// A certificate without its key is a CA that lost its key: an error
	// for the operator, never a silent new CA.
	key, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateCA(dir, clk); err == nil {
		t.Fatal("a CA certificate without its key was accepted")
	}
	// A key without its certificate is a creation cut short (the
	// certificate is written last): the CA is created afresh.
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	fresh, created, err := LoadOrCreateCA(dir, clk)
	if err != nil || !created || fresh.Fingerprint() == ca.Fingerprint() {
		t.Fatalf("after a cut-short creation: %v (created %v)", err, created)
	}
	if again, _, err := LoadOrCreateCA(dir, clk); err != nil || again.Fingerprint() != fresh.Fingerprint() {
		t.Fatalf("the fresh CA does not load: %v", err)
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	clk := clock.New()
	ca, _ := newTestCA(t, clk)
	m, err := OpenMember(t.TempDir(), clk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue("s1", []byte("not a request")); !errors.Is(err, ErrBadRequest) {
		t.Errorf("garbage: %v", err)
	}
	csr, err := m.CertificateRequest("s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue("s1", csr); !errors.Is(err, ErrBadRequest) {
		t.Errorf("no hosts: %v", err)
	}
	// A certificate from another CA is not installed.
	other, _ := newTestCA(t, clk)
	csr, _ = m.CertificateRequest("s1", []string{"127.0.0.1"})
	der, err := other.Issue("s1", csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Install(der, ca.Certificate().Raw); err == nil {
		t.Error("installed a certificate not signed by the CA given")
	}
}

func TestMutualTLSBetweenMembers(t *testing.T) {
	clk := clock.New()
	ca, _ := newTestCA(t, clk)
	a := member(t, ca, clk, "a", "127.0.0.1", "chat-a.example")
	b := member(t, ca, clk, "b", "127.0.0.1")

	cs, ss, err := handshake(t, withName(b.ClientConfig("chat-a.example:7000"), "chat-a.example"), a.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("version %s", tls.VersionName(cs.Version))
	}
	if len(ss.VerifiedChains) == 0 || ss.PeerCertificates[0].Subject.CommonName != "b" {
		t.Errorf("a did not verify b's client certificate: %+v", ss.PeerCertificates)
	}
	// a's certificate does not cover other names.
	if _, _, err := handshake(t, withName(b.ClientConfig("chat-z.example:7000"), "chat-z.example"), a.ServerConfig()); err == nil {
		t.Error("b accepted a's certificate for a name it does not cover")
	}
	// A member of another cluster is refused both ways.
	other, _ := newTestCA(t, clk)
	x := member(t, other, clk, "x", "127.0.0.1")
	if _, _, err := handshake(t, withName(x.ClientConfig("127.0.0.1:7000"), "x"), a.ServerConfig()); err == nil {
		t.Error("a member of another cluster got in")
	}
	if _, _, err := handshake(t, withName(a.ClientConfig("127.0.0.1:7000"), "x"), x.ServerConfig()); err == nil {
		t.Error("a accepted a server of another cluster")
	}
}

func TestMemberRenewsAndReloads(t *testing.T) {
	clk := clocktest.New()
	clk.Set(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ca, _ := newTestCA(t, clk)
	dir := t.TempDir()
	m, err := OpenMember(dir, clk)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"127.0.0.1", "chat.example"}
	if !m.NeedsCertificate(hosts) || m.CA() != nil {
		t.Fatal("a fresh member needs a certificate and knows no CA")
	}
	// Before it has a certificate, it serves no TLS.
	if _, _, err := handshake(t, &tls.Config{InsecureSkipVerify: true}, m.ServerConfig()); err == nil {
		t.Fatal("served TLS without a certificate")
	}
	csr, _ := m.CertificateRequest("s1", hosts)
	der, err := ca.Issue("s1", csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Install(der, ca.Certificate().Raw); err != nil {
		t.Fatal(err)
	}
	if m.NeedsCertificate(hosts) {
		t.Fatal("needs a certificate right after getting one")
	}
	if !m.NeedsCertificate([]string{"127.0.0.2"}) {
		t.Fatal("a certificate for other hosts does not do")
	}
	reopened, err := OpenMember(dir, clk)
	if err != nil || reopened.NeedsCertificate(hosts) || reopened.CA() == nil {
		t.Fatalf("reopened: %v", err)
	}
	before, _, err := handshake(t, &tls.Config{InsecureSkipVerify: true}, m.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(m.RenewAt().Sub(clk.Now()))
	if !m.NeedsCertificate(hosts) {
		t.Fatal("not due for renewal two thirds into its lifetime")
	}
	// The renewed certificate is what handshakes present from then on
	// (the served configuration is shared, and made again on a change).
	csr, _ = m.CertificateRequest("s1", hosts)
	if der, err = ca.Issue("s1", csr); err != nil {
		t.Fatal(err)
	}
	if err := m.Install(der, ca.Certificate().Raw); err != nil {
		t.Fatal(err)
	}
	after, _, err := handshake(t, &tls.Config{InsecureSkipVerify: true}, m.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got, old := after.PeerCertificates[0].SerialNumber, before.PeerCertificates[0].SerialNumber; got.Cmp(old) == 0 || got.Cmp(m.Certificate().SerialNumber) != 0 {
		t.Errorf("after renewal handshakes present serial %v; the old one was %v, the new one %v", got, old, m.Certificate().SerialNumber)
	}
	// Another CA's certificate is refused once the CA is known.
	other, _ := newTestCA(t, clk)
	der, _ = other.Issue("s1", csr)
	if err := m.Install(der, other.Certificate().Raw); err == nil {
		t.Fatal("a member switched CAs")
	}
}

func TestCentralCertificateRenewed(t *testing.T) {
	clk := clocktest.New()
	clk.Set(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ca, _ := newTestCA(t, clk)
	cfg := ca.CentralCert([]string{"127.0.0.1", "central.example"}).ServerConfig()
	first, err := cfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := cfg.GetCertificate(nil); again != first {
		t.Fatal("reissued a fresh certificate")
	}
	clk.Add(leafLifetime * 2 / 3)
	renewed, err := cfg.GetCertificate(nil)
	if err != nil || renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("not renewed: %v", err)
	}
}

func TestClientTrustOnFirstUse(t *testing.T) {
	clk := clock.New()
	ca, _ := newTestCA(t, clk)
	central := ca.CentralCert([]string{"127.0.0.1"}).ServerConfig()
	known := filepath.Join(t.TempDir(), "distchat", "known_centrals")
	const addr = "127.0.0.1:1099"
	newTrust := func(notice *bytes.Buffer) *ClientTrust {
		tr, err := NewClientTrust(TrustOptions{Centrals: []string{addr}, KnownCentrals: known, Notice: notice, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}

	var notice bytes.Buffer
	tr := newTrust(&notice)
	if _, _, err := handshake(t, withName(tr.ClientConfig(addr), "central"), central); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if !strings.Contains(notice.String(), ca.Fingerprint()) {
		t.Fatalf("first use did not show the fingerprint: %q", notice.String())
	}
	b, _ := os.ReadFile(known)
	if string(b) != addr+" "+ca.Fingerprint()+"\n" {
		t.Fatalf("known centrals: %q", b)
	}
	// The chat servers it is sent to are verified against the same CA.
	chat := member(t, ca, clk, "s1", "127.0.0.1")
	if _, _, err := handshake(t, withName(tr.ClientConfig("127.0.0.1:7000"), "s1"), chat.ServerConfig()); err != nil {
		t.Fatalf("chat server of the same cluster: %v", err)
	}
	otherCA, _ := newTestCA(t, clk)
	rogue := member(t, otherCA, clk, "s1", "127.0.0.1")
	if _, _, err := handshake(t, withName(tr.ClientConfig("127.0.0.1:7000"), "s1"), rogue.ServerConfig()); err == nil {
		t.Fatal("a chat server of another CA was accepted")
	}

	// Next run: the pin holds, nothing is shown.
	notice.Reset()
	if _, _, err := handshake(t, withName(newTrust(&notice).ClientConfig(addr), "central"), central); err != nil || notice.Len() != 0 {
		t.Fatalf("second run: %v, notice %q", err, notice.String())
	}
	// A central server with another CA at that address is refused.
	impostor := otherCA.CentralCert([]string{"127.0.0.1"}).ServerConfig()
	_, _, err := handshake(t, withName(newTrust(&notice).ClientConfig(addr), "central"), impostor)
	if !errors.Is(err, ErrCAChanged) || !strings.Contains(err.Error(), known) {
		t.Fatalf("changed CA: %v", err)
	}
}

func TestClientTrustWithCAFile(t *testing.T) {
	clk := clock.New()
	ca, dir := newTestCA(t, clk)
	tr, err := NewClientTrust(TrustOptions{CAFile: filepath.Join(dir, CACertFile), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, withName(tr.ClientConfig("127.0.0.1:1099"), "c"), ca.CentralCert([]string{"127.0.0.1"}).ServerConfig()); err != nil {
		t.Fatal(err)
	}
	other, _ := newTestCA(t, clk)
	if _, _, err := handshake(t, withName(tr.ClientConfig("127.0.0.1:1099"), "c"), other.CentralCert([]string{"127.0.0.1"}).ServerConfig()); err == nil {
		t.Fatal("a central server of another CA was accepted")
	}
}

// TestCentralDialsMembers: central, calling a chat server, verifies it
// against the CA and presents its own certificate (mutual TLS).
func TestCentralDialsMembers(t *testing.T) {
	clk := clock.New()
	ca, _ := newTestCA(t, clk)
	chat := member(t, ca, clk, "s1", "127.0.0.1")
	cc := ca.CentralCert([]string{"127.0.0.1"})
	_, ss, err := handshake(t, cc.ClientConfig("127.0.0.1:7000"), chat.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.VerifiedChains) == 0 || ss.PeerCertificates[0].Subject.CommonName != "central" {
		t.Fatalf("the chat server did not verify central's certificate: %+v", ss.PeerCertificates)
	}
	other, _ := newTestCA(t, clk)
	rogue := member(t, other, clk, "s1", "127.0.0.1")
	if _, _, err := handshake(t, cc.ClientConfig("127.0.0.1:7000"), rogue.ServerConfig()); err == nil {
		t.Fatal("central accepted a chat server of another CA")
	}
}

func TestClientTrustListOfCentrals(t *testing.T) {
	clk := clock.New()
	ca, _ := newTestCA(t, clk)
	central := ca.CentralCert([]string{"127.0.0.1"}).ServerConfig()
	known := filepath.Join(t.TempDir(), "distchat", "known_centrals")
	const a, b, c = "127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"
	newTrust := func(notice *bytes.Buffer, centrals ...string) (*ClientTrust, error) {
		return NewClientTrust(TrustOptions{Centrals: centrals, KnownCentrals: known, Notice: notice, Clock: clk})
	}
	lines := func() string {
		b, _ := os.ReadFile(known)
		return string(b)
	}

	// First use with a list pins the CA for every address of it.
	var notice bytes.Buffer
	tr, err := newTrust(&notice, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, withName(tr.ClientConfig(b), "central"), central); err != nil {
		t.Fatalf("first use: %v", err)
	}
	fp := ca.Fingerprint()
	if want := a + " " + fp + "\n" + b + " " + fp + "\n"; lines() != want {
		t.Fatalf("known centrals %q, want %q", lines(), want)
	}
	if !strings.Contains(notice.String(), a+", "+b) || !strings.Contains(notice.String(), fp) {
		t.Fatalf("first use notice %q", notice.String())
	}

	// A list with a pinned address and a new one: the CA pinned for b is
	// accepted at c, and pinned for c too.
	notice.Reset()
	if tr, err = newTrust(&notice, b, c); err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, withName(tr.ClientConfig(c), "central"), central); err != nil {
		t.Fatalf("a new address of the same cluster: %v", err)
	}
	if !strings.HasSuffix(lines(), c+" "+fp+"\n") || !strings.Contains(notice.String(), "pinned for it too") {
		t.Fatalf("known centrals %q, notice %q", lines(), notice.String())
	}
	// Everything pinned: nothing more is written or shown.
	notice.Reset()
	before := lines()
	if tr, err = newTrust(&notice, a, b, c); err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, withName(tr.ClientConfig(a), "central"), central); err != nil || notice.Len() != 0 || lines() != before {
		t.Fatalf("all pinned: %v, notice %q, known centrals %q", err, notice.String(), lines())
	}

	// Another CA at a new address of the list is refused: the list's pin
	// holds for every address of it.
	otherCA, _ := newTestCA(t, clk)
	impostor := otherCA.CentralCert([]string{"127.0.0.1"}).ServerConfig()
	const d = "127.0.0.1:7003"
	if tr, err = newTrust(&notice, a, d); err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, withName(tr.ClientConfig(d), "central"), impostor); !errors.Is(err, ErrCAChanged) {
		t.Fatalf("another CA at a new address of the list: %v", err)
	}
	if strings.Contains(lines(), d) {
		t.Fatalf("the refused address was pinned: %q", lines())
	}

	// A list whose addresses are pinned to different CAs is refused.
	if err := appendPins(known, []string{d}, otherCA.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	if _, err := newTrust(&notice, a, d); !errors.Is(err, ErrCAChanged) || !strings.Contains(err.Error(), d) {
		t.Fatalf("a list of two clusters: %v", err)
	}
	if _, err := newTrust(&notice); err == nil {
		t.Fatal("no central address accepted")
	}
}
