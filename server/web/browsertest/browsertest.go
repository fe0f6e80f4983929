// Package browsertest starts headless Chromium for distchat's browser
// tests (the root package's and server/web's): Debian's chromium, which
// .ci/run installs. Without it a test is skipped, but in CI (CI set in
// the environment) it fails, so that a CI machine never passes by
// skipping.
package browsertest

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// debianPath is where Debian installs chromium.
const debianPath = "/usr/bin/chromium"

// Attempts is how many times Start starts a chromium before it gives up.
const Attempts = 3

// Path returns chromium's path. Without chromium it skips t, or fails it
// in CI.
func Path(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat(debianPath); err == nil {
		return debianPath
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; .ci/run installs it")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// Options configures Start.
type Options struct {
	// Home is chromium's HOME; "" leaves the test's own.
	Home string
	// Output, if set, receives chromium's standard output and error.
	Output io.Writer
	// Flags are more options for chromium (fake media devices, a
	// window size, DisableGPU).
	Flags []chromedp.ExecAllocatorOption
}

// Start starts a chromium of its own (its own profile, so its own
// cookies) and returns the context of its first tab; chromedp.NewContext
// on it opens more tabs in the same browser. The browser is closed when
// the test ends.
//
// A chromium that exits while starting up (one in a few dozen on a
// loaded machine, before it opens its DevTools port) is started again,
// with a fresh profile, up to Attempts times in all; Start returns the
// last error if none started.
func Start(t testing.TB, name string, o Options) (context.Context, error) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Path(t)))
	if o.Home != "" {
		opts = append(opts, chromedp.Env("HOME="+o.Home))
	}
	if o.Output != nil {
		opts = append(opts, chromedp.CombinedOutput(o.Output))
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to sandbox as root
	}
	opts = append(opts, o.Flags...)
	for attempt := 1; ; attempt++ {
		actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(opts, chromedp.UserDataDir(t.TempDir()))...)
		// The first action starts the browser and binds it to ctx, which
		// has no deadline; the test bounds its own actions.
		ctx, cancel := chromedp.NewContext(actx)
		err := chromedp.Do(ctx)
		if err == nil {
			t.Cleanup(func() {
				cancel()
				cancelA()
			})
			return ctx, nil
		}
		cancel()
		cancelA()
		if attempt == Attempts {
			return nil, err
		}
		t.Logf("%s: start chromium: %v; starting it again", name, err)
	}
}
