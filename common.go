package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/distchat/distchat/rmi"
)

// flagSet is one subcommand's flags, with its help text and the
// --log-level flag every subcommand has.
type flagSet struct {
	*pflag.FlagSet
	e           *env
	name        string
	synopsis    string
	description string
	logLevel    string
	help        bool
}

// newFlagSet returns the flag set of subcommand name. synopsis follows the
// program name in the usage line; description is the help's body. A
// command that logs passes its default level for --log-level; one that does
// not passes "".
func newFlagSet(e *env, name, synopsis, description, defaultLevel string) *flagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // printed by parse, to the right stream
	fs.SortFlags = false
	f := &flagSet{FlagSet: fs, e: e, name: name, synopsis: synopsis, description: description, logLevel: defaultLevel}
	fs.BoolVarP(&f.help, "help", "h", false, "show this help")
	if defaultLevel != "" {
		fs.StringVar(&f.logLevel, "log-level", defaultLevel, "log `LEVEL` on stderr: debug, info, warn or error")
	}
	return f
}

// parse parses args. --help prints the help to stdout and returns
// errHelpShown; a bad flag or a stray argument is a usage error.
func (f *flagSet) parse(args []string) error {
	err := f.Parse(args)
	switch {
	case errors.Is(err, pflag.ErrHelp) || err == nil && f.help:
		f.printUsage(f.e.stdout)
		return errHelpShown
	case err != nil:
		return &usageError{msg: err.Error()}
	case f.NArg() > 0:
		return usagef("unexpected argument %q", f.Arg(0))
	}
	return nil
}

// printUsage writes the subcommand's help.
func (f *flagSet) printUsage(w io.Writer) {
	usage := strings.TrimSpace(f.e.prog + " " + f.name + " " + f.synopsis)
	fmt.Fprintf(w, "Usage:\n  %s\n\n%s\n\nFlags:\n%s", usage, strings.TrimSpace(f.description), f.FlagUsages())
}

// required returns a usage error naming the first of names whose flag was
// left empty.
func (f *flagSet) required(names ...string) error {
	for _, n := range names {
		if fl := f.Lookup(n); fl != nil && fl.Value.String() == "" {
			return usagef("--%s is required", n)
		}
	}
	return nil
}

// logger returns the slog logger the --log-level flag asks for, writing
// text lines to stderr.
func (f *flagSet) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	return slog.New(slog.NewTextHandler(f.e.stderr, &slog.HandlerOptions{Level: lvl})), nil
}

// progName is how the user ran distchat, for the hints printed to them:
// "go run ." when the binary sits in the go tool's build cache.
func progName() string {
	exe, err := os.Executable()
	if err == nil && strings.Contains(filepath.ToSlash(exe), "/go-build") {
		return "go run ."
	}
	if len(os.Args) > 0 && os.Args[0] != "" {
		return filepath.Base(os.Args[0])
	}
	return "distchat"
}

// centralAddr accepts HOST:PORT, HOST (port 1099) or rmi://HOST[:PORT][/NAME].
func centralAddr(s string) (string, error) {
	if strings.HasPrefix(s, "rmi://") {
		addr, _, err := rmi.ParseURL(s)
		return addr, err
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return net.JoinHostPort(s, strconv.Itoa(rmi.DefaultPort)), nil
		}
		return "", fmt.Errorf("central address %q: %w", s, err)
	}
	return s, nil
}

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

// readPassword returns the password from --password-file, else from
// $DISTCHAT_PASSWORD, else from a no-echo prompt on the terminal (asked
// twice when confirm is set).
func readPassword(e *env, file, prompt string, confirm bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty", file)
		}
		return pw, nil
	}
	if pw := e.getenv("DISTCHAT_PASSWORD"); pw != "" {
		return pw, nil
	}
	if !e.stdinTTY {
		return "", errors.New("no password: give --password-file FILE or set DISTCHAT_PASSWORD (stdin is not a terminal, so there is no prompt)")
	}
	pw, err := promptNoEcho(e, prompt+": ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	if confirm {
		again, err := promptNoEcho(e, "Repeat it: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the two passwords differ")
		}
	}
	return pw, nil
}

// promptNoEcho prints prompt to stderr and reads a line from the terminal
// without echoing it.
func promptNoEcho(e *env, prompt string) (string, error) {
	fmt.Fprint(e.stderr, prompt)
	b, err := term.ReadPassword(e.stdinFD)
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// advertiseAddr returns the address others should use to reach a
// listener: advertise if given; else the listen flag's host if it is
// explicit and not a wildcard; else the local IP this machine uses to reach
// towards (a UDP "dial" only picks a route; nothing is sent), or, with no
// towards, the IP of the default route. The port is the listener's.
func advertiseAddr(l net.Listener, listenFlag, advertise, towards string) (string, error) {
	if advertise != "" {
		host, port, err := net.SplitHostPort(advertise)
		if err != nil || host == "" || port == "" || port == "0" {
			return "", usagef("--advertise %q: want HOST:PORT with a host and a port", advertise)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return "", usagef("--advertise %q: %s is not an address others can reach", advertise, host)
		}
		return advertise, nil
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	host, _, err := net.SplitHostPort(listenFlag)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listenFlag, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return net.JoinHostPort(host, port), nil
	}
	if towards == "" {
		// A documentation-only address (TEST-NET-1): the route to it is
		// the default route.
		towards = "192.0.2.1:9"
	}
	ip, err := localIPTowards(towards)
	if err != nil {
		return "", fmt.Errorf("cannot tell which local address reaches %s (%v); give --advertise HOST:PORT", towards, err)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// localIPTowards returns the local IP address of the route to addr.
func localIPTowards(addr string) (net.IP, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || ua.IP.IsUnspecified() {
		return nil, fmt.Errorf("no local address for %s", addr)
	}
	return ua.IP, nil
}
