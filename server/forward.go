package server

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// forwarder carries this server's own messages to one other server. It
// keeps no copy of them: the room logs and the per-destination cursors are
// the outbox, so whatever was not acknowledged is sent again after a crash.
type forwarder struct {
	name     string
	addr     string
	inv      rmi.Invoker
	rooms    map[string]bool // rooms that may have messages past the cursor
	running  bool            // a forwarding task is running
	waiting  bool            // a retry timer is armed
	failures int
	wm       map[string]int64 // watermarks to send, by room (see settled.go)
}

// forwarder returns the forwarder of a server, creating it or following an
// address change. Callers hold s.mu.
func (s *Server) forwarder(name, addr string) *forwarder {
	f := s.peers[name]
	if f == nil {
		f = &forwarder{name: name, rooms: map[string]bool{}}
		s.peers[name] = f
	}
	if addr != "" && addr != f.addr {
		f.addr = addr
		f.inv = s.cfg.Connect(addr)
	}
	return f
}

// stubLocked returns the stub for f's server. Callers hold s.mu.
func (f *forwarder) stubLocked() chatapi.PeerStub { return chatapi.PeerStub{Inv: f.inv} }

// dispatchLocked hands r's unacknowledged own messages to the forwarder of
// every server its members are on. Membership must be current: after an
// invalidation it is refreshed first. Callers hold s.mu.
func (s *Server) dispatchLocked(r *room) {
	if !r.infoValid || s.clk.Since(r.infoAt) >= roomInfoTTL {
		s.refreshSoonLocked(r) // calls back here via setInfoLocked
		if !r.infoValid {
			return
		}
	}
	for _, sv := range r.info.Servers {
		if sv.Name == s.name {
			continue
		}
		f := s.forwarder(sv.Name, sv.Addr)
		if f.inv == nil || s.cursors[f.name][r.name] >= r.ownSeq {
			continue
		}
		f.rooms[r.name] = true
		s.kickLocked(f)
	}
}

// kickLocked starts f's forwarding task unless it runs or waits to retry.
func (s *Server) kickLocked(f *forwarder) {
	if f.running || f.waiting {
		return
	}
	f.running = true
	s.after(0, func() { s.runForwarder(f) })
}

type forwardPlan struct {
	room     string
	from, to uint64
}

// runForwarder sends f's pending messages in batches (several rooms per
// Forward call) until none remain, advancing the durable cursors on each
// acknowledgement. On failure it backs off and tries again later.
func (s *Server) runForwarder(f *forwarder) {
	for {
		s.mu.Lock()
		var plans []forwardPlan
		budget := uint64(s.forwardBatch)
		for _, room := range sortedKeys(f.rooms) {
			r := s.rooms[room]
			acked := s.cursors[f.name][room]
			if r == nil || acked >= r.ownSeq {
				delete(f.rooms, room)
				continue
			}
			to := min(r.ownSeq, acked+budget)
			plans = append(plans, forwardPlan{room, acked, to})
			if budget -= to - acked; budget == 0 {
				break
			}
		}
		if len(plans) == 0 && len(f.wm) == 0 {
			f.running = false
			s.mu.Unlock()
			return
		}
		stub := f.stubLocked()
		wm := f.takeWatermarks()
		s.mu.Unlock()

		var msgs []chatapi.Message
		var err error
		for _, p := range plans {
			var ms []chatapi.Message
			if ms, err = s.st.ownRange(p.room, s.name, p.from, p.to, s.forwardBatch); err != nil {
				break
			}
			msgs = append(msgs, ms...)
		}
		if err == nil && (len(msgs) > 0 || len(wm) > 0) {
			ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
			_, err = stub.Forward(ctx, chatapi.ForwardArgs{From: s.name, Messages: msgs, Watermarks: wm})
			cancel()
		}
		if err != nil {
			s.mu.Lock()
			f.restoreWatermarks(wm)
			f.running = false
			f.failures++
			f.waiting = true
			wait := s.retryWait(f.failures)
			s.after(wait, func() {
				s.mu.Lock()
				f.waiting = false
				s.kickLocked(f)
				s.mu.Unlock()
			})
			s.mu.Unlock()
			s.log.Debug("forward failed; will retry", "peer", f.name, "in", wait, "err", err)
			return
		}
		// Advance each cursor only over what was actually sent.
		sent := map[string]uint64{}
		for _, m := range msgs {
			sent[m.Room] = max(sent[m.Room], m.Stamp.Seq)
		}
		s.mu.Lock()
		f.failures = 0
		if s.cursors[f.name] == nil {
			s.cursors[f.name] = map[string]uint64{}
		}
		for room, seq := range sent {
			if seq > s.cursors[f.name][room] {
				s.cursors[f.name][room] = seq
				s.markDirtyLocked(f.name, room, seq)
			}
		}
		if len(sent) == 0 {
			// The store had nothing past the cursors: the plans are stale.
			for _, p := range plans {
				delete(f.rooms, p.room)
			}
		}
		s.mu.Unlock()
	}
}

// markDirtyLocked records a cursor to write. Cursors ride along with the
// next group commit, or a flush a second later when nothing else is
// written: losing one in a crash only means sending some messages again,
// which receivers drop as duplicates. Callers hold s.mu.
func (s *Server) markDirtyLocked(dest, room string, seq uint64) {
	if s.dirty == nil {
		s.dirty = map[string]map[string]uint64{}
	}
	if s.dirty[dest] == nil {
		s.dirty[dest] = map[string]uint64{}
	}
	s.dirty[dest][room] = seq
	if !s.flushing {
		s.flushing = true
		s.after(time.Second, func() {
			if err := s.commit.submit(&commitReq{}); err != nil {
				s.log.Warn("store forwarding cursors", "err", err)
			}
		})
	}
}

// takeDirtyCursors hands the committer the cursors to write.
func (s *Server) takeDirtyCursors() map[string]map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirty
	s.dirty = nil
	s.flushing = false
	if d == nil {
		d = map[string]map[string]uint64{}
	}
	return d
}

// validForwarded checks messages arriving from another server.
func validForwarded(ms []chatapi.Message) error {
	if len(ms) > 4*chatapi.MaxSyncLimit {
		return fmt.Errorf("%d messages in one batch: %w", len(ms), rmi.ErrTooLarge)
	}
	for _, m := range ms {
		if !validRoomName(m.Room) || m.Stamp.Seq == 0 || !validServerName(m.Stamp.Server) || len(m.Text) > chatapi.MaxText ||
			!validID(m.ID) || len(m.From) > 64 {
			return fmt.Errorf("malformed message %q in room %q from %q: %w", m.ID, m.Room, m.Stamp.Server, rmi.ErrBadArgs)
		}
	}
	return nil
}

// store durably stores messages that came from elsewhere and reports how
// many were new. Newly stored ones reach local members through afterCommit.
// A gap in an origin's stream starts a catch-up of that room.
func (s *Server) storeForeign(ms []chatapi.Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	if err := validForwarded(ms); err != nil {
		return 0, err
	}
	req := &commitReq{msgs: ms}
	if err := s.commit.submit(req); err != nil {
		return 0, fmt.Errorf("%w: %v", chatapi.ErrStorage, err)
	}
	n := 0
	for _, ok := range req.isNew {
		if ok {
			n++
		}
	}
	s.mu.Lock()
	for _, m := range ms {
		if r := s.rooms[m.Room]; r != nil && m.Stamp.Seq > r.heads[m.Stamp.Server] {
			s.catchUpSoonLocked(r)
			break
		}
	}
	s.mu.Unlock()
	return n, nil
}

// catchUpSoonLocked pulls r from every live server in the background.
func (s *Server) catchUpSoonLocked(r *room) {
	if r.catchingUp {
		return
	}
	r.catchingUp = true
	s.after(0, func() {
		s.catchUp(context.Background(), r.name)
		s.mu.Lock()
		r.catchingUp = false
		s.mu.Unlock()
	})
}

// catchUp pulls from every live server the messages of room this server
// lacks. A peer that cannot be reached is skipped (anti-entropy comes back).
func (s *Server) catchUp(ctx context.Context, room string) {
	for _, f := range s.livePeers() {
		for page := 0; ; page++ {
			s.mu.Lock()
			have := maps.Clone(s.room(room).heads)
			stub := f.stubLocked()
			s.mu.Unlock()
			if stub.Inv == nil {
				break
			}
			cctx, cancel := s.clk.WithTimeout(ctx, fetchTimeout)
			rep, err := stub.Fetch(cctx, chatapi.FetchArgs{Room: room, Have: have, Limit: chatapi.MaxSyncLimit})
			cancel()
			if err != nil {
				s.log.Debug("catch-up fetch", "peer", f.name, "room", room, "err", err)
				break
			}
			n, err := s.storeForeign(rep.Messages)
			if err != nil {
				s.log.Warn("catch-up store", "peer", f.name, "room", room, "err", err)
				break
			}
			if !rep.More || n == 0 {
				break
			}
		}
	}
}

// antiEntropy periodically re-checks every room with local members
// against all live servers, closing any gap fan-out left (a message
// stamped by a server whose membership view was stale, or held only by a
// server that was down).
func (s *Server) antiEntropy() {
	s.mu.Lock()
	var rooms []*room
	for _, name := range sortedKeysS(s.local) {
		if r := s.rooms[name]; r != nil && !r.catchingUp {
			r.catchingUp = true
			rooms = append(rooms, r)
		}
	}
	s.mu.Unlock()
	for _, r := range rooms {
		s.catchUp(context.Background(), r.name)
		s.mu.Lock()
		r.catchingUp = false
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.after(antiEntropyTick, s.antiEntropy)
	s.mu.Unlock()
}

// Sync implements ChatServer. The first Sync of a room that gained local
// members first catches the room up from every live server.
func (s *Server) Sync(ctx context.Context, args chatapi.SyncArgs) (chatapi.SyncReply, error) {
	a, err := s.attached(args.Token)
	if err != nil {
		return chatapi.SyncReply{}, err
	}
	if _, err := s.checkMember(ctx, args.Room, a.user); err != nil {
		return chatapi.SyncReply{}, err
	}
	s.mu.Lock()
	r := s.room(args.Room)
	need := !r.synced
	s.mu.Unlock()
	if need {
		s.catchUp(ctx, args.Room)
		s.mu.Lock()
		r.synced = true
		s.mu.Unlock()
	}
	msgs, more, err := s.st.scan(args.Room, args.Have, clampLimit(args.Limit))
	if err != nil {
		return chatapi.SyncReply{}, fmt.Errorf("%w: %v", chatapi.ErrStorage, err)
	}
	return chatapi.SyncReply{Messages: msgs, More: more}, nil
}

func clampLimit(n int) int {
	if n <= 0 || n > chatapi.MaxSyncLimit {
		return chatapi.MaxSyncLimit
	}
	return n
}

// peerAPI is the Peer interface of a Server, exported cluster-only.
type peerAPI struct{ s *Server }

// Forward implements Peer.
func (p *peerAPI) Forward(ctx context.Context, args chatapi.ForwardArgs) (chatapi.ForwardReply, error) {
	n, err := p.s.storeForeign(args.Messages)
	if err == nil {
		// The messages the watermarks cover are durable here now.
		p.s.applyWatermarks(args.From, args.Watermarks)
	}
	return chatapi.ForwardReply{Stored: n}, err
}

// Fetch implements Peer.
func (p *peerAPI) Fetch(ctx context.Context, args chatapi.FetchArgs) (chatapi.FetchReply, error) {
	msgs, more, err := p.s.st.scan(args.Room, args.Have, clampLimit(args.Limit))
	if err != nil {
		return chatapi.FetchReply{}, fmt.Errorf("%w: %v", chatapi.ErrStorage, err)
	}
	p.s.mu.Lock()
	heads := map[string]uint64{}
	if r := p.s.rooms[args.Room]; r != nil {
		heads = maps.Clone(r.heads)
	}
	p.s.mu.Unlock()
	return chatapi.FetchReply{Messages: msgs, Heads: heads, More: more}, nil
}

// RoomChanged implements Peer: forget the rooms' membership so the next
// fan-out asks central again.
func (p *peerAPI) RoomChanged(ctx context.Context, args chatapi.RoomChangedArgs) error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range args.Rooms {
		r := s.room(name)
		s.invalidateLocked(r)
		s.refreshSoonLocked(r)
	}
	return nil
}
