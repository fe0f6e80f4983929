package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/pki"
)

const adminDescription = `Operator commands. They prove the cluster secret to the central server,
so run them on the central machine or on one with a copy of the secret.

Commands:
  reset-password --user NAME   issue a one-time reset code for a user who
                               lost both the password and the recovery code
  migrate --to-etcd ENDPOINTS --data DIR
                               copy an embedded central's state into etcd

Run 'distchat admin COMMAND --help' for a command's flags.`

// runAdmin is the "admin" subcommand: it dispatches to its own commands.
func runAdmin(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "reset-password":
			return runAdminResetPassword(ctx, e, args[1:])
		case "migrate":
			return runAdminMigrate(ctx, e, args[1:])
		}
	}
	f := newFlagSet(e, "admin", "COMMAND [flags]", adminDescription, "warn")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return usagef("unknown admin command %q (want reset-password or migrate)", args[0])
	}
	if err := f.parse(args); err != nil {
		return err
	}
	return usagef("missing admin command (want reset-password or migrate)")
}

const adminResetDescription = `Issues a one-time reset code for a user who lost both the password and
the recovery code, and prints it. It replaces the user's recovery code:
give it to the user (in person), who sets a new password with it on the
central web port's "Forgot password" page, or with 'distchat
reset-password'. Until then the old password still works.

Central must be running (its data cannot be opened while it is). The
command proves the cluster secret, over TLS verified against the cluster
CA: --ca, by default ca.crt beside the secret file, as on the central
machine.`

// runAdminResetPassword is "admin reset-password".
func runAdminResetPassword(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "admin reset-password", "--user NAME --cluster-secret-file FILE [--central HOST:PORT] [--ca FILE]", adminResetDescription, "warn")
	centralFlag := f.String("central", "127.0.0.1:1099", "central server `HOST:PORT`, or several of one cluster, comma-separated (moves to the next when one is down)")
	user := f.String("user", "", "the user's `NAME` (required)")
	secretFile := f.String("cluster-secret-file", "", "the cluster secret `FILE`, as on the central server (required)")
	caFile := f.String("ca", "", "the cluster CA certificate `FILE` (default: ca.crt beside the secret file)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.required("user", "cluster-secret-file", "central"); err != nil {
		return err
	}
	log, err := f.logger()
	if err != nil {
		return err
	}
	caddrs, err := centralAddrs(*centralFlag)
	if err != nil {
		return usagef("--central: %v", err)
	}
	if *caFile == "" {
		*caFile = filepath.Join(filepath.Dir(*secretFile), pki.CACertFile)
	}
	secret, err := readSecretFile(*secretFile, log)
	if err != nil {
		return err
	}
	trust, err := pki.NewClientTrust(pki.TrustOptions{CAFile: *caFile})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, accountTimeout)
	defer cancel()
	clk := clock.New()
	cl, err := rmi.NewFailover(caddrs, rmi.FailoverConfig{Connect: func(addr string) rmi.Invoker {
		return rmi.NewRedialer(addr, rmi.DialConfig{Clock: clk, Logger: log, ClusterSecret: secret, TLS: trust.ClientConfig(addr)})
	}})
	if err != nil {
		return err
	}
	defer cl.Close()
	rep, err := centralapi.ClusterStub{Inv: cl}.IssueResetCode(ctx, centralapi.UserArgs{User: *user})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, `One-time reset code for %q: %s
Give it to the user, in person. They set a new password with it on the
central web port's "Forgot password" page, or with
  %s reset-password --central %s --user %s --recovery-code CODE
It replaces their recovery code and works once.
`, *user, rep.RecoveryCode, e.prog, *centralFlag, *user)
	return nil
}

const adminMigrateDescription = `Copies the state of an embedded central server (DIR/central.db: accounts,
sessions, rooms and members) into an etcd cluster, for 'distchat central
--etcd'. Stop central first: the file is locked while it runs.

It only creates keys etcd lacks, so it can run again (it then copies
nothing); a key etcd holds with another value is reported and left as it
is. It prints the keys by kind, what it copied, and a check that every key
of DIR is in etcd with the same value; it fails if one is not.`

// runAdminMigrate is "admin migrate".
func runAdminMigrate(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "admin migrate", "--to-etcd ENDPOINTS --data DIR [flags]", adminMigrateDescription, "warn")
	data := f.String("data", "", "the embedded central's data directory `DIR` (required)")
	etcd := addEtcdFlags(f, "to-etcd", "the etcd cluster's client `ENDPOINTS`, comma-separated (required)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.required("to-etcd", "data"); err != nil {
		return err
	}
	dst, err := etcd.open(ctx, e)
	if err != nil {
		return err
	}
	defer dst.Close()
	rep, err := central.Migrate(ctx, *data, dst)
	if rep.Total > 0 || err == nil {
		fmt.Fprint(e.stdout, rep)
	}
	return err
}
