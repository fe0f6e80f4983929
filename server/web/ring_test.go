package web_test

import (
	"testing"

	"github.com/distchat/distchat/central/centralapi"
)

// TestRingPush: ann, on server-1, calls bob in their direct room; bob's
// page, on server-2, gets a "ring" push naming ann and the room.
func TestRingPush(t *testing.T) {
	e := newEnv(t, 2, nil)
	ann := e.open("server-1", e.login("ann", "server-1"))
	bob := e.open("server-2", e.login("bob", "server-2"))
	dm := centralapi.DirectRoomName("ann", "bob")
	if got := ann.must("direct", map[string]any{"user": "bob"}); got.Room != dm {
		t.Fatalf("direct room %q, want %q", got.Room, dm)
	}
	ann.must("voice-join", map[string]any{"room": dm})
	bob.wait("a ring from ann", func(f frame) bool { return f.Type == "ring" && f.Room == dm && f.User == "ann" })
	ann.must("voice-leave", map[string]any{"room": dm})
}
