package central

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/distchat/distchat/central/centralapi"
)

// errClosed is returned by calls that need background machinery after
// Close.
var errClosed = errors.New("central: closed")

// leaseID names the lease of one registration of a server. The generation
// tells a stale expiry (of an earlier registration) from a current one;
// server names cannot contain '#'.
func leaseID(name string, gen uint64) string {
	return name + "#" + strconv.FormatUint(gen, 10)
}

// RegisterServer implements [Cluster]: it adds (or replaces) a chat server,
// grants it a lease and attaches the valid sessions of args.Sessions.
func (c *Central) RegisterServer(ctx context.Context, a centralapi.RegisterArgs) (centralapi.RegisterReply, error) {
	if err := checkServer(a.Name); err != nil {
		return centralapi.RegisterReply{}, fmt.Errorf("register server: %w", err)
	}
	if err := checkAddr("RMI", a.Addr); err != nil {
		return centralapi.RegisterReply{}, fmt.Errorf("register server %s: %w", q(a.Name), err)
	}
	if a.HTTP != "" {
		if err := checkAddr("HTTP", a.HTTP); err != nil {
			return centralapi.RegisterReply{}, fmt.Errorf("register server %s: %w", q(a.Name), err)
		}
	}
	if c.shared {
		return c.registerShared(ctx, a)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return centralapi.RegisterReply{}, errClosed
	}
	c.gen++
	gen := c.gen
	c.mu.Unlock()

	// Grant before installing, and never call the lease table with c.mu
	// held: its expiry callback takes c.mu.
	lease := leaseID(a.Name, gen)
	c.leases.Grant(lease, c.leaseTTL)

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.leases.Revoke(lease)
		return centralapi.RegisterReply{}, errClosed
	}
	old := c.servers[a.Name]
	if old != nil && old.gen > gen {
		// A later registration of the same name won the race.
		reply := centralapi.RegisterReply{LeaseTTL: c.leaseTTL, Servers: c.serverList()}
		c.mu.Unlock()
		c.leases.Revoke(lease)
		return reply, nil
	}
	if old != nil {
		c.dropServer(old)
		if old.info.Addr != a.Addr {
			c.log.Warn("chat server registered again at another address", "server", a.Name,
				"old_addr", old.info.Addr, "addr", a.Addr)
		}
	}
	s := &liveServer{
		info:     centralapi.ServerInfo{Name: a.Name, Addr: a.Addr, HTTP: a.HTTP},
		gen:      gen,
		lease:    lease,
		sessions: map[string]struct{}{},
	}
	s.storageFailing = a.StorageFailing
	c.servers[a.Name] = s
	var rejected []string
	for _, tok := range a.Sessions {
		key, err := sessionKey(tok)
		if err == nil {
			var rec sessionRecord
			if rec, err = c.validSession(ctx, key); err == nil {
				c.attach(key, rec.User, a.Name)
				continue
			}
		}
		if !errors.Is(err, centralapi.ErrBadSession) {
			c.log.Error("re-attaching session failed", "server", a.Name, "err", err)
		}
		rejected = append(rejected, tok)
	}
	reply := centralapi.RegisterReply{LeaseTTL: c.leaseTTL, Servers: c.serverList(), Rejected: rejected, CentralHTTP: c.http}
	c.mu.Unlock()
	if old != nil {
		c.leases.Revoke(old.lease)
	}
	c.log.Info("chat server registered", "server", a.Name, "addr", a.Addr, "http", a.HTTP,
		"sessions", len(a.Sessions)-len(rejected), "rejected", len(rejected), "storage_failing", a.StorageFailing)
	return reply, nil
}

// RenewServer implements [Cluster]: it renews a chat server's lease, notes
// whether its storage is failing (then no one is placed there), lists the
// live servers, and names which of the server's sessions ended. It fails
// with ErrUnknownServer if the server is not registered or its lease has
// run out.
func (c *Central) RenewServer(ctx context.Context, a centralapi.RenewArgs) (centralapi.RenewReply, error) {
	if err := checkServer(a.Name); err != nil {
		return centralapi.RenewReply{}, fmt.Errorf("renew server: %w", err)
	}
	if c.shared {
		return c.renewShared(ctx, a)
	}
	c.mu.Lock()
	s := c.servers[a.Name]
	c.mu.Unlock()
	if s == nil {
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %w", q(a.Name), centralapi.ErrUnknownServer)
	}
	if err := c.leases.Renew(s.lease, c.leaseTTL); err != nil {
		c.leaseExpired(s.lease)
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %v: %w", q(a.Name), err, centralapi.ErrUnknownServer)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.servers[a.Name]; cur == nil || cur.gen != s.gen {
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %w", q(a.Name), centralapi.ErrUnknownServer)
	}
	if s.storageFailing != a.StorageFailing {
		s.storageFailing = a.StorageFailing
		if a.StorageFailing {
			c.log.Warn("chat server storage failing; placing no one there", "server", a.Name)
		} else {
			c.log.Info("chat server storage works again", "server", a.Name)
		}
	}
	ended, err := c.endedAmong(ctx, a.Sessions)
	if err != nil {
		return centralapi.RenewReply{}, fmt.Errorf("renew server %s: %w", q(a.Name), err)
	}
	return centralapi.RenewReply{LeaseTTL: c.leaseTTL, Servers: c.serverList(), Ended: ended}, nil
}

// UnregisterServer implements [Cluster]: the server leaves at once; its
// sessions are detached.
func (c *Central) UnregisterServer(ctx context.Context, a centralapi.UnregisterArgs) error {
	if err := checkServer(a.Name); err != nil {
		return fmt.Errorf("unregister server: %w", err)
	}
	if c.shared {
		return c.unregisterShared(ctx, a)
	}
	c.mu.Lock()
	s := c.servers[a.Name]
	if s != nil {
		c.dropServer(s)
	}
	c.mu.Unlock()
	if s != nil {
		c.leases.Revoke(s.lease)
		c.log.Info("chat server unregistered", "server", a.Name)
	}
	return nil
}

// leaseExpired is the lease table's expiry callback: the server is dead.
func (c *Central) leaseExpired(id string) {
	i := strings.LastIndexByte(id, '#')
	if i < 0 {
		return
	}
	name := id[:i]
	c.mu.Lock()
	s := c.servers[name]
	if s == nil || s.lease != id {
		c.mu.Unlock()
		return
	}
	n := len(s.sessions)
	c.dropServer(s)
	c.mu.Unlock()
	c.log.Warn("chat server lease expired; server removed", "server", name, "sessions_detached", n)
}

// dropServer removes a live server and detaches its sessions. c.mu must be
// held.
func (c *Central) dropServer(s *liveServer) {
	for key := range s.sessions {
		c.detach(key, s.info.Name)
	}
	for key, p := range c.pending {
		if p.server == s.info.Name {
			delete(c.pending, key)
		}
	}
	if c.servers[s.info.Name] == s {
		delete(c.servers, s.info.Name)
		c.forgetVoiceHostsLocked(s.info.Name)
	}
}

// infoOf describes a live server with its current load. c.mu must be held.
func infoOf(s *liveServer) centralapi.ServerInfo {
	info := s.info
	info.Sessions = len(s.sessions)
	return info
}

// serverList lists the live servers sorted by name. c.mu must be held.
func (c *Central) serverList() []centralapi.ServerInfo {
	out := make([]centralapi.ServerInfo, 0, len(c.servers))
	for _, s := range c.servers {
		out = append(out, infoOf(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// place picks the least-loaded live server other than exclude for session
// self (empty for a new one); ties go to the first name. A server's load is
// its attached sessions plus the sessions recently placed there that have
// not attached yet (so a burst of logins is spread out), not counting self.
// Config.Prefer, when it names a live server for user, wins. A server whose
// storage is failing is never chosen. c.mu must be held.
func (c *Central) place(user, self, exclude string) (centralapi.ServerInfo, uint64, error) {
	if c.prefer != nil {
		if name := c.prefer(user); name != "" && name != exclude {
			if s := c.servers[name]; s != nil && !s.storageFailing {
				return infoOf(s), s.gen, nil
			}
		}
	}
	now := c.clk.Now()
	pending := map[string]int{}
	for key, p := range c.pending {
		s := c.servers[p.server]
		if s == nil || s.gen != p.gen || now.Sub(p.at) >= placementGrace {
			delete(c.pending, key)
			continue
		}
		if key != self {
			pending[p.server]++
		}
	}
	var best *liveServer
	bestLoad := 0
	for name, s := range c.servers {
		if name == exclude || s.storageFailing {
			continue
		}
		load := len(s.sessions) + pending[name]
		if _, ok := s.sessions[self]; ok {
			load--
		}
		if best == nil || load < bestLoad || (load == bestLoad && name < best.info.Name) {
			best, bestLoad = s, load
		}
	}
	if best == nil {
		if exclude != "" {
			return centralapi.ServerInfo{}, 0, fmt.Errorf("no live server other than %s: %w", q(exclude), centralapi.ErrNoServers)
		}
		return centralapi.ServerInfo{}, 0, centralapi.ErrNoServers
	}
	return infoOf(best), best.gen, nil
}

// notePlacement records that session key was sent to server name (of
// registration gen), and returns the server's current description; ok is
// false if that registration is gone. c.mu must be held.
func (c *Central) notePlacement(key, name string, gen uint64) (centralapi.ServerInfo, bool) {
	s := c.servers[name]
	if s == nil || s.gen != gen {
		return centralapi.ServerInfo{}, false
	}
	if _, attached := s.sessions[key]; !attached {
		c.pending[key] = pendingPlacement{server: name, gen: gen, at: c.clk.Now()}
	}
	return infoOf(s), true
}

// attach records session key of user as attached to live server name and
// reports whether it was not already. c.mu must be held.
func (c *Central) attach(key, user, name string) bool {
	s := c.servers[name]
	if s == nil {
		return false
	}
	delete(c.pending, key)
	if _, ok := s.sessions[key]; ok {
		return false
	}
	s.sessions[key] = struct{}{}
	a := c.attached[key]
	if a == nil {
		a = &attachment{user: user}
		c.attached[key] = a
	}
	if i, ok := slices.BinarySearch(a.servers, name); !ok {
		a.servers = slices.Insert(a.servers, i, name)
	}
	on := c.online[user]
	i, ok := slices.BinarySearchFunc(on, name, byServer)
	if !ok {
		on = slices.Insert(on, i, serverCount{server: name})
		c.online[user] = on
	}
	on[i].sessions++
	return true
}

// byServer orders a user's serverCounts by server name.
func byServer(sc serverCount, name string) int { return strings.Compare(sc.server, name) }

// detach undoes attach and reports whether the session was attached there.
// c.mu must be held.
func (c *Central) detach(key, name string) bool {
	a := c.attached[key]
	if a == nil {
		return false
	}
	i, ok := slices.BinarySearch(a.servers, name)
	if !ok {
		return false
	}
	a.servers = slices.Delete(a.servers, i, i+1)
	if len(a.servers) == 0 {
		delete(c.attached, key)
	}
	if s := c.servers[name]; s != nil {
		delete(s.sessions, key)
	}
	on := c.online[a.user]
	if i, ok := slices.BinarySearchFunc(on, name, byServer); ok {
		if on[i].sessions--; on[i].sessions <= 0 {
			on = slices.Delete(on, i, i+1)
		}
		if len(on) == 0 {
			delete(c.online, a.user)
		} else {
			c.online[a.user] = on
		}
	}
	return true
}

// dropSession forgets everything in memory about a session that ended,
// and queues the news for the chat servers it is attached to (endpush.go).
// c.mu must be held.
func (c *Central) dropSession(key string) {
	c.sessions.forget(sessionRecordKey(key))
	c.queueEndLocked(key)
	delete(c.pending, key)
	if a := c.attached[key]; a != nil {
		names := slices.Clone(a.servers)
		for _, name := range names {
			c.detach(key, name)
		}
		if err := c.storeDetach(c.bg, key, names...); err != nil {
			// They go with the servers' leases at the latest.
			c.log.Warn("removing an ended session's attachments from the registry failed", "session", shortID(key), "err", err)
		}
	}
}

// userServers returns the sorted names of the live servers user is
// attached to. c.mu must be held.
func (c *Central) userServers(user string) []string {
	on := c.online[user]
	if len(on) == 0 {
		return nil
	}
	out := make([]string, len(on))
	for i, sc := range on {
		out[i] = sc.server
	}
	return out
}
