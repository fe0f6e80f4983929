package centralapi_test

import (
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
)

// TestStubs proves that each stub calls, for every method of its remote
// interface, the remote method of the same name on the right object.
func TestStubs(t *testing.T) {
	rmitest.CheckStub(t, centralapi.ObjectName, func(inv rmitest.Invoker) centralapi.CentralServer {
		return centralapi.Stub{Inv: inv}
	})
	rmitest.CheckStub(t, centralapi.ClusterObjectName, func(inv rmitest.Invoker) centralapi.Cluster {
		return centralapi.ClusterStub{Inv: inv}
	})
	rmitest.CheckStub(t, centralapi.CAObjectName, func(inv rmitest.Invoker) centralapi.CertAuthority {
		return centralapi.CAStub{Inv: inv}
	})
}

func TestWebURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080":    "http://127.0.0.1:8080",
		"localhost:80":      "http://localhost:80",
		"[::1]:8080":        "http://[::1]:8080",
		"192.168.1.5:8443":  "https://192.168.1.5:8443",
		"chat.lan:443":      "https://chat.lan:443",
		"127.0.0.2:1":       "http://127.0.0.2:1",
		"[fe80::1%eth0]:80": "https://[fe80::1%eth0]:80",
	} {
		if got := centralapi.WebURL(in); got != want {
			t.Errorf("WebURL(%q) = %q, want %q", in, got, want)
		}
	}
}
