package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
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
