package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/central/kv/etcdkv"
)

// writeCert writes a certificate for localhost and 127.0.0.1, for server
// and client use, signed by parent (self-signed if nil), and its key; it
// returns the certificate and key for signing others.
func writeCert(t *testing.T, dir, name string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".crt", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestEtcdOverTLS: an embedded member started with --etcd-member-cert,
// -key and -ca serves only TLS clients with a certificate its CA signed:
// central's --etcd-ca, --etcd-cert and --etcd-key reach it and keep state
// there; without a client certificate, or trusting another CA, the
// connection is refused.
func TestEtcdOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd member")
	}
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", true, nil, nil)
	writeCert(t, dir, "member", false, ca, caKey)
	writeCert(t, dir, "other-ca", true, nil, nil)
	// Unix sockets over TLS: unixs://localhost:N is the socket file
	// "localhost:N" in the working directory, here the test's (etcd wants
	// host:port in what a member advertises); no port is guessed.
	t.Chdir(dir)
	client, peer := "unixs://localhost:3001", "unixs://localhost:3002"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := startMember(ctx, clock.New(), memberOptions{
		name: "m1", dir: filepath.Join(dir, "etcd"), initialCluster: "m1=" + peer, clientURL: client,
		certFile: filepath.Join(dir, "member.crt"), keyFile: filepath.Join(dir, "member.key"), caFile: filepath.Join(dir, "ca.crt"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	open := func(args ...string) (kv.Store, error) {
		e, _, _ := testEnv(nil)
		f := newFlagSet(e, "test", "", "", "")
		ef := addEtcdFlags(f, "etcd", "endpoints")
		if err := f.parse(append([]string{"--etcd", client}, args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := ef.config(e)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DialTimeout = 3 * time.Second
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		defer ocancel()
		st, err := etcdkv.Open(octx, cfg)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := open("--etcd-ca", filepath.Join(dir, "ca.crt"), "--etcd-cert", filepath.Join(dir, "member.crt"), "--etcd-key", filepath.Join(dir, "member.key"))
	if err != nil {
		t.Fatalf("with the CA and a client certificate: %v", err)
	}
	defer st.Close()
	if _, _, err := st.Txn(ctx, nil, []kv.Op{kv.Put("tls-check", []byte("ok"))}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := st.Get(ctx, "tls-check"); err != nil || !ok || string(got.Value) != "ok" {
		t.Fatalf("read back %q, %v, %v", got.Value, ok, err)
	}
	if st, err := open("--etcd-ca", filepath.Join(dir, "ca.crt")); err == nil {
		st.Close()
		t.Error("a client without a certificate was let in")
	}
	if st, err := open("--etcd-ca", filepath.Join(dir, "other-ca.crt"), "--etcd-cert", filepath.Join(dir, "member.crt"), "--etcd-key", filepath.Join(dir, "member.key")); err == nil {
		st.Close()
		t.Error("a client trusting another CA connected")
	}
}
