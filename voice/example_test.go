package voice_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/distchat/distchat/voice"
)

// Example wires an SFU and one Go participant in one process, with plain
// function calls where a chat server would carry the signals over RMI or
// a WebSocket: the SFU's signals go to the Peer's HandleSignal, and the
// Peer's to the SFU's HandleSignal.
func Example() {
	ctx := context.Background()
	lan := voice.Network{IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	sfu, err := voice.New(voice.Config{Network: lan, MaxParticipants: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sfu.Close()

	peer, err := voice.NewPeer(ctx, voice.PeerConfig{
		Network: lan,
		Audio:   "tone.ogg", // an Ogg Opus file, one packet per page
		Send: func(sig voice.Signal) {
			if err := sfu.HandleSignal(ctx, "room", "ann", sig); err != nil {
				fmt.Println(err)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Leave()

	err = sfu.Join(ctx, "room", "ann", func(sig voice.Signal) {
		if err := peer.HandleSignal(ctx, sig); err != nil {
			fmt.Println(err)
		}
	})
	if err != nil {
		fmt.Println(err)
	}
}
