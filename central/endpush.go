package central

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/distchat/distchat/central/kv"
	"github.com/distchat/distchat/server/chatapi"
)

// Ending a session (Logout, ResetPassword, expiry) must reach the chat
// servers it is attached to, which otherwise trust their own table of
// attachments. Two paths carry it:
//
//   - the push: as a session ends, its id is queued for each server it is
//     attached to, and a background task (on the clock, never under c.mu)
//     calls EndSessions on each of them through Config.Connect;
//   - the backstop: every lease renewal lists the sessions attached to the
//     renewing server, and the reply names those that ended (endedAmong),
//     so a lost push costs at most one renewal period (a third of the
//     lease).

// pushTimeout bounds one EndSessions call.
const pushTimeout = 10 * time.Second

// pushRetry is how long a push that failed waits for its one retry. A
// chat server refuses for a moment while it shuts down or restarts; one
// that unregistered meanwhile needs no push, since its sessions were
// detached with it. A push that fails twice is logged as a warning (a
// server central cannot reach, at the address it registered, is worth an
// operator's look) and left to the backstop.
const pushRetry = time.Second

// queueEndLocked queues the end of session key for the servers it is
// attached to. c.mu must be held.
func (c *Central) queueEndLocked(key string) {
	a := c.attached[key]
	if a == nil || c.connect == nil {
		return
	}
	id := hex.EncodeToString([]byte(key))
	for _, name := range a.servers {
		s := c.servers[name]
		if s == nil {
			continue
		}
		addr := s.info.Addr
		if len(c.toPush[addr]) == 0 {
			c.clk.AfterFunc(0, func() { c.push(addr) })
		}
		c.toPush[addr] = append(c.toPush[addr], id)
	}
}

// push tells the chat server at addr which of its sessions ended, unless
// it has left.
func (c *Central) push(addr string) {
	c.mu.Lock()
	ids := c.toPush[addr]
	delete(c.toPush, addr)
	retry := c.retried[addr]
	delete(c.retried, addr)
	closed, present := c.closed, c.registeredAtLocked(addr)
	c.mu.Unlock()
	if closed || len(ids) == 0 {
		return
	}
	if !present {
		c.log.Debug("a chat server left before it was told that sessions ended", "addr", addr, "sessions", len(ids))
		return
	}
	inv := c.connect(addr)
	if cl, ok := inv.(io.Closer); ok {
		defer cl.Close()
	}
	ctx, cancel := c.clk.WithTimeout(c.bg, pushTimeout)
	defer cancel()
	slices.Sort(ids)
	if err := (chatapi.PeerStub{Inv: inv}).EndSessions(ctx, chatapi.EndSessionsArgs{Sessions: ids}); err != nil {
		if !retry && c.retryPush(addr, ids) {
			c.log.Debug("telling a chat server that sessions ended failed; will retry", "addr", addr, "sessions", len(ids), "err", err)
			return
		}
		// The server's next lease renewal learns of them instead.
		c.log.Warn("telling a chat server that sessions ended failed", "addr", addr, "sessions", len(ids), "err", err)
		return
	}
	c.log.Debug("told a chat server that sessions ended", "addr", addr, "sessions", len(ids))
}

// retryPush queues ids again for the chat server at addr, to be pushed
// after pushRetry (or sooner, with the next session that ends there),
// and reports whether it did: not once central is closed.
func (c *Central) retryPush(addr string, ids []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if len(c.toPush[addr]) == 0 {
		c.clk.AfterFunc(pushRetry, func() { c.push(addr) })
	}
	c.toPush[addr] = append(c.toPush[addr], ids...)
	c.retried[addr] = true
	return true
}

// registeredAtLocked reports whether a live chat server has the address
// addr. c.mu must be held.
func (c *Central) registeredAtLocked(addr string) bool {
	for _, s := range c.servers {
		if s.info.Addr == addr {
			return true
		}
	}
	return false
}

// endedAmong returns the ids (as centralapi.SessionID) among ids whose
// session no longer exists or has expired, deleting the expired ones; the
// others, being in use, are extended when past half their lifetime, as
// CheckSession does. It writes only when something changes (a renewal
// comes every few seconds from every server). c.mu must be held.
func (c *Central) endedAmong(ctx context.Context, ids []string) ([]string, error) {
	now := c.clk.Now()
	ended := map[string]bool{}
	expired := map[string]sessionRecord{}
	extend := map[string]sessionRecord{}
	err := kv.View(ctx, c.store, func(tx *kv.Tx) error {
		for _, id := range ids {
			raw, err := hex.DecodeString(id)
			if err != nil || len(raw) != sha256.Size {
				ended[id] = true
				continue
			}
			key := string(raw)
			rec, ok, err := getSession(tx, key)
			switch {
			case err != nil:
				return err
			case !ok:
				ended[id] = true
			case !now.Before(rec.Expires):
				ended[id] = true
				expired[key] = rec
			case rec.Expires.Sub(now) < c.sessionTTL/2:
				rec.Expires = now.Add(c.sessionTTL)
				extend[key] = rec
			}
		}
		return nil
	})
	if err == nil {
		err = c.settleSessions(ctx, expired, extend)
	}
	if err != nil {
		return nil, err
	}
	for _, key := range slices.Sorted(maps.Keys(expired)) {
		c.dropSession(key)
	}
	return slices.Sorted(maps.Keys(ended)), nil
}

// settleSessions deletes the expired sessions and writes the extended
// ones, sessionsPerTxn to a transaction. Each write is checked against
// the session as it is then: another central front-end may have ended or
// extended it in the meantime, and then it is left as it is.
func (c *Central) settleSessions(ctx context.Context, expired, extend map[string]sessionRecord) error {
	keys := slices.Sorted(maps.Keys(expired))
	keys = append(keys, slices.Sorted(maps.Keys(extend))...)
	for chunk := range slices.Chunk(keys, sessionsPerTxn) {
		_, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error {
			for _, key := range chunk {
				cur, ok, err := getSession(tx, key)
				switch {
				case err != nil:
					return err
				case !ok:
				case expired[key].User != "":
					if !cur.Expires.After(expired[key].Expires) {
						deleteSession(tx, key, cur.User)
					}
				case cur.Expires.Before(extend[key].Expires):
					cur.Expires = extend[key].Expires
					if err := putSession(tx, key, cur); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
