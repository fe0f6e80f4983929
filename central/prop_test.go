package central

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"

	"golang.org/x/crypto/bcrypt"
	"pgregory.net/rapid"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/rmi/clocktest"
)

// TestMembershipProperties drives random create/join/leave/direct
// sequences against a model and checks that Room, UserRooms and ListRooms
// always agree with it and with each other.
func TestMembershipProperties(t *testing.T) {
	base := t.TempDir()
	users := []string{"u0", "u1", "u2", "u3"}
	rooms := []string{"r0", "r1", "r2"}
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp(base, "prop")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		c, err := Open(Config{Dir: dir, Clock: clocktest.New(), Logger: rmitest.QuietLogger(), PasswordCost: bcrypt.MinCost})
		if err != nil {
			rt.Fatal(err)
		}
		defer c.Close()
		// Accounts are written directly: bcrypt under the race detector
		// would dominate the run, and this test is about membership.
		if _, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error {
			for _, u := range users {
				if err := putUser(tx, u, userRecord{PasswordHash: c.dummyHash}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			rt.Fatal(err)
		}
		model := map[string]map[string]bool{} // room -> members
		expect := func(op string, err, want error) {
			if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
				rt.Fatalf("%s: error %v, model expects %v", op, err, want)
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"create": func(rt *rapid.T) {
				u, r := rapid.SampledFrom(users).Draw(rt, "user"), rapid.SampledFrom(rooms).Draw(rt, "room")
				var want error
				if model[r] != nil {
					want = centralapi.ErrRoomExists
				}
				_, err := c.CreateRoom(ctx, centralapi.RoomArgs{User: u, Room: r})
				expect(fmt.Sprintf("create %s %s", u, r), err, want)
				if want == nil {
					model[r] = map[string]bool{u: true}
				}
			},
			"join": func(rt *rapid.T) {
				u, r := rapid.SampledFrom(users).Draw(rt, "user"), rapid.SampledFrom(rooms).Draw(rt, "room")
				var want error
				if model[r] == nil {
					want = centralapi.ErrNoSuchRoom
				}
				_, err := c.JoinRoom(ctx, centralapi.RoomArgs{User: u, Room: r})
				expect(fmt.Sprintf("join %s %s", u, r), err, want)
				if want == nil {
					model[r][u] = true
				}
			},
			"leave": func(rt *rapid.T) {
				u, r := rapid.SampledFrom(users).Draw(rt, "user"), rapid.SampledFrom(rooms).Draw(rt, "room")
				var want error
				switch {
				case model[r] == nil:
					want = centralapi.ErrNoSuchRoom
				case !model[r][u]:
					want = centralapi.ErrNotMember
				}
				_, err := c.LeaveRoom(ctx, centralapi.RoomArgs{User: u, Room: r})
				expect(fmt.Sprintf("leave %s %s", u, r), err, want)
				if want == nil {
					delete(model[r], u)
				}
			},
			"direct": func(rt *rapid.T) {
				u, p := rapid.SampledFrom(users).Draw(rt, "user"), rapid.SampledFrom(users).Draw(rt, "peer")
				var want error
				if u == p {
					want = centralapi.ErrBadName
				}
				r, err := c.DirectRoom(ctx, centralapi.DirectArgs{User: u, Peer: p})
				expect(fmt.Sprintf("direct %s %s", u, p), err, want)
				if want == nil {
					model[r.Name] = map[string]bool{u: true, p: true}
				}
			},
			"": func(rt *rapid.T) { checkModel(rt, c, users, model) },
		})
	})
}

func checkModel(rt *rapid.T, c *Central, users []string, model map[string]map[string]bool) {
	want := map[string][]string{} // user -> rooms
	for room, mem := range model {
		info, err := c.Room(ctx, centralapi.RoomQuery{Room: room})
		if err != nil {
			rt.Fatalf("Room(%s): %v", room, err)
		}
		var names []string
		for u := range mem {
			names = append(names, u)
			want[u] = append(want[u], room)
		}
		sort.Strings(names)
		if got := memberNames(info); !reflect.DeepEqual(got, names) {
			rt.Fatalf("Room(%s) members %v, model %v", room, got, names)
		}
	}
	for _, u := range users {
		got, err := c.UserRooms(ctx, centralapi.UserArgs{User: u})
		if err != nil {
			rt.Fatal(err)
		}
		exp := append([]string{}, want[u]...)
		sort.Strings(exp)
		if !reflect.DeepEqual(got.Rooms, exp) {
			rt.Fatalf("UserRooms(%s) = %v, model %v", u, got.Rooms, exp)
		}
		list, err := c.ListRooms(ctx, centralapi.UserArgs{User: u})
		if err != nil {
			rt.Fatal(err)
		}
		var expList []centralapi.RoomSummary
		for room, mem := range model {
			_, _, direct := ParseDirectRoomName(room)
			if direct && !mem[u] {
				continue
			}
			expList = append(expList, centralapi.RoomSummary{Name: room, Direct: direct, Members: len(mem), Joined: mem[u]})
		}
		sort.Slice(expList, func(i, j int) bool { return expList[i].Name < expList[j].Name })
		if len(expList) == 0 {
			expList = []centralapi.RoomSummary{}
		}
		if !reflect.DeepEqual(list.Rooms, expList) {
			rt.Fatalf("ListRooms(%s) = %+v, model %+v", u, list.Rooms, expList)
		}
	}
}
