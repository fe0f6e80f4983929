package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
)

const centralDescription = `Runs the central server: the RMI registry (where clients look up
"CentralServer"), accounts (bcrypt password hashes), sessions, the list of
live chat servers (each holds a lease it renews), placement of each
logging-in user on the least-loaded live chat server, and rooms with their
members. Its state lives in DIR/central.db, or with --etcd in an etcd
cluster (see below).

Chat servers must prove the cluster secret to use the cluster interface.
If --cluster-secret-file does not exist it is created (32 random bytes,
hex, mode 0600); copy it to every machine that runs 'distchat server'.

Every connection is TLS 1.3. Beside the secret file, central keeps the
cluster CA (ca.crt, and ca.key with mode 0600), created on first run. It
certifies central itself (for the advertised host, this machine's host
name and addresses, and --cert-host) and every chat server that proves
the secret. Clients pin the CA on first use, or take a copy of ca.crt
with --ca; central prints the CA's fingerprint when it starts.

The address put in the registry is --advertise, else the --listen host if
it is a specific address, else the IP of this machine's default route.

With --http HOST:PORT central also serves its web pages there: login,
signup and forgot password; after a login it sends the browser to the
chat server it placed the user on. Chat servers learn the address. On a
loopback host it is plain HTTP; anywhere else HTTPS, with --tls-cert and
--tls-key if given, else with a certificate the cluster CA signs for
central's host names and addresses (the login page offers the CA for
browsers to trust).

With --etcd ENDPOINTS the accounts, sessions, rooms and members live in
that etcd cluster (under --etcd-prefix) instead of DIR/central.db; DIR
still holds the cluster secret and CA. --etcd-ca, --etcd-cert/--etcd-key
and --etcd-user/--etcd-password-file reach a cluster with TLS and auth.
'distchat admin migrate' copies an embedded central's state into etcd.

With --etcd-member NAME central also runs one member of an etcd cluster,
its data in DIR/etcd: run it on each of three machines, each with its own
NAME and the same --etcd-initial-cluster (NAME=PEER-URL of every member,
e.g. c1=https://10.0.0.1:2380,c2=https://10.0.0.2:2380,...); the member
serves clients at --etcd-client-url, and this central uses it (or the
--etcd ENDPOINTS, if given). Central waits until a quorum of members is up.
On a LAN give --etcd-member-cert/-key/-ca (PEM files; both ports then
require certificates the CA signed) and the same files as --etcd-cert,
--etcd-key and --etcd-ca, so that the front-ends present them.`

// runCentral is the "central" subcommand.
func runCentral(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "central", "--data DIR [--listen HOST:PORT] [--cluster-secret-file FILE] [flags]", centralDescription, "info")
	listen := f.String("listen", ":1099", "`HOST:PORT` to listen on (RMI registry and central server)")
	advertise := f.String("advertise", "", "`HOST:PORT` clients and chat servers should use (default: see above)")
	data := f.String("data", "", "data directory `DIR` (required)")
	secretFile := f.String("cluster-secret-file", "", "cluster secret `FILE`, created if absent (default DIR/cluster.secret); the cluster CA is kept beside it")
	extraHosts := f.StringSlice("cert-host", nil, "another `NAME` or IP clients use to reach central, for its certificate (repeatable)")
	connsPerAddr := f.Int("max-conns-per-addr", rmi.DefaultMaxConnsPerAddr, "connections served at once from one IP address, at `MOST` (raise it for many clients behind one address, or a load test from one machine)")
	httpAddr := f.String("http", "", "serve the web pages on `HOST:PORT` (default: no web port)")
	tlsCert := f.String("tls-cert", "", "the web port's certificate `FILE` (PEM; default: one the cluster CA signs)")
	tlsKey := f.String("tls-key", "", "the key `FILE` of --tls-cert (PEM)")
	etcd := addEtcdFlags(f, "etcd", "keep the state in the etcd cluster at `ENDPOINTS` (comma-separated client URLs) instead of DIR/central.db")
	member := memberOptions{}
	f.StringVar(&member.name, "etcd-member", "", "also run the etcd member `NAME` (data in DIR/etcd), and keep the state in its cluster")
	f.StringVar(&member.initialCluster, "etcd-initial-cluster", "", "every member as `NAME=PEER-URL,...` (default NAME=http://127.0.0.1:2380)")
	f.StringVar(&member.clientURL, "etcd-client-url", "http://127.0.0.1:2379", "the `URL` where the member serves clients")
	f.StringVar(&member.certFile, "etcd-member-cert", "", "the member's certificate `FILE` (PEM), for its client and peer ports")
	f.StringVar(&member.keyFile, "etcd-member-key", "", "the key `FILE` (PEM) of --etcd-member-cert")
	f.StringVar(&member.caFile, "etcd-member-ca", "", "the CA `FILE` (PEM) clients and peers must present certificates of")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.required("data"); err != nil {
		return err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("give both --tls-cert and --tls-key, or neither")
	}
	log, err := f.logger()
	if err != nil {
		return err
	}
	if *secretFile == "" {
		*secretFile = filepath.Join(*data, "cluster.secret")
	}
	created, err := ensureSecretFile(*secretFile)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(e.stdout, "created cluster secret %s: copy it to every chat server machine (--cluster-secret-file)\n", *secretFile)
	}
	secret, err := readSecretFile(*secretFile, log)
	if err != nil {
		return err
	}
	clk := clock.New()
	ca, err := loadCA(e, *secretFile, clk)
	if err != nil {
		return err
	}
	var store kv.Store
	if member.name != "" {
		if member.initialCluster == "" {
			member.initialCluster = member.name + "=http://127.0.0.1:2380"
		}
		member.dir = memberDir(*data)
		fmt.Fprintf(e.stdout, "etcd member %s starting; waiting for the cluster %s\n", member.name, member.initialCluster)
		m, err := startMember(ctx, clk, member)
		if err != nil {
			return err
		}
		defer m.Close()
		fmt.Fprintf(e.stdout, "etcd member %s serving clients at %s\n", member.name, member.clientURL)
		if !etcd.set() {
			*etcd.endpoints = member.clientURL
		}
	}
	if etcd.set() {
		s, err := etcd.open(ctx, e)
		if err != nil {
			return err
		}
		store = s // closed by central
		log.Info("central state in etcd", "endpoints", *etcd.endpoints, "prefix", *etcd.prefix)
	}
	cp, err := startCentral(ctx, centralOptions{
		dir: *data, store: store, listen: *listen, advertise: *advertise, secret: secret,
		ca: ca, certHosts: *extraHosts, clock: clk, log: log,
		http: *httpAddr, webTLS: webTLSOptions{certFile: *tlsCert, keyFile: *tlsKey}, connsPerAddr: *connsPerAddr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "central server listening on %s (registry rmi://%s/%s)\n", cp.addr, cp.addr, centralapi.ObjectName)
	if cp.web != nil {
		fmt.Fprintf(e.stdout, "central web at %s\n", cp.web.url)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-cp.serveErr:
		err = fmt.Errorf("serve: %w", err)
	}
	return errors.Join(err, cp.Close())
}

// centralOptions configure startCentral.
type centralOptions struct {
	dir       string
	store     kv.Store // the state, if not in dir (etcd); closed with central
	listen    string
	advertise string
	secret    []byte
	ca        *pki.CA  // the cluster CA: central's certificate, and the chat servers'
	certHosts []string // more names for central's certificate
	// http is the web port's HOST:PORT; empty for none. httpFallback
	// lets it take another port if that one is taken (see listenWeb).
	http         string
	httpFallback bool
	webTLS       webTLSOptions
	// connsPerAddr caps the RMI connections from one IP address; zero
	// for rmi.DefaultMaxConnsPerAddr.
	connsPerAddr int
	clock        clock.Clock
	log          *slog.Logger
}

// centralProc is a running central server.
type centralProc struct {
	c        *central.Central
	srv      *rmi.Server
	web      *webPort         // nil without a web port
	cert     *pki.CentralCert // central's certificate: cert.ClientConfig(addr) dials a chat server
	addr     string           // advertised address, bound in the registry
	serveErr chan error       // the rmi server's or the web port's failure
}

// startCentral binds the rmi listener (and the web port's, if any), opens
// the central server's state, exports the registry and the central
// server's objects, binds the central server in the registry, and serves.
func startCentral(ctx context.Context, o centralOptions) (*centralProc, error) {
	// Until central.Open takes o.store over, it is ours to close.
	storeTaken := false
	defer func() {
		if !storeTaken && o.store != nil {
			o.store.Close()
		}
	}()
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	addr, err := advertiseAddr(l, o.listen, o.advertise, "")
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			l.Close()
			return nil, err
		}
		// No route anywhere: only this machine can reach us anyway.
		addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
		o.log.Warn("no default route; advertising the loopback address (give --advertise for other machines)", "addr", addr)
	}
	// The web port is bound first, so that central knows the address to
	// tell chat servers (Config.HTTP).
	var wl net.Listener
	webAddr := ""
	if o.http != "" {
		if wl, err = listenWeb(o.http, o.httpFallback); err != nil {
			l.Close()
			return nil, err
		}
		webAddr = webAdvertise(wl.Addr(), addr)
	}
	closeListeners := func() {
		l.Close()
		if wl != nil {
			wl.Close()
		}
	}
	// cert is central's certificate, made once the advertised address is
	// known (below), before anything is served: Connect runs only later.
	var cert *pki.CentralCert
	storeTaken = true // Open closes it if it fails
	c, err := central.Open(central.Config{Dir: o.dir, Store: o.store, Clock: o.clock, Logger: o.log, HTTP: webAddr,
		// Only to tell chat servers that sessions ended. Chat servers
		// require mutual TLS: central presents its own certificate.
		Connect: func(addr string) rmi.Invoker {
			return rmi.NewRedialer(addr, rmi.DialConfig{Clock: o.clock, Logger: o.log,
				ClusterSecret: o.secret, TLS: cert.ClientConfig(addr)})
		},
	})
	if err != nil {
		closeListeners()
		return nil, err
	}
	fail := func(err error) (*centralProc, error) {
		closeListeners()
		c.Close()
		return nil, err
	}
	t := rmi.NewTable(o.log)
	if err := rmi.Export[rmi.RegistryService](t, rmi.RegistryObjectName, rmi.NewRegistry()); err != nil {
		return fail(err)
	}
	if err := c.Export(t); err != nil {
		return fail(err)
	}
	if err := central.NewCertIssuer(o.ca, o.log).Export(t); err != nil {
		return fail(err)
	}
	reg := rmi.RegistryStub{Inv: rmi.Local{Table: t}}
	if err := reg.Rebind(ctx, centralapi.ObjectName, rmi.Ref{Addr: addr, Object: centralapi.ObjectName}); err != nil {
		return fail(fmt.Errorf("bind %s in the registry: %w", centralapi.ObjectName, err))
	}
	cert = o.ca.CentralCert(certHosts(addr, o.listen, append(slices.Clone(o.certHosts), hostPart(webAddr))))
	cp := &centralProc{c: c, cert: cert, addr: addr, serveErr: make(chan error, 2)}
	if wl != nil {
		var tlsCfg *tls.Config
		if o.webTLS.force || strings.HasPrefix(centralapi.WebURL(webAddr), "https:") {
			if tlsCfg, err = webTLSConfig(o.webTLS, cert); err != nil {
				return fail(err)
			}
		}
		if cp.web, err = startWeb(wl, webAddr, c, o.ca, tlsCfg, o.log, cp.serveErr); err != nil {
			return fail(err)
		}
	}
	cp.srv = rmi.NewServer(t, rmi.ServerConfig{Clock: o.clock, Logger: o.log, ClusterSecret: o.secret, TLS: cert.ServerConfig(), Limits: rmi.Limits{MaxConnsPerAddr: o.connsPerAddr}})
	go func() { cp.serveErr <- cp.srv.Serve(l) }()
	o.log.Info("central server up", "listen", l.Addr().String(), "advertised", addr, "data", o.dir)
	return cp, nil
}

// Close stops serving and closes the central server's state.
func (p *centralProc) Close() error {
	return errors.Join(p.web.Close(), p.srv.Close(), p.c.Close())
}
