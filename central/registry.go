package central

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
)

// The shared registry. A central on a store of its own (Config.Dir, one
// process) keeps the live chat servers and the sessions attached to them
// in memory, each server on a lease of its own lease table (servers.go).
// Central front-ends that share a store (Config.Store, an etcd cluster)
// must agree on them instead, so there they live in the store:
//
//	live/servers/NAME       -> liveRecord (JSON), bound to the server's lease
//	live/attach/NAME/HEX    -> user, bound to the same lease
//	live/voice/ROOM         -> the name of the server hosting the room's
//	                           voice channel, bound to that server's lease
//	tickets/HEX             -> ticketRecord (JSON), on a lease of TicketTTL
//
// A chat server's lease is a kv lease: any front-end renews it
// (KeepAlive), and when it ends the store deletes the registration and its
// attachments at once. Every front-end follows live/ with a watch and
// keeps its maps (c.servers, c.attached, c.online) as a cache of it; its
// own writes also go into the cache at once, so that it reads what it
// wrote. The events of its own writes then change nothing.
const (
	prefixLive       = "live/"
	prefixLiveServer = "live/servers/"
	prefixLiveAttach = "live/attach/"
	prefixLiveVoice  = "live/voice/"
	prefixTickets    = "tickets/"
)

// liveRecord is a registration in the shared registry.
type liveRecord struct {
	Addr           string `json:"addr"`
	HTTP           string `json:"http,omitempty"`
	StorageFailing bool   `json:"storage_failing,omitempty"`
}

// relistDelay is how long a front-end waits before it reads the registry
// again after its watch failed (etcd lost its leader, or compacted).
const relistDelay = time.Second

func attachKey(server, key string) string { return prefixLiveAttach + server + "/" + sessionHex(key) }

// loadLive reads the whole registry into the cache, replacing what was
// there, and returns the revision it read at.
func (c *Central) loadLive(ctx context.Context) (int64, error) {
	kvs, rev, err := c.store.Range(ctx, prefixLive, 0)
	if err != nil {
		return 0, fmt.Errorf("central: read the registry: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.servers {
		c.dropServer(s)
	}
	// Servers first: an attachment needs its server in the cache.
	slices.SortStableFunc(kvs, func(a, b kv.KeyValue) int {
		return boolInt(strings.HasPrefix(a.Key, prefixLiveAttach)) - boolInt(strings.HasPrefix(b.Key, prefixLiveAttach))
	})
	for _, p := range kvs {
		c.applyLive(kv.Event{Type: kv.EventPut, KV: p})
	}
	return rev, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// followLive keeps the cache up to date from revision rev on, until Close.
func (c *Central) followLive(rev int64) {
	defer close(c.followDone)
	for {
		for resp := range c.store.Watch(c.bg, prefixLive, rev+1) {
			if resp.Err != nil {
				c.log.Warn("registry watch failed; reading it again", "err", resp.Err)
				break
			}
			c.mu.Lock()
			for _, ev := range resp.Events {
				c.applyLive(ev)
			}
			c.mu.Unlock()
			rev = resp.Events[0].KV.ModRev
		}
		for {
			t := c.clk.Timer(relistDelay)
			select {
			case <-c.bg.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			if rev, err = c.loadLive(c.bg); err == nil {
				break
			}
			c.log.Warn("reading the registry failed", "err", err)
		}
	}
}

// applyLive applies one change of the registry to the cache. c.mu must be
// held.
func (c *Central) applyLive(ev kv.Event) {
	gen := uint64(ev.KV.Lease)
	switch {
	case strings.HasPrefix(ev.KV.Key, prefixLiveServer):
		name := ev.KV.Key[len(prefixLiveServer):]
		s := c.servers[name]
		if ev.Type == kv.EventDelete {
			if s != nil && s.gen == gen {
				n := len(s.sessions)
				c.dropServer(s)
				c.log.Warn("chat server left the registry (unregistered, or its lease expired)", "server", name, "sessions_detached", n)
			}
			return
		}
		var rec liveRecord
		if err := json.Unmarshal(ev.KV.Value, &rec); err != nil {
			c.log.Error("corrupt registration", "key", ev.KV.Key, "err", err)
			return
		}
		c.installLive(name, gen, kv.LeaseID(ev.KV.Lease), rec)
	case strings.HasPrefix(ev.KV.Key, prefixLiveAttach):
		name, h, ok := strings.Cut(ev.KV.Key[len(prefixLiveAttach):], "/")
		raw, err := hex.DecodeString(h)
		if !ok || err != nil {
			c.log.Error("corrupt attachment", "key", ev.KV.Key)
			return
		}
		s := c.servers[name]
		if s == nil || s.gen != gen {
			return // of another registration
		}
		if ev.Type == kv.EventDelete {
			c.detach(string(raw), name)
		} else {
			c.attach(string(raw), string(ev.KV.Value), name)
		}
	}
}

// installLive puts registration gen of server name in the cache (or
// updates it) and returns it. c.mu must be held.
func (c *Central) installLive(name string, gen uint64, lease kv.LeaseID, rec liveRecord) *liveServer {
	s := c.servers[name]
	if s != nil && s.gen == gen {
		s.info.Addr, s.info.HTTP, s.storageFailing = rec.Addr, rec.HTTP, rec.StorageFailing
		return s
	}
	if s != nil {
		c.dropServer(s)
	}
	s = &liveServer{
		info:           centralapi.ServerInfo{Name: name, Addr: rec.Addr, HTTP: rec.HTTP},
		gen:            gen,
		kvLease:        lease,
		sessions:       map[string]struct{}{},
		storageFailing: rec.StorageFailing,
	}
	c.servers[name] = s
	return s
}

// registerShared is RegisterServer on a shared registry: a new lease, the
// registration on it, the old registration's lease revoked (its
// attachments go with it), and the server's valid sessions attached anew.
func (c *Central) registerShared(ctx context.Context, a centralapi.RegisterArgs) (centralapi.RegisterReply, error) {
	lease, err := c.store.Grant(ctx, c.leaseTTL)
	if err != nil {
		return centralapi.RegisterReply{}, fmt.Errorf("register server %s: %w", q(a.Name), err)
	}
	rec := liveRecord{Addr: a.Addr, HTTP: a.HTTP, StorageFailing: a.StorageFailing}
	raw, err := json.Marshal(rec)
	if err != nil {
		return centralapi.RegisterReply{}, err
	}
	key := prefixLiveServer + a.Name
	old, hadOld, err := c.store.Get(ctx, key)
	if err == nil {
		_, _, err = c.store.Txn(ctx, nil, []kv.Op{kv.PutLease(key, raw, lease)})
	}
	if err != nil {
		_ = c.store.Revoke(ctx, lease)
		return centralapi.RegisterReply{}, fmt.Errorf("register server %s: %w", q(a.Name), err)
	}
	if hadOld && old.Lease != 0 {
		if err := c.store.Revoke(ctx, old.Lease); err != nil && !errors.Is(err, kv.ErrLeaseNotFound) {
			c.log.Warn("revoking the lease of an earlier registration failed", "server", a.Name, "err", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return centralapi.RegisterReply{}, errClosed
	}
	s := c.installLive(a.Name, uint64(lease), lease, rec)
	s.servedUntil = c.clk.Now().Add(c.leaseTTL)
	var rejected []string
	var ops []kv.Op
	for _, tok := range a.Sessions {
		key, err := sessionKey(tok)
		if err == nil {
			var rec sessionRecord
			if rec, err = c.validSession(ctx, key); err == nil {
				c.attach(key, rec.User, a.Name)
				ops = append(ops, kv.PutLease(attachKey(a.Name, key), []byte(rec.User), lease))
				continue
			}
		}
		if !errors.Is(err, centralapi.ErrBadSession) {
			c.log.Error("re-attaching session failed", "server", a.Name, "err", err)
		}
		rejected = append(rejected, tok)
	}
	for chunk := range slices.Chunk(ops, kv.MaxTxnOps) {
		if _, _, err := c.store.Txn(ctx, nil, chunk); err != nil {
			c.dropServer(s)
			return centralapi.RegisterReply{}, fmt.Errorf("register server %s: attach its sessions: %w", q(a.Name), err)
		}
	}
	if hadOld && old.Value != nil {
		var was liveRecord
		if json.Unmarshal(old.Value, &was) == nil && was.Addr != a.Addr {
			c.log.Warn("chat server registered again at another address", "server", a.Name, "old_addr", was.Addr, "addr", a.Addr)
		}
	}
	c.log.Info("chat server registered", "server", a.Name, "addr", a.Addr, "http", a.HTTP, "lease", fmt.Sprintf("%x", lease),
		"sessions", len(a.Sessions)-len(rejected), "rejected", len(rejected), "storage_failing", a.StorageFailing)
	return centralapi.RegisterReply{LeaseTTL: c.leaseTTL, Servers: c.serverList(), Rejected: rejected, CentralHTTP: c.http}, nil
}

// renewShared is RenewServer on a shared registry: whichever front-end the
// server calls keeps its lease alive.
func (c *Central) renewShared(ctx context.Context, a centralapi.RenewArgs) (centralapi.RenewReply, error) {
	key := prefixLiveServer + a.Name
	cur, ok, err := c.store.Get(ctx, key)
	if err != nil {
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %w", q(a.Name), err)
	}
	if !ok {
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %w", q(a.Name), centralapi.ErrUnknownServer)
	}
	if err := c.store.KeepAlive(ctx, cur.Lease); err != nil {
		if errors.Is(err, kv.ErrLeaseNotFound) {
			return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %v: %w", q(a.Name), err, centralapi.ErrUnknownServer)
		}
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %w", q(a.Name), err)
	}
	var rec liveRecord
	if err := json.Unmarshal(cur.Value, &rec); err != nil {
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: corrupt registration: %w", q(a.Name), err)
	}
	if rec.StorageFailing != a.StorageFailing {
		rec.StorageFailing = a.StorageFailing
		raw, err := json.Marshal(rec)
		if err != nil {
			return centralapi.RenewReply{}, err
		}
		// Only this registration: a new one replaces the key.
		if _, _, err := c.store.Txn(ctx, []kv.Cmp{kv.Unchanged(cur)}, []kv.Op{kv.PutLease(key, raw, cur.Lease)}); err != nil {
			return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %w", q(a.Name), err)
		}
		if a.StorageFailing {
			c.log.Warn("chat server storage failing; placing no one there", "server", a.Name)
		} else {
			c.log.Info("chat server storage works again", "server", a.Name)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.installLive(a.Name, uint64(cur.Lease), cur.Lease, rec).servedUntil = c.clk.Now().Add(c.leaseTTL)
	ended, err := c.endedAmong(ctx, a.Sessions)
	if err != nil {
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %w", q(a.Name), err)
	}
	return centralapi.RenewReply{LeaseTTL: c.leaseTTL, Servers: c.serverList(), Ended: ended}, nil
}

// unregisterShared is UnregisterServer on a shared registry: revoking the
// lease deletes the registration and its attachments.
func (c *Central) unregisterShared(ctx context.Context, a centralapi.UnregisterArgs) error {
	cur, ok, err := c.store.Get(ctx, prefixLiveServer+a.Name)
	if err != nil {
		return fmt.Errorf("unregister server %s: %w", q(a.Name), err)
	}
	if !ok {
		return nil
	}
	if err := c.store.Revoke(ctx, cur.Lease); err != nil && !errors.Is(err, kv.ErrLeaseNotFound) {
		return fmt.Errorf("unregister server %s: %w", q(a.Name), err)
	}
	c.mu.Lock()
	if s := c.servers[a.Name]; s != nil && s.gen == uint64(cur.Lease) {
		c.dropServer(s)
	}
	c.mu.Unlock()
	c.log.Info("chat server unregistered", "server", a.Name)
	return nil
}

// storeAttach records in the shared registry that session key of user is
// attached to server name, on the server's lease. c.mu must be held.
func (c *Central) storeAttach(ctx context.Context, key, user, name string) error {
	s := c.servers[name]
	if !c.shared || s == nil {
		return nil
	}
	_, _, err := c.store.Txn(ctx, nil, []kv.Op{kv.PutLease(attachKey(name, key), []byte(user), s.kvLease)})
	if errors.Is(err, kv.ErrLeaseNotFound) {
		return fmt.Errorf("server %s: %w", q(name), centralapi.ErrUnknownServer)
	}
	return err
}

// storeDetach removes attachments of session key from the shared
// registry. c.mu must be held.
func (c *Central) storeDetach(ctx context.Context, key string, servers ...string) error {
	if !c.shared || len(servers) == 0 {
		return nil
	}
	ops := make([]kv.Op, 0, len(servers))
	for _, name := range servers {
		ops = append(ops, kv.Delete(attachKey(name, key)))
	}
	_, _, err := c.store.Txn(ctx, nil, ops)
	return err
}

// knowServer fails with ErrUnknownServer unless server name is live. On a
// shared registry a server that registered at another front-end a moment
// ago may not be in the cache yet: it is read from the store. c.mu must be
// held.
func (c *Central) knowServer(ctx context.Context, name string) error {
	if c.servers[name] != nil {
		return nil
	}
	if c.shared {
		cur, ok, err := c.store.Get(ctx, prefixLiveServer+name)
		if err != nil {
			return err
		}
		var rec liveRecord
		if ok && json.Unmarshal(cur.Value, &rec) == nil {
			c.installLive(name, uint64(cur.Lease), cur.Lease, rec)
			return nil
		}
	}
	return centralapi.ErrUnknownServer
}
