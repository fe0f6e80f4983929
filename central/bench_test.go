package central

import (
	"fmt"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
)

// BenchmarkRoom measures the membership lookup a chat server makes for
// every post: a room of 100 members, a third of them online on 3 servers.
func BenchmarkRoom(b *testing.B) {
	e := newEnv(b)
	e.register("s1", "s2", "s3")
	for i := 0; i < 100; i++ {
		e.signUp(fmt.Sprintf("u%03d", i))
	}
	if _, err := e.c.CreateRoom(ctx, centralapi.RoomArgs{User: "u000", Room: "big"}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		u := fmt.Sprintf("u%03d", i)
		if i > 0 {
			if _, err := e.c.JoinRoom(ctx, centralapi.RoomArgs{User: u, Room: "big"}); err != nil {
				b.Fatal(err)
			}
		}
		if i%3 == 0 {
			e.connect(u)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := e.c.Room(ctx, centralapi.RoomQuery{Room: "big"})
		if err != nil || len(r.Members) != 100 || len(r.Servers) != 3 {
			b.Fatalf("Room = %d members, %d servers, %v", len(r.Members), len(r.Servers), err)
		}
	}
}

// BenchmarkCheckSession measures the session check a chat server makes
// when a client connects, at a central with 100 users logged in (a store
// of one user's records is a degenerate one: bbolt then keeps it inline
// in its parent page and copies it whole in every transaction).
func BenchmarkCheckSession(b *testing.B) {
	e := newEnv(b)
	e.register("s1")
	for i := 0; i < 100; i++ {
		u := fmt.Sprintf("u%03d", i)
		e.signUp(u)
		e.connect(u)
	}
	e.signUp("alice")
	r := e.connect("alice")
	args := centralapi.SessionArgs{Token: r.Token, Server: "s1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.c.CheckSession(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}
