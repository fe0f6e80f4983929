// Command distchat runs the distchat distributed chat system: a central
// server (registry, accounts, rooms), chat servers, and a terminal client.
//
// Run "distchat --help" for the subcommands and "distchat COMMAND --help"
// for the flags of one.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// command is one distchat subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands returns the subcommands in the order the help lists them.
func commands() []command {
	return []command{
		{"up", "run a central server and N chat servers in one process", runUp},
		{"central", "run the central server (registry, accounts, rooms)", runCentral},
		{"server", "run one chat server, registered with a central server", runServer},
		{"signup", "create an account (prints its recovery code)", runSignup},
		{"reset-password", "set a new password using the account's recovery code", runResetPassword},
		{"admin", "operator commands: reset-password issues a user a one-time reset code", runAdmin},
		{"client", "log in and chat in the terminal (scriptable on a pipe)", runClient},
		{"bench", "measure fan-out: C clients in one room, deliveries/s, latency, checks", runBench},
		{"sim", "simulate the system deterministically and check the ordering rule", runSim},
		{"version", "print the version of distchat and of Go", runVersion},
	}
}

// env is what a subcommand may touch of the outside world. Tests build
// their own; main uses the process's.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stdinTTY reports whether stdin is an interactive terminal.
	stdinTTY bool
	// stdinFD is stdin's file descriptor, for no-echo password prompts.
	stdinFD int
	// prog is how the user invokes distchat ("distchat", or "go run ."),
	// used in the hints the commands print.
	prog string
}

func main() {
	e := &env{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		stdinTTY: term.IsTerminal(int(os.Stdin.Fd())),
		stdinFD:  int(os.Stdin.Fd()),
		prog:     progName(),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake in how a command was invoked: exit status 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelpShown means a command printed its help as asked: exit status 0.
var errHelpShown = errors.New("help shown")

// run dispatches to a subcommand and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		topUsage(e.stderr, e.prog)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		if name == "help" && len(args) > 1 {
			return run(ctx, e, []string{args[1], "--help"})
		}
		topUsage(e.stdout, e.prog)
		return exitOK
	case "-v", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, errHelpShown):
			return exitOK
		case errors.Is(err, errShown):
			return exitError
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "%s %s: %v\nRun '%s %s --help' for usage.\n", e.prog, name, err, e.prog, name)
			return exitUsage
		default:
			fmt.Fprintf(e.stderr, "%s %s: %v\n", e.prog, name, err)
			return exitError
		}
	}
	fmt.Fprintf(e.stderr, "%s: unknown command %q\n\n", e.prog, name)
	topUsage(e.stderr, e.prog)
	return exitUsage
}

// errShown is returned by a command whose failure the user has already
// been shown (the terminal client printed "session ended: ..."): the
// command exits with exitError and prints nothing more.
var errShown = errors.New("already shown to the user")

// topUsage prints the top-level help.
func topUsage(w io.Writer, prog string) {
	fmt.Fprintf(w, `distchat is a distributed chat system: a central server (registry, accounts,
rooms), chat servers that stamp, store and forward messages, and clients.

Usage:
  %s COMMAND [flags]

Commands:
`, prog)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run '%[1]s COMMAND --help' for a command's flags.

Quick start, one machine:
  %[1]s up                                          # central + 3 chat servers
  %[1]s signup --central 127.0.0.1:1099 --user alice
  %[1]s client --central 127.0.0.1:1099 --user alice
  or open the central web port up prints (http://127.0.0.1:8080) in a browser

Measure it (starts its own cluster):
  %[1]s bench --clients 20 --messages 200 --servers 3
`, prog)
}
