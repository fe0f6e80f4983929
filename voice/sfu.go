package voice

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// DefaultMaxParticipants is the per-channel cap when Config leaves it zero:
// every participant receives everyone else's audio, so a channel of N
// costs each participant N-1 streams down (see the package doc).
const DefaultMaxParticipants = 16

// DefaultConnectTimeout is Config.ConnectTimeout when it is zero: time for
// a browser to ask for the microphone and answer.
const DefaultConnectTimeout = 30 * time.Second

// Config configures an SFU.
type Config struct {
	// Network says which addresses and UDP ports the SFU's peer
	// connections use.
	Network
	// MaxParticipants caps each channel; Join past it returns a
	// *ChannelFullError. Zero means DefaultMaxParticipants.
	MaxParticipants int
	// OnLeave, when set, is called once for every participant that leaves
	// a channel, with no lock held, from the goroutine that removed it
	// (Leave's or HandleSignal's caller, or one of the SFU's): err is nil
	// for a Leave or a bye, ErrVanished when its connection failed or
	// never came up, ErrBadSignal when its answer could not be applied,
	// ErrClosed when the SFU closed. A participant replaced by a new Join
	// under the same name does not leave.
	OnLeave func(channel, participant string, err error)
	// ConnectTimeout is how long a participant has, from Join, to answer
	// and connect before it is removed as vanished; zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Logger receives the SFU's log; nil discards it.
	Logger *slog.Logger
	// Clock times ConnectTimeout, the bound on ICE gathering and the
	// speaking indicator; nil means clock.New(). (Media itself moves in
	// real time: RTP packets are forwarded as they come.)
	Clock clock.Clock
}

// SFU is a selective forwarding unit for the voice channels of one chat
// server: every participant sends it one Opus audio track and, camera on,
// one VP8 video track, and receives everyone else's. It forwards RTP
// packets as they come and never decodes or mixes. The SFU makes every
// offer; see the package doc.
type SFU struct {
	cfg Config
	log *slog.Logger
	clk clock.Clock
	tr  *transport

	mu       sync.Mutex
	channels map[string]*channel
	closed   bool
	wg       sync.WaitGroup // the SFU's goroutines, and the pion callbacks it runs
}

// channel is one voice channel: its participants, and the lock under
// which they are wired to one another and renegotiated.
type channel struct {
	name string

	mu      sync.Mutex
	members map[string]*participant
	gone    bool // removed from SFU.channels when it emptied; a Join makes a new one
}

// ParticipantInfo is what Participants reports of one participant.
type ParticipantInfo struct {
	// ID is the participant's name.
	ID string `json:"id"`
	// Connected: its media path is up.
	Connected bool `json:"connected"`
	// Camera: its camera is on, and the others receive its video.
	Camera bool `json:"camera"`
	// Speaking: its last audio level, from the RTP audio-level header
	// extension that browsers send, was SpeakingLevel or louder, and came
	// within SpeakingHold. A participant whose sender does not send audio
	// levels (the Go Peer) never speaks.
	Speaking bool `json:"speaking"`
	// AudioLevel is that last level in -dBov: 0 is the loudest, 127
	// silence (and what it is before any level arrived).
	AudioLevel uint8 `json:"audioLevel"`
	// Packets and Bytes count the RTP packets and their payload bytes the
	// SFU received from it, audio and video.
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// New makes an SFU. It listens on nothing until a participant joins,
// except on cfg.UDPPort when that is set.
func New(cfg Config) (*SFU, error) {
	tr, err := newAPI(cfg.Network)
	if err != nil {
		return nil, fmt.Errorf("voice: %w", err)
	}
	cfg.MaxParticipants = cmp.Or(cfg.MaxParticipants, DefaultMaxParticipants)
	cfg.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, DefaultConnectTimeout)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.New()
	}
	return &SFU{cfg: cfg, log: log, clk: clk, tr: tr, channels: map[string]*channel{}}, nil
}

// Join adds participant to channel and sends it the first offer through
// send. send is called from a goroutine of the SFU's, one signal at a time
// and in order, never with a lock held, so it may block (a slow send
// delays only its own participant's signals, and Close waits for it to
// return); the participant answers through HandleSignal. Joining again under a name already in the channel
// replaces the old session (a reloaded page, a client that reconnects),
// which is sent a bye. Past the channel's cap, Join returns a
// *ChannelFullError (errors.Is(err, ErrChannelFull)).
func (s *SFU) Join(ctx context.Context, channelName, id string, send func(Signal)) error {
	if err := checkID(channelName); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.newParticipant(channelName, id, send)
	if err != nil {
		return err
	}
	ch, err := s.lockChannel(channelName)
	if err != nil {
		s.closeParticipant(p, Signal{})
		return err
	}
	old := ch.members[id]
	if old == nil && len(ch.members) >= s.cfg.MaxParticipants {
		ch.mu.Unlock()
		s.closeParticipant(p, Signal{})
		return &ChannelFullError{Channel: channelName, Max: s.cfg.MaxParticipants}
	}
	if old != nil {
		s.detachLocked(ch, old)
	}
	p.ch.Store(ch)
	ch.members[id] = p
	for _, q := range ch.members {
		if q == p {
			continue
		}
		s.addTrackLocked(p, q.audio, q)
		if q.camera {
			s.addTrackLocked(p, q.video, q)
		}
		s.addTrackLocked(q, p.audio, p)
		s.renegotiateLocked(q)
	}
	err = s.negotiateLocked(p)
	p.connectTimer = s.clk.AfterFunc(s.cfg.ConnectTimeout, func() {
		s.tracked(func() {
			if !p.connected.Load() {
				s.remove(p, Signal{Kind: KindBye}, ErrVanished)
			}
		})
	})
	ch.mu.Unlock()
	if old != nil {
		s.closeParticipant(old, Signal{Kind: KindBye})
	}
	if err != nil {
		s.detach(p, Signal{})
		return err
	}
	s.log.Info("voice join", "channel", channelName, "participant", id)
	return nil
}

// lockChannel returns the channel, made if need be, with its lock held.
func (s *SFU) lockChannel(name string) (*channel, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		ch := s.channels[name]
		if ch == nil {
			ch = &channel{name: name, members: map[string]*participant{}}
			s.channels[name] = ch
		}
		s.mu.Unlock()
		ch.mu.Lock()
		if ch.gone { // it emptied meanwhile: take the new one
			ch.mu.Unlock()
			continue
		}
		// Close may have begun since: it takes each channel's lock after
		// setting closed, so either it sees what this Join adds or this
		// Join sees closed.
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			ch.mu.Unlock()
			return nil, ErrClosed
		}
		return ch, nil
	}
}

// member returns the participant with its channel's lock held, or
// ErrNotJoined.
func (s *SFU) member(channelName, id string) (*participant, error) {
	s.mu.Lock()
	ch := s.channels[channelName]
	s.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotJoined, id, channelName)
	}
	ch.mu.Lock()
	p := ch.members[id]
	if p == nil {
		ch.mu.Unlock()
		return nil, fmt.Errorf("%w: %s in %s", ErrNotJoined, id, channelName)
	}
	return p, nil
}

// HandleSignal takes a signal from participant: an answer to the SFU's
// offer, a trickled ICE candidate, its camera turned on or off, or a bye.
// It returns once the signal is applied (and the next offer, if one is
// due, queued): it blocks on nothing but the channel's lock and pion, so
// ctx is only checked on the way in. The renegotiations it sets off are
// the SFU's, whatever becomes of the caller.
func (s *SFU) HandleSignal(ctx context.Context, channelName, id string, sig Signal) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSize(sig); err != nil {
		return err
	}
	p, err := s.member(channelName, id)
	if err != nil {
		return err
	}
	if sig.Kind == KindBye {
		p.ch.Load().mu.Unlock()
		s.remove(p, Signal{}, nil)
		return nil
	}
	if sig.Kind == KindAnswer {
		err := s.answerLocked(p, sig.SDP)
		p.ch.Load().mu.Unlock()
		switch {
		case errors.Is(err, errAnswerFailed):
			// The connection is stuck with an offer it cannot settle:
			// the participant may join again.
			s.remove(p, Signal{Kind: KindBye}, err)
		case errors.Is(err, errConnectionGone):
			// Its connection closed before its answer came (it left
			// without a bye, or is going): what the connection's state
			// change would do next.
			s.remove(p, Signal{}, ErrVanished)
		}
		return err
	}
	defer p.ch.Load().mu.Unlock()
	switch sig.Kind {
	case KindCandidate:
		return p.addCandidateLocked(sig)
	case KindCamera:
		s.setCameraLocked(p, sig.Camera)
		return nil
	default:
		return fmt.Errorf("%w: kind %q from %s", ErrBadSignal, sig.Kind, id)
	}
}

// Leave removes participant from channel and sends it a bye.
func (s *SFU) Leave(channelName, id string) error {
	p, err := s.member(channelName, id)
	if err != nil {
		return err
	}
	p.ch.Load().mu.Unlock()
	s.remove(p, Signal{Kind: KindBye}, nil)
	return nil
}

// Participants lists who is in channel, sorted by name; nil when nobody
// is. Poll it (a few times a second) for a speaking indicator.
func (s *SFU) Participants(channelName string) []ParticipantInfo {
	s.mu.Lock()
	ch := s.channels[channelName]
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var out []ParticipantInfo
	for _, id := range slices.Sorted(maps.Keys(ch.members)) {
		out = append(out, ch.members[id].info(s.clk.Now()))
	}
	return out
}

// Channels lists the channels that have participants, sorted.
func (s *SFU) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.channels))
}

// Close removes every participant (each is sent a bye), waits for the
// SFU's goroutines to end, and releases the UDP port. Join fails after it
// with ErrClosed.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	channels := slices.Collect(maps.Values(s.channels))
	s.mu.Unlock()
	// The lock order is a channel's, then the SFU's: never the reverse.
	var all []*participant
	for _, ch := range channels {
		ch.mu.Lock()
		all = slices.AppendSeq(all, maps.Values(ch.members))
		ch.mu.Unlock()
	}
	for _, p := range all {
		s.remove(p, Signal{Kind: KindBye}, ErrClosed)
	}
	for _, p := range all {
		p.out.wait()
	}
	s.wg.Wait()
	return s.tr.close()
}

// remove takes p out of its channel (see detach) and reports its leaving
// with reason to Config.OnLeave. It does nothing if p already left.
func (s *SFU) remove(p *participant, bye Signal, reason error) {
	if !s.detach(p, bye) {
		return
	}
	ch := p.ch.Load()
	s.log.Info("voice leave", "channel", ch.name, "participant", p.id, "reason", reason)
	if s.cfg.OnLeave != nil {
		s.cfg.OnLeave(ch.name, p.id, reason)
	}
}

// detach takes p out of its channel, renegotiates the others without its
// tracks, and closes p's connection after sending it bye (when bye.Kind
// is set). It reports whether p was still in.
func (s *SFU) detach(p *participant, bye Signal) bool {
	ch := p.ch.Load()
	ch.mu.Lock()
	if ch.members[p.id] != p {
		ch.mu.Unlock()
		return false
	}
	s.detachLocked(ch, p)
	empty := len(ch.members) == 0
	if empty {
		ch.gone = true
	}
	ch.mu.Unlock()
	if empty {
		s.mu.Lock()
		if s.channels[ch.name] == ch {
			delete(s.channels, ch.name)
		}
		s.mu.Unlock()
	}
	s.closeParticipant(p, bye)
	return true
}

// detachLocked takes p out of ch.members and its tracks out of the
// others' connections, and renegotiates them.
func (s *SFU) detachLocked(ch *channel, p *participant) {
	delete(ch.members, p.id)
	p.left = true
	for _, q := range ch.members {
		removed := s.removeTrackLocked(q, p.audio)
		if s.removeTrackLocked(q, p.video) {
			removed = true
		}
		if removed {
			s.renegotiateLocked(q)
		}
	}
}

// closeParticipant sends p its last signal (if any), then closes its
// peer connection and so ends its forwarding goroutines. Both happen on
// p's outbox goroutine, the connection after the signal, so that p learns
// it was removed before it sees its connection close. Nothing here waits
// for that goroutine: the call may come from it (a send whose answer
// removes p at once, as a peer in the same process gives it). Close waits
// for it: through goTracked while the SFU is open, and itself for every
// participant still in a channel when it closes.
func (s *SFU) closeParticipant(p *participant, last Signal) {
	if p.connectTimer != nil {
		p.connectTimer.Stop()
	}
	p.out.close(last, func() {
		if err := p.pc.Close(); err != nil {
			s.log.Debug("voice close", "participant", p.id, "err", err)
		}
	})
	s.goTracked(p.out.wait)
}

// goTracked runs f in a goroutine the SFU waits for on Close, unless the
// SFU is closed already; it reports whether f runs.
func (s *SFU) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(f)
	return true
}

// tracked is goTracked for a callback pion already runs in a goroutine of
// its own: it runs f there, unless the SFU is closed.
func (s *SFU) tracked(f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	f()
}
