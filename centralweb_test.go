package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/rmi/rmitest"
)

// testCentral starts a central server on loopback with a web port (web
// HTTPS forced if forceTLS), and returns it with its secret file and CA.
func testCentral(t *testing.T, forceTLS bool) (*centralProc, string, *pki.CA) {
	t.Helper()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "cluster.secret")
	if _, err := ensureSecretFile(secretFile); err != nil {
		t.Fatal(err)
	}
	log := rmitest.QuietLogger()
	secret, err := readSecretFile(secretFile, log)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.New()
	ca, _, err := pki.LoadOrCreateCA(dir, clk)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := startCentral(context.Background(), centralOptions{
		dir: filepath.Join(dir, "central"), listen: "127.0.0.1:0", secret: secret, ca: ca,
		http: "127.0.0.1:0", webTLS: webTLSOptions{force: forceTLS}, clock: clk, log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	return cp, secretFile, ca
}

// TestCentralWebHTTPS: with HTTPS (forced here on loopback, as it is off
// loopback) the web port serves TLS with a certificate that chains to the
// cluster CA: a browser trusting the CA gets the login page; one that
// does not, or that speaks plain HTTP, does not.
func TestCentralWebHTTPS(t *testing.T) {
	cp, _, ca := testCentral(t, true)
	if !strings.HasPrefix(cp.web.url, "https://127.0.0.1:") {
		t.Fatalf("web URL %q", cp.web.url)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := trusting.Get(cp.web.url + "/")
	if err != nil {
		t.Fatalf("GET over HTTPS trusting the CA: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="login-form"`) {
		t.Fatalf("GET /: %s", resp.Status)
	}
	chain := resp.TLS.PeerCertificates
	if len(chain) < 2 || !chain[len(chain)-1].Equal(ca.Certificate()) {
		t.Fatalf("the server's chain does not end with the cluster CA")
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Fatalf("the web certificate does not verify against the CA: %v", err)
	}
	// Secure cookies under HTTPS.
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure under HTTPS", c.Name)
		}
	}
	var unknown x509.UnknownAuthorityError
	if _, err := http.Get(cp.web.url + "/"); !errors.As(err, &unknown) {
		t.Fatalf("a client not trusting the CA: %v, want an unknown authority", err)
	}
	resp, err = http.Get(strings.Replace(cp.web.url, "https://", "http://", 1) + "/")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP was served on the HTTPS port")
		}
	}
}

// TestCentralWebLoopback: on loopback the web port is plain HTTP, and chat
// servers that register learn its address.
func TestCentralWebLoopback(t *testing.T) {
	cp, _, _ := testCentral(t, false)
	if !strings.HasPrefix(cp.web.url, "http://127.0.0.1:") {
		t.Fatalf("web URL %q", cp.web.url)
	}
	resp, err := http.Get(cp.web.url + "/signup")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("GET /signup: %s", resp.Status)
	}
	rep, err := cp.c.RegisterServer(context.Background(), centralapi.RegisterArgs{Name: "s1", Addr: "127.0.0.1:7001"})
	if err != nil || centralapi.WebURL(rep.CentralHTTP) != cp.web.url {
		t.Fatalf("a chat server learns central's web port as %q (%v), want %s", rep.CentralHTTP, err, cp.web.url)
	}
}

// TestListenWebTaken: a port the user asked for that is taken fails,
// saying what to do; up's default moves to another port.
func TestListenWebTaken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	if _, err := listenWeb(addr, false); err == nil || !strings.Contains(err.Error(), "--http HOST:PORT") {
		t.Fatalf("listen on a taken port: %v", err)
	}
	l, err := listenWeb(addr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr().String() == addr {
		t.Fatal("fallback returned the taken port")
	}
}

// TestRunCentralPrintsWebURL: distchat central --http prints the line
// the tests and users wait for.
func TestRunCentralPrintsWebURL(t *testing.T) {
	dir := t.TempDir()
	var out rmitest.SyncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard, getenv: func(string) string { return "" }, prog: "distchat"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, e, []string{"central", "--data", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "error"})
	}()
	line := regexp.MustCompile(`(?m)^central web at (http://127\.0\.0\.1:\d+)$`)
	rmitest.WaitFor(t, "the central web line", func() bool { return line.MatchString(out.String()) })
	url := line.FindStringSubmatch(out.String())[1]
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if code := <-done; code != exitOK || resp.StatusCode != http.StatusOK {
		t.Fatalf("exit %d, GET / %s", code, resp.Status)
	}
}

// TestAdminResetPassword: the operator's command issues a code (proving
// the cluster secret) that resets the password once.
func TestAdminResetPassword(t *testing.T) {
	cp, secretFile, _ := testCentral(t, false)
	ctx := context.Background()
	if _, err := cp.c.SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: "correct horse"}); err != nil {
		t.Fatal(err)
	}
	admin := func(args ...string) (int, string, string) {
		e, out, errOut := testEnv(nil)
		code := run(ctx, e, append([]string{"admin", "reset-password", "--central", cp.addr}, args...))
		return code, out.String(), errOut.String()
	}
	code, out, errOut := admin("--cluster-secret-file", secretFile, "--user", "alice")
	m := regexp.MustCompile(`One-time reset code for "alice": (\S+)`).FindStringSubmatch(out)
	if code != exitOK || m == nil {
		t.Fatalf("admin reset-password: exit %d\n%s%s", code, out, errOut)
	}
	reset := func() error {
		_, err := cp.c.ResetPassword(ctx, centralapi.ResetArgs{User: "alice", RecoveryCode: m[1], NewPassword: "new password"})
		return err
	}
	if err := reset(); err != nil {
		t.Fatalf("reset with the operator's code: %v", err)
	}
	if err := reset(); !errors.Is(err, centralapi.ErrBadRecoveryCode) {
		t.Fatalf("the operator's code worked twice: %v", err)
	}
	if code, _, errOut := admin("--cluster-secret-file", secretFile, "--user", "nobody"); code != exitError || !strings.Contains(errOut, "no such user") {
		t.Fatalf("an unknown user: exit %d, %q", code, errOut)
	}
	wrong := filepath.Join(t.TempDir(), "other.secret")
	if _, err := ensureSecretFile(wrong); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(filepath.Dir(secretFile), pki.CACertFile)
	if code, _, errOut := admin("--cluster-secret-file", wrong, "--ca", other, "--user", "alice"); code != exitError || errOut == "" {
		t.Fatalf("a wrong cluster secret: exit %d, %q", code, errOut)
	}
	if code, _, errOut := admin("--user", "alice"); code != exitUsage || !strings.Contains(errOut, "--cluster-secret-file is required") {
		t.Fatalf("no secret: exit %d, %q", code, errOut)
	}
}
