package voice

import (
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// keyframeInterval is the least time between two keyframe requests the
// SFU passes on from receivers to one sender, so that a receiver cannot
// make a sender send nothing but keyframes.
const keyframeInterval = 500 * time.Millisecond

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
	now := s.clk.Now().UnixNano()
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
				p.levelAt.Store(s.clk.Now().UnixNano())
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
