package central

import (
	"context"
	"errors"
	"fmt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
)

// voiceHost is the chat server chosen to host one room's voice channel:
// its name and the registration (generation) it had then. A server that
// registers again has restarted, and its voice channels with it.
type voiceHost struct {
	server string
	gen    uint64
}

// VoiceHost implements [Cluster]: it names the chat server hosting the
// voice channel of args.Room, for a member of the room. The first call
// for a room picks the least-loaded live server, and later calls return
// the same one while it stays live (under the same registration), so
// every member's media goes to one place; once it is gone, the next call
// picks another. The choice lives in memory only: after a restart of
// central, or of the host, the channel is placed afresh and its
// participants join again. Front-ends that share a store keep it there,
// on the host's lease, so that all name the same host (voiceHostShared).
func (c *Central) VoiceHost(ctx context.Context, a centralapi.RoomArgs) (centralapi.VoiceHostReply, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.VoiceHostReply{}, fmt.Errorf("voice host: %w", err)
	}
	if err := checkAnyRoom(a.Room); err != nil {
		return centralapi.VoiceHostReply{}, fmt.Errorf("voice host: %w", err)
	}
	err := kv.View(ctx, c.store, func(tx *kv.Tx) error {
		if _, ok, err := getRoom(tx, a.Room); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("room %s: %w", q(a.Room), centralapi.ErrNoSuchRoom)
		}
		if member, err := isMember(tx, a.Room, a.User); err != nil {
			return err
		} else if !member {
			return fmt.Errorf("user %s in room %s: %w", q(a.User), q(a.Room), centralapi.ErrNotMember)
		}
		return nil
	})
	if err != nil {
		return centralapi.VoiceHostReply{}, fmt.Errorf("voice host: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shared {
		return c.voiceHostShared(ctx, a.Room)
	}
	if h, ok := c.voiceHosts[a.Room]; ok {
		if s := c.servers[h.server]; s != nil && s.gen == h.gen {
			return centralapi.VoiceHostReply{Server: infoOf(s)}, nil
		}
	}
	s := c.leastLoadedLocked()
	if s == nil {
		return centralapi.VoiceHostReply{}, fmt.Errorf("voice host for room %s: %w", q(a.Room), centralapi.ErrNoServers)
	}
	prev := c.voiceHosts[a.Room].server
	c.voiceHosts[a.Room] = voiceHost{server: s.info.Name, gen: s.gen}
	c.log.Info("voice channel placed", "room", a.Room, "server", s.info.Name, "previous", prev)
	return centralapi.VoiceHostReply{Server: infoOf(s)}, nil
}

// leastLoadedLocked returns the live server with the fewest attached
// sessions (ties to the first name), preferring one whose storage works;
// nil if no server is live. c.mu must be held.
func (c *Central) leastLoadedLocked() *liveServer {
	var best *liveServer
	better := func(s *liveServer) bool {
		switch {
		case best == nil:
			return true
		case s.storageFailing != best.storageFailing:
			return !s.storageFailing
		case len(s.sessions) != len(best.sessions):
			return len(s.sessions) < len(best.sessions)
		}
		return s.info.Name < best.info.Name
	}
	for _, s := range c.servers {
		if better(s) {
			best = s
		}
	}
	return best
}

// forgetVoiceHostsLocked drops the voice channels hosted by a server
// that is no longer live. c.mu must be held.
func (c *Central) forgetVoiceHostsLocked(name string) {
	for room, h := range c.voiceHosts {
		if h.server == name {
			delete(c.voiceHosts, room)
		}
	}
}

// voiceHostShared is VoiceHost's choice on a shared registry: the host
// named in the store while its registration lives, else the least-loaded
// server, written if no other front-end chose one meanwhile. c.mu must be
// held.
func (c *Central) voiceHostShared(ctx context.Context, room string) (centralapi.VoiceHostReply, error) {
	key := prefixLiveVoice + room
	for range kv.MaxAttempts {
		cur, ok, err := c.store.Get(ctx, key)
		if err != nil {
			return centralapi.VoiceHostReply{}, fmt.Errorf("voice host: %w", err)
		}
		if ok {
			name := string(cur.Value)
			if c.knowServer(ctx, name) == nil && c.servers[name].kvLease == cur.Lease {
				return centralapi.VoiceHostReply{Server: infoOf(c.servers[name])}, nil
			}
		} else {
			cur = kv.KeyValue{Key: key}
		}
		s := c.leastLoadedLocked()
		if s == nil {
			return centralapi.VoiceHostReply{}, fmt.Errorf("voice host for room %s: %w", q(room), centralapi.ErrNoServers)
		}
		won, _, err := c.store.Txn(ctx, []kv.Cmp{kv.Unchanged(cur)}, []kv.Op{kv.PutLease(key, []byte(s.info.Name), s.kvLease)})
		if errors.Is(err, kv.ErrLeaseNotFound) {
			c.dropServer(s) // its lease just ended; the watch will say so too
			continue
		}
		if err != nil {
			return centralapi.VoiceHostReply{}, fmt.Errorf("voice host: %w", err)
		}
		if won {
			c.log.Info("voice channel placed", "room", room, "server", s.info.Name, "previous", string(cur.Value))
			return centralapi.VoiceHostReply{Server: infoOf(s)}, nil
		}
	}
	return centralapi.VoiceHostReply{}, fmt.Errorf("voice host for room %s: %w", q(room), kv.ErrConflict)
}
