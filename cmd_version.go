package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// runVersion is the "version" subcommand.
func runVersion(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "version", "", "Prints the version of distchat (its module version and, when built\nfrom a git checkout, the commit) and of the Go toolchain that built it.", "")
	if err := f.parse(args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

// versionString describes this build: "distchat VERSION [COMMIT] (GO
// OS/ARCH)".
func versionString() string {
	version, extra := "devel", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			extra = " " + rev + modified
		}
	}
	return fmt.Sprintf("distchat %s%s (%s %s/%s)", version, extra, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
