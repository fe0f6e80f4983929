package central

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
)

// needUser fails with ErrNoSuchUser unless user has an account.
func needUser(tx *kv.Tx, user string) error {
	_, ok, err := tx.Get(prefixUsers + user)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("user %s: %w", q(user), centralapi.ErrNoSuchUser)
	}
	return nil
}

// needRoom returns a room that can be joined or left by name.
func needRoom(tx *kv.Tx, room string) (roomRecord, error) {
	rec, ok, err := getRoom(tx, room)
	switch {
	case err != nil:
		return rec, err
	case !ok:
		return rec, fmt.Errorf("room %s: %w", q(room), centralapi.ErrNoSuchRoom)
	case rec.Direct:
		return rec, fmt.Errorf("room %s: %w", q(room), centralapi.ErrDirectRoom)
	}
	return rec, nil
}

// CreateRoom implements [Cluster]: it creates a room with args.User as its
// first member.
func (c *Central) CreateRoom(ctx context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("create room: %w", err)
	}
	if err := checkRoom(a.Room); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("create room: %w", err)
	}
	var rec roomRecord
	_, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		if err := needUser(tx, a.User); err != nil {
			return err
		}
		_, exists, err := getRoom(tx, a.Room)
		if err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("room %s: %w", q(a.Room), centralapi.ErrRoomExists)
		}
		rec = roomRecord{Creator: a.User, Created: c.clk.Now()}
		if err := putRoom(tx, a.Room, rec); err != nil {
			return err
		}
		addMember(tx, a.Room, a.User)
		return nil
	})
	var mem []string
	if err == nil {
		mem, err = members(ctx, c.store, a.Room)
	}
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("create room: %w", err)
	}
	c.log.Info("room created", "room", a.Room, "user", a.User)
	return c.describe(a.Room, rec, mem), nil
}

// JoinRoom implements [Cluster]: it adds args.User to an existing room.
// Joining a room twice is not an error.
func (c *Central) JoinRoom(ctx context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("join room: %w", err)
	}
	if err := checkRoom(a.Room); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("join room: %w", err)
	}
	var rec roomRecord
	joined := false
	_, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		if err := needUser(tx, a.User); err != nil {
			return err
		}
		var err error
		if rec, err = needRoom(tx, a.Room); err != nil {
			return err
		}
		member, err := isMember(tx, a.Room, a.User)
		if err != nil {
			return err
		}
		joined = !member
		if joined {
			addMember(tx, a.Room, a.User)
		}
		return nil
	})
	var mem []string
	if err == nil {
		mem, err = members(ctx, c.store, a.Room)
	}
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("join room: %w", err)
	}
	if joined {
		c.log.Info("user joined room", "room", a.Room, "user", a.User)
	}
	return c.describe(a.Room, rec, mem), nil
}

// LeaveRoom implements [Cluster]: it removes args.User from a room, failing
// with ErrNotMember if the user is not in it. The room remains, even empty.
func (c *Central) LeaveRoom(ctx context.Context, a centralapi.RoomArgs) (centralapi.RoomInfo, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("leave room: %w", err)
	}
	if err := checkRoom(a.Room); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("leave room: %w", err)
	}
	var rec roomRecord
	_, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		if err := needUser(tx, a.User); err != nil {
			return err
		}
		var err error
		if rec, err = needRoom(tx, a.Room); err != nil {
			return err
		}
		if member, err := isMember(tx, a.Room, a.User); err != nil {
			return err
		} else if !member {
			return fmt.Errorf("user %s in room %s: %w", q(a.User), q(a.Room), centralapi.ErrNotMember)
		}
		removeMember(tx, a.Room, a.User)
		return nil
	})
	var mem []string
	if err == nil {
		mem, err = members(ctx, c.store, a.Room)
	}
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("leave room: %w", err)
	}
	c.log.Info("user left room", "room", a.Room, "user", a.User)
	return c.describe(a.Room, rec, mem), nil
}

// DirectRoom implements [Cluster]: it returns the direct room of args.User
// and args.Peer (named by [DirectRoomName]), creating it on first use.
func (c *Central) DirectRoom(ctx context.Context, a centralapi.DirectArgs) (centralapi.RoomInfo, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("direct room: %w", err)
	}
	if err := checkUser(a.Peer); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("direct room: peer %w", err)
	}
	if a.User == a.Peer {
		return centralapi.RoomInfo{}, fmt.Errorf("direct room of %s with itself: %w", q(a.User), centralapi.ErrBadName)
	}
	name := centralapi.DirectRoomName(a.User, a.Peer)
	var rec roomRecord
	created := false
	_, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		if err := needUser(tx, a.User); err != nil {
			return err
		}
		if err := needUser(tx, a.Peer); err != nil {
			return err
		}
		var ok bool
		var err error
		if rec, ok, err = getRoom(tx, name); err != nil {
			return err
		}
		created = !ok
		if created {
			rec = roomRecord{Direct: true, Creator: a.User, Created: c.clk.Now()}
			if err := putRoom(tx, name, rec); err != nil {
				return err
			}
			addMember(tx, name, a.User)
			addMember(tx, name, a.Peer)
		}
		return nil
	})
	var mem []string
	if err == nil {
		mem, err = members(ctx, c.store, name)
	}
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("direct room: %w", err)
	}
	if created {
		c.log.Info("direct room created", "room", name)
	}
	return c.describe(name, rec, mem), nil
}

// Room implements [Cluster]: it returns any room's members (direct rooms
// included) and the live servers they are attached to.
func (c *Central) Room(ctx context.Context, a centralapi.RoomQuery) (centralapi.RoomInfo, error) {
	if err := checkAnyRoom(a.Room); err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("room: %w", err)
	}
	var rec roomRecord
	var mem []string
	err := kv.View(ctx, c.store, func(tx *kv.Tx) error {
		var ok bool
		var err error
		if rec, ok, err = c.rooms.get(tx, prefixRooms+a.Room); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("room %s: %w", q(a.Room), centralapi.ErrNoSuchRoom)
		}
		mem, err = tx.Keys(memberPrefix(a.Room))
		return err
	})
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("room: %w", err)
	}
	return c.describe(a.Room, rec, mem), nil
}

// ListRooms implements [Cluster]: all public rooms and args.User's direct
// rooms, sorted by name. Other users' direct rooms are not listed.
func (c *Central) ListRooms(ctx context.Context, a centralapi.UserArgs) (centralapi.ListReply, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.ListReply{}, fmt.Errorf("list rooms: %w", err)
	}
	out, err := c.listRooms(ctx, a.User)
	if err != nil {
		return centralapi.ListReply{}, fmt.Errorf("list rooms: %w", err)
	}
	return out, nil
}

// UserRooms implements [Cluster]: the rooms args.User is a member of
// (direct rooms included), sorted.
func (c *Central) UserRooms(ctx context.Context, a centralapi.UserArgs) (centralapi.UserRoomsReply, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.UserRoomsReply{}, fmt.Errorf("user rooms: %w", err)
	}
	out := centralapi.UserRoomsReply{Rooms: []string{}}
	err := kv.View(ctx, c.store, func(tx *kv.Tx) error { return needUser(tx, a.User) })
	var rooms []string
	if err == nil {
		rooms, err = userRooms(ctx, c.store, a.User)
		out.Rooms = append(out.Rooms, rooms...)
	}
	if err != nil {
		return centralapi.UserRoomsReply{}, fmt.Errorf("user rooms: %w", err)
	}
	return out, nil
}

// describe adds the members' live servers to a room's membership.
func (c *Central) describe(name string, rec roomRecord, mem []string) centralapi.RoomInfo {
	info := centralapi.RoomInfo{Name: name, Direct: rec.Direct, Members: make([]centralapi.Member, 0, len(mem)), Servers: []centralapi.ServerInfo{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	var names []string
	for _, u := range mem {
		srv := c.userServers(u)
		info.Members = append(info.Members, centralapi.Member{User: u, Servers: srv})
		for _, s := range srv {
			if !seen[s] {
				seen[s] = true
				names = append(names, s)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if s := c.servers[n]; s != nil {
			info.Servers = append(info.Servers, infoOf(s))
		}
	}
	return info
}

// listRooms lists the public rooms and user's direct rooms, with their
// member counts.
func (c *Central) listRooms(ctx context.Context, user string) (centralapi.ListReply, error) {
	if err := kv.View(ctx, c.store, func(tx *kv.Tx) error { return needUser(tx, user) }); err != nil {
		return centralapi.ListReply{}, err
	}
	counts, err := memberCounts(ctx, c.store)
	if err != nil {
		return centralapi.ListReply{}, err
	}
	mine, err := userRooms(ctx, c.store, user)
	if err != nil {
		return centralapi.ListReply{}, err
	}
	joined := map[string]bool{}
	for _, r := range mine {
		joined[r] = true
	}
	rooms, err := suffixes(ctx, c.store, prefixRooms)
	if err != nil {
		return centralapi.ListReply{}, err
	}
	out := centralapi.ListReply{Rooms: []centralapi.RoomSummary{}}
	for _, name := range rooms {
		direct := strings.HasPrefix(name, centralapi.DirectPrefix)
		if direct && !joined[name] {
			continue
		}
		out.Rooms = append(out.Rooms, centralapi.RoomSummary{Name: name, Direct: direct, Members: counts[name], Joined: joined[name]})
	}
	return out, nil
}
