package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/voice"
)

// Defaults of VoiceCallConfig.
const (
	DefaultVoiceRejoins   = 5
	DefaultVoiceRetryWait = time.Second
	// voiceRejoinReset: a session that lasted this long was a working
	// one, and the next loss gets the full count of rejoins again.
	voiceRejoinReset = 30 * time.Second
)

// VoiceCallConfig configures a VoiceCall.
type VoiceCallConfig struct {
	// Room is the room whose voice channel to join.
	Room string
	// Audio is the Ogg Opus file to send, looped; empty sends nothing.
	Audio string
	// RecordDir, when set, receives each other participant's audio as
	// RecordDir/<user>.ogg; after a rejoin, RecordDir/rejoin-N/<user>.ogg.
	RecordDir string
	// Network says which addresses and UDP ports the call's WebRTC
	// connection uses (see voice.Network).
	Network voice.Network
	// Rejoins is how many times in a row the call joins again after its
	// host went (a bye, or the connection failed); zero means
	// DefaultVoiceRejoins. RetryWait is the wait after a failed attempt
	// (default DefaultVoiceRetryWait).
	Rejoins   int
	RetryWait time.Duration
	// Logger receives the call's log; nil means the Client's.
	Logger *slog.Logger
}

// VoiceCall is a Go participant in a room's voice channel through a
// Client: a voice.Peer that sends an audio file, records and counts what
// it receives, and joins again by itself when the channel's host goes
// away (the channel then comes back on another chat server).
type VoiceCall struct {
	c     *Client
	cfg   VoiceCallConfig
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}
	leave chan struct{} // closed by Leave
	move  chan struct{} // the client moved to another chat server (moved)

	mu      sync.Mutex
	queue   []chatapi.VoiceSignal // the SFU's signals, for run
	wake    chan struct{}         // signals queued
	peer    *voice.Peer           // the current session's
	total   voice.PeerStats       // of the sessions before it
	joins   int                   // sessions so far
	err     error                 // why the call ended
	leaving bool
}

// StartVoice joins the voice channel of cfg.Room with a Go peer, and
// keeps it joined until Leave, the Client's Close, or too many failed
// rejoins. Only one call per room at a time.
func (c *Client) StartVoice(ctx context.Context, cfg VoiceCallConfig) (*VoiceCall, error) {
	if cfg.Rejoins == 0 {
		cfg.Rejoins = DefaultVoiceRejoins
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = DefaultVoiceRetryWait
	}
	if cfg.Logger == nil {
		cfg.Logger = c.log
	}
	v := &VoiceCall{c: c, cfg: cfg, done: make(chan struct{}), leave: make(chan struct{}), wake: make(chan struct{}, 1),
		move:  make(chan struct{}, 1),
		total: voice.PeerStats{Remote: map[string]voice.RemoteStats{}}}
	v.ctx, v.stop = context.WithCancel(c.bg)
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		v.stop()
		return nil, ErrClosed
	case c.voiceCalls[cfg.Room] != nil:
		c.mu.Unlock()
		v.stop()
		return nil, fmt.Errorf("voice of %s: already joined", cfg.Room)
	}
	c.voiceCalls[cfg.Room] = v
	c.mu.Unlock()
	p, err := v.join(ctx)
	if err != nil {
		v.forget()
		v.stop()
		return nil, err
	}
	go v.run(p)
	return v, nil
}

// Room is the room whose voice channel the call is in.
func (v *VoiceCall) Room() string { return v.cfg.Room }

// Done is closed once the call has ended.
func (v *VoiceCall) Done() <-chan struct{} { return v.done }

// Err says why the call ended, once Done is closed: nil after Leave.
func (v *VoiceCall) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Joins is how many sessions the call has had: 1, plus one per rejoin.
func (v *VoiceCall) Joins() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.joins
}

// Stats returns what the call sent and received, over all its sessions.
func (v *VoiceCall) Stats() voice.PeerStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.total
	st.Remote = maps.Clone(v.total.Remote)
	if v.peer != nil {
		addStats(&st, v.peer.Stats())
	}
	return st
}

// Leave leaves the channel and ends the call; it returns once the call
// has ended.
func (v *VoiceCall) Leave() error {
	v.mu.Lock()
	if !v.leaving {
		v.leaving = true
		close(v.leave)
	}
	v.mu.Unlock()
	<-v.done
	return v.Err()
}

// addStats adds what one session received and sent to st.
func addStats(st *voice.PeerStats, s voice.PeerStats) {
	for who, r := range s.Remote {
		t := st.Remote[who]
		t.AudioPackets += r.AudioPackets
		t.AudioBytes += r.AudioBytes
		t.VideoPackets += r.VideoPackets
		t.VideoBytes += r.VideoBytes
		st.Remote[who] = t
	}
	st.SentAudio += s.SentAudio
	st.SentVideo += s.SentVideo
	st.KeyframeRequests += s.KeyframeRequests
}

// errMoved ends a session whose signalling went through a chat server the
// client has left: the SFU's next offers would be lost there.
var errMoved = errors.New("client: moved to another chat server")

// moved tells the call that the client attached to another chat server
// (a failover), so that it joins again through the new one.
func (v *VoiceCall) moved() {
	select {
	case v.move <- struct{}{}:
	default:
	}
}

// signal queues one of the SFU's signals for run; Client's callback
// object calls it, and it must not block.
func (v *VoiceCall) signal(s chatapi.VoiceSignal) {
	v.mu.Lock()
	v.queue = append(v.queue, s)
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// join starts a session: a new Peer, then VoiceJoin. Signals left from
// an earlier session are dropped.
func (v *VoiceCall) join(ctx context.Context) (*voice.Peer, error) {
	v.mu.Lock()
	v.queue = nil
	n := v.joins
	v.mu.Unlock()
	rec := v.cfg.RecordDir
	if rec != "" && n > 0 {
		rec = filepath.Join(rec, fmt.Sprintf("rejoin-%d", n))
	}
	p, err := voice.NewPeer(v.ctx, voice.PeerConfig{
		Network: v.cfg.Network, Audio: v.cfg.Audio, Loop: true, RecordDir: rec,
		Logger: v.cfg.Logger.With("voice", v.cfg.Room), Clock: v.c.clk,
		Send: func(sig voice.Signal) {
			if err := v.c.VoiceSignal(v.ctx, v.cfg.Room, fromVoice(sig)); err != nil {
				v.cfg.Logger.Debug("voice signal", "room", v.cfg.Room, "kind", sig.Kind, "err", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("voice of %s: %w", v.cfg.Room, err)
	}
	if err := v.c.VoiceJoin(ctx, v.cfg.Room); err != nil {
		p.Close()
		<-p.Done()
		return nil, err
	}
	v.mu.Lock()
	v.peer = p
	v.joins++
	v.mu.Unlock()
	return p, nil
}

// run carries the SFU's signals to the session's Peer, and when the
// session ends because the host went, or the client moved to another
// chat server (through which the SFU's signals must now come), joins
// again.
func (v *VoiceCall) run(p *voice.Peer) {
	defer close(v.done)
	defer v.stop()
	defer v.forget()
	rejoins := 0
	for {
		start := v.c.clk.Now()
		err := v.serve(p)
		v.mu.Lock()
		addStats(&v.total, p.Stats())
		v.peer = nil
		v.mu.Unlock()
		if err == nil || !(errors.Is(err, voice.ErrRemoved) || errors.Is(err, voice.ErrConnectionFailed) || errors.Is(err, errMoved)) {
			v.end(err)
			return
		}
		if v.c.clk.Since(start) >= voiceRejoinReset {
			rejoins = 0
		}
		v.cfg.Logger.Info("voice session ended; joining again", "room", v.cfg.Room, "why", err)
		for p = nil; p == nil; {
			if rejoins >= v.cfg.Rejoins {
				v.end(fmt.Errorf("voice of %s: gave up after %d rejoins: %w", v.cfg.Room, rejoins, err))
				return
			}
			rejoins++
			if p, err = v.join(v.ctx); err != nil {
				v.cfg.Logger.Info("voice rejoin failed", "room", v.cfg.Room, "err", err)
				select {
				case <-v.c.clk.After(v.cfg.RetryWait):
				case <-v.leave:
					v.end(nil)
					return
				case <-v.ctx.Done():
					v.end(v.ctx.Err())
					return
				}
			}
		}
	}
}

// serve runs one session until its Peer ends, and says why: nil after
// Leave.
func (v *VoiceCall) serve(p *voice.Peer) error {
	for {
		select {
		case <-v.wake:
			v.mu.Lock()
			q := v.queue
			v.queue = nil
			v.mu.Unlock()
			for _, s := range q {
				if err := p.HandleSignal(v.ctx, toVoice(s)); err != nil && !errors.Is(err, voice.ErrClosed) {
					v.cfg.Logger.Debug("voice signal from the SFU", "room", v.cfg.Room, "kind", s.Kind, "err", err)
				}
			}
		case <-p.Done():
			return p.Err()
		case <-v.move:
			p.Close()
			<-p.Done()
			return errMoved
		case <-v.leave:
			if err := p.Leave(); err != nil {
				v.cfg.Logger.Debug("voice leave", "room", v.cfg.Room, "err", err)
			}
			<-p.Done()
			ctx, cancel := v.c.clk.WithTimeout(v.ctx, v.c.cfg.CallTimeout)
			defer cancel()
			if err := v.c.VoiceLeave(ctx, v.cfg.Room); err != nil && !errors.Is(err, chatapi.ErrVoiceNotJoined) {
				v.cfg.Logger.Debug("voice leave", "room", v.cfg.Room, "err", err)
			}
			return nil
		case <-v.ctx.Done():
			p.Close()
			<-p.Done()
			return v.ctx.Err()
		}
	}
}

// end records why the call ended.
func (v *VoiceCall) end(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = err
}

// forget removes the call from its Client.
func (v *VoiceCall) forget() {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	if v.c.voiceCalls[v.cfg.Room] == v {
		delete(v.c.voiceCalls, v.cfg.Room)
	}
}

// toVoice and fromVoice convert between the wire's signal and the voice
// package's.
func toVoice(s chatapi.VoiceSignal) voice.Signal {
	return voice.Signal{Kind: s.Kind, SDP: s.SDP, Candidate: s.Candidate, SDPMid: s.SDPMid,
		SDPMLineIndex: s.SDPMLineIndex, Camera: s.Camera}
}

func fromVoice(s voice.Signal) chatapi.VoiceSignal {
	return chatapi.VoiceSignal{Kind: s.Kind, SDP: s.SDP, Candidate: s.Candidate, SDPMid: s.SDPMid,
		SDPMLineIndex: s.SDPMLineIndex, Camera: s.Camera}
}
