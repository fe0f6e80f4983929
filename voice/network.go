package voice

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Network says where a peer connection may take its ICE candidates. There
// is no STUN or TURN server: on a LAN or one machine, host candidates are
// all that is needed.
type Network struct {
	// IPs are the local addresses offered as ICE host candidates. Empty
	// means the addresses of every interface but loopback (a LAN). A
	// loopback address here (127.0.0.1, ::1) is offered too, so that a
	// server listening on loopback works on one machine.
	IPs []netip.Addr
	// UDPPort, when not zero, makes every peer connection share this one
	// UDP port (an ICE UDP mux), for a firewall that opens one port.
	UDPPort int
	// PortMin and PortMax, when UDPPort is zero and PortMax is not, bound
	// the ephemeral UDP ports each peer connection takes one of.
	PortMin, PortMax uint16
	// DisconnectedTimeout is how long without an answer to ICE checks a
	// connection is "disconnected" (default 3 s); FailedTimeout is how
	// much longer until it has "failed" and is given up (default 5 s).
	DisconnectedTimeout, FailedTimeout time.Duration
}

// Default ICE timeouts: a participant that vanishes is gone within about
// eight seconds.
const (
	DefaultDisconnectedTimeout = 3 * time.Second
	DefaultFailedTimeout       = 5 * time.Second
	iceKeepalive               = time.Second
)

// The payload types and codecs every peer connection here uses: Opus for
// audio, VP8 for video. Both sides of every connection are built by
// newAPI or are browsers, which support both.
const (
	opusPayloadType = 111
	vp8PayloadType  = 96
)

var (
	opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
	vp8Codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}}
)

// transport is what newAPI built: the API to make peer connections with,
// and the UDP mux to close after them, if there is one.
type transport struct {
	api *webrtc.API
	mux io.Closer
}

// newAPI builds a webrtc API for n: Opus and VP8 only, the audio-level
// header extension, pion's default interceptors (NACK, RTCP sender and
// receiver reports, TWCC), host candidates on n's addresses only, no mDNS.
func newAPI(n Network) (*transport, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCodec, PayloadType: opusPayloadType},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register opus: %w", err)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: vp8Codec, PayloadType: vp8PayloadType},
		webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register vp8: %w", err)
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register audio level: %w", err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, fmt.Errorf("interceptors: %w", err)
	}

	s := webrtc.SettingEngine{}
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	s.SetICETimeouts(cmp.Or(n.DisconnectedTimeout, DefaultDisconnectedTimeout),
		cmp.Or(n.FailedTimeout, DefaultFailedTimeout), iceKeepalive)
	keep := func(ip net.IP) bool {
		if len(n.IPs) == 0 {
			return !ip.IsLoopback()
		}
		a, ok := netip.AddrFromSlice(ip)
		return ok && slices.Contains(n.IPs, a.Unmap())
	}
	loopback := slices.ContainsFunc(n.IPs, netip.Addr.IsLoopback)
	s.SetIPFilter(keep)
	s.SetIncludeLoopbackCandidate(loopback)

	t := &transport{}
	switch {
	case n.UDPPort != 0:
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithIPFilter(keep),
			ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6)}
		if loopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		mux, err := ice.NewMultiUDPMuxFromPort(n.UDPPort, opts...)
		if err != nil {
			return nil, fmt.Errorf("udp port %d: %w", n.UDPPort, err)
		}
		s.SetICEUDPMux(mux)
		t.mux = mux
	case n.PortMax != 0:
		if err := s.SetEphemeralUDPPortRange(n.PortMin, n.PortMax); err != nil {
			return nil, fmt.Errorf("udp ports %d-%d: %w", n.PortMin, n.PortMax, err)
		}
	}
	t.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(s))
	return t, nil
}

// close closes the UDP mux, if there is one.
func (t *transport) close() error {
	if t.mux == nil {
		return nil
	}
	if err := t.mux.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close udp mux: %w", err)
	}
	return nil
}
