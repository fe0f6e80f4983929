package voice

import (
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"
)

// gatherTimeout bounds the wait for a first offer's ICE candidates. Host
// candidates on loopback or a LAN take milliseconds.
const gatherTimeout = 5 * time.Second

// errAnswerFailed is an ErrBadSignal for an answer that could not be
// applied; the participant is removed for it.
var errAnswerFailed = fmt.Errorf("%w: answer not applied", ErrBadSignal)

// errConnectionGone is an ErrNotJoined for a signal that reached a
// participant whose connection has closed (it left, or is failing) but
// whose removal, which the connection's state change starts, has not yet
// happened: nothing was wrong with the signal.
var errConnectionGone = fmt.Errorf("%w: its connection has closed", ErrNotJoined)

// maxEarlyCandidates bounds the candidates kept for a participant that
// trickles them before its first answer.
const maxEarlyCandidates = 32

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
		return offerErr(p, err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return offerErr(p, err)
	}
	timer := s.clk.Timer(gatherTimeout)
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

// offerErr wraps an error making an offer to p; one that says p's
// connection has closed is errConnectionGone.
func offerErr(p *participant, err error) error {
	if errors.Is(err, webrtc.ErrConnectionClosed) {
		return fmt.Errorf("offer to %s: %w", p.id, errConnectionGone)
	}
	return fmt.Errorf("voice: offer to %s: %w", p.id, err)
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
	if errors.Is(err, webrtc.ErrConnectionClosed) {
		return fmt.Errorf("answer from %s: %w", p.id, errConnectionGone)
	}
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
		if p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
			return fmt.Errorf("candidate from %s: %w", p.id, errConnectionGone)
		}
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
