package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from the file\r\n"), 0o600)
	e, _, _ := testEnv(map[string]string{"DISTCHAT_PASSWORD": "from the env"})
	if pw, err := readPassword(e, file, "p", true); err != nil || pw != "from the file" {
		t.Errorf("file: %q, %v", pw, err)
	}
	if pw, err := readPassword(e, "", "p", true); err != nil || pw != "from the env" {
		t.Errorf("env: %q, %v", pw, err)
	}
	e, _, _ = testEnv(nil)
	if _, err := readPassword(e, "", "p", true); err == nil || !strings.Contains(err.Error(), "DISTCHAT_PASSWORD") {
		t.Errorf("no source and no terminal: %v", err)
	}
	if _, err := readPassword(e, filepath.Join(dir, "missing"), "p", false); err == nil {
		t.Error("missing password file accepted")
	}
}
