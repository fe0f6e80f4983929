package chatapi_test

import (
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// TestStubs proves that each stub calls, for every method of its remote
// interface, the remote method of the same name on the right object.
func TestStubs(t *testing.T) {
	rmitest.CheckStub(t, chatapi.ObjectName, func(inv rmitest.Invoker) chatapi.ChatServer {
		return chatapi.Stub{Inv: inv}
	})
	rmitest.CheckStub(t, chatapi.PeerObjectName, func(inv rmitest.Invoker) chatapi.Peer {
		return chatapi.PeerStub{Inv: inv}
	})
	rmitest.CheckStub(t, chatapi.CallbackObjectName, func(inv rmitest.Invoker) chatapi.Callback {
		return chatapi.CallbackStub{Inv: inv}
	})
}
