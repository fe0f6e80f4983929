package server_test

import (
	"context"
	"slices"
	"testing"

	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// Helpers for the tests that run a real cluster (servertest) and talk to
// its chat servers through raw clients.

// twoServers starts two chat servers in the given clock mode and puts
// alice and bob, each on the server central chose, in room "lobby".
func twoServers(t *testing.T, mode string) (*servertest.Cluster, *servertest.RawClient, *servertest.RawClient) {
	t.Helper()
	c := servertest.New(t, servertest.Options{Servers: 2, ClockMode: mode})
	alice, bob := inLobby(t, c)
	return c, alice, bob
}

// inLobby signs up alice and bob, logs them in where central chooses
// (which must balance them over two servers), and puts them in room
// "lobby", created by alice.
func inLobby(t *testing.T, c *servertest.Cluster) (alice, bob *servertest.RawClient) {
	t.Helper()
	c.AddUser("alice")
	c.AddUser("bob")
	alice = c.Login("alice", "")
	bob = c.Login("bob", "")
	if alice.Server == bob.Server {
		t.Fatalf("both placed on %s; central should balance", alice.Server)
	}
	if _, err := alice.Chat.CreateRoom(context.Background(), chatapi.RoomArgs{Token: alice.Token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Chat.JoinRoom(context.Background(), chatapi.RoomArgs{Token: bob.Token, Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// say posts text to room with the given id and fails the test on error.
func say(t testing.TB, rc *servertest.RawClient, room, id, text string) chatapi.PostReply {
	t.Helper()
	r, err := rc.Chat.Post(context.Background(), chatapi.PostArgs{Token: rc.Token, Room: room, ID: id, Text: text})
	if err != nil {
		t.Fatalf("%s posts %q to %s: %v", rc.User, text, room, err)
	}
	return r
}

// history returns the room's whole log as the server returns it, read in
// small pages.
func history(t testing.TB, rc *servertest.RawClient, room string) []chatapi.Message {
	t.Helper()
	var all []chatapi.Message
	have := map[string]uint64{}
	for {
		r, err := rc.Chat.Sync(context.Background(), chatapi.SyncArgs{Token: rc.Token, Room: room, Have: have, Limit: 7})
		if err != nil {
			t.Fatalf("%s syncs %s: %v", rc.User, room, err)
		}
		for _, m := range r.Messages {
			all = append(all, m)
			have[m.Stamp.Server] = max(have[m.Stamp.Server], m.Stamp.Seq)
		}
		if !r.More {
			return all
		}
	}
}

// delivered returns the distinct texts delivered to rc in room, sorted by
// stamp.
func delivered(rc *servertest.RawClient, room string) []string {
	seen := map[chatapi.Stamp]bool{}
	var ms []chatapi.Message
	for _, m := range rc.Messages() {
		if m.Room == room && !seen[m.Stamp] {
			seen[m.Stamp] = true
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b chatapi.Message) int { return a.Stamp.Compare(b.Stamp) })
	return texts(ms)
}

// texts returns the messages' texts.
func texts(ms []chatapi.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}
