package voice

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// RemoteStats counts what a Peer received from one remote participant.
type RemoteStats struct {
	AudioPackets uint64 `json:"audioPackets"`
	AudioBytes   uint64 `json:"audioBytes"`
	VideoPackets uint64 `json:"videoPackets"`
	VideoBytes   uint64 `json:"videoBytes"`
}

// PeerStats is what a Peer sent and received so far.
type PeerStats struct {
	// Remote counts, by participant name, the RTP packets and payload
	// bytes received from each remote participant.
	Remote map[string]RemoteStats `json:"remote"`
	// SentAudio and SentVideo count the frames the Peer sent.
	SentAudio uint64 `json:"sentAudio"`
	SentVideo uint64 `json:"sentVideo"`
	// KeyframeRequests counts the picture loss indications the SFU sent
	// for the Peer's video.
	KeyframeRequests uint64 `json:"keyframeRequests"`
}

// receive counts, and records when asked, one remote participant's track
// until it ends.
func (p *Peer) receive(t *webrtc.TrackRemote) {
	who, video := t.StreamID(), t.Kind() == webrtc.RTPCodecTypeVideo
	var rec *oggwriter.OggWriter
	if !video && p.cfg.RecordDir != "" {
		var err error
		if rec, err = p.record(who); err != nil {
			p.log.Warn("voice record", "participant", who, "err", err)
		}
	}
	defer func() {
		if rec != nil {
			if err := rec.Close(); err != nil {
				p.log.Warn("voice record", "participant", who, "err", err)
			}
		}
	}()
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		p.mu.Lock()
		s := p.remote[who]
		if s == nil {
			s = &RemoteStats{}
			p.remote[who] = s
		}
		if video {
			s.VideoPackets++
			s.VideoBytes += uint64(len(pkt.Payload))
		} else {
			s.AudioPackets++
			s.AudioBytes += uint64(len(pkt.Payload))
		}
		p.mu.Unlock()
		if rec != nil {
			if err := rec.WriteRTP(pkt); err != nil {
				p.log.Warn("voice record", "participant", who, "err", err)
				rec.Close()
				rec = nil
			}
		}
	}
}

// record opens the next recording file for who.
func (p *Peer) record(who string) (*oggwriter.OggWriter, error) {
	if err := checkID(who); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.recorded[who]++
	n := p.recorded[who]
	p.mu.Unlock()
	name := who + ".ogg"
	if n > 1 {
		name = fmt.Sprintf("%s-%d.ogg", who, n)
	}
	if err := os.MkdirAll(p.cfg.RecordDir, 0o755); err != nil {
		return nil, err
	}
	return oggwriter.New(filepath.Join(p.cfg.RecordDir, name), opusRate, 1)
}

// Stats returns what the Peer sent and received so far.
func (p *Peer) Stats() PeerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	remote := make(map[string]RemoteStats, len(p.remote))
	for who, s := range p.remote {
		remote[who] = *s
	}
	return PeerStats{Remote: remote, SentAudio: p.sentAudio.Load(), SentVideo: p.sentVideo.Load(),
		KeyframeRequests: p.plis.Load()}
}
