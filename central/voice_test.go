package central

import (
	"testing"

	"github.com/distchat/distchat/central/centralapi"
)

// TestVoiceHost checks that a room's voice channel has one host for every
// member, chosen least-loaded, kept while it is live, and replaced when it
// is not; and that only members may ask.
func TestVoiceHost(t *testing.T) {
	e := newEnv(t)
	e.signUp("ann", "bob", "eve")
	e.register("s1", "s2")
	e.connect("eve") // s1 now has a session, so s2 is the least loaded
	if _, err := e.c.CreateRoom(ctx, centralapi.RoomArgs{User: "ann", Room: "lab"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: "bob", Room: "lab"}); err != nil {
		t.Fatal(err)
	}
	host := func(user, room string) string {
		t.Helper()
		r, err := e.c.VoiceHost(ctx, centralapi.RoomArgs{User: user, Room: room})
		if err != nil {
			t.Fatalf("VoiceHost(%s, %s): %v", user, room, err)
		}
		return r.Server.Name
	}
	if h := host("ann", "lab"); h != "s2" {
		t.Fatalf("first host %s, want the least-loaded s2", h)
	}
	e.connect("ann")
	e.connect("bob") // s2 is now the busier one, but the channel stays
	if h := host("bob", "lab"); h != "s2" {
		t.Fatalf("host for bob %s, want s2 (sticky)", h)
	}

	_, err := e.c.VoiceHost(ctx, centralapi.RoomArgs{User: "eve", Room: "lab"})
	wantErr(t, "VoiceHost(non-member)", err, centralapi.ErrNotMember)
	_, err = e.c.VoiceHost(ctx, centralapi.RoomArgs{User: "ann", Room: "nope"})
	wantErr(t, "VoiceHost(no room)", err, centralapi.ErrNoSuchRoom)
	_, err = e.c.VoiceHost(ctx, centralapi.RoomArgs{User: "ann", Room: "bad room"})
	wantErr(t, "VoiceHost(bad name)", err, centralapi.ErrBadName)

	if err := e.c.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: "s2"}); err != nil {
		t.Fatal(err)
	}
	if h := host("ann", "lab"); h != "s1" {
		t.Fatalf("host after s2 left %s, want s1", h)
	}
	// A host that restarts (registers again) lost its channels: the room
	// is placed afresh, here on the least-loaded server, which s2 now is.
	e.register("s2")
	if h := host("ann", "lab"); h != "s1" {
		t.Fatalf("host %s, want s1 (still live)", h)
	}
	e.register("s1")
	e.connect("eve") // both are empty: eve goes to s1
	if h := host("ann", "lab"); h != "s2" {
		t.Fatalf("host after s1 re-registered %s, want s2", h)
	}

	dm, err := e.c.DirectRoom(ctx, centralapi.DirectArgs{User: "ann", Peer: "eve"})
	if err != nil {
		t.Fatal(err)
	}
	host("eve", dm.Name)
	_, err = e.c.VoiceHost(ctx, centralapi.RoomArgs{User: "bob", Room: dm.Name})
	wantErr(t, "VoiceHost(other's direct room)", err, centralapi.ErrNotMember)

	if err := e.c.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: "s1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: "s2"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.VoiceHost(ctx, centralapi.RoomArgs{User: "ann", Room: "lab"})
	wantErr(t, "VoiceHost(no servers)", err, centralapi.ErrNoServers)
}
