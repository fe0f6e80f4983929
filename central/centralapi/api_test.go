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
