// Package voice is the media core of distchat's voice channels: a small
// selective forwarding unit (SFU) that a chat server runs for the voice
// channels it hosts, and the Go participant (Peer) that the distchat
// client uses. It speaks WebRTC through pion and forwards Opus audio and
// VP8 video packets without decoding or mixing them.
package voice
