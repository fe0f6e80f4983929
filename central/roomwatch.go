package central

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/server/chatapi"
)

// With several front-ends on one shared store, a room's membership may
// change at any of them. The chat server through which a user joined or
// left tells the room's other servers itself (RoomChanged, server-to-server),
// but a chat server that dies right after the change never does, and the
// others would fan out with the old membership until their cache's TTL.
// So each front-end also follows the membership keys with a watch and
// tells the chat servers it serves (those that registered or renewed their
// lease here: each server is served by one front-end at a time) of every
// room whose membership changed, as it changes: their caches refresh at
// once, without polling. A change that happens while a server moves to
// another front-end still reaches it at its cache's TTL.

// followRooms watches the room members from revision rev on and tells the
// servers this front-end serves which of their rooms changed, until Close.
func (c *Central) followRooms(rev int64) {
	defer close(c.roomsDone)
	for {
		for resp := range c.store.Watch(c.bg, prefixRoomMembers, rev+1) {
			if resp.Err != nil {
				c.log.Warn("membership watch failed; watching again", "err", resp.Err)
				break
			}
			c.roomsChanged(resp.Events)
			rev = resp.Events[0].KV.ModRev
		}
		t := c.clk.Timer(relistDelay)
		select {
		case <-c.bg.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// Watch on from now: changes missed meanwhile reach the servers
		// at their caches' TTL.
		_, now, err := c.store.Range(c.bg, prefixRoomMembers, 1)
		if err == nil {
			rev = now
		}
	}
}

// roomsChanged tells each server this front-end serves, among the servers
// of the changed rooms' members (and of the user who left), which rooms
// changed. The members are read as they are when the change is handled, so
// a server whose user joined since may hear of an earlier change too: one
// read of the room's membership more, never one fewer.
func (c *Central) roomsChanged(events []kv.Event) {
	changed := map[string][]string{} // room -> users named in the events
	for _, ev := range events {
		k := ev.KV.Key[len(prefixRoomMembers):]
		i := strings.LastIndex(k, "/")
		if i < 0 {
			continue
		}
		changed[k[:i]] = append(changed[k[:i]], k[i+1:])
	}
	byAddr := map[string][]string{} // server address -> rooms
	for _, room := range slices.Sorted(maps.Keys(changed)) {
		users := changed[room]
		if mem, err := members(c.bg, c.store, room); err == nil {
			users = append(users, mem...)
		}
		c.mu.Lock()
		now := c.clk.Now()
		told := map[string]bool{}
		for _, u := range users {
			for _, name := range c.userServers(u) {
				s := c.servers[name]
				if s == nil || told[name] || now.After(s.servedUntil) {
					continue
				}
				told[name] = true
				byAddr[s.info.Addr] = append(byAddr[s.info.Addr], room)
			}
		}
		c.mu.Unlock()
	}
	for addr, rooms := range byAddr {
		c.tellRoomsChanged(addr, rooms)
	}
}

// tellRoomsChanged calls RoomChanged on the chat server at addr.
func (c *Central) tellRoomsChanged(addr string, rooms []string) {
	if c.connect == nil {
		return
	}
	inv := c.connect(addr)
	if cl, ok := inv.(interface{ Close() error }); ok {
		defer cl.Close()
	}
	ctx, cancel := c.clk.WithTimeout(c.bg, pushTimeout)
	defer cancel()
	if err := (chatapi.PeerStub{Inv: inv}).RoomChanged(ctx, chatapi.RoomChangedArgs{Rooms: rooms}); err != nil && !isCanceled(ctx) {
		c.log.Warn("telling a chat server that rooms changed failed", "addr", addr, "rooms", len(rooms), "err", err)
		return
	}
	c.log.Debug("told a chat server that rooms changed", "addr", addr, "rooms", len(rooms))
}

// isCanceled reports whether ctx ended because central is closing.
func isCanceled(ctx context.Context) bool { return context.Cause(ctx) == context.Canceled }
