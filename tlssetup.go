package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/rmi/pki"
)

// This file sets up TLS for the commands: the names a server's certificate
// covers, and how clients trust the servers (--ca, --known-centrals).

// certHosts returns the host names and IP addresses a server's certificate
// covers: the host it advertises, the host it listens on (if specific),
// extra (--cert-host), this machine's host name, the addresses of its
// network interfaces, and localhost.
func certHosts(advertised, listen string, extra []string) []string {
	hosts := []string{hostPart(advertised), hostPart(listen)}
	hosts = append(hosts, extra...)
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	hosts = append(hosts, "localhost", "127.0.0.1", "::1")
	out := hosts[:0]
	for _, h := range hosts {
		if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
			out = append(out, h)
		}
	}
	return out
}

// hostPart returns the host of "host:port", or "" if there is none.
func hostPart(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// trustFlags are a client command's --ca and --known-centrals flags.
type trustFlags struct {
	ca    *string
	known *string
}

// addTrustFlags adds --ca and --known-centrals to f.
func addTrustFlags(f *flagSet) trustFlags {
	return trustFlags{
		ca: f.String("ca", "", "verify the servers against this cluster CA `FILE` (a copy of central's ca.crt) instead of trusting on first use"),
		known: f.String("known-centrals", "", "`FILE` pinning each central server's cluster CA on first use "+
			"(default $XDG_CONFIG_HOME/distchat/known_centrals, or ~/.config/distchat/known_centrals)"),
	}
}

// trust returns how the command verifies the servers of the cluster of
// the central servers at centrals ("host:port" each): against --ca, else
// by trust on first use pinned in the known-centrals file, with the
// notice on stderr.
func (tf trustFlags) trust(e *env, centrals []string) (*pki.ClientTrust, error) {
	o := pki.TrustOptions{Centrals: centrals, CAFile: *tf.ca, KnownCentrals: *tf.known, Notice: e.stderr}
	if o.CAFile == "" && o.KnownCentrals == "" {
		dir := e.getenv("XDG_CONFIG_HOME")
		if dir == "" {
			home := e.getenv("HOME")
			if home == "" {
				return nil, usagef("no $HOME to keep known central servers in: give --ca FILE or --known-centrals FILE")
			}
			dir = filepath.Join(home, ".config")
		}
		o.KnownCentrals = filepath.Join(dir, "distchat", "known_centrals")
	}
	return pki.NewClientTrust(o)
}

// loadCA loads the cluster CA kept beside the cluster secret, creating it
// on first run (and saying so on e's stdout).
func loadCA(e *env, secretFile string, clk clock.Clock) (*pki.CA, error) {
	dir := filepath.Dir(secretFile)
	ca, created, err := pki.LoadOrCreateCA(dir, clk)
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(e.stdout, "created cluster CA %s (key %s, mode 0600)\n", filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile))
	}
	fmt.Fprintf(e.stdout, "cluster CA fingerprint %s: clients trust it on first use (compare) or with --ca %s\n",
		ca.Fingerprint(), filepath.Join(dir, pki.CACertFile))
	return ca, nil
}
