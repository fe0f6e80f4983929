package server

import (
	"maps"
	"slices"
)

// The settled-prefix protocol's moving parts (the protocol and its core
// are in settled.go): the heartbeat makes and sends this server's
// watermark, Forward's watermarks are recorded, and members are told when
// a room's settled point advances.

// heartbeat makes this server's watermark durable and sends it to every
// live peer.
func (s *Server) heartbeat() {
	s.mu.Lock()
	if s.inflight > 0 {
		// A post is between stamping and durable; try again shortly.
		s.after(heartbeatEvery/10, s.heartbeat)
		s.mu.Unlock()
		return
	}
	w := s.stamper.promise(s.clk.Now().UnixNano())
	durable := s.out.durableSeqs()
	for _, r := range s.sortedRooms() {
		// A room of ours whose membership is stale may have gained a
		// destination (a notification was lost): refreshing it dispatches
		// our messages there, after which our watermark covers it.
		if s.out.has(r.name) && !r.members.fresh(s.clk.Now()) {
			s.refreshSoonLocked(r)
		}
	}
	known := s.settled.takeKnown()
	s.mu.Unlock()

	// The promise is durable before anyone is told.
	if err := s.commit.submit(&commitReq{last: w, known: known}); err != nil {
		s.log.Warn("store watermark", "err", err)
		s.mu.Lock()
		if known != nil {
			s.settled.unsavedKnown()
		}
		s.after(heartbeatEvery, s.heartbeat)
		s.mu.Unlock()
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.settled.promise(w)
	for _, f := range s.livePeersLocked() {
		s.out.promise(f.name, w, durable)
		s.kickLocked(f)
	}
	s.notifySettledLocked()
	s.after(heartbeatEvery, s.heartbeat)
}

// applyWatermarks records the watermarks a Forward from another server
// carried.
func (s *Server) applyWatermarks(from string, wms map[string]int64) {
	if !validServerName(from) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settled.receive(from, wms) {
		s.notifySettledLocked()
	}
}

// notifySettledLocked tells the local members of every room whose settled
// point moved, in their delivery queues. Callers hold s.mu.
func (s *Server) notifySettledLocked() {
	for _, n := range s.settled.advance(slices.Sorted(maps.Keys(s.local))) {
		for _, a := range s.localMembersLocked(n.room) {
			a.enqueueSettledLocked(s, n.room, n.at)
		}
	}
}

// Settled returns the settled point this server last told the room's
// members, or 0 (for tests and diagnostics).
func (s *Server) Settled(room string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settled.told[room]
}
