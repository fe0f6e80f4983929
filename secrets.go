package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// secretBytes is the size of a generated cluster secret.
const secretBytes = 32

// minSecretLen is the shortest cluster secret accepted, in bytes.
const minSecretLen = 16

// ensureSecretFile creates a cluster secret file (32 random bytes, hex,
// mode 0600) at path unless one exists. It reports whether it created one.
func ensureSecretFile(path string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create cluster secret: %w", err)
	}
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		f.Close()
		os.Remove(path)
		return false, fmt.Errorf("create cluster secret: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(b) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("create cluster secret %s: %w", path, err)
	}
	return true, nil
}

// readSecretFile reads a cluster secret: the file's content without
// surrounding white space, at least 16 bytes. It warns when the file can
// be read by other users.
func readSecretFile(path string, log *slog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < minSecretLen {
		return nil, fmt.Errorf("cluster secret %s: %d bytes; want at least %d (distchat central creates one)", path, len(b), minSecretLen)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("cluster secret file is readable by other users; chmod 600 it", "file", path, "mode", st.Mode().Perm())
	}
	return b, nil
}
