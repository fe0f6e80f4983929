package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/distchat/distchat"

// goList runs `go list` with a template over the module's packages and
// returns one line per package.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		goTool = p
	}
	out, err := exec.Command(goTool, append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestPackageGraph holds the package graph to what the README's
// Architecture section draws: the remote interfaces import only rmi, rmi
// knows nothing of chat, only the command imports the simulator, and the
// client library links neither the servers' storage nor password hashing.
func TestPackageGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	imports := map[string][]string{}
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	own := func(p string) bool { return strings.HasPrefix(p, module) }
	allowed := map[string][]string{
		module + "/rmi":                {module + "/rmi/workpool"},
		module + "/rmi/pki":            {},
		module + "/rmi/workpool":       {},
		module + "/central/centralapi": {module + "/rmi"},
		module + "/server/chatapi":     {module + "/rmi", module + "/central/centralapi"},
		// The web ports reach chat only through the real operations:
		// central's pages call central; the chat app's gateway is a client.
		module + "/central/web": {module + "/central", module + "/central/centralapi", module + "/rmi", module + "/rmi/pki"},
		module + "/server/web":  {module + "/client", module + "/server/chatapi", module + "/central/centralapi", module + "/rmi"},
	}
	for pkg, ok := range allowed {
		if _, found := imports[pkg]; !found {
			t.Errorf("package %s is missing", pkg)
		}
		for _, imp := range imports[pkg] {
			if own(imp) && !slices.Contains(ok, imp) {
				t.Errorf("%s imports %s; it may import only %v of this module", pkg, imp, ok)
			}
		}
	}
	for pkg, imps := range imports {
		for _, imp := range imps {
			if imp == module+"/sim" && pkg != module && !strings.HasPrefix(pkg, module+"/sim/") {
				t.Errorf("%s imports the simulator; only the distchat command may", pkg)
			}
		}
	}
	for _, dep := range goList(t, "-deps", "./client/...") {
		switch {
		case dep == "go.etcd.io/bbolt", strings.HasPrefix(dep, "golang.org/x/crypto/bcrypt"):
			t.Errorf("the client library links %s", dep)
		case dep == module+"/central", dep == module+"/server":
			t.Errorf("the client library links the server implementation %s", dep)
		}
	}
	// The embedded default (and the simulator on it) runs on bbolt alone;
	// only the command links the etcd client, for --etcd.
	for _, dep := range goList(t, "-deps", "./central", "./sim/...") {
		if strings.HasPrefix(dep, "go.etcd.io/etcd/") {
			t.Errorf("central or the simulator links %s", dep)
		}
	}
}
