package rmi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/rmi/rmitest"
)

// testCA is a certificate authority for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for 127.0.0.1, good for server and client
// authentication.
func (ca *testCA) issue(t testing.TB, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serverTLSConfig serves cert and verifies client certificates, if given,
// against ca.
func (ca *testCA) serverTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.pool, ClientAuth: tls.VerifyClientCertIfGiven}
}

// clientTLSConfig verifies the server against ca and presents certs.
func (ca *testCA) clientTLSConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: ca.pool, Certificates: certs}
}

// adminAPI is a cluster-only remote interface whose calls the tests count.
type adminAPI interface {
	Grant(ctx context.Context, a EchoArgs) (EchoArgs, error)
}

type adminSvc struct{ calls atomic.Int32 }

func (s *adminSvc) Grant(_ context.Context, a EchoArgs) (EchoArgs, error) {
	s.calls.Add(1)
	return EchoArgs{S: "granted", N: a.N + 1}, nil
}

// startTLSServer serves svc and a cluster-only adminSvc over TLS with a
// certificate of ca (or plaintext if ca is nil).
func startTLSServer(t *testing.T, ca *testCA, cfg ServerConfig) (*testServer, *adminSvc) {
	t.Helper()
	admin := &adminSvc{}
	if ca != nil {
		cfg.TLS = ca.serverTLSConfig(ca.issue(t, "server"))
	}
	ts := startServer(t, cfg, func(tab *Table) {
		if err := Export[adminAPI](tab, "admin", admin, ClusterOnly()); err != nil {
			t.Fatal(err)
		}
	})
	return ts, admin
}

func TestTLSIsVersion13AndWorks(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	secret := []byte("s3cret")
	ts, admin := startTLSServer(t, ca, ServerConfig{ClusterSecret: secret})

	c := dial(t, ts.addr, DialConfig{TLS: ca.clientTLSConfig(), ClusterSecret: secret})
	var out EchoArgs
	if err := c.Invoke(ctxT(t), "admin", "Grant", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("cluster call over TLS: %+v %v", out, err)
	}
	if admin.calls.Load() != 1 {
		t.Fatalf("admin ran %d times", admin.calls.Load())
	}

	// What any TLS client (openssl s_client among them) negotiates.
	tc, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
	}
	tc.Close()
	// A client that cannot go beyond TLS 1.2 is refused.
	if tc, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS12}); err == nil {
		tc.Close()
		t.Error("a TLS 1.2 client was accepted")
	}
}

// TestTLS13EvenIfAConfigSaysOtherwise: a server configuration that lets
// an older version through (here by a GetConfigForClient callback, whose
// MinVersion the outer config does not govern) still serves nothing over
// TLS 1.2: the server closes the connection right after the handshake.
func TestTLS13EvenIfAConfigSaysOtherwise(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	inner := ca.serverTLSConfig(ca.issue(t, "server"))
	inner.MinVersion = tls.VersionTLS12
	cfg := ServerConfig{TLS: &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return inner, nil },
	}, HandshakeTimeout: time.Hour} // no close by the handshake's timeout
	ts := startServer(t, cfg, nil)
	tc, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS12})
	if err != nil {
		return // refused during the handshake: fine too
	}
	defer tc.Close()
	if v := tc.ConnectionState().Version; v != tls.VersionTLS12 {
		t.Fatalf("negotiated %s; the test needs TLS 1.2", tls.VersionName(v))
	}
	// Bounded: a server that accepted the session would wait for the
	// RMI handshake instead of closing.
	if err := tc.SetReadDeadline(time.Now().Add(waitBound)); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read on a TLS 1.2 session: %v, want the server to close it", err)
	}
}

func TestTLSOpenSSLShowsTLS13(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not on PATH; .ci/run installs it")
		}
		t.Skip("openssl is not on PATH")
	}
	ca := newTestCA(t, "cluster CA")
	ts, _ := startTLSServer(t, ca, ServerConfig{})
	cmd := exec.CommandContext(ctxT(t), openssl, "s_client", "-connect", ts.addr, "-brief")
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput() // it fails to verify our test CA: that is fine
	if !bytes.Contains(out, []byte("TLSv1.3")) {
		t.Fatalf("openssl s_client did not show TLS 1.3:\n%s", out)
	}
}

func TestTLSRefusesPlaintext(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	ts, _ := startTLSServer(t, ca, ServerConfig{ClusterSecret: []byte("s3cret")})

	// An rmi client without TLS.
	_, err := Dial(ctxT(t), ts.addr, DialConfig{ClusterSecret: []byte("s3cret"), Logger: quietLog()})
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("plaintext client: %v, want ErrHandshake", err)
	}
	// Plaintext bytes: the protocol's hello, and an HTTP request. The
	// server says nothing of the protocol and hangs up.
	for _, plain := range []string{protoMagic + "\x00" + strings.Repeat("n", nonceLen), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"} {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(plain)); err != nil {
			t.Fatal(err)
		}
		if got := readUntilClosed(t, conn); bytes.Contains(got, []byte("distchat")) || bytes.Contains(got, []byte("OK")) {
			t.Errorf("server answered plaintext %q with %q", plain[:8], got)
		}
		conn.Close()
	}
	rmitest.WaitFor(t, "plaintext connections to be dropped", func() bool { return ts.srv.numConns() == 0 })
}

func TestTLSClientVerifiesServer(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	ts, _ := startTLSServer(t, ca, ServerConfig{})
	// A client trusting another CA (say, a man in the middle presenting a
	// certificate of his own) refuses the server.
	other := newTestCA(t, "someone else")
	_, err := Dial(ctxT(t), ts.addr, DialConfig{TLS: other.clientTLSConfig(), Logger: quietLog()})
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("server certified by another CA: %v", err)
	}
	// The name is checked too: the certificate is for 127.0.0.1 only.
	cfg := ca.clientTLSConfig()
	cfg.ServerName = "chat.example"
	if _, err := Dial(ctxT(t), ts.addr, DialConfig{TLS: cfg, Logger: quietLog()}); !errors.Is(err, ErrHandshake) {
		t.Fatalf("certificate for another name: %v", err)
	}
}

func TestTLSMutualForCluster(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	secret := []byte("s3cret")
	ts, admin := startTLSServer(t, ca, ServerConfig{ClusterSecret: secret, RequireClusterCert: true})
	var info PeerInfo

	peer := dial(t, ts.addr, DialConfig{TLS: ca.clientTLSConfig(ca.issue(t, "peer")), ClusterSecret: secret})
	if err := peer.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil || !info.Cluster {
		t.Fatalf("secret and certificate: %+v %v", info, err)
	}
	// The secret without a certificate is refused.
	_, err := Dial(ctxT(t), ts.addr, DialConfig{TLS: ca.clientTLSConfig(), ClusterSecret: secret, Logger: quietLog()})
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("secret without certificate: %v", err)
	}
	// A certificate of another CA fails the TLS handshake.
	other := newTestCA(t, "someone else")
	if _, err := Dial(ctxT(t), ts.addr, DialConfig{TLS: ca.clientTLSConfig(other.issue(t, "peer")), ClusterSecret: secret, Logger: quietLog()}); !errors.Is(err, ErrHandshake) {
		t.Fatalf("certificate of another CA: %v", err)
	}
	// A chat client (no certificate, no secret) is served, not as Cluster.
	user := dial(t, ts.addr, DialConfig{TLS: ca.clientTLSConfig()})
	if err := user.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil || info.Cluster {
		t.Fatalf("chat client: %+v %v", info, err)
	}
	var out EchoArgs
	if err := user.Invoke(ctxT(t), "admin", "Grant", EchoArgs{}, &out); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("chat client calling a cluster object: %v", err)
	}
	if n := admin.calls.Load(); n != 0 {
		t.Fatalf("admin ran %d times", n)
	}
}

// relay is a man in the middle at the TCP level: it passes bytes between
// one client and the server until takeOver, which cuts the client off and
// hands the attacker the connection to the server, mid-session.
type relay struct {
	addr   string
	victim net.Conn
	server net.Conn
	wg     sync.WaitGroup
	ready  chan struct{}
}

func startRelay(t *testing.T, serverAddr string) *relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r := &relay{addr: l.Addr().String(), ready: make(chan struct{})}
	go func() {
		v, err := l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", serverAddr)
		if err != nil {
			v.Close()
			return
		}
		r.victim, r.server = v, s
		r.wg.Add(2)
		go func() { defer r.wg.Done(); _, _ = io.Copy(s, v) }()
		go func() { defer r.wg.Done(); _, _ = io.Copy(v, s) }()
		close(r.ready)
	}()
	t.Cleanup(func() {
		<-r.ready
		r.victim.Close()
		r.server.Close()
	})
	return r
}

// takeOver stops relaying and returns the connection to the server.
func (r *relay) takeOver(t *testing.T) net.Conn {
	t.Helper()
	waitChan(t, "the relay to connect", r.ready)
	r.victim.Close()
	_ = r.server.SetReadDeadline(time.Now()) // stops the server-to-victim copy
	r.wg.Wait()
	_ = r.server.SetReadDeadline(time.Time{})
	return r.server
}

// hijackCall speaks the protocol after the handshake on conn, as the
// attacker who took it over: it calls admin.Grant and returns the outcome.
func hijackCall(t *testing.T, conn net.Conn) (EchoArgs, error) {
	t.Helper()
	c := newConn(conn, connConfig{clk: clock.New(), log: quietLog(), remote: "hijacked", idle: time.Minute})
	c.start()
	defer c.Close()
	args, err := Marshal(EchoArgs{N: 41})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	r := new(reply)
	go func() {
		done <- c.rc.Call(serviceMethod, &Request{Object: "admin", Method: "Grant", Timeout: int64(waitBound), Args: args}, r)
	}()
	if err := waitChan(t, "the hijacked call", done); err != nil {
		return EchoArgs{}, err
	}
	if r.resp.Failed {
		return EchoArgs{}, errors.New(r.resp.ErrMsg)
	}
	var out EchoArgs
	err = Unmarshal(r.resp.Result, &out)
	return out, err
}

// TestRelayedThenHijackedConnectionGetsNowhere is the attack of issue 7:
// a man in the middle relays a real cluster member's handshake, then takes
// the connection over and calls a cluster-only method.
func TestRelayedThenHijackedConnectionGetsNowhere(t *testing.T) {
	secret := []byte("s3cret")

	// Without TLS the attack works: this is what the test guards against,
	// and proof that the attacker below is a real one.
	t.Run("plaintext, the attack works", func(t *testing.T) {
		ts, admin := startTLSServer(t, nil, ServerConfig{ClusterSecret: secret})
		r := startRelay(t, ts.addr)
		dial(t, r.addr, DialConfig{ClusterSecret: secret})
		out, err := hijackCall(t, r.takeOver(t))
		if err != nil || out.S != "granted" || admin.calls.Load() != 1 {
			t.Fatalf("the plaintext hijack failed (%+v, %v): the test's attacker is broken", out, err)
		}
	})

	t.Run("TLS, the attack gets nowhere", func(t *testing.T) {
		ca := newTestCA(t, "cluster CA")
		ts, admin := startTLSServer(t, ca, ServerConfig{ClusterSecret: secret})
		r := startRelay(t, ts.addr)
		victim := dial(t, r.addr, DialConfig{TLS: ca.clientTLSConfig(), ClusterSecret: secret})
		var info PeerInfo
		if err := victim.Invoke(ctxT(t), "svc", "WhoAmI", EchoArgs{}, &info); err != nil || !info.Cluster {
			t.Fatalf("through the relay, before the takeover: %+v %v", info, err)
		}
		out, err := hijackCall(t, r.takeOver(t))
		if err == nil {
			t.Fatalf("hijacked call answered %+v", out)
		}
		if n := admin.calls.Load(); n != 0 {
			t.Fatalf("admin ran %d times for the attacker", n)
		}
		// The server dropped the tampered connection.
		rmitest.WaitFor(t, "the hijacked connection to be dropped", func() bool { return ts.srv.numConns() == 0 })
	})
}

// tlsTerminator is a man in the middle that runs a TLS session of its own
// with the client (with its own certificate) and another with the server,
// and relays the plaintext between them.
func tlsTerminator(t *testing.T, own tls.Certificate, serverAddr string) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{own}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			v, err := l.Accept()
			if err != nil {
				return
			}
			s, err := tls.Dial("tcp", serverAddr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				v.Close()
				continue
			}
			go func() { _, _ = io.Copy(s, v); s.Close() }()
			go func() { _, _ = io.Copy(v, s); v.Close() }()
		}
	}()
	return l.Addr().String()
}

// TestRelayedProofFailsOnAnotherTLSSession: a client that does not check
// the server's certificate (a chat server's first contact with central,
// before it has the CA) still cannot be fooled by a man in the middle with
// TLS sessions of his own, because the cluster proofs are bound to the
// TLS session they travel on.
func TestRelayedProofFailsOnAnotherTLSSession(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	secret := []byte("s3cret")
	ts, admin := startTLSServer(t, ca, ServerConfig{ClusterSecret: secret})
	mitm := tlsTerminator(t, newTestCA(t, "mitm").issue(t, "mitm"), ts.addr)

	trusting := &tls.Config{InsecureSkipVerify: true} // verifies the server by the secret alone
	_, err := Dial(ctxT(t), mitm, DialConfig{TLS: trusting, ClusterSecret: secret, Logger: quietLog()})
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "prove the cluster secret") {
		t.Fatalf("dial through the TLS-terminating relay: %v", err)
	}
	// Directly, the same client gets in.
	c := dial(t, ts.addr, DialConfig{TLS: trusting, ClusterSecret: secret})
	var out EchoArgs
	if err := c.Invoke(ctxT(t), "admin", "Grant", EchoArgs{}, &out); err != nil || admin.calls.Load() != 1 {
		t.Fatalf("direct: %v (admin ran %d times)", err, admin.calls.Load())
	}
}

// TestServerRefusesProofOfAnotherSession runs the server's side alone: a
// client proof computed for another channel binding is refused.
func TestServerRefusesProofOfAnotherSession(t *testing.T) {
	secret := []byte("s3cret")
	cli, srv := net.Pipe()
	defer cli.Close()
	res := make(chan error, 1)
	go func() {
		_, err := serverHandshake(srv, secret, []byte("binding of session B"), false)
		srv.Close()
		res <- err
	}()
	nc := bytes.Repeat([]byte{1}, nonceLen)
	fc := byte(flagSecret)
	if _, err := cli.Write(append(append([]byte(protoMagic), fc), nc...)); err != nil {
		t.Fatal(err)
	}
	hello := make([]byte, len(protoMagic)+1+nonceLen+macLen)
	if _, err := io.ReadFull(cli, hello); err != nil {
		t.Fatal(err)
	}
	fs, ns := hello[len(protoMagic)], hello[len(protoMagic)+1:len(protoMagic)+1+nonceLen]
	if _, err := cli.Write(proof(secret, clientLabel, nc, ns, fc, fs, []byte("binding of session A"))); err != nil {
		t.Fatal(err)
	}
	line, _ := readLine(cli, "")
	if err := waitChan(t, "the server handshake", res); !errors.Is(err, errBadProof) || !strings.HasPrefix(line, "ERR ") {
		t.Fatalf("proof of another session: %v, server said %q", err, line)
	}
}

// TestHandshakeTimeoutCoversTLS: a client that opens TCP and never starts
// TLS is dropped after the handshake timeout, as before TLS.
func TestHandshakeTimeoutCoversTLS(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	ts, _ := startTLSServer(t, ca, ServerConfig{HandshakeTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	readUntilClosed(t, conn)
	rmitest.WaitFor(t, "the silent connection to be dropped", func() bool { return ts.srv.numConns() == 0 })
}
