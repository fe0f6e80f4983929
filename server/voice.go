package server

import (
	"context"
	"fmt"
	"strconv"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// The participant's side of voice: a client's voice operations come to
// its own chat server, which asks central which server hosts the room's
// channel (VoiceHost, which also checks membership) and relays them there
// (voicehost.go); the host's SFU signals come back through
// Peer.VoiceReturn and go to the client through Callback.Voice. Media
// flows between the client and the host directly.

// voiceJoin is one join of a voice channel by a client attached here.
type voiceJoin struct {
	session string // names it to the host (VoiceRelayArgs.Session)
	key     voiceKey
	att     *attachment
	host    centralapi.ServerInfo
}

// VoiceJoin implements ChatServer: it joins the room's voice channel on
// the server central names as its host (asked on every join, so after a
// host died the channel moves to a live one).
func (s *Server) VoiceJoin(ctx context.Context, a chatapi.VoiceArgs) error {
	att, err := s.attached(a.Token)
	if err != nil {
		return err
	}
	host, err := s.voiceHostOf(ctx, att.user, a.Room)
	if err != nil {
		return err
	}
	key := voiceKey{a.Room, att.user}
	s.mu.Lock()
	s.voiceSeq++
	j := &voiceJoin{session: s.voiceNonce + "." + strconv.FormatUint(s.voiceSeq, 10), key: key, att: att, host: host}
	if old := s.voiceJoins[s.voiceByUser[key]]; old != nil && (old.att == att || old.host.Name != host.Name) {
		// The same client joins again: it knows its old session is over,
		// and must not get its bye after the new offer. Or the channel
		// moved: the old host, gone, will send nothing more.
		delete(s.voiceJoins, old.session)
	}
	s.voiceJoins[j.session] = j
	s.voiceByUser[key] = j.session
	s.mu.Unlock()
	_, err = s.relayVoice(ctx, j, chatapi.VoiceRelayArgs{Op: chatapi.VoiceOpJoin})
	if err != nil {
		s.dropVoiceJoin(j)
		return fmt.Errorf("voice join %s: %w", a.Room, err)
	}
	if callee := directPeer(a.Room, att.user); callee != "" {
		s.ringCall(ctx, j, callee, s.clk.Now().Add(ringFor))
	}
	return nil
}

// VoiceSignal implements ChatServer: it relays the participant's signal
// to its channel's host.
func (s *Server) VoiceSignal(ctx context.Context, a chatapi.VoiceArgs) error {
	j, err := s.joinedVoice(a)
	if err != nil {
		return err
	}
	if a.Signal.Kind == chatapi.VoiceBye { // a participant's bye leaves
		s.dropVoiceJoin(j)
	}
	if _, err := s.relayVoice(ctx, j, chatapi.VoiceRelayArgs{Op: chatapi.VoiceOpSignal, Signal: a.Signal}); err != nil {
		return fmt.Errorf("voice signal %s: %w", a.Room, err)
	}
	return nil
}

// VoiceLeave implements ChatServer: it leaves the room's voice channel.
func (s *Server) VoiceLeave(ctx context.Context, a chatapi.VoiceArgs) error {
	j, err := s.joinedVoice(a)
	if err != nil {
		return err
	}
	s.dropVoiceJoin(j)
	if _, err := s.relayVoice(ctx, j, chatapi.VoiceRelayArgs{Op: chatapi.VoiceOpLeave}); err != nil {
		return fmt.Errorf("voice leave %s: %w", a.Room, err)
	}
	return nil
}

// VoiceWho implements ChatServer: who is in the room's voice channel. A
// client in the channel (a browser polls this for its speaking
// indicator) asks its host directly; another asks central first, which
// checks that it is a member (and places the channel, if nobody has).
func (s *Server) VoiceWho(ctx context.Context, a chatapi.VoiceArgs) (chatapi.VoiceWhoReply, error) {
	att, err := s.attached(a.Token)
	if err != nil {
		return chatapi.VoiceWhoReply{}, err
	}
	key := voiceKey{a.Room, att.user}
	s.mu.Lock()
	joined := s.voiceJoins[s.voiceByUser[key]]
	s.mu.Unlock()
	var host centralapi.ServerInfo
	if joined != nil && joined.att == att {
		host = joined.host
	} else if host, err = s.voiceHostOf(ctx, att.user, a.Room); err != nil {
		return chatapi.VoiceWhoReply{}, err
	}
	j := &voiceJoin{key: key, att: att, host: host}
	r, err := s.relayVoice(ctx, j, chatapi.VoiceRelayArgs{Op: chatapi.VoiceOpWho})
	if err != nil {
		return chatapi.VoiceWhoReply{}, fmt.Errorf("voice who %s: %w", a.Room, err)
	}
	return r, nil
}

// VoiceReturn implements Peer: the host of a voice channel sends one of
// its SFU's signals for a participant attached here.
func (p *peerAPI) VoiceReturn(ctx context.Context, a chatapi.VoiceReturnArgs) error {
	return p.s.returnVoice(ctx, a)
}

// returnVoice hands one of the SFU's signals to the client of the join it
// belongs to, if that join is still here; a bye ends the join.
func (s *Server) returnVoice(ctx context.Context, a chatapi.VoiceReturnArgs) error {
	s.mu.Lock()
	j := s.voiceJoins[a.Session]
	if j != nil && a.Signal.Kind == chatapi.VoiceBye {
		s.dropVoiceJoinLocked(j)
	}
	s.mu.Unlock()
	if j == nil {
		return nil // a join that ended here: nobody to tell
	}
	return j.att.cb.Voice(ctx, chatapi.VoiceDeliverArgs{Room: a.Room, Signal: a.Signal})
}

// voiceHostOf asks central which server hosts the room's voice channel,
// for a member.
func (s *Server) voiceHostOf(ctx context.Context, user, room string) (centralapi.ServerInfo, error) {
	cctx, cancel := s.clk.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	r, err := again(cctx, s, s.central.VoiceHost, centralapi.RoomArgs{User: user, Room: room})
	if err != nil {
		return centralapi.ServerInfo{}, fmt.Errorf("voice host of %s: %w", room, err)
	}
	return r.Server, nil
}

// joinedVoice returns the calling client's current join of the room's
// voice channel.
func (s *Server) joinedVoice(a chatapi.VoiceArgs) (*voiceJoin, error) {
	att, err := s.attached(a.Token)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.voiceJoins[s.voiceByUser[voiceKey{a.Room, att.user}]]
	if j == nil || j.att != att {
		return nil, fmt.Errorf("voice channel of %s: %w", a.Room, chatapi.ErrVoiceNotJoined)
	}
	return j, nil
}

// relayVoice carries an operation of join j to its host: this server's
// own SFU, or another server's through Peer.VoiceRelay. A host that
// cannot be reached gives ErrVoiceHostGone, and the join ends: the next
// VoiceJoin asks central again.
func (s *Server) relayVoice(ctx context.Context, j *voiceJoin, a chatapi.VoiceRelayArgs) (chatapi.VoiceWhoReply, error) {
	a.From, a.FromAddr, a.Session, a.Room, a.User = s.name, s.cfg.Addr, j.session, j.key.room, j.key.user
	if j.host.Name == s.name {
		return s.hostVoice(ctx, a)
	}
	s.mu.Lock()
	stub := s.forwarder(j.host.Name, j.host.Addr).stubLocked()
	s.mu.Unlock()
	cctx, cancel := s.clk.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := stub.VoiceRelay(cctx, a)
	if err != nil && rmi.IsUnreachable(err) {
		if j.session != "" {
			s.dropVoiceJoin(j)
		}
		return r, fmt.Errorf("host %s: %w (%w)", j.host.Name, chatapi.ErrVoiceHostGone, err)
	}
	return r, err
}

// dropVoiceJoin forgets join j.
func (s *Server) dropVoiceJoin(j *voiceJoin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropVoiceJoinLocked(j)
}

// dropVoiceJoinLocked forgets join j. Callers hold s.mu.
func (s *Server) dropVoiceJoinLocked(j *voiceJoin) {
	delete(s.voiceJoins, j.session)
	if s.voiceByUser[j.key] == j.session {
		delete(s.voiceByUser, j.key)
	}
}

// dropVoiceLocked ends the voice joins of an attachment that went away,
// and tells their hosts in the background. Callers hold s.mu.
func (s *Server) dropVoiceLocked(a *attachment) {
	for _, j := range s.voiceJoins {
		if j.att != a {
			continue
		}
		s.dropVoiceJoinLocked(j)
		s.after(0, func() {
			ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			if _, err := s.relayVoice(ctx, j, chatapi.VoiceRelayArgs{Op: chatapi.VoiceOpLeave}); err != nil {
				s.log.Debug("voice leave of a detached client", "user", a.user, "room", j.key.room, "err", err)
			}
		})
	}
}
