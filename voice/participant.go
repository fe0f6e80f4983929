package voice

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/pion/webrtc/v4"
)

// participant is one member of a channel, as the SFU holds it: its peer
// connection, the tracks the others receive from it, and where its
// negotiation stands.
type participant struct {
	id  string
	ch  atomic.Pointer[channel] // set by Join once it is in; nil if refused
	pc  *webrtc.PeerConnection
	out *outbox
	// audio and video carry what this participant sends, as the others
	// receive it: the forwarding goroutine writes each packet once, and
	// pion sends it on every connection the track was added to.
	audio, video *webrtc.TrackLocalStaticRTP

	// Guarded by ch.mu.
	left      bool                                              // out of the channel
	camera    bool                                              // the others receive video
	senders   map[*webrtc.TrackLocalStaticRTP]*webrtc.RTPSender // others' tracks this one receives
	offering  bool                                              // an offer awaits its answer
	again     bool                                              // renegotiate once it comes
	answered  bool                                              // a remote description is set
	early     []webrtc.ICECandidateInit                         // candidates before it was
	keyframes []*participant                                    // whose video it began to receive

	connectTimer *clock.Timer // removes it if it does not connect in time; set under ch.mu

	connected atomic.Bool
	videoSSRC atomic.Uint32 // of the video it sends; 0 before any came
	lastPLI   atomic.Int64  // unix nanoseconds of the last keyframe request passed on
	packets   atomic.Uint64
	bytes     atomic.Uint64
	level     atomic.Uint32 // last audio level, -dBov
	levelAt   atomic.Int64  // unix nanoseconds it came
}

// SpeakingLevel and SpeakingHold define ParticipantInfo.Speaking: an
// audio level of 50 -dBov or louder within the last 400 ms.
const (
	SpeakingLevel = 50
	SpeakingHold  = 400 * time.Millisecond
)

// newParticipant makes id's peer connection: one receive-only audio and
// one receive-only video transceiver for what it sends, and the local
// tracks that carry its media to the others.
func (s *SFU) newParticipant(channelName, id string, send func(Signal)) (*participant, error) {
	pc, err := s.tr.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("voice: new peer connection: %w", err)
	}
	p := &participant{id: id, pc: pc, senders: map[*webrtc.TrackLocalStaticRTP]*webrtc.RTPSender{}}
	p.level.Store(127)
	fail := func(err error) (*participant, error) {
		_ = pc.Close()
		return nil, fmt.Errorf("voice: set up %s: %w", id, err)
	}
	recvonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, recvonly); err != nil {
			return fail(err)
		}
	}
	// The stream id is the participant's name: that is how a receiver
	// tells whose track it got (a browser's event.streams[0].id).
	if p.audio, err = webrtc.NewTrackLocalStaticRTP(opusCodec, "audio", id); err != nil {
		return fail(err)
	}
	if p.video, err = webrtc.NewTrackLocalStaticRTP(vp8Codec, "video", id); err != nil {
		return fail(err)
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		s.tracked(func() { s.forward(p, t, r) })
	})
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		s.tracked(func() { s.connectionChanged(p, state) })
	})
	p.out = newOutbox(send)
	s.log.Debug("voice participant", "channel", channelName, "participant", id)
	return p, nil
}

// connectionChanged follows p's connection: once connected, the senders
// whose video it began to receive are asked for a keyframe; once failed
// (no ICE path for the failed timeout) or closed by the participant, p is
// removed.
func (s *SFU) connectionChanged(p *participant, state webrtc.PeerConnectionState) {
	ch := p.ch.Load()
	if ch == nil {
		return // refused by Join, or failed before it was in
	}
	s.log.Debug("voice connection", "channel", ch.name, "participant", p.id, "state", state)
	switch state {
	case webrtc.PeerConnectionStateConnected:
		p.connected.Store(true)
		ch.mu.Lock()
		if !p.offering && !p.again {
			s.keyframesLocked(p)
		}
		ch.mu.Unlock()
	case webrtc.PeerConnectionStateDisconnected:
		p.connected.Store(false)
		s.log.Info("voice disconnected", "channel", ch.name, "participant", p.id)
	case webrtc.PeerConnectionStateFailed:
		p.connected.Store(false)
		s.remove(p, Signal{Kind: KindBye}, ErrVanished)
	case webrtc.PeerConnectionStateClosed:
		// The participant closed its connection (DTLS close_notify)
		// without a bye; when the SFU closed it, p has left already and
		// remove does nothing.
		p.connected.Store(false)
		s.remove(p, Signal{}, ErrVanished)
	}
}

// info reports p as of now.
func (p *participant) info(now time.Time) ParticipantInfo {
	level := uint8(p.level.Load())
	recent := now.Sub(time.Unix(0, p.levelAt.Load())) <= SpeakingHold
	return ParticipantInfo{
		ID:         p.id,
		Connected:  p.connected.Load(),
		Camera:     p.camera,
		Speaking:   recent && level <= SpeakingLevel,
		AudioLevel: level,
		Packets:    p.packets.Load(),
		Bytes:      p.bytes.Load(),
	}
}
