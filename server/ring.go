package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// Ringing. A direct room's voice channel is a 1:1 call: when a user joins
// it and the other member is not in it, the caller's server rings the
// callee. It asks central (Cluster.Room, through the membership cache)
// which servers the callee is attached to, and has each of them, itself
// included, deliver an EventRing to the callee's clients (Peer.Ring),
// through their normal delivery queues. The first ring goes out before
// VoiceJoin returns; the server rings again every Config.VoiceRing while
// that join lasts and the callee stays out of the channel, for at most
// ringFor (then it is a missed call).

// DefaultVoiceRing is how often a caller alone in a direct room's voice
// channel rings again, unless Config.VoiceRing says otherwise.
const DefaultVoiceRing = 3 * time.Second

const (
	ringFor     = 30 * time.Second // how long a caller alone rings
	ringTimeout = 2 * time.Second  // bound on one ring's calls
)

// directPeer returns the other member of the direct room named room, for
// user; "" if room is not a direct room of user's.
func directPeer(room, user string) string {
	rest, ok := strings.CutPrefix(room, centralapi.DirectPrefix)
	if !ok {
		return ""
	}
	a, b, ok := strings.Cut(rest, ":")
	switch {
	case !ok || a == b:
		return ""
	case a == user:
		return b
	case b == user:
		return a
	}
	return ""
}

// ringCall rings the callee of join j, and schedules the next ring unless
// it should stop, or until has passed.
func (s *Server) ringCall(ctx context.Context, j *voiceJoin, callee string, until time.Time) {
	if !s.ring(ctx, j, callee) || !s.clk.Now().Before(until) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.after(s.cfg.VoiceRing, func() {
		ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		s.ringCall(ctx, j, callee, until)
	})
}

// ring rings the callee of join j once, unless j is over or the callee
// is in the channel, and reports whether to ring again.
func (s *Server) ring(ctx context.Context, j *voiceJoin, callee string) bool {
	ctx, cancel := s.clk.WithTimeout(ctx, ringTimeout)
	defer cancel()
	s.mu.Lock()
	current := s.voiceJoins[j.session] == j
	s.mu.Unlock()
	if !current {
		return false
	}
	who, err := s.relayVoice(ctx, j, chatapi.VoiceRelayArgs{Op: chatapi.VoiceOpWho})
	if err != nil {
		s.log.Debug("ring: who is in the call", "room", j.key.room, "err", err)
		return true
	}
	if slices.ContainsFunc(who.Participants, func(p chatapi.VoiceParticipant) bool { return p.User == callee }) {
		return false
	}
	info, err := s.roomInfo(ctx, j.key.room, false)
	if err != nil {
		s.log.Debug("ring: where the callee is", "room", j.key.room, "err", err)
		return true
	}
	a := chatapi.RingArgs{Room: j.key.room, Caller: j.key.user, Callee: callee}
	for _, m := range info.Members {
		if m.User != callee {
			continue
		}
		for _, name := range m.Servers {
			if err := s.ringAt(ctx, info.Servers, name, a); err != nil {
				s.log.Debug("ring", "room", a.Room, "callee", callee, "server", name, "err", err)
			}
		}
	}
	return true
}

// ringAt has the server called name, one of servers, deliver ring a.
func (s *Server) ringAt(ctx context.Context, servers []centralapi.ServerInfo, name string, a chatapi.RingArgs) error {
	if name == s.name {
		return s.deliverRing(a)
	}
	i := slices.IndexFunc(servers, func(sv centralapi.ServerInfo) bool { return sv.Name == name })
	if i < 0 {
		return fmt.Errorf("server %s is not live", name)
	}
	s.mu.Lock()
	stub := s.forwarder(name, servers[i].Addr).stubLocked()
	s.mu.Unlock()
	return stub.Ring(ctx, a)
}

// Ring implements Peer: another server's client calls one attached here.
func (p *peerAPI) Ring(ctx context.Context, a chatapi.RingArgs) error {
	return p.s.deliverRing(a)
}

// deliverRing queues an EventRing for each of the callee's clients
// attached here.
func (s *Server) deliverRing(a chatapi.RingArgs) error {
	if directPeer(a.Room, a.Caller) != a.Callee {
		return fmt.Errorf("ring from %s to %s in room %q: %w", a.Caller, a.Callee, a.Room, centralapi.ErrBadName)
	}
	ev := chatapi.Event{Kind: chatapi.EventRing, Room: a.Room, User: a.Caller}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, att := range s.sortedAttachments() {
		if att.user == a.Callee {
			att.enqueueEventsLocked(s, []chatapi.Event{ev})
		}
	}
	return nil
}
