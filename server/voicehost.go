package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/voice"
)

// The host's side of voice: the server that central's VoiceHost names for
// a room runs its voice channel on its one SFU (created when first needed,
// closed with the server). Participants' operations reach it from their
// own chat servers through Peer.VoiceRelay (or directly, when the
// participant is attached here), and the SFU's signals go back to the
// participant's server through Peer.VoiceReturn.

// voiceKey names one user in one room's voice channel.
type voiceKey struct{ room, user string }

// VoiceRelay implements Peer: a participant's server relays an operation
// to this server, the host of the room's voice channel.
func (p *peerAPI) VoiceRelay(ctx context.Context, a chatapi.VoiceRelayArgs) (chatapi.VoiceWhoReply, error) {
	return p.s.hostVoice(ctx, a)
}

// hostVoice applies a participant's operation to the SFU.
func (s *Server) hostVoice(ctx context.Context, a chatapi.VoiceRelayArgs) (chatapi.VoiceWhoReply, error) {
	sfu, err := s.voiceSFU()
	if err != nil {
		return chatapi.VoiceWhoReply{}, err
	}
	ch, key := voiceChannel(a.Room), voiceKey{a.Room, a.User}
	switch a.Op {
	case chatapi.VoiceOpJoin:
		s.mu.Lock()
		s.voiceHosted[key] = a.Session
		s.mu.Unlock()
		from, addr, session := a.From, a.FromAddr, a.Session
		send := func(sig voice.Signal) { s.voiceSend(from, addr, session, key, sig) }
		if err := sfu.Join(ctx, ch, a.User, send); err != nil {
			s.forgetHostedVoice(key, a.Session)
			return chatapi.VoiceWhoReply{}, voiceError("join", err)
		}
		s.log.Debug("voice join relayed", "room", a.Room, "user", a.User, "from", a.From)
	case chatapi.VoiceOpSignal:
		if err := s.checkHostedVoice(key, a.Session); err != nil {
			return chatapi.VoiceWhoReply{}, err
		}
		if a.Signal.Kind == chatapi.VoiceBye {
			s.forgetHostedVoice(key, a.Session)
		}
		if err := sfu.HandleSignal(ctx, ch, a.User, toVoiceSignal(a.Signal)); err != nil {
			return chatapi.VoiceWhoReply{}, voiceError("signal", err)
		}
	case chatapi.VoiceOpLeave:
		if err := s.checkHostedVoice(key, a.Session); err != nil {
			return chatapi.VoiceWhoReply{}, err
		}
		s.forgetHostedVoice(key, a.Session)
		if err := sfu.Leave(ch, a.User); err != nil {
			return chatapi.VoiceWhoReply{}, voiceError("leave", err)
		}
		s.log.Debug("voice leave relayed", "room", a.Room, "user", a.User)
	case chatapi.VoiceOpWho:
		var r chatapi.VoiceWhoReply
		for _, p := range sfu.Participants(ch) {
			r.Participants = append(r.Participants, chatapi.VoiceParticipant{
				User: p.ID, Connected: p.Connected, Camera: p.Camera, Speaking: p.Speaking, AudioLevel: int(p.AudioLevel),
			})
		}
		return r, nil
	default:
		return chatapi.VoiceWhoReply{}, fmt.Errorf("voice operation %q: %w", a.Op, chatapi.ErrVoiceBadSignal)
	}
	return chatapi.VoiceWhoReply{}, nil
}

// voiceSFU returns the server's SFU, creating it on first use.
func (s *Server) voiceSFU() (*voice.SFU, error) {
	s.voiceMu.Lock()
	defer s.voiceMu.Unlock()
	if s.voiceClosed {
		return nil, chatapi.ErrShuttingDown
	}
	if s.sfu != nil {
		return s.sfu, nil
	}
	netw := s.cfg.VoiceNetwork
	if len(netw.IPs) == 0 {
		netw.IPs = advertisedIPs(s.cfg.Addr)
	}
	sfu, err := voice.New(voice.Config{Network: netw, MaxParticipants: s.cfg.VoiceMax, Logger: s.log.With("voice", "sfu"), Clock: s.clk})
	if err != nil {
		return nil, fmt.Errorf("voice: %w", err)
	}
	s.sfu = sfu
	return sfu, nil
}

// closeVoice closes the SFU, if there is one: every participant is sent a
// bye (through voiceSend, so the server must still deliver), and it waits
// for the SFU's goroutines.
func (s *Server) closeVoice() {
	s.voiceMu.Lock()
	sfu := s.sfu
	s.sfu, s.voiceClosed = nil, true
	s.voiceMu.Unlock()
	if sfu != nil {
		if err := sfu.Close(); err != nil {
			s.log.Warn("close voice", "err", err)
		}
	}
}

// advertisedIPs is the address the SFU offers when Config.VoiceNetwork
// names none: the host of addr (the address others reach this server at)
// if it is an IP address; none (every interface but loopback) otherwise.
func advertisedIPs(addr string) []netip.Addr {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		return nil
	}
	return []netip.Addr{ip.Unmap()}
}

// voiceSend carries one of the SFU's signals for a participant's session
// back to the participant's server (from, at addr), itself or another. The SFU
// calls it from a goroutine of the participant's own, one signal at a
// time, so the signals arrive in order; a slow or dead server delays only
// its own participant's.
func (s *Server) voiceSend(from, addr, session string, key voiceKey, sig voice.Signal) {
	if sig.Kind == voice.KindBye {
		s.forgetHostedVoice(key, session)
	}
	ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	a := chatapi.VoiceReturnArgs{Session: session, Room: key.room, User: key.user, Signal: fromVoiceSignal(sig)}
	var err error
	if from == s.name {
		err = s.returnVoice(ctx, a)
	} else {
		s.mu.Lock()
		stub := s.forwarder(from, addr).stubLocked()
		s.mu.Unlock()
		err = stub.VoiceReturn(ctx, a)
	}
	if err != nil {
		s.log.Debug("voice signal to participant's server", "server", from, "room", key.room, "user", key.user,
			"kind", sig.Kind, "err", err)
	}
}

// checkHostedVoice refuses an operation from a session that is not the
// user's current one in the channel (it was replaced, or it left).
func (s *Server) checkHostedVoice(key voiceKey, session string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.voiceHosted[key] != session {
		return fmt.Errorf("user %s in the voice channel of room %s: %w", key.user, key.room, chatapi.ErrVoiceNotJoined)
	}
	return nil
}

// forgetHostedVoice forgets the user's session in the channel, if it is
// still session.
func (s *Server) forgetHostedVoice(key voiceKey, session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.voiceHosted[key] == session {
		delete(s.voiceHosted, key)
	}
}

// voiceChannel names a room's channel in the SFU, whose names are tokens
// of at most 64 letters, digits and "-_.@": a room's own name, or for a
// direct room (its name has colons and may be longer) "dm@" and a hash.
func voiceChannel(room string) string {
	if !strings.HasPrefix(room, centralapi.DirectPrefix) {
		return room
	}
	sum := sha256.Sum256([]byte(room))
	return "dm@" + hex.EncodeToString(sum[:16])
}

// voiceError gives an SFU error the chatapi code that keeps it across
// the wire.
func voiceError(op string, err error) error {
	var code error
	switch {
	case errors.Is(err, voice.ErrChannelFull):
		code = chatapi.ErrVoiceFull
	case errors.Is(err, voice.ErrNotJoined):
		code = chatapi.ErrVoiceNotJoined
	case errors.Is(err, voice.ErrBadSignal), errors.Is(err, voice.ErrBadID):
		code = chatapi.ErrVoiceBadSignal
	case errors.Is(err, voice.ErrClosed):
		code = chatapi.ErrShuttingDown
	default:
		return fmt.Errorf("voice %s: %w", op, err)
	}
	return fmt.Errorf("voice %s: %w (%w)", op, code, err)
}

// toVoiceSignal and fromVoiceSignal convert between the wire's signal and
// the voice package's.
func toVoiceSignal(s chatapi.VoiceSignal) voice.Signal {
	return voice.Signal{Kind: s.Kind, SDP: s.SDP, Candidate: s.Candidate, SDPMid: s.SDPMid,
		SDPMLineIndex: s.SDPMLineIndex, Camera: s.Camera}
}

func fromVoiceSignal(s voice.Signal) chatapi.VoiceSignal {
	return chatapi.VoiceSignal{Kind: s.Kind, SDP: s.SDP, Candidate: s.Candidate, SDPMid: s.SDPMid,
		SDPMLineIndex: s.SDPMLineIndex, Camera: s.Camera}
}
