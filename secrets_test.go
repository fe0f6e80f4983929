package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"
)

func TestSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "cluster.secret")
	created, err := ensureSecretFile(path)
	if err != nil || !created {
		t.Fatalf("ensureSecretFile = %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	first, err := readSecretFile(path, rmitest.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2*secretBytes {
		t.Errorf("secret is %d hex digits, want %d", len(first), 2*secretBytes)
	}
	created, err = ensureSecretFile(path)
	if err != nil || created {
		t.Fatalf("second ensureSecretFile = %v, %v; want existing file kept", created, err)
	}
	again, _ := readSecretFile(path, rmitest.QuietLogger())
	if !bytes.Equal(first, again) {
		t.Error("existing secret was replaced")
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("tiny\n"), 0o600)
	if _, err := readSecretFile(short, rmitest.QuietLogger()); err == nil {
		t.Error("a 4-byte secret was accepted")
	}
}
