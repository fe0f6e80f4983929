package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

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
