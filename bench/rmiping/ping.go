package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
)

// objectName is the name the Pinger is exported and bound under, as the
// Java server binds its Ping.
const objectName = "Ping"

// Pinger is the remote interface of the empty call: one method that
// takes nothing and returns nothing, so that a call measures the rmi
// layer alone. It is Java's `interface Ping extends Remote { void ping(); }`.
type Pinger interface {
	// Ping does nothing.
	Ping(ctx context.Context, a PingArgs) error
}

// PingArgs is Ping's (empty) argument.
type PingArgs struct{}

// pinger implements Pinger. It counts its calls, so that a test can see
// that every timed call reached it.
type pinger struct{ calls atomic.Int64 }

// Ping implements Pinger.
func (p *pinger) Ping(context.Context, PingArgs) error {
	p.calls.Add(1)
	return nil
}

// pingerStub calls a remote Pinger through Inv.
type pingerStub struct{ Inv rmi.Invoker }

// Ping calls the remote Ping.
func (s pingerStub) Ping(ctx context.Context) error {
	return s.Inv.Invoke(ctx, objectName, "Ping", PingArgs{}, nil)
}

// newServer returns an rmi server whose table holds a registry and the
// Pinger p, bound in it under objectName at addr. tlsDir, if set, is the
// directory of the CA that signs the server's certificate (created there
// if missing, as "distchat up" creates the cluster CA); without it the
// server speaks plaintext TCP.
func newServer(p *pinger, addr, tlsDir string, log *slog.Logger) (*rmi.Server, error) {
	t := rmi.NewTable(log)
	reg := rmi.NewRegistry()
	if err := rmi.Export[rmi.RegistryService](t, rmi.RegistryObjectName, reg); err != nil {
		return nil, err
	}
	if err := rmi.Export[Pinger](t, objectName, Pinger(p)); err != nil {
		return nil, err
	}
	ref := rmi.Ref{Addr: addr, Object: objectName}
	if err := (rmi.RegistryStub{Inv: rmi.Local{Table: t}}).Bind(context.Background(), objectName, ref); err != nil {
		return nil, err
	}
	cfg := rmi.ServerConfig{Logger: log}
	if tlsDir != "" {
		ca, _, err := pki.LoadOrCreateCA(tlsDir, clock.New())
		if err != nil {
			return nil, err
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg.TLS = ca.CentralCert([]string{host}).ServerConfig()
	}
	return rmi.NewServer(t, cfg), nil
}

// dialPinger connects to the registry at addr, looks the Pinger up, and
// returns a stub for it on the same connection (the reference names the
// same address). tlsDir, if set, holds the CA's ca.crt to verify the
// server with.
func dialPinger(ctx context.Context, addr, tlsDir string, log *slog.Logger) (*rmi.Client, pingerStub, error) {
	cfg := rmi.DialConfig{Logger: log}
	if tlsDir != "" {
		trust, err := pki.NewClientTrust(pki.TrustOptions{Centrals: []string{addr}, CAFile: filepath.Join(tlsDir, pki.CACertFile)})
		if err != nil {
			return nil, pingerStub{}, err
		}
		cfg.TLS = trust.ClientConfig(addr)
	}
	c, err := rmi.Dial(ctx, addr, cfg)
	if err != nil {
		return nil, pingerStub{}, err
	}
	ref, err := rmi.RegistryStub{Inv: c}.Lookup(ctx, objectName)
	if err == nil && ref.Addr != addr {
		// Java's stub would open a connection to the address it names;
		// this tool measures one connection only.
		err = fmt.Errorf("the registry names %v, not an object at %s (dial the address the server printed)", ref, addr)
	}
	if err != nil {
		return nil, pingerStub{}, errors.Join(fmt.Errorf("lookup %s: %w", objectName, err), c.Close())
	}
	return c, pingerStub{Inv: c}, nil
}

// transportName names the transport in the report line.
func transportName(tlsDir string) string {
	if tlsDir != "" {
		return "tls13"
	}
	return "tcp"
}
