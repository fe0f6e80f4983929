package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/web"
	"github.com/distchat/distchat/rmi/pki"
)

// This file starts central's web port (package central/web): its
// listener, the address chat servers learn, and HTTPS off loopback.

// webPortTries is how many ports from the default --http port 'up' tries
// before taking any free one.
const webPortTries = 10

// listenWeb binds the web port at addr. If the port is taken and fallback
// is set (the default of 'up', not a port the user asked for), it tries
// the next webPortTries ports, then any free port; otherwise it fails
// saying what to do.
func listenWeb(addr string, fallback bool) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil || !fallback || !errors.Is(err, syscall.EADDRINUSE) {
		if errors.Is(err, syscall.EADDRINUSE) {
			err = fmt.Errorf("%w: another program has that port; choose another with --http HOST:PORT (port 0: any free port), or --http \"\" for no web port", err)
		}
		if err != nil {
			return nil, fmt.Errorf("central web port: %w", err)
		}
		return l, nil
	}
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	for i := 1; i <= webPortTries && port != 0 && port+i <= 65535; i++ {
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port+i))); err == nil {
			return l, nil
		}
	}
	l, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("central web port: %w", err)
	}
	return l, nil
}

// webAdvertise is the host:port browsers (and chat servers, to send them
// back) use for the web port bound at bound: its own address, or with a
// wildcard host, the host central advertises for rmi.
func webAdvertise(bound net.Addr, rmiAdvertised string) string {
	ta := bound.(*net.TCPAddr)
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = hostPart(rmiAdvertised)
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// webTLSOptions say how central's web port serves HTTPS.
type webTLSOptions struct {
	// certFile and keyFile, if set, are the certificate to serve
	// (--tls-cert, --tls-key); else the cluster CA signs one.
	certFile, keyFile string
	// force serves HTTPS even on loopback (tests: a loopback address
	// stands for a LAN one). Normally HTTPS is used exactly when
	// centralapi.WebURL says https.
	force bool
}

// webTLSConfig returns the web port's TLS configuration: the given
// certificate, or central's own, signed by the cluster CA (with the CA in
// the chain). Unlike the rmi port it asks browsers for no client
// certificate, and allows TLS 1.2 for older browsers.
func webTLSConfig(o webTLSOptions, cert *pki.CentralCert) (*tls.Config, error) {
	if o.certFile != "" {
		kp, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("central web port: --tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kp}}, nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.ServerConfig().GetCertificate}, nil
}

// webPort is central's running web port.
type webPort struct {
	srv *http.Server
	url string // its base URL, as printed
}

// startWeb serves central's web pages on l (HTTPS if tlsCfg is set), and
// sends Serve's failure to errc.
func startWeb(l net.Listener, advertised string, c *central.Central, ca *pki.CA, tlsCfg *tls.Config, log *slog.Logger, errc chan<- error) (*webPort, error) {
	h, err := web.New(web.Config{Central: c, CA: ca.Certificate(), Secure: tlsCfg != nil, Logger: log})
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// Browsers that do not trust the CA yet fail handshakes: noise.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	url := centralapi.WebURL(advertised)
	serve := func() error { return srv.Serve(l) }
	if tlsCfg != nil {
		url = "https://" + strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
		serve = func() error { return srv.ServeTLS(l, "", "") }
	}
	go func() {
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("central web port: %w", err)
		}
	}()
	log.Info("central web port up", "listen", l.Addr().String(), "url", url)
	return &webPort{srv: srv, url: url}, nil
}

// Close stops the web port at once.
func (w *webPort) Close() error {
	if w == nil {
		return nil
	}
	return w.srv.Close()
}
