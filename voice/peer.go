package voice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/benbjohnson/clock"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// ErrRemoved is why a Peer ended when the SFU sent it a bye: the SFU
// closed, or the same participant joined again elsewhere.
var ErrRemoved = errors.New("voice: removed by the SFU")

// ErrConnectionFailed is why a Peer ended when its connection to the SFU
// failed: the SFU's host vanished, or the network between them did.
var ErrConnectionFailed = errors.New("voice: connection to the SFU failed")

// PeerConfig configures a Peer.
type PeerConfig struct {
	// Network says which addresses and UDP ports the Peer's connection
	// uses.
	Network
	// Audio is an Ogg Opus file to send, one Opus packet per page (see
	// testdata/voice/README.md); empty sends no audio.
	Audio string
	// Video is an IVF file of VP8 frames to send as the camera; empty
	// means no camera.
	Video string
	// Loop starts Audio and Video again at their end, for as long as the
	// Peer lasts; otherwise each is sent once.
	Loop bool
	// RecordDir, when set, receives each remote participant's audio as
	// RecordDir/<participant>.ogg (a second stream from the same
	// participant, after it rejoined, goes to <participant>-2.ogg, ...).
	RecordDir string
	// Send carries the Peer's signals to the SFU. HandleSignal calls it
	// with the answer before it returns; Leave calls it with the bye.
	Send func(Signal)
	// Logger receives the Peer's log; nil discards it.
	Logger *slog.Logger
	// Clock bounds ICE gathering and paces the media files, which are
	// sent in real time; nil means clock.New().
	Clock clock.Clock
}

// Peer is a Go participant in a voice channel: it answers the SFU's
// offers, sends an Opus file as its microphone (and a VP8 file as its
// camera), records what it receives, and counts it.
type Peer struct {
	cfg    PeerConfig
	log    *slog.Logger
	tr     *transport
	pc     *webrtc.PeerConnection
	stop   context.CancelFunc // ends the Peer's goroutines
	ctx    context.Context    // theirs
	signal sync.Mutex         // held to answer an offer, and to close pc

	mu        sync.Mutex
	remote    map[string]*RemoteStats
	recorded  map[string]int // streams recorded per participant
	closed    bool
	leaving   bool // Leave was called
	err       error
	done      chan struct{}
	connected chan struct{} // closed once the connection is up
	wg        sync.WaitGroup

	sentAudio, sentVideo, plis atomic.Uint64
	camera                     atomic.Bool // the Video file is being sent
}

// NewPeer makes a Peer; it does nothing until the SFU's first offer comes
// through HandleSignal. It ends when ctx is done, Close or Leave is
// called, the SFU sends a bye, or the connection fails: see Done and Err.
func NewPeer(ctx context.Context, cfg PeerConfig) (*Peer, error) {
	if cfg.Send == nil {
		return nil, errors.New("voice: PeerConfig.Send is nil")
	}
	tr, err := newAPI(cfg.Network)
	if err != nil {
		return nil, fmt.Errorf("voice: %w", err)
	}
	pc, err := tr.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tr.close()
		return nil, fmt.Errorf("voice: new peer connection: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Peer{cfg: cfg, log: log, tr: tr, pc: pc, remote: map[string]*RemoteStats{},
		recorded: map[string]int{}, done: make(chan struct{}), connected: make(chan struct{})}
	p.ctx, p.stop = context.WithCancel(context.Background())
	fail := func(err error) (*Peer, error) {
		p.stop()
		pc.Close()
		p.wg.Wait()
		tr.close()
		return nil, err
	}
	if cfg.Audio != "" {
		if err := p.addSource(webrtc.RTPCodecTypeAudio, cfg.Audio); err != nil {
			return fail(err)
		}
	}
	if cfg.Video != "" {
		if err := p.addSource(webrtc.RTPCodecTypeVideo, cfg.Video); err != nil {
			return fail(err)
		}
		p.camera.Store(true)
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.tracked(func() { p.receive(t) })
	})
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		switch state {
		case webrtc.PeerConnectionStateConnected:
			p.mu.Lock()
			select {
			case <-p.connected:
			default:
				close(p.connected)
			}
			p.mu.Unlock()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			// Closed: the SFU closed the connection without a bye (or the
			// Peer did, and end has begun already).
			go p.end(ErrConnectionFailed)
		}
	})
	p.wg.Go(func() {
		select {
		case <-ctx.Done():
			go p.end(ctx.Err())
		case <-p.ctx.Done():
		}
	})
	return p, nil
}

// addSource adds a track that plays path once the connection is up, and
// reads the RTCP the SFU sends about it.
func (p *Peer) addSource(kind webrtc.RTPCodecType, path string) error {
	codec, open, sent := opusCodec, func() (source, error) { return openOgg(path) }, &p.sentAudio
	if kind == webrtc.RTPCodecTypeVideo {
		codec, open, sent = vp8Codec, func() (source, error) { return openIVF(path) }, &p.sentVideo
	}
	src, err := open() // fail now on a missing or bad file
	if err != nil {
		return fmt.Errorf("voice: %w", err)
	}
	src.Close()
	track, err := webrtc.NewTrackLocalStaticSample(codec, kind.String(), "local")
	if err != nil {
		return fmt.Errorf("voice: %w", err)
	}
	sender, err := p.pc.AddTrack(track)
	if err != nil {
		return fmt.Errorf("voice: %w", err)
	}
	p.wg.Go(func() {
		for {
			packets, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range packets {
				switch pkt.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					p.plis.Add(1)
				}
			}
		}
	})
	p.wg.Go(func() {
		select {
		case <-p.connected:
		case <-p.ctx.Done():
			return
		}
		on := func() bool { return true }
		if kind == webrtc.RTPCodecTypeVideo {
			on = p.camera.Load
		}
		err := play(p.ctx, p.cfg.Clock, open, p.cfg.Loop, track, on, func(int) { sent.Add(1) })
		if err != nil && p.ctx.Err() == nil {
			p.log.Warn("voice play", "file", path, "err", err)
		}
	})
	return nil
}

// HandleSignal takes a signal from the SFU: an offer, which it answers
// through PeerConfig.Send, or a bye, which ends the Peer.
func (p *Peer) HandleSignal(ctx context.Context, sig Signal) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := checkSize(sig); err != nil {
		return err
	}
	switch sig.Kind {
	case KindOffer:
		answer, err := p.answer(ctx, sig.SDP)
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed { // it closed meanwhile
				return ErrClosed
			}
			return err
		}
		p.cfg.Send(Signal{Kind: KindAnswer, SDP: answer})
		return nil
	case KindBye:
		p.end(ErrRemoved)
		return nil
	default:
		return fmt.Errorf("%w: kind %q from the SFU", ErrBadSignal, sig.Kind)
	}
}

// answer applies the SFU's offer and returns the answer, with all of the
// Peer's ICE candidates in it.
func (p *Peer) answer(ctx context.Context, offer string) (string, error) {
	p.signal.Lock()
	defer p.signal.Unlock()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return "", ErrClosed
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("voice: offer: %w", err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("voice: answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("voice: answer: %w", err)
	}
	timer := p.cfg.Clock.Timer(gatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		return "", fmt.Errorf("voice: answer: ICE gathering took over %v", gatherTimeout)
	case <-ctx.Done():
		return "", fmt.Errorf("voice: answer: %w", ctx.Err())
	}
	return p.pc.LocalDescription().SDP, nil
}

// SetCamera turns the camera (the Video file) off or on: it stops or
// resumes sending it, and tells the SFU, which removes the video from the
// others or gives it back to them. A Peer with no Video has no camera.
func (p *Peer) SetCamera(on bool) error {
	if p.cfg.Video == "" {
		return errors.New("voice: the Peer has no Video to send")
	}
	if p.camera.Swap(on) == on {
		return nil
	}
	p.cfg.Send(Signal{Kind: KindCamera, Camera: on})
	return nil
}

// Leave sends the SFU a bye and closes the Peer.
func (p *Peer) Leave() error {
	p.mu.Lock()
	closed := p.closed
	p.leaving = true // the SFU closing the connection is no failure now
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	p.cfg.Send(Signal{Kind: KindBye})
	p.end(nil)
	return nil
}

// Close closes the Peer without telling the SFU, as a crashed client
// would: the SFU finds out when ICE fails.
func (p *Peer) Close() error {
	p.end(nil)
	return nil
}

// Done is closed once the Peer has ended and its goroutines with it.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Err says why the Peer ended, once Done is closed: nil for Close or
// Leave, ErrRemoved, ErrConnectionFailed, or the context's error.
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// end closes the Peer for reason, once, and waits for its goroutines.
func (p *Peer) end(reason error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	if !p.leaving {
		p.err = reason
	}
	p.mu.Unlock()
	p.stop()
	// Not while an offer is being answered: pion may start ICE for it
	// after Close and leak the ICE agent.
	p.signal.Lock()
	if err := p.pc.Close(); err != nil {
		p.log.Debug("voice close", "err", err)
	}
	p.signal.Unlock()
	p.wg.Wait()
	if err := p.tr.close(); err != nil {
		p.log.Debug("voice close", "err", err)
	}
	close(p.done)
}

// tracked runs f, a pion callback, so that end waits for it, unless the
// Peer is closed.
func (p *Peer) tracked(f func()) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	f()
}
