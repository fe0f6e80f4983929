package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distchat/distchat/central/centralapi"
)

// This file holds the server's place in the cluster: its registration and
// lease at central, and the list of live servers central reports.

// register (re-)registers with central and records the live servers. It
// presents the sessions attached here, so that after central forgot this
// server (a restart, or an expired lease) it knows where they are again;
// sessions central no longer accepts are detached.
func (s *Server) register(ctx context.Context) error {
	s.mu.Lock()
	atts := s.sortedAttachments()
	failing := s.storageErr != nil
	s.mu.Unlock()
	tokens := make([]string, len(atts))
	for i, a := range atts {
		tokens[i] = a.token
	}
	ctx, cancel := s.clk.WithTimeout(ctx, callTimeout)
	defer cancel()
	rep, err := s.central.RegisterServer(ctx, centralapi.RegisterArgs{
		Name: s.name, Addr: s.cfg.Addr, HTTP: s.cfg.HTTP, Sessions: tokens, StorageFailing: failing,
	})
	if err != nil {
		return fmt.Errorf("register with central: %w", err)
	}
	s.mu.Lock()
	s.renewWait = rep.LeaseTTL / 3
	if s.renewWait <= 0 {
		s.renewWait = time.Second
	}
	s.setLiveLocked(rep.Servers, true)
	s.centralHTTP = rep.CentralHTTP
	s.mu.Unlock()
	ended := make([]string, len(rep.Rejected))
	for i, t := range rep.Rejected {
		ended[i] = centralapi.SessionID(t)
	}
	if len(ended) > 0 {
		s.endSessions(ended, "session no longer valid")
	}
	return nil
}

// renew renews the lease at central, presenting the ids of the attached
// sessions so that central names those that ended; after central forgot us
// (restart or expiry) it registers again and re-presents every attached
// session.
//
// Each attempt waits at most a sixth of the lease (renewals are sent every
// third), and a failed one is retried after a second, so several lost
// renewals in a row fit in one lease.
func (s *Server) renew() {
	s.mu.Lock()
	wait := s.renewWait / 2
	failing := s.storageErr != nil
	s.mu.Unlock()
	ctx, cancel := s.clk.WithTimeout(context.Background(), max(wait, 100*time.Millisecond))
	defer cancel()
	rep, err := s.central.RenewServer(ctx, centralapi.RenewArgs{Name: s.name, StorageFailing: failing, Sessions: s.attachedIDs()})
	switch {
	case err == nil:
		s.mu.Lock()
		s.setLiveLocked(rep.Servers, false)
		wait = s.renewWait
		s.mu.Unlock()
		if len(rep.Ended) > 0 {
			// The backstop: central's push of these was lost or overtaken.
			s.endSessions(rep.Ended, "session ended (learnt at lease renewal)")
		}
	case errors.Is(err, centralapi.ErrUnknownServer):
		s.log.Warn("central forgot this server; registering again")
		if err := s.register(context.Background()); err != nil {
			s.log.Warn("register again", "err", err)
			wait = time.Second
			break
		}
		s.mu.Lock()
		wait = s.renewWait
		s.mu.Unlock()
	default:
		s.log.Warn("renew lease at central", "err", err)
		wait = time.Second
	}
	s.mu.Lock()
	s.after(wait, s.renew)
	s.mu.Unlock()
}

// setLiveLocked records central's list of live servers; when a server
// appears, rooms with local members are caught up from it.
func (s *Server) setLiveLocked(servers []centralapi.ServerInfo, force bool) {
	known := map[string]bool{}
	for _, sv := range s.live {
		known[sv.Name] = true
	}
	newcomer := false
	for _, sv := range servers {
		if sv.Name == s.name {
			continue
		}
		if !known[sv.Name] {
			newcomer = true
		}
		s.settled.learn(sv.Name)
		s.forwarder(sv.Name, sv.Addr)
	}
	changed := newcomer || len(servers) != len(s.live)
	s.live = servers
	if changed || force {
		// Cached memberships name servers as central saw them; with the
		// set of live servers changed (or central having forgotten us),
		// they may be wrong: read them again, now for rooms that matter.
		for _, r := range s.sortedRooms() {
			r.members.invalidate()
			if s.out.has(r.name) || len(s.local[r.name]) > 0 {
				s.refreshSoonLocked(r)
			}
		}
	}
	if newcomer && s.started {
		s.after(0, s.antiEntropy)
	}
}

// livePeers returns the other live servers, sorted by name.
func (s *Server) livePeers() []*forwarder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.livePeersLocked()
}

// livePeersLocked is livePeers for callers holding s.mu.
func (s *Server) livePeersLocked() []*forwarder {
	var out []*forwarder
	for _, sv := range s.live {
		if sv.Name != s.name {
			out = append(out, s.forwarder(sv.Name, sv.Addr))
		}
	}
	return out
}

// CentralHTTP returns the host:port of central's web port, as central
// reported it at the latest registration ("" if it has none, or before
// the server registered): where the server's web port sends a browser to
// log in.
func (s *Server) CentralHTTP() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.centralHTTP
}
