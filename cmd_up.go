package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/server"
)

const upDescription = `Runs a whole distchat system in one process: a central server and N chat
servers, each chat server named server-1..server-N with its own data
directory, all under --data:

  DIR/cluster.secret   the cluster secret (created if absent, mode 0600)
  DIR/ca.crt, ca.key   the cluster CA (created if absent; the key mode 0600)
  DIR/central/         the central server's central.db
  DIR/server-N/        chat server N's log/, its key and certificate

The central server listens on --listen; the chat servers on 127.0.0.1 with
any free port, or on consecutive ports from --server-listen. The processes
talk over real TCP connections with TLS 1.3, exactly as when they run on
separate machines; clients trust the cluster CA on first use (or take
--ca DIR/ca.crt). Stop with Ctrl-C (SIGINT) or SIGTERM.`

// maxUpServers caps --servers.
const maxUpServers = 64

// runUp is the "up" subcommand.
func runUp(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "up", "[--data DIR] [--servers N] [--listen HOST:PORT] [flags]", upDescription, "info")
	data := f.String("data", "./distchat-data", "data directory `DIR`")
	n := f.Int("servers", 3, "run `N` chat servers")
	listen := f.String("listen", "127.0.0.1:1099", "central server (and registry) `HOST:PORT`")
	serverListen := f.String("server-listen", "", "first chat server's `HOST:PORT`; the others take the next ports (default 127.0.0.1, any free port)")
	clockMode := f.String("clock", server.ClockHLC, "chat servers' stamp `CLOCK`: hlc or wall")
	settled := f.Bool("settled", true, "track settled prefixes: promise a watermark every second so members learn which prefix of each room is final")
	centralHTTP := f.String("http", "127.0.0.1:8080", "central's web pages on `HOST:PORT` (\"\": none; if the default port is taken, the next free one)")
	connsPerAddr := f.Int("max-conns-per-addr", rmi.DefaultMaxConnsPerAddr, "connections served at once from one IP address, at `MOST` (raise it for many clients behind one address, or a load test from one machine)")
	serverWeb := f.Bool("server-web", true, "serve the browser chat app on each chat server (a free port on its host)")
	if err := f.parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > maxUpServers {
		return usagef("--servers %d: want 1 to %d", *n, maxUpServers)
	}
	if *clockMode != server.ClockHLC && *clockMode != server.ClockWall {
		return usagef("--clock %q: want hlc or wall", *clockMode)
	}
	listens, err := serverListens(*serverListen, *n)
	if err != nil {
		return err
	}
	log, err := f.logger()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	secretFile := filepath.Join(*data, "cluster.secret")
	if _, err := ensureSecretFile(secretFile); err != nil {
		return err
	}
	secret, err := readSecretFile(secretFile, log)
	if err != nil {
		return err
	}
	clk := clock.New()
	ca, err := loadCA(e, secretFile, clk)
	if err != nil {
		return err
	}
	cp, err := startCentral(ctx, centralOptions{
		dir: filepath.Join(*data, "central"), listen: *listen, secret: secret, ca: ca, clock: clk, log: log,
		http: *centralHTTP, httpFallback: !f.Changed("http"), connsPerAddr: *connsPerAddr,
	})
	if err != nil {
		return err
	}
	if cp.web != nil {
		fmt.Fprintf(e.stdout, "central web at %s\n", cp.web.url)
	}
	var servers []*serverProc
	closeAll := func() error {
		var errs []error
		for i := len(servers) - 1; i >= 0; i-- {
			errs = append(errs, servers[i].Close())
		}
		errs = append(errs, cp.Close())
		return errors.Join(errs...)
	}
	for i := 1; i <= *n; i++ {
		name := "server-" + strconv.Itoa(i)
		webListen := ""
		if *serverWeb {
			webListen = net.JoinHostPort(hostPart(listens[i-1]), "0")
		}
		sp, err := startChatServer(serverOptions{
			name: name, dir: filepath.Join(*data, name), listen: listens[i-1], central: []string{cp.addr},
			secret: secret, clockMode: *clockMode, settled: *settled, clock: clk, log: log, http: webListen,
			connsPerAddr: *connsPerAddr,
		})
		if err != nil {
			return errors.Join(err, closeAll())
		}
		servers = append(servers, sp)
		if err := sp.register(ctx); err != nil {
			return errors.Join(err, closeAll())
		}
	}

	w := e.stdout
	fmt.Fprintf(w, "distchat is up (data in %s, clock %s).\n", *data, *clockMode)
	fmt.Fprintf(w, "  central server  %s   (registry rmi://%s/%s)\n", cp.addr, cp.addr, centralapi.ObjectName)
	fmt.Fprintf(w, "  cluster CA      %s   (%s)\n", ca.Fingerprint(), filepath.Join(*data, pki.CACertFile))
	if cp.web != nil {
		fmt.Fprintf(w, "  central web     %s   (open it in a browser to sign up and log in)\n", cp.web.url)
	}
	for _, sp := range servers {
		if sp.webURL != "" {
			fmt.Fprintf(w, "  chat server     %-10s %s   (web app %s)\n", sp.name, sp.addr, sp.webURL)
		} else {
			fmt.Fprintf(w, "  chat server     %-10s %s\n", sp.name, sp.addr)
		}
	}
	fmt.Fprintf(w, `
In a browser, open the central web address above. Or, in another
terminal, sign up a user and connect the terminal client:
  %[1]s signup --central %[2]s --user alice
  %[1]s client --central %[2]s --user alice
The first connection trusts the cluster CA above and pins it (or give
--ca %[3]s). Then type /help. Press Ctrl-C here to stop.
`, e.prog, cp.addr, filepath.Join(*data, pki.CACertFile))

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-cp.serveErr:
		err = fmt.Errorf("central server: serve: %w", err)
	}
	return errors.Join(err, closeAll())
}

// serverListens returns the listen address of each of n chat servers:
// consecutive ports from base, or 127.0.0.1:0 for all without a base (or
// with port 0).
func serverListens(base string, n int) ([]string, error) {
	host, port := "127.0.0.1", 0
	if base != "" {
		h, p, err := net.SplitHostPort(base)
		if err != nil {
			return nil, usagef("--server-listen %q: %v", base, err)
		}
		if port, err = strconv.Atoi(p); err != nil || port < 0 || port+n-1 > 65535 {
			return nil, usagef("--server-listen %q: bad port for %d servers", base, n)
		}
		host = h
	}
	out := make([]string, n)
	for i := range out {
		p := 0
		if port != 0 {
			p = port + i
		}
		out[i] = net.JoinHostPort(host, strconv.Itoa(p))
	}
	return out, nil
}
