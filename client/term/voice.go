package term

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distchat/distchat/client"
)

// jsonVoice is one line of /voice stats (and of /voice leave, /quit) in
// JSON: what the client received from one other participant of a room's
// voice channel, and what it sent.
type jsonVoice struct {
	Type      string `json:"type"` // "voice"
	Room      string `json:"room"`
	User      string `json:"user,omitempty"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
	SentAudio uint64 `json:"sentAudio,omitempty"`
	Joins     int    `json:"joins,omitempty"`
}

// voiceCmd runs "/voice join ROOM FILE", "/voice leave ROOM" and
// "/voice stats [ROOM]".
func (t *terminal) voiceCmd(ctx context.Context, args string) {
	sub, rest, _ := cutWord(args)
	room, file, _ := cutWord(rest)
	switch {
	case sub == "join" && room != "" && file != "":
		t.voiceJoin(ctx, room, file)
	case sub == "leave" && room != "" && file == "":
		t.voiceLeave(room)
	case sub == "stats" && file == "":
		rooms := slices.Sorted(maps.Keys(t.calls))
		if room != "" {
			rooms = []string{room}
		}
		for _, r := range rooms {
			t.voiceStats(r)
		}
	default:
		t.fail(errors.New("usage: /voice join ROOM FILE.ogg | /voice leave ROOM | /voice stats [ROOM]"))
	}
}

// voiceJoin starts a Go peer in the voice channel of room, sending file.
func (t *terminal) voiceJoin(ctx context.Context, room, file string) {
	if t.opts.StartVoice == nil {
		t.fail(errors.New("voice is not available in this client"))
		return
	}
	if v := t.calls[room]; v != nil {
		select {
		case <-v.Done(): // it gave up rejoining: join afresh
			delete(t.calls, room)
		default:
			t.fail(fmt.Errorf("already in the voice of %s", room))
			return
		}
	}
	cfg := client.VoiceCallConfig{Room: room, Audio: file, Network: t.opts.VoiceNetwork, Logger: t.opts.VoiceLogger}
	if t.opts.VoiceRecord != "" {
		cfg.RecordDir = filepath.Join(t.opts.VoiceRecord, room)
	}
	v, err := t.opts.StartVoice(ctx, cfg)
	if err != nil {
		t.fail(err)
		return
	}
	if t.calls == nil {
		t.calls = map[string]*client.VoiceCall{}
	}
	t.calls[room] = v
	t.ok(jsonOK{Type: "ok", Cmd: "voice-join", Room: room}, "joined the voice of "+room)
}

// voiceLeave leaves the voice channel of room and prints what the call
// received.
func (t *terminal) voiceLeave(room string) {
	v := t.calls[room]
	if v == nil {
		t.fail(fmt.Errorf("not in the voice of %s", room))
		return
	}
	err := v.Leave()
	t.voiceStats(room)
	delete(t.calls, room)
	if err != nil {
		t.fail(err)
		return
	}
	t.ok(jsonOK{Type: "ok", Cmd: "voice-leave", Room: room}, "left the voice of "+room)
}

// leaveVoice leaves every voice channel, as Run ends.
func (t *terminal) leaveVoice() {
	for _, room := range slices.Sorted(maps.Keys(t.calls)) {
		t.voiceLeave(room)
	}
}

// voiceStats prints, for the call in room, the packets and bytes received
// from each other participant (over all its sessions), then a total line
// with what it sent. A call that ended by itself (it gave up rejoining)
// says why.
func (t *terminal) voiceStats(room string) {
	v := t.calls[room]
	if v == nil {
		t.fail(fmt.Errorf("not in the voice of %s", room))
		return
	}
	st := v.Stats()
	for _, who := range slices.Sorted(maps.Keys(st.Remote)) {
		r := st.Remote[who]
		j := jsonVoice{Type: "voice", Room: room, User: who, Packets: r.AudioPackets + r.VideoPackets, Bytes: r.AudioBytes + r.VideoBytes}
		if t.opts.JSON {
			t.printJSON(j)
		} else {
			t.println(fmt.Sprintf("voice %s: from %s %d packets, %d bytes", room, who, j.Packets, j.Bytes))
		}
	}
	if t.opts.JSON {
		t.printJSON(jsonVoice{Type: "voice", Room: room, SentAudio: st.SentAudio, Joins: v.Joins()})
	} else {
		t.println(fmt.Sprintf("voice %s: sent %d audio packets (joins: %d)", room, st.SentAudio, v.Joins()))
	}
	select {
	case <-v.Done():
		if err := v.Err(); err != nil {
			t.fail(err)
		}
	default:
	}
}

// cutWord splits s at its first space: the first word and the rest, both
// trimmed.
func cutWord(s string) (word, rest string, found bool) {
	word, rest, found = strings.Cut(strings.TrimSpace(s), " ")
	return word, strings.TrimSpace(rest), found
}
