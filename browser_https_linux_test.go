package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"
)

// The HTTPS test runs in a network namespace of its own, where httpsHost
// is an address of the loopback interface that is not a loopback
// address: the web ports serve HTTPS there (centralapi.WebURL's rule),
// and no packet can leave the namespace.
const (
	httpsHost     = "198.18.0.1"          // the benchmarking range (RFC 2544), never routed here
	netnsChildEnv = "DISTCHAT_TEST_NETNS" // set in the re-run of the test inside the namespace
)

// TestBrowserHTTPS checks the HTTPS path with the cluster CA: central and
// a chat server with web ports off loopback serve HTTPS with certificates
// of the cluster CA; a chromium that trusts the CA (an NSS database under
// its HOME, made with certutil; no --ignore-certificate-errors) loads the
// login page as secure, signs up, logs in and connects the chat app over
// wss; a chromium without the CA refuses the page.
func TestBrowserHTTPS(t *testing.T) {
	needChromium(t)
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("certutil is not installed; .ci/run installs libnss3-tools")
		}
		t.Skip("certutil is not installed (apt-get install libnss3-tools)")
	}
	if os.Getenv(netnsChildEnv) == "" {
		runInNetns(t)
		return
	}
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", httpsHost + "/32", "dev", "lo"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	h := newClusterWith(t, clusterOptions{servers: 1, host: httpsHost, web: true})
	server := h.procs[h.serverNames[0]].web
	for _, u := range []string{h.centralWeb, server} {
		if !strings.HasPrefix(u, "https://") {
			t.Fatalf("web port off loopback at %s, want https", u)
		}
	}

	// Without the CA, chromium refuses central's certificate.
	stranger := newBrowser(t, "stranger", "")
	ctx, cancel := context.WithTimeout(stranger.ctx, browserCall)
	err = chromedp.Do(ctx, chromedp.Navigate(h.centralWeb+"/"))
	cancel()
	if err == nil || !strings.Contains(err.Error(), "ERR_CERT") {
		t.Fatalf("a browser without the cluster CA loading %s: %v, want a certificate error", h.centralWeb, err)
	}

	// With the CA in its NSS database, it loads the pages as secure.
	home := t.TempDir()
	nssdb := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-d", nssdb, "-N", "--empty-password"},
		{"-d", nssdb, "-A", "-t", "C,,", "-n", "distchat cluster CA", "-i", h.ca},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b := newBrowser(t, "ann", home)
	ctx, cancel = context.WithTimeout(b.ctx, browserCall)
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(h.centralWeb+"/"))
	cancel()
	if err != nil {
		t.Fatalf("a browser that trusts the cluster CA loading %s: %v", h.centralWeb, err)
	}
	if resp.Status != 200 || resp.SecurityState != security.StateSecure {
		t.Fatalf("%s: status %d, security state %q; want 200, secure", h.centralWeb, resp.Status, resp.SecurityState)
	}
	b.waitSel("#login-form")
	if fp := b.textOf("#ca-fingerprint"); !strings.Contains(fp, h.caPrint) {
		t.Errorf("#ca-fingerprint shows %q, want %s", fp, h.caPrint)
	}
	caPEM, err := os.ReadFile(h.ca)
	if err != nil {
		t.Fatal(err)
	}
	// The page's CSP lets no script fetch, so the link is followed here,
	// over TLS that trusts only the cluster CA.
	href := mustEval[string](b, `document.querySelector("#ca-link").href`)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", h.ca)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: browserCall}
	res, err := hc.Get(href)
	if err != nil {
		t.Fatalf("fetch the CA from the login page's link %s: %v", href, err)
	}
	servedBytes, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("fetch the CA from %s: status %d, %v", href, res.StatusCode, err)
	}
	served := string(servedBytes)
	if !bytes.Equal(bytes.TrimSpace([]byte(served)), bytes.TrimSpace(caPEM)) {
		t.Errorf("the CA link serves\n%s\nwant the cluster CA\n%s", served, caPEM)
	}
	signupWeb(b, h.centralWeb, "ann", password("ann"), false)
	loginWeb(b, h.centralWeb, "ann", password("ann"))
	if o := b.origin(); o != originOf(t, server) {
		t.Fatalf("after login the app is at %s, want the chat server's %s", o, server)
	}
	b.roomDialog("#create-room", "secure")
	b.post("over https and wss", true)
	if d := b.openedDialogs(); len(d) != 0 {
		t.Errorf("the pages opened dialogs %q", d)
	}
}

// runInNetns runs TestBrowserHTTPS again, in a new network namespace
// (needs root, as CI has), and reports its output.
func runInNetns(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBrowserHTTPS$", "-test.v", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot make a network namespace (%v); CI runs as root and must", err)
		}
		t.Skipf("cannot make a network namespace for a non-loopback address (%v); needs root", err)
	}
	if err != nil {
		t.Fatalf("TestBrowserHTTPS in its network namespace: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestBrowserHTTPS")) {
		t.Fatalf("TestBrowserHTTPS in its network namespace did not pass:\n%s", out)
	}
	t.Logf("in its network namespace:\n%s", out)
}
