package voice

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// gatherTimeout bounds the wait for a first offer's ICE candidates. Host
// candidates on loopback or a LAN take milliseconds.
const gatherTimeout = 5 * time.Second

// errAnswerFailed is an ErrBadSignal for an answer that could not be
// applied; the participant is removed for it.
var errAnswerFailed = fmt.Errorf("%w: answer not applied", ErrBadSignal)

// keyframeInterval is the least time between two keyframe requests the
// SFU passes on from receivers to one sender, so that a receiver cannot
// make a sender send nothing but keyframes.
const keyframeInterval = 500 * time.Millisecond

// maxEarlyCandidates bounds the candidates kept for a participant that
// trickles them before its first answer.
const maxEarlyCandidates = 32

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

	connectTimer *time.Timer // removes it if it does not connect in time; set under ch.mu

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

// addTrackLocked makes q receive track, which owner sends, and starts
// reading the RTCP that q sends back about it.
func (s *SFU) addTrackLocked(q *participant, track *webrtc.TrackLocalStaticRTP, owner *participant) {
	if _, ok := q.senders[track]; ok {
		return
	}
	sender, err := q.pc.AddTrack(track)
	if err != nil {
		s.log.Warn("voice add track", "to", q.id, "from", owner.id, "err", err)
		return
	}
	q.senders[track] = sender
	if track.Kind() == webrtc.RTPCodecTypeVideo {
		q.keyframes = append(q.keyframes, owner)
	}
	s.goTracked(func() { s.readRTCP(sender, owner) })
}

// removeTrackLocked stops q receiving track, and reports whether it did.
func (s *SFU) removeTrackLocked(q *participant, track *webrtc.TrackLocalStaticRTP) bool {
	sender, ok := q.senders[track]
	if !ok {
		return false
	}
	delete(q.senders, track)
	if err := q.pc.RemoveTrack(sender); err != nil {
		s.log.Debug("voice remove track", "from", q.id, "err", err)
	}
	return true
}

// negotiateLocked sends p a new offer for the tracks it now has, or, if
// its last offer is not answered yet, marks that another must follow the
// answer: only one offer is ever outstanding.
func (s *SFU) negotiateLocked(p *participant) error {
	if p.left {
		return nil
	}
	if p.offering {
		p.again = true
		return nil
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("voice: offer to %s: %w", p.id, err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("voice: offer to %s: %w", p.id, err)
	}
	timer := time.NewTimer(gatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		return fmt.Errorf("voice: offer to %s: ICE gathering took over %v", p.id, gatherTimeout)
	}
	p.offering = true
	p.out.put(Signal{Kind: KindOffer, SDP: p.pc.LocalDescription().SDP})
	return nil
}

// renegotiateLocked is negotiateLocked for a participant other than the
// one whose signal or call set the change off: its failure is logged, and
// the participant, whose connection is likely gone, is left to its
// connection's timeouts.
func (s *SFU) renegotiateLocked(q *participant) {
	if err := s.negotiateLocked(q); err != nil {
		s.log.Warn("voice renegotiate", "participant", q.id, "err", err)
	}
}

// answerLocked applies p's answer to the outstanding offer, then sends the
// next offer if one is due, or else asks for the keyframes p waits for.
func (s *SFU) answerLocked(p *participant, answer string) error {
	if !p.offering {
		return fmt.Errorf("%w: answer from %s with no offer outstanding", ErrBadSignal, p.id)
	}
	err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer})
	if err != nil {
		return fmt.Errorf("%w: answer from %s: %w", errAnswerFailed, p.id, err)
	}
	p.offering = false
	p.answered = true
	for _, c := range p.early {
		if err := p.pc.AddICECandidate(c); err != nil {
			s.log.Debug("voice candidate", "participant", p.id, "err", err)
		}
	}
	p.early = nil
	if p.again {
		p.again = false
		return s.negotiateLocked(p)
	}
	s.keyframesLocked(p)
	return nil
}

// addCandidateLocked adds a candidate p trickled, or keeps it until p's
// first answer if it comes before.
func (p *participant) addCandidateLocked(sig Signal) error {
	if sig.Candidate == "" {
		return nil // the end of p's candidates
	}
	c := webrtc.ICECandidateInit{Candidate: sig.Candidate, SDPMid: &sig.SDPMid, SDPMLineIndex: &sig.SDPMLineIndex}
	if !p.answered {
		if len(p.early) >= maxEarlyCandidates {
			return fmt.Errorf("%w: over %d candidates before an answer from %s", ErrBadSignal, maxEarlyCandidates, p.id)
		}
		p.early = append(p.early, c)
		return nil
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: candidate from %s: %w", ErrBadSignal, p.id, err)
	}
	return nil
}

// setCameraLocked adds p's video to every other participant, or removes
// it, and renegotiates them.
func (s *SFU) setCameraLocked(p *participant, on bool) {
	if p.left || p.camera == on {
		return
	}
	p.camera = on
	for _, q := range p.ch.Load().members {
		if q == p {
			continue
		}
		changed := true
		if on {
			s.addTrackLocked(q, p.video, p)
		} else {
			changed = s.removeTrackLocked(q, p.video)
		}
		if changed {
			s.renegotiateLocked(q)
		}
	}
}

// keyframesLocked asks every sender whose video q began to receive for a
// keyframe, once q's connection is up and its negotiation settled: a
// video decoder can start only from a keyframe.
func (s *SFU) keyframesLocked(q *participant) {
	if !q.connected.Load() {
		return
	}
	for _, owner := range q.keyframes {
		s.requestKeyframe(owner, true)
	}
	q.keyframes = nil
}

// requestKeyframe sends owner a picture loss indication for its video.
// Unless forced (a receiver joined), it is dropped if another went less
// than keyframeInterval ago.
func (s *SFU) requestKeyframe(owner *participant, force bool) {
	ssrc := owner.videoSSRC.Load()
	if ssrc == 0 {
		return // no video yet; its first frame will be a keyframe
	}
	now := s.now().UnixNano()
	last := owner.lastPLI.Load()
	if !force && now-last < int64(keyframeInterval) {
		return
	}
	owner.lastPLI.Store(now)
	if err := owner.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		s.log.Debug("voice pli", "participant", owner.id, "err", err)
	}
}

// readRTCP reads what a receiver sends back about owner's track until the
// track is removed or the connection closes. Reading lets pion's
// interceptors act on it (NACKs are answered from their buffer); keyframe
// requests are passed on to owner.
func (s *SFU) readRTCP(sender *webrtc.RTPSender, owner *participant) {
	for {
		packets, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range packets {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				s.requestKeyframe(owner, false)
			}
		}
	}
}

// forward copies p's incoming track, packet by packet, to the local track
// the others receive it on, counting packets and bytes and keeping the
// audio level. Video arriving turns p's camera on.
func (s *SFU) forward(p *participant, t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	ch := p.ch.Load()
	if ch == nil {
		return // refused by Join
	}
	out := p.audio
	var levelID uint8
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		out = p.video
		p.videoSSRC.Store(uint32(t.SSRC()))
		ch.mu.Lock()
		s.setCameraLocked(p, true)
		ch.mu.Unlock()
	} else {
		levelID = extensionID(r, sdp.AudioLevelURI)
	}
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		p.packets.Add(1)
		p.bytes.Add(uint64(len(pkt.Payload)))
		if levelID != 0 {
			if l, ok := audioLevel(&pkt.Header, levelID); ok {
				p.level.Store(uint32(l))
				p.levelAt.Store(s.now().UnixNano())
			}
		}
		keepOnly(&pkt.Header, levelID)
		// A write error is one receiver's connection closing; the others
		// got the packet, and the one closing is being removed.
		_ = out.WriteRTP(pkt)
	}
}

// extensionID is the id the connection negotiated for a header extension,
// or 0.
func extensionID(r *webrtc.RTPReceiver, uri string) uint8 {
	for _, e := range r.GetParameters().HeaderExtensions {
		if e.URI == uri {
			return uint8(e.ID)
		}
	}
	return 0
}

// audioLevel reads the audio-level header extension (RFC 6464): the
// level in -dBov, 0 the loudest and 127 silence.
func audioLevel(h *rtp.Header, id uint8) (uint8, bool) {
	raw := h.GetExtension(id)
	if raw == nil {
		return 0, false
	}
	var ext rtp.AudioLevelExtension
	if err := ext.Unmarshal(raw); err != nil {
		return 0, false
	}
	return ext.Level, true
}

// keepOnly drops every header extension but id (0: all of them): the
// others (transport-wide sequence numbers, say) describe the sender's
// connection, not the receiver's.
func keepOnly(h *rtp.Header, id uint8) {
	if !h.Extension {
		return
	}
	if id == 0 {
		h.ClearExtensions()
		return
	}
	for _, e := range h.GetExtensionIDs() {
		if e != id {
			_ = h.DelExtension(e) // it cannot fail for an id the header has
		}
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
