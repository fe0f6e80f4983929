package rmi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The handshake, before the connection carries frames (frame.go):
//
//	client -> server: magic | flags | client nonce
//	server -> client: magic | flags | server nonce | [server proof]
//	client -> server: [client proof]
//	server -> client: "OK\n" or "ERR reason\n"
//
// magic is protoMagic; flags are one byte (flagCallbacks, flagSecret);
// nonces are nonceLen random bytes. The proofs are sent only when the
// client sets flagSecret and the server has a secret: each is
// HMAC-SHA256(secret, label | client nonce | server nonce | client flags |
// server flags | channel binding) with a label per direction, so neither
// can be replayed or reflected. The channel binding is the TLS session's
// exported keying material (tls.go), empty without TLS: a proof made on one
// TLS session fails on any other, so a man in the middle who relays the
// handshake between two sessions of his own gains nothing. A client with a
// secret refuses a server that cannot prove it; a server marks the peer as
// Cluster only when the client proved it (and, if the server requires it,
// presented a certificate signed by the cluster CA).
const (
	protoMagic  = "distchat-rmi/2\n"
	protoPrefix = "distchat-rmi/" // of every version's magic
	nonceLen    = 32
	macLen      = sha256.Size
	maxLineLen  = 256
	serverLabel = "distchat-rmi/2 server proof"
	clientLabel = "distchat-rmi/2 client proof"

	flagCallbacks = 1 << 0 // the client serves callback objects
	flagSecret    = 1 << 1 // the sender has a cluster secret
)

// handshakeResult is what a handshake learned about the peer.
type handshakeResult struct {
	cluster   bool // the peer proved the cluster secret
	callbacks bool // (server side) the client serves callbacks
}

// errBadMagic marks a peer that does not speak this protocol at all.
var errBadMagic = errors.New("not an rmi peer (bad protocol magic)")

// errBadVersion marks an rmi peer of another protocol version.
var errBadVersion = errors.New("rmi peer of another protocol version")

// errBadProof marks a peer that failed the cluster-secret proof.
var errBadProof = errors.New("cluster secret proof failed")

func newNonce() ([]byte, error) {
	b := make([]byte, nonceLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generating nonce: %w", err)
	}
	return b, nil
}

func proof(secret []byte, label string, nc, ns []byte, fc, fs byte, binding []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	m.Write(nc)
	m.Write(ns)
	m.Write([]byte{fc, fs})
	m.Write(binding)
	return m.Sum(nil)
}

// writeLine writes a status line, ignoring errors: the connection is about
// to be closed, or the next read will report the failure.
func writeLine(w io.Writer, line string) {
	_, _ = io.WriteString(w, line+"\n")
}

// readLine reads one '\n'-terminated line of at most maxLineLen bytes, a
// byte at a time so that nothing after it is consumed.
func readLine(r io.Reader, prefix string) (string, error) {
	b := []byte(prefix)
	var c [1]byte
	for len(b) < maxLineLen {
		if _, err := io.ReadFull(r, c[:]); err != nil {
			return string(b), err
		}
		if c[0] == '\n' {
			return string(b), nil
		}
		b = append(b, c[0])
	}
	return string(b), errors.New("status line too long")
}

// serverHandshake runs the server side on conn; the caller bounds it in
// time by closing conn. On a bad magic it tells the peer so in one line.
// binding is the TLS channel binding (nil without TLS); certMissing says
// that a client proving the secret is to be refused for want of a cluster
// certificate.
func serverHandshake(conn io.ReadWriter, secret, binding []byte, certMissing bool) (handshakeResult, error) {
	hello := make([]byte, len(protoMagic)+1+nonceLen)
	if _, err := io.ReadFull(conn, hello[:len(protoMagic)]); err != nil {
		return handshakeResult{}, fmt.Errorf("reading magic: %w", err)
	}
	if got := string(hello[:len(protoMagic)]); got != protoMagic {
		if strings.HasPrefix(got, protoPrefix) {
			writeLine(conn, fmt.Sprintf("ERR protocol %s is not supported; this server speaks %s",
				strings.TrimSpace(got), strings.TrimSpace(protoMagic)))
			return handshakeResult{}, fmt.Errorf("%w: %s", errBadVersion, strings.TrimSpace(got))
		}
		writeLine(conn, "ERR "+errBadMagic.Error()+"; expected "+strings.TrimSpace(protoMagic))
		return handshakeResult{}, errBadMagic
	}
	if _, err := io.ReadFull(conn, hello[len(protoMagic):]); err != nil {
		return handshakeResult{}, fmt.Errorf("reading hello: %w", err)
	}
	fc := hello[len(protoMagic)]
	nc := hello[len(protoMagic)+1:]
	ns, err := newNonce()
	if err != nil {
		return handshakeResult{}, err
	}
	var fs byte
	if len(secret) > 0 {
		fs |= flagSecret
	}
	prove := fc&flagSecret != 0 && len(secret) > 0
	out := make([]byte, 0, len(protoMagic)+1+nonceLen+macLen)
	out = append(out, protoMagic...)
	out = append(out, fs)
	out = append(out, ns...)
	if prove {
		out = append(out, proof(secret, serverLabel, nc, ns, fc, fs, binding)...)
	}
	if _, err := conn.Write(out); err != nil {
		return handshakeResult{}, fmt.Errorf("writing hello: %w", err)
	}
	res := handshakeResult{callbacks: fc&flagCallbacks != 0}
	if prove {
		mac := make([]byte, macLen)
		if _, err := io.ReadFull(conn, mac); err != nil {
			return handshakeResult{}, fmt.Errorf("reading client proof: %w", err)
		}
		if !hmac.Equal(mac, proof(secret, clientLabel, nc, ns, fc, fs, binding)) {
			writeLine(conn, "ERR "+errBadProof.Error())
			return handshakeResult{}, errBadProof
		}
		if certMissing {
			writeLine(conn, "ERR "+errNoClusterCert.Error())
			return handshakeResult{}, errNoClusterCert
		}
		res.cluster = true
	}
	writeLine(conn, "OK")
	return res, nil
}

// clientHandshake runs the client side on conn; the caller bounds it in
// time by closing conn. binding is the TLS channel binding (nil without
// TLS). Errors wrap ErrHandshake.
func clientHandshake(conn io.ReadWriter, secret []byte, callbacks bool, binding []byte) (handshakeResult, error) {
	// fail's format may wrap the causes with %w.
	fail := func(format string, a ...any) (handshakeResult, error) {
		return handshakeResult{}, fmt.Errorf("%w: "+format, append([]any{ErrHandshake}, a...)...)
	}
	var fc byte
	if callbacks {
		fc |= flagCallbacks
	}
	if len(secret) > 0 {
		fc |= flagSecret
	}
	nc, err := newNonce()
	if err != nil {
		return fail("%w", err)
	}
	hello := make([]byte, 0, len(protoMagic)+1+nonceLen)
	hello = append(hello, protoMagic...)
	hello = append(hello, fc)
	hello = append(hello, nc...)
	if _, err := conn.Write(hello); err != nil {
		return fail("sending hello: %w", err)
	}
	magic := make([]byte, len(protoMagic))
	if n, err := io.ReadFull(conn, magic); err != nil || string(magic) != protoMagic {
		s := string(magic[:n])
		if strings.HasPrefix(s, "ERR ") {
			if err == nil && !strings.Contains(s, "\n") {
				s, _ = readLine(conn, s)
			}
			return fail("server said: %s", strings.TrimSpace(s))
		}
		if err != nil {
			return fail("reading server hello: %w", err)
		}
		if strings.HasPrefix(s, protoPrefix) {
			return fail("the server speaks %s, this client %s", strings.TrimSpace(s), strings.TrimSpace(protoMagic))
		}
		return fail("peer is not an rmi server")
	}
	rest := make([]byte, 1+nonceLen)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return fail("reading server hello: %w", err)
	}
	fs, ns := rest[0], rest[1:]
	res := handshakeResult{}
	if len(secret) > 0 {
		if fs&flagSecret == 0 {
			return fail("server has no cluster secret, so it cannot prove it")
		}
		mac := make([]byte, macLen)
		if _, err := io.ReadFull(conn, mac); err != nil {
			return fail("reading server proof: %w", err)
		}
		if !hmac.Equal(mac, proof(secret, serverLabel, nc, ns, fc, fs, binding)) {
			return fail("server failed to prove the cluster secret (secrets differ, or a man in the middle?)")
		}
		if _, err := conn.Write(proof(secret, clientLabel, nc, ns, fc, fs, binding)); err != nil {
			return fail("sending proof: %w", err)
		}
		res.cluster = true
	}
	line, err := readLine(conn, "")
	if err != nil {
		return fail("reading status: %w", err)
	}
	if line != "OK" {
		return fail("server said: %s", line)
	}
	return res, nil
}
