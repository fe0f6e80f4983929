package central

// Sessions after login: a chat server checks each session a client
// presents (CheckSession) and says when it is no longer attached there
// (EndSession); sessions are extended while in use and swept once expired.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
)

// CheckSession implements [Cluster]: it validates a session presented to
// chat server args.Server, records it as attached there, and extends it if
// it is past half its lifetime.
func (c *Central) CheckSession(ctx context.Context, a centralapi.SessionArgs) (centralapi.SessionInfo, error) {
	key, err := sessionKey(a.Token)
	if err != nil {
		return centralapi.SessionInfo{}, fmt.Errorf("check session: %w", err)
	}
	if err := checkServer(a.Server); err != nil {
		return centralapi.SessionInfo{}, fmt.Errorf("check session: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.knowServer(ctx, a.Server); err != nil {
		return centralapi.SessionInfo{}, fmt.Errorf("check session at server %s: %w", q(a.Server), err)
	}
	rec, err := c.validSession(ctx, key)
	if err != nil {
		return centralapi.SessionInfo{}, fmt.Errorf("check session: %w", err)
	}
	now := c.clk.Now()
	if rec.Expires.Sub(now) < c.sessionTTL/2 {
		if err := c.extendSession(ctx, key, now.Add(c.sessionTTL)); err != nil {
			return centralapi.SessionInfo{}, fmt.Errorf("check session: %w", err)
		}
	}
	if c.attach(key, rec.User, a.Server) {
		if err := c.storeAttach(ctx, key, rec.User, a.Server); err != nil {
			c.detach(key, a.Server)
			return centralapi.SessionInfo{}, fmt.Errorf("check session at server %s: %w", q(a.Server), err)
		}
		c.log.Debug("session attached", "user", rec.User, "session", shortID(key), "server", a.Server)
	}
	return centralapi.SessionInfo{User: rec.User}, nil
}

// EndSession implements [Cluster]: the session is no longer attached to
// args.Server. The session stays valid. Ending a session that is not
// attached there is not an error.
func (c *Central) EndSession(ctx context.Context, a centralapi.SessionArgs) error {
	key, err := sessionKey(a.Token)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if err := checkServer(a.Server); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.detach(key, a.Server) {
		if err := c.storeDetach(ctx, key, a.Server); err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		c.log.Debug("session detached", "session", shortID(key), "server", a.Server)
	}
	return nil
}

// validSession returns a session that exists and has not expired; an
// expired one is deleted. c.mu must be held.
func (c *Central) validSession(ctx context.Context, key string) (sessionRecord, error) {
	var rec sessionRecord
	var ok bool
	if err := kv.View(ctx, c.store, func(tx *kv.Tx) (err error) {
		rec, ok, err = c.sessions.get(tx, sessionRecordKey(key))
		return err
	}); err != nil {
		return rec, err
	}
	if !ok {
		c.sessions.forget(sessionRecordKey(key))
		return rec, centralapi.ErrBadSession
	}
	if !c.clk.Now().Before(rec.Expires) {
		if err := c.deleteSessions(ctx, rec.User, []string{key}); err != nil {
			return rec, err
		}
		c.dropSession(key)
		return rec, fmt.Errorf("expired: %w", centralapi.ErrBadSession)
	}
	return rec, nil
}

// sessionsPerTxn is how many sessions one transaction deletes or extends
// at most: each takes a compare and two writes, within kv.MaxTxnOps.
const sessionsPerTxn = (kv.MaxTxnOps - 2) / 3

// deleteSessions deletes sessions of user, a transaction per
// sessionsPerTxn of them.
func (c *Central) deleteSessions(ctx context.Context, user string, keys []string) error {
	for chunk := range slices.Chunk(keys, sessionsPerTxn) {
		_, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error {
			for _, k := range chunk {
				deleteSession(tx, k, user)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// extendSession moves a session's expiry to expires, unless it ended
// meanwhile (ErrBadSession): another central front-end may have ended it.
func (c *Central) extendSession(ctx context.Context, key string, expires time.Time) error {
	_, err := kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		rec, ok, err := getSession(tx, key)
		if err != nil {
			return err
		}
		if !ok {
			return centralapi.ErrBadSession
		}
		rec.Expires = expires
		return putSession(tx, key, rec)
	})
	return err
}

// sweepInterval is the period of the expired-session sweep.
func (c *Central) sweepInterval() time.Duration {
	return min(c.sessionTTL, maxSweepInterval)
}

// sweepSessions deletes expired sessions, then re-arms itself.
func (c *Central) sweepSessions() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	expired, err := c.deleteExpired(c.bg, c.clk.Now())
	if err != nil {
		c.log.Error("session sweep failed", "err", err, "removed", len(expired))
	}
	for _, k := range expired {
		c.dropSession(k)
	}
	if len(expired) > 0 {
		c.log.Info("expired sessions removed", "count", len(expired))
	}
	c.sweep = c.clk.AfterFunc(c.sweepInterval(), c.sweepSessions)
}

// deleteExpired deletes the sessions expired at now and returns their
// keys. Each is deleted only if unchanged since it was read, so that a
// session another front-end just extended stays.
func (c *Central) deleteExpired(ctx context.Context, now time.Time) ([]string, error) {
	kvs, _, err := c.store.Range(ctx, prefixSessions, 0)
	if err != nil {
		return nil, err
	}
	var expired []string
	for _, p := range kvs {
		var rec sessionRecord
		if err := json.Unmarshal(p.Value, &rec); err != nil {
			return expired, fmt.Errorf("corrupt record %s: %w", p.Key, err)
		}
		raw, err := hex.DecodeString(p.Key[len(prefixSessions):])
		if err != nil {
			return expired, fmt.Errorf("corrupt session key %s: %w", p.Key, err)
		}
		if now.Before(rec.Expires) {
			continue
		}
		key := string(raw)
		ok, _, err := c.store.Txn(ctx, []kv.Cmp{kv.Unchanged(p)}, []kv.Op{
			kv.Delete(p.Key), kv.Delete(prefixUserSessions + rec.User + "/" + sessionHex(key)),
		})
		if err != nil {
			return expired, err
		}
		if ok {
			expired = append(expired, key)
		}
	}
	return expired, nil
}
