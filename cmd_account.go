package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
)

// accountTimeout bounds signup and reset-password (bcrypt is slow on
// purpose, so leave it room).
const accountTimeout = 30 * time.Second

const passwordSources = `The password comes from --password-file, else the DISTCHAT_PASSWORD
environment variable, else a prompt on the terminal (typed twice, not
echoed). Passwords are 8 to 1024 bytes; user names are 1-32 of a-z 0-9 _ . -

The connection is TLS 1.3; the server is verified against --ca, or the
cluster CA is trusted on first use and pinned, as for 'client'.`

const signupDescription = `Creates an account at the central server and prints its recovery code:
the one way to set a new password if this one is forgotten.

` + passwordSources

// runSignup is the "signup" subcommand.
func runSignup(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "signup", "--user NAME [--central HOST:PORT] [--password-file FILE]", signupDescription, "warn")
	centralFlag := f.String("central", "127.0.0.1:1099", "central server `HOST:PORT`, or several of one cluster, comma-separated (moves to the next when one is down)")
	user := f.String("user", "", "user `NAME` (required)")
	pwFile := f.String("password-file", "", "read the password from `FILE`")
	tf := addTrustFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.required("central", "user"); err != nil {
		return err
	}
	log, err := f.logger()
	if err != nil {
		return err
	}
	cfg, err := accountConfig(e, tf, *centralFlag, *user, log)
	if err != nil {
		return err
	}
	if cfg.Password, err = readPassword(e, *pwFile, "Password for "+*user, true); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, accountTimeout)
	defer cancel()
	code, err := client.SignUp(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, `Account %q created.
Recovery code: %s
Keep this code somewhere safe: it is the only way to set a new password if
you forget yours (%s reset-password). It is shown only once.
`, *user, code, e.prog)
	return nil
}

const resetDescription = `Sets a new password for an account using its recovery code, ends all
of the account's sessions, and prints the next recovery code (each code
works once).

The recovery code comes from --recovery-code or --recovery-code-file.
` + passwordSources

// runResetPassword is the "reset-password" subcommand.
func runResetPassword(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "reset-password", "--user NAME --recovery-code CODE [--central HOST:PORT] [--password-file FILE]", resetDescription, "warn")
	centralFlag := f.String("central", "127.0.0.1:1099", "central server `HOST:PORT`, or several of one cluster, comma-separated (moves to the next when one is down)")
	user := f.String("user", "", "user `NAME` (required)")
	code := f.String("recovery-code", "", "the account's recovery `CODE`")
	codeFile := f.String("recovery-code-file", "", "read the recovery code from `FILE`")
	pwFile := f.String("password-file", "", "read the new password from `FILE`")
	tf := addTrustFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.required("central", "user"); err != nil {
		return err
	}
	switch {
	case *code != "" && *codeFile != "":
		return usagef("give --recovery-code or --recovery-code-file, not both")
	case *codeFile != "":
		b, err := os.ReadFile(*codeFile)
		if err != nil {
			return fmt.Errorf("recovery code: %w", err)
		}
		*code = strings.TrimSpace(string(b))
	case *code == "":
		return usagef("--recovery-code or --recovery-code-file is required")
	}
	log, err := f.logger()
	if err != nil {
		return err
	}
	cfg, err := accountConfig(e, tf, *centralFlag, *user, log)
	if err != nil {
		return err
	}
	pw, err := readPassword(e, *pwFile, "New password for "+*user, true)
	if err != nil {
		return err
	}
	cfg.Password = pw
	ctx, cancel := context.WithTimeout(ctx, accountTimeout)
	defer cancel()
	next, err := client.ResetPassword(ctx, cfg, *code, pw)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, `Password of %q changed; its sessions have ended.
New recovery code: %s
The old code no longer works. Keep this one somewhere safe.
`, *user, next)
	return nil
}

// accountConfig is the client configuration (without the password) for
// talking to the central server at central as user, over TLS verified as
// tf says.
func accountConfig(e *env, tf trustFlags, central, user string, log *slog.Logger) (client.Config, error) {
	caddrs, err := centralAddrs(central)
	if err != nil {
		return client.Config{}, usagef("--central: %v", err)
	}
	trust, err := tf.trust(e, caddrs)
	if err != nil {
		return client.Config{}, err
	}
	clk := clock.New()
	return client.Config{
		Central: central, User: user, Clock: clk, Logger: log,
		Dial: client.TLSDialer(rmi.DialConfig{Clock: clk, Logger: log}, trust.ClientConfig),
	}, nil
}
