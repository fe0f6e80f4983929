package server

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/distchat/distchat/server/chatapi"
)

// Reading history: a client's Sync, a peer's Fetch, and the catch-up this
// server runs against every live peer when it may lack messages (a room
// that gained local members, a gap in an origin's stream, and periodically
// as anti-entropy).

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
		return chatapi.SyncReply{}, fmt.Errorf("%w: %w", chatapi.ErrStorage, err)
	}
	return chatapi.SyncReply{Messages: msgs, More: more}, nil
}

// Fetch implements Peer: a page of a room's history past have, with this
// server's contiguous heads.
func (p *peerAPI) Fetch(ctx context.Context, args chatapi.FetchArgs) (chatapi.FetchReply, error) {
	msgs, more, err := p.s.st.scan(args.Room, args.Have, clampLimit(args.Limit))
	if err != nil {
		return chatapi.FetchReply{}, fmt.Errorf("%w: %w", chatapi.ErrStorage, err)
	}
	p.s.mu.Lock()
	heads := map[string]uint64{}
	if r := p.s.rooms[args.Room]; r != nil {
		heads = maps.Clone(r.heads)
	}
	p.s.mu.Unlock()
	return chatapi.FetchReply{Messages: msgs, Heads: heads, More: more}, nil
}

func clampLimit(n int) int {
	if n <= 0 || n > chatapi.MaxSyncLimit {
		return chatapi.MaxSyncLimit
	}
	return n
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
	for _, name := range slices.Sorted(maps.Keys(s.local)) {
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
