// Command rmiping measures the empty remote call of distchat's rmi layer
// across two processes, the same way bench/javarmi measures Java RMI's:
//
//	rmiping serve [--listen HOST:PORT] [--tls DIR | --netrpc]
//	rmiping call  [--addr HOST:PORT] [--tls DIR | --netrpc] [--n N] [--warmup W]
//
// serve exports a Pinger (one method, Ping, taking and returning nothing)
// and a registry naming it, prints "ready ADDR" and serves until it is
// interrupted. call looks the Pinger up in that registry, calls Ping W
// times to warm up and then N times one after the other, and prints the
// round trip's p50, p99 and mean in µs on one line. Without --tls the
// connection is plaintext TCP (rmi allows it for tests and benchmarks;
// distchat itself always uses TLS); with --tls DIR it is TLS 1.3 with a
// certificate signed by the CA in DIR (serve creates it there), as in a
// distchat cluster. With --netrpc (at both ends) it measures the stack rmi
// is built on instead, bare: net/rpc with the go-msgpack codec over plain
// TCP (netrpc.go). bench/ping.sh runs both ends pinned to CPUs, next to
// the Java RMI ping.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/benbjohnson/clock"
)

// defaultAddr is where serve listens and call dials by default.
const defaultAddr = "127.0.0.1:11100"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rmiping:", err)
		stop()
		os.Exit(1)
	}
}

// errUsage is the error of a command line rmiping cannot run.
var errUsage = errors.New("usage: rmiping serve [--listen HOST:PORT] [--tls DIR | --netrpc] | rmiping call [--addr HOST:PORT] [--tls DIR | --netrpc] [--n N] [--warmup W]")

// run runs the subcommand named by args[0]; serve runs until ctx ends.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch args[0] {
	case "serve":
		f := flag.NewFlagSet("serve", flag.ContinueOnError)
		listen := f.String("listen", defaultAddr, "listen on `HOST:PORT`")
		tlsDir := f.String("tls", "", "serve TLS 1.3 with a certificate of the CA in `DIR` (created if missing)")
		netrpc := f.Bool("netrpc", false, "serve bare net/rpc with the go-msgpack codec (no rmi)")
		if err := parse(f, args[1:]); err != nil {
			return err
		}
		if *netrpc && *tlsDir != "" {
			return fmt.Errorf("--netrpc is plain TCP, without --tls: %w", errUsage)
		}
		return serve(ctx, *listen, *tlsDir, *netrpc, log, stdout)
	case "call":
		f := flag.NewFlagSet("call", flag.ContinueOnError)
		addr := f.String("addr", defaultAddr, "the server's `HOST:PORT`")
		tlsDir := f.String("tls", "", "use TLS 1.3, verifying the server against DIR/ca.crt")
		netrpc := f.Bool("netrpc", false, "call a --netrpc server (bare net/rpc with the go-msgpack codec)")
		n := f.Int("n", 20000, "time `N` calls")
		warmup := f.Int("warmup", 20000, "make `W` calls before timing")
		if err := parse(f, args[1:]); err != nil {
			return err
		}
		if *n < 1 || *warmup < 0 {
			return fmt.Errorf("--n %d --warmup %d: want N at least 1 and W at least 0", *n, *warmup)
		}
		if *netrpc && *tlsDir != "" {
			return fmt.Errorf("--netrpc is plain TCP, without --tls: %w", errUsage)
		}
		if *netrpc {
			return callNetrpc(ctx, *addr, *n, *warmup, stdout)
		}
		return call(ctx, *addr, *tlsDir, *n, *warmup, log, stdout)
	}
	return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
}

// parse parses a subcommand's flags and refuses stray arguments.
func parse(f *flag.FlagSet, args []string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: %w", f.Arg(0), errUsage)
	}
	return nil
}

// serve serves a Pinger on addr until ctx ends: over rmi, or bare
// net/rpc if netrpc is set.
func serve(ctx context.Context, addr, tlsDir string, netrpc bool, log *slog.Logger, stdout io.Writer) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if netrpc {
		served := make(chan error, 1)
		go func() { served <- serveNetrpc(l, new(atomic.Int64)) }()
		fmt.Fprintf(stdout, "ready %s\n", l.Addr())
		select {
		case <-ctx.Done():
			return errors.Join(l.Close(), <-served)
		case err := <-served:
			return errors.Join(err, l.Close())
		}
	}
	srv, err := newServer(&pinger{}, l.Addr().String(), tlsDir, log)
	if err != nil {
		return errors.Join(err, l.Close())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	fmt.Fprintf(stdout, "ready %s\n", l.Addr())
	select {
	case <-ctx.Done():
		return srv.Close()
	case err := <-served:
		return errors.Join(err, srv.Close())
	}
}

// call times n calls of Ping on the server at addr after warmup calls,
// and prints the result line.
func call(ctx context.Context, addr, tlsDir string, n, warmup int, log *slog.Logger, stdout io.Writer) error {
	c, ping, err := dialPinger(ctx, addr, tlsDir, log)
	if err != nil {
		return err
	}
	rtt, err := measure(ctx, clock.New(), n, warmup, ping.Ping)
	if err != nil {
		return errors.Join(err, c.Close())
	}
	return errors.Join(writeResult(stdout, "go-rmi", transportName(tlsDir), warmup, rtt), c.Close())
}

// callNetrpc is call against a --netrpc server.
func callNetrpc(ctx context.Context, addr string, n, warmup int, stdout io.Writer) error {
	c, ping, err := dialNetrpc(ctx, addr)
	if err != nil {
		return err
	}
	rtt, err := measure(ctx, clock.New(), n, warmup, ping)
	if err != nil {
		return errors.Join(err, c.Close())
	}
	return errors.Join(writeResult(stdout, "go-netrpc", "tcp", warmup, rtt), c.Close())
}
