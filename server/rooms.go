package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/tinylib/msgp/msgp"
)

// roomInfo returns the room's membership, from the cache while it is fresh
// unless fresh is set, else from central. A fetch that raced with an
// invalidation (RoomChanged) is retried so that what is returned is at
// least as new as the last invalidation.
func (s *Server) roomInfo(ctx context.Context, name string, fresh bool) (centralapi.RoomInfo, error) {
	var info centralapi.RoomInfo
	if !validRoomName(name) {
		return info, fmt.Errorf("room %q: %w", name, centralapi.ErrBadName)
	}
	for try := 0; try < 3; try++ {
		// Look without creating: only a room central confirms gets an
		// entry, so made-up names cannot grow the table.
		s.mu.Lock()
		var gen uint64
		if r := s.rooms[name]; r != nil {
			if !fresh && r.members.fresh(s.clk.Now()) {
				info = r.members.info
				s.mu.Unlock()
				return info, nil
			}
			gen = r.members.gen
		}
		s.mu.Unlock()
		cctx, cancel := s.clk.WithTimeout(ctx, callTimeout)
		var err error
		info, err = again(cctx, s, s.central.Room, centralapi.RoomQuery{Room: name})
		cancel()
		if err != nil {
			return info, err
		}
		s.mu.Lock()
		r := s.room(name)
		if ch, ok := r.members.install(gen, info, s.clk.Now()); ok {
			s.membersChangedLocked(r, ch)
			s.mu.Unlock()
			return info, nil
		}
		s.mu.Unlock()
		fresh = true
	}
	return info, nil
}

// membersChangedLocked carries out what installing fresh membership for r
// changed: it updates which local attachments receive the room, tells them
// who joined or left, and dispatches pending messages to any new
// destination server.
func (s *Server) membersChangedLocked(r *room, ch memberChange) {
	// Local attachments follow the membership. One that gains the room
	// here (its user joined elsewhere, or this server learned of the room
	// only now) is told it joined, so its client adds the room and syncs
	// it: messages stored before it was added were never queued to it.
	// It also gets the messages held while the membership was read.
	var held []msgp.Raw
	if len(r.held) > 0 {
		held = chatapi.EncodeMessages(r.held)
	}
	r.held = nil
	for _, a := range s.sortedAttachments() {
		if isMember(r.members.info, a.user) {
			if !a.rooms[r.name] {
				s.addLocalLocked(a, r)
				joined := chatapi.Event{Kind: chatapi.EventJoined, Room: r.name, User: a.user}
				if !slices.Contains(ch.events, joined) { // else it comes with ch.events below
					a.enqueueEventsLocked(s, []chatapi.Event{joined})
				}
				a.enqueueLocked(s, r.name, held)
			}
		} else {
			s.removeLocalLocked(a, r.name)
		}
	}
	if len(ch.events) > 0 {
		for _, a := range s.localMembersLocked(r.name) {
			a.enqueueEventsLocked(s, ch.events)
		}
		for _, a := range s.sortedAttachments() {
			if ch.left[a.user] {
				a.enqueueEventsLocked(s, ch.events)
			}
		}
	}
	s.dispatchLocked(r)
}

// addLocalLocked makes a receive room r's messages. When the room had no
// local members before, this server may have missed messages while it had
// none, so it is marked for catch-up.
func (s *Server) addLocalLocked(a *attachment, r *room) {
	set := s.local[r.name]
	if set == nil {
		set = map[*attachment]bool{}
		s.local[r.name] = set
	}
	if len(set) == 0 {
		r.synced = false
	}
	set[a] = true
	a.rooms[r.name] = true
	delete(s.localSorted, r.name)
}

func (s *Server) removeLocalLocked(a *attachment, room string) {
	if set := s.local[room]; set != nil {
		delete(set, a)
		if len(set) == 0 {
			delete(s.local, room)
		}
	}
	delete(a.rooms, room)
	delete(s.localSorted, room)
}

// localMembersLocked returns the attachments that receive room's
// messages, in a fixed order (byUser), so that a simulation replays the
// same. The list is kept until the room's local members change: every
// delivery walks it, and sorting it anew each time was 6% of what the
// simulator allocated. Callers must not change it. Callers hold s.mu.
func (s *Server) localMembersLocked(room string) []*attachment {
	if l, ok := s.localSorted[room]; ok {
		return l
	}
	l := slices.SortedFunc(maps.Keys(s.local[room]), byUser)
	if len(l) > 0 {
		s.localSorted[room] = l
	}
	return l
}

// refreshSoonLocked refreshes r's membership in the background and then
// dispatches its pending messages.
func (s *Server) refreshSoonLocked(r *room) {
	if r.refreshing {
		return
	}
	r.refreshing = true
	s.after(0, func() {
		_, err := s.roomInfo(context.Background(), r.name, false)
		s.mu.Lock()
		r.refreshing = false
		if err != nil {
			s.log.Warn("refresh room membership", "room", r.name, "err", err)
			if errors.Is(err, centralapi.ErrNoSuchRoom) {
				r.held = nil // no read is coming
			} else {
				s.after(retryWait(1), func() {
					s.mu.Lock()
					s.refreshSoonLocked(r)
					s.mu.Unlock()
				})
			}
		}
		s.mu.Unlock()
	})
}

// checkMember returns nil if user is a member of room. A cached "not a
// member" is confirmed with central before it is believed (the user may
// have just joined through another server).
func (s *Server) checkMember(ctx context.Context, roomName, user string) (centralapi.RoomInfo, error) {
	if directOutsider(roomName, user) {
		return centralapi.RoomInfo{}, fmt.Errorf("room %q: %w", roomName, centralapi.ErrNotMember)
	}
	info, err := s.roomInfo(ctx, roomName, false)
	if err != nil {
		return info, err
	}
	if isMember(info, user) {
		return info, nil
	}
	if info, err = s.roomInfo(ctx, roomName, true); err != nil {
		return info, err
	}
	if !isMember(info, user) {
		return info, fmt.Errorf("room %q: %w", roomName, centralapi.ErrNotMember)
	}
	return info, nil
}

// directOutsider reports whether room is a direct room user cannot be a
// member of. A direct room's members are the two users its name names, so
// a third user gets "not a member" whether the room exists or not, decided
// from the name alone: neither the answer nor its timing tells whether two
// users have a direct room.
func directOutsider(room, user string) bool {
	a, b, ok := central.ParseDirectRoomName(room)
	return ok && user != a && user != b
}

// validRoomName reports whether name can be a room: a public room name or
// a direct room's canonical name.
func validRoomName(name string) bool {
	if central.ValidRoomName(name) {
		return true
	}
	a, b, ok := central.ParseDirectRoomName(name)
	return ok && central.ValidUserName(a) && central.ValidUserName(b)
}

func isMember(info centralapi.RoomInfo, user string) bool {
	i := sort.Search(len(info.Members), func(i int) bool { return info.Members[i].User >= user })
	if i < len(info.Members) && info.Members[i].User == user {
		return true
	}
	for _, m := range info.Members { // in case central did not sort
		if m.User == user {
			return true
		}
	}
	return false
}

// notifyServers tells every server in infos (other than this one) that
// these rooms' membership changed, and waits for them (bounded), so that
// anything they stamp afterwards is fanned out with the new membership.
func (s *Server) notifyServers(ctx context.Context, infos ...centralapi.RoomInfo) {
	byServer := map[string][]string{}
	addrs := map[string]string{}
	for _, info := range infos {
		for _, sv := range info.Servers {
			if sv.Name != s.name {
				byServer[sv.Name] = append(byServer[sv.Name], info.Name)
				addrs[sv.Name] = sv.Addr
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byServer)) {
		s.mu.Lock()
		stub := s.forwarder(name, addrs[name]).stubLocked()
		s.mu.Unlock()
		cctx, cancel := s.clk.WithTimeout(ctx, fetchTimeout)
		err := stub.RoomChanged(cctx, chatapi.RoomChangedArgs{Rooms: byServer[name]})
		cancel()
		if err != nil {
			s.log.Debug("notify room change", "peer", name, "err", err)
		}
	}
}

// roomOp runs a membership change at central for the session's user and
// brings this server and the room's other servers up to date.
func (s *Server) roomOp(ctx context.Context, token string, op func(ctx context.Context, user string) (centralapi.RoomInfo, error)) (centralapi.RoomInfo, error) {
	a, err := s.attached(token)
	if err != nil {
		return centralapi.RoomInfo{}, err
	}
	cctx, cancel := s.clk.WithTimeout(ctx, callTimeout)
	info, err := op(cctx, a.user)
	cancel()
	if err != nil {
		return info, err
	}
	// Central's answer may be older than another change that overtook it
	// (two joins through this server at once): install membership only
	// through the generation-checked read, which is at least as new as
	// this invalidation.
	s.mu.Lock()
	prev := s.room(info.Name).members.info
	s.room(info.Name).members.invalidate()
	s.mu.Unlock()
	latest, err := s.roomInfo(ctx, info.Name, true)
	if err != nil {
		s.mu.Lock()
		s.refreshSoonLocked(s.room(info.Name))
		s.mu.Unlock()
		latest = info
	}
	s.notifyServers(ctx, latest, info, prev)
	return info, nil
}

// CreateRoom implements ChatServer.
func (s *Server) CreateRoom(ctx context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	return s.roomOp(ctx, a.Token, func(ctx context.Context, user string) (centralapi.RoomInfo, error) {
		args := centralapi.RoomArgs{User: user, Room: a.Room}
		return s.repeatIfLost(ctx, args, s.central.CreateRoom, centralapi.ErrRoomExists, true)
	})
}

// JoinRoom implements ChatServer.
func (s *Server) JoinRoom(ctx context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	return s.roomOp(ctx, a.Token, func(ctx context.Context, user string) (centralapi.RoomInfo, error) {
		// Joining is idempotent: a repeat answers as the first call would.
		return again(ctx, s, s.central.JoinRoom, centralapi.RoomArgs{User: user, Room: a.Room})
	})
}

// LeaveRoom implements ChatServer.
func (s *Server) LeaveRoom(ctx context.Context, a chatapi.RoomArgs) error {
	_, err := s.roomOp(ctx, a.Token, func(ctx context.Context, user string) (centralapi.RoomInfo, error) {
		args := centralapi.RoomArgs{User: user, Room: a.Room}
		return s.repeatIfLost(ctx, args, s.central.LeaveRoom, centralapi.ErrNotMember, false)
	})
	return err
}

// again calls central, and calls it once more if the call broke mid-way
// (rmi.ErrConnLost: the central server died, and whether it did the call
// is unknown); the repeat goes to the next central server (rmi.Failover).
// Only for calls whose repeat is harmless: reads, idempotent changes, and
// changes whose repeat is checked (repeatIfLost).
func again[A, R any](ctx context.Context, s *Server, call func(context.Context, A) (R, error), args A) (R, error) {
	r, err := call(ctx, args)
	if errors.Is(err, rmi.ErrConnLost) {
		s.log.Info("a call to central broke mid-way; making it again", "err", err)
		r, err = call(ctx, args)
	}
	return r, err
}

// repeatIfLost makes a membership change at central, once more if the
// call broke mid-way (again). A repeat that fails with madeIt
// (ErrNotMember for a leave, ErrRoomExists for a create) while central
// shows the user in the room (member) or not (!member) as the change
// leaves them, finds the change made by the first call: the room as it is
// now is the answer.
func (s *Server) repeatIfLost(ctx context.Context, args centralapi.RoomArgs,
	call func(context.Context, centralapi.RoomArgs) (centralapi.RoomInfo, error), madeIt error, member bool) (centralapi.RoomInfo, error) {
	info, err := call(ctx, args)
	if !errors.Is(err, rmi.ErrConnLost) {
		return info, err
	}
	s.log.Info("a call to central broke mid-way; making it again", "user", args.User, "room", args.Room, "err", err)
	info, err = call(ctx, args)
	if !errors.Is(err, madeIt) {
		return info, err
	}
	now, qerr := s.central.Room(ctx, centralapi.RoomQuery{Room: args.Room})
	if qerr == nil && slices.ContainsFunc(now.Members, func(m centralapi.Member) bool { return m.User == args.User }) == member {
		return now, nil
	}
	return info, err
}

// Direct implements ChatServer.
func (s *Server) Direct(ctx context.Context, a chatapi.DirectArgs) (centralapi.RoomInfo, error) {
	return s.roomOp(ctx, a.Token, func(ctx context.Context, user string) (centralapi.RoomInfo, error) {
		// Idempotent: the direct room is created on first use.
		return again(ctx, s, s.central.DirectRoom, centralapi.DirectArgs{User: user, Peer: a.Peer})
	})
}

// ListRooms implements ChatServer.
func (s *Server) ListRooms(ctx context.Context, a chatapi.TokenArgs) (centralapi.ListReply, error) {
	at, err := s.attached(a.Token)
	if err != nil {
		return centralapi.ListReply{}, err
	}
	cctx, cancel := s.clk.WithTimeout(ctx, callTimeout)
	defer cancel()
	return again(cctx, s, s.central.ListRooms, centralapi.UserArgs{User: at.user})
}

// Who implements ChatServer. Members of a direct room are visible only to
// its two members; anyone else is told "not a member", whether the room
// exists or not.
func (s *Server) Who(ctx context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	at, err := s.attached(a.Token)
	if err != nil {
		return centralapi.RoomInfo{}, err
	}
	if directOutsider(a.Room, at.user) {
		return centralapi.RoomInfo{}, fmt.Errorf("room %q: %w", a.Room, centralapi.ErrNotMember)
	}
	info, err := s.roomInfo(ctx, a.Room, true)
	if err != nil {
		return centralapi.RoomInfo{}, err
	}
	if info.Direct && !isMember(info, at.user) {
		return centralapi.RoomInfo{}, fmt.Errorf("room %q: %w", a.Room, centralapi.ErrNotMember)
	}
	return info, nil
}

// RoomChanged implements Peer: forget the rooms' membership and read it
// again from central, so the next fan-out goes to the right servers.
func (p *peerAPI) RoomChanged(ctx context.Context, args chatapi.RoomChangedArgs) error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range args.Rooms {
		r := s.room(name)
		r.members.invalidate()
		s.refreshSoonLocked(r)
	}
	return nil
}
