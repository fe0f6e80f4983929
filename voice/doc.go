// Package voice is the media core of distchat's voice channels: a small
// selective forwarding unit (SFU) that a chat server runs for the voice
// channels it hosts, and the Go participant (Peer) that the distchat
// client uses. It speaks WebRTC through pion/webrtc. The package knows
// nothing of rooms, users or RMI: its signalling is plain data (Signal),
// and who may join which channel is the chat server's business.
//
// # Topology: why an SFU
//
// In a channel of N people, each participant sends its microphone once,
// to the SFU, and receives N-1 streams from it, one per other
// participant. The SFU forwards RTP packets as they come: it never
// decodes, mixes or re-encodes audio or video, so it costs little CPU
// (BenchmarkSFU), adds no delay beyond one hop, and the receivers play and
// mix the streams themselves (a browser plays each in its own element;
// the Go Peer records each to its own file). The alternatives are worse
// on a LAN: a full mesh makes every participant send N-1 copies, and a
// mixing server (an MCU) decodes and re-encodes everything.
//
// # Signalling: the SFU always offers
//
// WebRTC peers agree on their media with an SDP offer and answer. Here the
// SFU makes every offer and the participant only answers, for two
// reasons. First, with one offerer there is no glare: two sides offering
// at once, each waiting for the other's answer. Second, the SFU is the
// side that knows when tracks come and go: someone joins or leaves, a
// camera is turned on or off. So on each such change the SFU adds or
// removes tracks on every affected participant's connection and sends
// each a new offer; it keeps at most one offer outstanding per
// participant, and a change during one sends another offer once the answer
// is in. A participant never needs to offer: its microphone and camera go
// on the two receive-only transceivers (audio, video) that the SFU's
// first offer already has for it. Turning the camera off or on is a
// KindCamera signal; the first video packet also turns it on.
//
// The SFU's offers carry all its ICE candidates (it waits for gathering,
// milliseconds with host candidates only), so it never trickles; a
// participant may trickle its own (KindCandidate, as browsers do) or put
// them in its answer (the Go Peer does). Signals travel by whatever the
// caller likes: Join takes a send function for the SFU's signals to one
// participant, called from a goroutine of its own and in order, and the
// participant's signals come back through HandleSignal. A chat server
// carries them over RMI from a Go client and over its WebSocket from a
// browser; Signal has JSON tags for the latter.
//
// # The media path
//
// A participant's Opus packets arrive on its connection (SRTP over UDP),
// where a goroutine reads each one, notes the audio level from the RTP
// audio-level header extension (ParticipantInfo.Speaking, for a speaking
// indicator), and writes it once to a local track that is attached to
// every other participant's connection; pion encrypts and sends a copy on
// each. Video (VP8) takes the same path. Receivers' RTCP is read: pion's
// interceptors answer NACKs from a send buffer and exchange sender and
// receiver reports, and a keyframe request (PLI or FIR) from a receiver is
// passed on to the video's sender, at most one every 500 ms. When a
// receiver starts receiving someone's video (it joined, or the camera came
// on), the SFU asks the sender for a keyframe as soon as that receiver is
// connected and its negotiation settled, since a decoder can only start
// from one.
//
// A participant leaves by Leave or a bye. One that vanishes is removed all
// the same: if it closed its connection, at once; if its host died or the
// network went, when ICE has had no answer for DisconnectedTimeout plus
// FailedTimeout (8 s by default); if it never answered or connected, after
// Config.ConnectTimeout (30 s). Config.OnLeave tells the chat server,
// which may then tell the others. Every goroutine the SFU starts ends when
// its participant is removed, and Close waits for them.
//
// # Networks: loopback and LAN only
//
// There is no STUN or TURN server: the SFU and its participants are on
// one LAN (or one machine), so host candidates are enough. Network.IPs
// picks the addresses offered; a loopback address there is offered too
// (pion leaves loopback out by default), for a chat server listening on
// 127.0.0.1. For a firewall, Network.UDPPort puts every connection on one
// UDP port (an ICE UDP mux), or PortMin and PortMax bound the ports used.
// mDNS candidates are off; a browser that hides its address behind one
// still connects, as the SFU learns its address from its first ICE check.
//
// # Limits and bandwidth
//
// Opus speech takes about 32 to 64 kbit/s per stream (browsers default to
// about 32; the test files are 16), plus some 10 to 15 kbit/s of RTP,
// SRTP and UDP headers at 50 packets a second. A participant sends one
// stream and receives N-1, so in a channel of 10 it receives about 9 x 50
// = 450 kbit/s, and the SFU sends N x (N-1) streams in all: it is the
// SFU's upload that grows as the square of the channel's size. Video at a
// few hundred kbit/s a camera multiplies this. Config.MaxParticipants caps
// a channel (16 by default); Join past it returns a *ChannelFullError.
//
// The SFU's CPU goes mostly to system calls (one UDP read per packet in,
// one write per copy out) and to scheduling the goroutines that carry
// packets; SRTP encryption is a few percent. BenchmarkSFU measured 45 to
// 95 us of CPU per forwarded packet on a loaded two-core virtual machine
// (fewer the more channels, as wake-ups are shared), so a
// 50-packet-a-second Opus stream costs 0.2 to 0.5% of a core per receiver,
// and two cores carry some 70 to 150 three-person channels.
//
// # The Go Peer
//
// Peer is a participant without a microphone: it sends an Ogg Opus file
// (one packet per Ogg page, paced in real time by the pages' granule
// positions) and, as a camera that SetCamera turns off and on, an IVF
// file of VP8 frames; it records each
// remote participant's audio to its own .ogg file and counts packets and
// bytes per remote participant (Stats). It answers the SFU's offers
// through PeerConfig.Send and ends on Leave, Close, its context, a bye
// from the SFU, or a failed connection (Done, Err): a client that sees
// ErrConnectionFailed rejoins, possibly on another host.
package voice
