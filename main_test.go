package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func itoa(n int) string { return strconv.Itoa(n) }

// testEnv returns an env with captured output and the given environment.
func testEnv(vars map[string]string) (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &env{
		stdin:  strings.NewReader(""),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return vars[k] },
		prog:   "distchat",
	}, &out, &errOut
}

func TestHelp(t *testing.T) {
	e, out, errOut := testEnv(nil)
	if code := run(context.Background(), e, []string{"--help"}); code != exitOK {
		t.Fatalf("--help: exit %d, stderr %q", code, errOut)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), "  "+c.name+" ") {
			t.Errorf("top-level help does not list %q:\n%s", c.name, out)
		}
	}
	for _, c := range commands() {
		e, out, errOut := testEnv(nil)
		if code := run(context.Background(), e, []string{c.name, "--help"}); code != exitOK {
			t.Fatalf("%s --help: exit %d, stderr %q", c.name, code, errOut)
		}
		h := out.String()
		if !strings.HasPrefix(h, "Usage:\n  distchat "+c.name) || !strings.Contains(h, "Flags:") ||
			c.name != "version" && !strings.Contains(h, "--log-level") {
			t.Errorf("%s --help is missing its usage line or flags:\n%s", c.name, h)
		}
	}
	e, out, _ = testEnv(nil)
	if code := run(context.Background(), e, []string{"help", "server"}); code != exitOK || !strings.Contains(out.String(), "--cluster-secret-file") {
		t.Errorf("help server: exit %d, output:\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "Commands:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"server", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"server", "--name", "x"}, "--central is required"},
		{[]string{"client"}, "--user is required"},
		{[]string{"up", "--servers", "0"}, "--servers 0"},
		{[]string{"up", "--clock", "sundial"}, `--clock "sundial"`},
		{[]string{"signup", "--user", "ann", "extra"}, `unexpected argument "extra"`},
		{[]string{"reset-password", "--user", "ann"}, "--recovery-code or --recovery-code-file is required"},
	}
	for _, c := range cases {
		e, out, errOut := testEnv(nil)
		code := run(context.Background(), e, c.args)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d", c.args, code, exitUsage)
		}
		if !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%q: stderr %q does not contain %q", c.args, errOut, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%q: wrote to stdout: %q", c.args, out)
		}
	}
}

func TestVersion(t *testing.T) {
	e, out, _ := testEnv(nil)
	if code := run(context.Background(), e, []string{"version"}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if s := out.String(); !strings.HasPrefix(s, "distchat ") || !strings.Contains(s, "go1") {
		t.Fatalf("version = %q", s)
	}
}

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
	first, err := readSecretFile(path, discardLogger())
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
	again, _ := readSecretFile(path, discardLogger())
	if !bytes.Equal(first, again) {
		t.Error("existing secret was replaced")
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("tiny\n"), 0o600)
	if _, err := readSecretFile(short, discardLogger()); err == nil {
		t.Error("a 4-byte secret was accepted")
	}
}

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

func TestCentralAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.5:2000":                       "10.0.0.5:2000",
		"chat.example":                        "chat.example:1099",
		"rmi://10.0.0.5:2000/CentralServer":   "10.0.0.5:2000",
		"[::1]:1099":                          "[::1]:1099",
		"rmi://chat.example/CentralServer":    "chat.example:1099",
		"rmi://chat.example:77/CentralServer": "chat.example:77",
	} {
		got, err := centralAddr(in)
		if err != nil || got != want {
			t.Errorf("centralAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestServerListens(t *testing.T) {
	got, err := serverListens("", 2)
	if err != nil || strings.Join(got, " ") != "127.0.0.1:0 127.0.0.1:0" {
		t.Errorf("default: %q, %v", got, err)
	}
	got, err = serverListens("0.0.0.0:7000", 3)
	if err != nil || strings.Join(got, " ") != "0.0.0.0:7000 0.0.0.0:7001 0.0.0.0:7002" {
		t.Errorf("base: %q, %v", got, err)
	}
	if _, err := serverListens("0.0.0.0:65535", 2); err == nil {
		t.Error("ports past 65535 accepted")
	}
}

func TestAdvertiseAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	want := net.JoinHostPort("127.0.0.1", itoa(port))
	if got, err := advertiseAddr(l, "127.0.0.1:0", "", ""); err != nil || got != want {
		t.Errorf("explicit listen host: %q, %v; want %q", got, err, want)
	}
	if got, err := advertiseAddr(l, ":0", "", "127.0.0.1:1099"); err != nil || got != want {
		t.Errorf("route towards loopback: %q, %v; want %q", got, err, want)
	}
	if got, err := advertiseAddr(l, ":0", "chat.example:9000", ""); err != nil || got != "chat.example:9000" {
		t.Errorf("--advertise: %q, %v", got, err)
	}
	for _, bad := range []string{"0.0.0.0:9000", "chat.example", "chat.example:0"} {
		if _, err := advertiseAddr(l, ":0", bad, ""); err == nil {
			t.Errorf("--advertise %q accepted", bad)
		}
	}
}
