package client

import (
	"context"
	"fmt"

	"github.com/distchat/distchat/server/chatapi"
)

// VoiceJoin joins the voice channel of room (a member's only), replacing
// this user's earlier connection to it. The chat server hosting the
// channel then sends its offer through Config.OnVoice; answer it with
// VoiceSignal. After the host died (a bye, or the WebRTC connection
// failed), calling VoiceJoin again places the channel on a live server.
func (c *Client) VoiceJoin(ctx context.Context, room string) error {
	err := c.withServer(ctx, func(st chatapi.Stub, token string) error {
		return st.VoiceJoin(ctx, chatapi.VoiceArgs{Token: token, Room: room})
	})
	if err != nil {
		return fmt.Errorf("join voice of %s: %w", room, err)
	}
	return nil
}

// VoiceSignal sends the SFU of room's voice channel this client's answer,
// an ICE candidate, or its camera turned on or off.
func (c *Client) VoiceSignal(ctx context.Context, room string, s chatapi.VoiceSignal) error {
	err := c.withServer(ctx, func(st chatapi.Stub, token string) error {
		return st.VoiceSignal(ctx, chatapi.VoiceArgs{Token: token, Room: room, Signal: s})
	})
	if err != nil {
		return fmt.Errorf("voice signal to %s: %w", room, err)
	}
	return nil
}

// VoiceLeave leaves the voice channel of room.
func (c *Client) VoiceLeave(ctx context.Context, room string) error {
	err := c.withServer(ctx, func(st chatapi.Stub, token string) error {
		return st.VoiceLeave(ctx, chatapi.VoiceArgs{Token: token, Room: room})
	})
	if err != nil {
		return fmt.Errorf("leave voice of %s: %w", room, err)
	}
	return nil
}

// VoiceWho lists who is in the voice channel of room, sorted by user.
func (c *Client) VoiceWho(ctx context.Context, room string) ([]chatapi.VoiceParticipant, error) {
	var r chatapi.VoiceWhoReply
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		r, err = st.VoiceWho(ctx, chatapi.VoiceArgs{Token: token, Room: room})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("who is in the voice of %s: %w", room, err)
	}
	return r.Participants, nil
}
