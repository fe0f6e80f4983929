package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
	"github.com/distchat/distchat/rmi/workpool"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/server/web"
	"github.com/distchat/distchat/voice"
)

const serverDescription = `Runs one chat server and registers it with the central server. The chat
server accepts the users central places on it, stamps each post it
receives first with (time, server, seq), makes it durable (DIR/log)
before acknowledging it, forwards it once to every other chat server that
hosts members of the room, and delivers it to its own users through the
callback object they export on their own connection.

The cluster secret file must be the central server's (copy it over); it
proves to central and to the other chat servers that this one belongs.

--central may name several central servers of one cluster (sharing one
state), comma-separated: the chat server talks to one and, when it cannot
be reached, to the next; its lease and its users' sessions hold at any.

Every connection is TLS 1.3. When it registers, the chat server asks
central for a certificate (for its advertised host, this machine's host
name and addresses, and --cert-host), signed by the cluster CA, and keeps
it with its key and the CA in DIR (server.crt, server.key, ca.crt); it
renews it before it expires. It presents it to the other chat servers,
which require it (mutual TLS). On its very first contact central is
authenticated by the cluster secret, proved on that TLS session; from
then on by the CA in DIR/ca.crt.

Clock modes: "hlc" (default) orders a reply after what its author had
seen even with skewed clocks; "wall" stamps with the wall clock only, as
the original did.

The address registered at central is --advertise, else the --listen host
if it is a specific address, else this machine's IP on the route to the
central server, with the listener's port.

Voice: central picks one chat server to host each room's voice channel,
and the members' own chat servers relay their WebRTC signalling there.
The host runs an SFU that forwards each participant's Opus audio (and
camera video) to the others, offering its advertised IP address (a
loopback one works on one machine; for a host name, every non-loopback
interface). Media goes over UDP straight between the participants and
the host: --voice-udp-port puts it all on one port for a firewall.`

// runServer is the "server" subcommand.
func runServer(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "server", "--central HOST:PORT[,HOST:PORT…] --name NAME --data DIR --cluster-secret-file FILE [flags]", serverDescription, "info")
	centralFlag := f.String("central", "", "central server `HOST:PORT`, or several of one cluster, comma-separated (required)")
	name := f.String("name", "", "this chat server's `NAME`, unique in the cluster: 1-32 of a-z 0-9 - (required)")
	data := f.String("data", "", "data directory `DIR` (required)")
	listen := f.String("listen", ":0", "`HOST:PORT` to listen on (port 0: any free port)")
	advertise := f.String("advertise", "", "`HOST:PORT` clients and other servers should use (default: see above)")
	secretFile := f.String("cluster-secret-file", "", "the cluster secret `FILE`, as on the central server (required)")
	clockMode := f.String("clock", server.ClockHLC, "stamp `CLOCK`: hlc or wall")
	settled := f.Bool("settled", true, "track settled prefixes: promise a watermark every second so members learn which prefix of each room is final")
	extraHosts := f.StringSlice("cert-host", nil, "another `NAME` or IP others use to reach this server, for its certificate (repeatable)")
	httpFlag := f.String("http", "", "serve the browser chat app on `HOST:PORT` (default off; HTTPS unless the host is loopback)")
	tlsCert := f.String("tls-cert", "", "the web port's HTTPS certificate `FILE` (default: the cluster-CA-signed DIR/server.crt)")
	tlsKey := f.String("tls-key", "", "the web port's HTTPS key `FILE` (with --tls-cert)")
	voiceUDPPort := f.Int("voice-udp-port", 0, "one UDP `PORT` for every voice connection of the channels this server hosts, for a firewall (0: an ephemeral port each)")
	connsPerAddr := f.Int("max-conns-per-addr", rmi.DefaultMaxConnsPerAddr, "connections served at once from one IP address, at `MOST` (raise it for many clients behind one address, or a load test from one machine)")
	voiceMax := f.Int("voice-max", voice.DefaultMaxParticipants, "participants per voice channel, at `MOST`")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.required("central", "name", "data", "cluster-secret-file"); err != nil {
		return err
	}
	if *clockMode != server.ClockHLC && *clockMode != server.ClockWall {
		return usagef("--clock %q: want hlc or wall", *clockMode)
	}
	if *voiceUDPPort < 0 || *voiceUDPPort > 65535 {
		return usagef("--voice-udp-port %d: want 0 to 65535", *voiceUDPPort)
	}
	if *voiceMax < 1 {
		return usagef("--voice-max %d: want at least 1", *voiceMax)
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	log, err := f.logger()
	if err != nil {
		return err
	}
	caddrs, err := centralAddrs(*centralFlag)
	if err != nil {
		return usagef("--central: %v", err)
	}
	secret, err := readSecretFile(*secretFile, log)
	if err != nil {
		return err
	}
	sp, err := startChatServer(serverOptions{
		name: *name, dir: *data, listen: *listen, advertise: *advertise, central: caddrs,
		secret: secret, clockMode: *clockMode, settled: *settled, certHosts: *extraHosts, clock: clock.New(), log: log,
		http: *httpFlag, tlsCert: *tlsCert, tlsKey: *tlsKey, voiceUDPPort: *voiceUDPPort, voiceMax: *voiceMax,
		connsPerAddr: *connsPerAddr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "chat server %s listening on %s, advertised as %s\n", sp.name, sp.listenAddr, sp.addr)
	if err := sp.register(ctx); err != nil {
		if ctx.Err() != nil {
			// Stopped (Ctrl-C, SIGTERM) while waiting for central.
			log.Info("stopped before registering", "server", sp.name)
			return sp.Close()
		}
		return errors.Join(err, sp.Close())
	}
	fmt.Fprintf(e.stdout, "chat server %s registered with the central server at %s\n", sp.name, sp.centralInv.Current())
	if sp.webURL != "" {
		fmt.Fprintf(e.stdout, "chat server %s web at %s\n", sp.name, sp.webURL)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "server", sp.name)
	case err = <-sp.serveErr:
		err = fmt.Errorf("serve: %w", err)
	}
	return errors.Join(err, sp.Close())
}

// serverTaskWorkers is how many goroutines that ran a chat server's
// background tasks wait for the next ones (see package workpool); the
// rest exit.
const serverTaskWorkers = 64

// serverOptions configure startChatServer.
type serverOptions struct {
	name      string
	dir       string
	listen    string
	advertise string
	central   []string // the central servers' addresses (one cluster)
	secret    []byte
	clockMode string
	settled   bool
	certHosts []string // more names for the server's certificate
	clock     clock.Clock
	log       *slog.Logger
	http      string // the web port's HOST:PORT, "" for none
	tlsCert   string // the web port's certificate and key files, "" for the cluster-CA-signed one
	tlsKey    string
	// voiceUDPPort and voiceMax configure the SFU (server.Config's
	// VoiceNetwork.UDPPort and VoiceMax); zero for the defaults.
	voiceUDPPort int
	voiceMax     int
	// connsPerAddr caps the RMI connections from one IP address; zero
	// for rmi.DefaultMaxConnsPerAddr.
	connsPerAddr int
}

// serverProc is a running chat server.
type serverProc struct {
	s          *server.Server
	tasks      *workpool.Clock // s's clock: its timers' functions run on kept goroutines
	srv        *rmi.Server
	name       string
	listenAddr string
	addr       string // advertised
	clk        clock.Clock
	log        *slog.Logger
	cluster    centralapi.Cluster
	centralInv *rmi.Failover // calls to central, moving to the next central server when one is down
	certs      *certKeeper
	serveErr   chan error
	member     *pki.Member

	opts    serverOptions
	httpL   net.Listener // the web port's listener, nil for none
	webAddr string       // its advertised host:port
	webURL  string       // its URL, once serving
	web     *web.Handler
	httpSrv *http.Server

	mu         sync.Mutex
	registered bool            // Start succeeded: Close unregisters
	peers      []*rmi.Redialer // connections to other chat servers, closed by Close
}

// startChatServer opens a chat server's state and serves its objects on a
// new listener. It does not register with central yet: see register.
func startChatServer(o serverOptions) (*serverProc, error) {
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	addr, err := advertiseAddr(l, o.listen, o.advertise, o.central[0])
	if err != nil {
		l.Close()
		return nil, err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		l.Close()
		return nil, fmt.Errorf("chat server %s: %w", o.name, err)
	}
	member, err := pki.OpenMember(o.dir, o.clock)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("chat server %s: %w", o.name, err)
	}
	// Every dial carries the secret, and TLS that verifies the other end
	// against the cluster CA and presents this server's certificate.
	dial := func(addr string) *rmi.Redialer {
		return rmi.NewRedialer(addr, rmi.DialConfig{Clock: o.clock, Logger: o.log, ClusterSecret: o.secret, TLS: member.ClientConfig(addr)})
	}
	centralInv, err := rmi.NewFailover(o.central, rmi.FailoverConfig{
		Connect: func(addr string) rmi.Invoker { return dial(addr) },
		OnMove: func(from, to string, cause error) {
			o.log.Warn("central server lost; using another", "server", o.name, "lost", from, "using", to, "err", cause)
		},
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("chat server %s: %w", o.name, err)
	}
	sp := &serverProc{
		name: o.name, listenAddr: l.Addr().String(), addr: addr, clk: o.clock, log: o.log,
		centralInv: centralInv, serveErr: make(chan error, 1),
		member: member, opts: o,
	}
	if o.http != "" {
		if sp.httpL, sp.webAddr, err = listenServerWeb(o.http, addr); err != nil {
			l.Close()
			sp.centralInv.Close()
			return nil, err
		}
	}
	sp.cluster = centralapi.ClusterStub{Inv: sp.centralInv}
	sp.certs = &certKeeper{
		member: member, ca: centralapi.CAStub{Inv: sp.centralInv}, name: o.name, dir: o.dir,
		hosts: certHosts(addr, o.listen, append(slices.Clip(o.certHosts), hostPart(sp.webAddr))), clk: o.clock, log: o.log,
	}
	// A chat server runs its deliveries and forwards as timer functions:
	// on kept goroutines, each keeps the stack it grew (package workpool).
	sp.tasks = workpool.NewClock(o.clock, serverTaskWorkers)
	s, err := server.Open(server.Config{
		Name: o.name, Addr: addr, HTTP: sp.webAddr, Dir: o.dir, Clock: sp.tasks, ClockMode: o.clockMode, Settled: o.settled,
		Central: sp.cluster, Logger: o.log,
		VoiceNetwork: voice.Network{UDPPort: o.voiceUDPPort}, VoiceMax: o.voiceMax,
		Connect: func(addr string) rmi.Invoker {
			r := dial(addr)
			sp.mu.Lock()
			sp.peers = append(sp.peers, r)
			sp.mu.Unlock()
			return r
		},
	})
	if err != nil {
		l.Close()
		sp.closeWebListener()
		sp.centralInv.Close()
		sp.tasks.Close()
		return nil, fmt.Errorf("chat server %s: %w", o.name, err)
	}
	sp.s = s
	t := rmi.NewTable(o.log)
	if err := s.Export(t); err != nil {
		l.Close()
		sp.closeWebListener()
		s.Close()
		sp.tasks.Close()
		sp.centralInv.Close()
		return nil, err
	}
	sp.srv = rmi.NewServer(t, rmi.ServerConfig{
		Clock: o.clock, Logger: o.log, ClusterSecret: o.secret,
		TLS: member.ServerConfig(), RequireClusterCert: true,
		Limits: rmi.Limits{MaxConnsPerAddr: o.connsPerAddr},
	})
	go func() { sp.serveErr <- sp.srv.Serve(l) }()
	return sp, nil
}

// register gets the chat server's certificate from central (if it needs
// one), registers the chat server and starts its background work,
// retrying (with back-off up to 5s) while central cannot be reached, until
// ctx ends. Other failures (the cluster secret refused, central's
// certificate not signed by the cluster CA, a bad name or address) end it
// at once.
func (p *serverProc) register(ctx context.Context) error {
	wait := 250 * time.Millisecond
	for {
		err := p.certs.ensure(ctx)
		if err == nil {
			err = p.s.Start(ctx)
		}
		if err == nil {
			p.mu.Lock()
			p.registered = true
			p.mu.Unlock()
			p.log.Info("registered with central", "server", p.name, "addr", p.addr)
			return p.startWeb()
		}
		if !rmi.IsUnreachable(err) || errors.Is(err, rmi.ErrHandshake) {
			return fmt.Errorf("chat server %s: %w", p.name, err)
		}
		p.log.Warn("central server unreachable; will retry", "server", p.name, "in", wait, "err", err)
		t := p.clk.Timer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("chat server %s: gave up registering: %w (last error: %w)", p.name, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Close stops serving, closes the chat server and tells central it is
// gone (so its users are placed elsewhere at once, not after its lease
// expires).
func (p *serverProc) Close() error {
	p.certs.close()
	err := p.stopWeb()
	err = errors.Join(err, p.srv.Close(), p.s.Close())
	p.tasks.Close()
	p.mu.Lock()
	registered := p.registered
	peers := p.peers
	p.peers = nil
	p.mu.Unlock()
	if registered {
		ctx, cancel := p.clk.WithTimeout(context.Background(), 2*time.Second)
		if uerr := p.cluster.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: p.name}); uerr != nil {
			p.log.Warn("could not unregister from central", "server", p.name, "err", uerr)
		}
		cancel()
	}
	p.centralInv.Close()
	for _, r := range peers {
		r.Close()
	}
	return err
}

// listenServerWeb listens on the chat server web port's flag value and returns the
// listener and the host:port browsers are sent to: the listen host if it
// is specific, else the host of the chat server's advertised address.
func listenServerWeb(flag, advertised string) (net.Listener, string, error) {
	host, _, err := net.SplitHostPort(flag)
	if err != nil {
		return nil, "", usagef("--http %q: %v", flag, err)
	}
	l, err := net.Listen("tcp", flag)
	if err != nil {
		return nil, "", fmt.Errorf("web port: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = hostPart(advertised)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	return l, net.JoinHostPort(host, port), nil
}

// closeWebListener closes the web port's listener if it is not serving.
func (p *serverProc) closeWebListener() {
	if p.httpL != nil {
		p.httpL.Close()
	}
}

// startWeb serves the browser chat app on the web port, if there is one,
// once the chat server is registered (its certificate is then in DIR).
// The gateway's clients attach to this server's own RMI address over TLS,
// verified against the cluster CA, as any client does.
func (p *serverProc) startWeb() error {
	if p.httpL == nil {
		return nil
	}
	p.mu.Lock()
	started := p.web != nil
	p.mu.Unlock()
	if started {
		return nil
	}
	clientTLS := func(addr string) *tls.Config {
		c := p.member.ClientConfig(addr)
		c.GetClientCertificate = nil // an ordinary client, not a cluster member
		return c
	}
	url := centralapi.WebURL(p.webAddr)
	h, err := web.New(web.Config{
		Server: centralapi.ServerInfo{Name: p.name, Addr: p.addr, HTTP: p.webAddr},
		Origin: url,
		CentralWeb: func() string {
			if c := p.s.CentralHTTP(); c != "" {
				return centralapi.WebURL(c)
			}
			return ""
		},
		Cluster: p.cluster,
		Client: client.Config{
			Central: strings.Join(p.opts.central, ","),
			Dial:    client.TLSDialer(rmi.DialConfig{Clock: p.clk, Logger: p.log}, clientTLS),
		},
		Clock:  p.clk,
		Logger: p.log,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)}
	l := p.httpL
	if strings.HasPrefix(url, "https://") {
		cfg := p.member.ServerConfig()
		if p.opts.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(p.opts.tlsCert, p.opts.tlsKey)
			if err != nil {
				return fmt.Errorf("web port: %w", err)
			}
			cfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		}
		l = tls.NewListener(l, cfg)
	}
	p.mu.Lock()
	p.web, p.httpSrv, p.webURL = h, srv, url
	p.mu.Unlock()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("web port stopped", "server", p.name, "err", err)
		}
	}()
	return nil
}

// stopWeb closes the web port and the sessions its gateway attached.
func (p *serverProc) stopWeb() error {
	p.mu.Lock()
	h, srv := p.web, p.httpSrv
	p.mu.Unlock()
	if srv == nil {
		p.closeWebListener()
		return nil
	}
	err := srv.Close()
	return errors.Join(err, h.Close())
}
