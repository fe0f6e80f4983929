package server

// Settled prefixes.
//
// Every heartbeatEvery each server makes a promise, its watermark W: it
// will never again stamp at or below W. W is the larger of its clock and
// the last time it handed out, and it is made durable before it is sent,
// so a restart keeps the promise. It goes to every live peer on the
// forwarding path (after anything in flight there), with one entry per
// room the server has stamped messages in: W when the peer has
// acknowledged all of them (its cursor reached the room's durable seq,
// taken when W was made), 0 when it has not; and a default entry "" = W
// for every other room, where the server has nothing to send. Own posts
// stamped after W have larger stamps, so they do not break the promise
// while they are in flight.
//
// A server that holds, for a room, a watermark from every chat server it
// knows of — itself included — knows the room is settled up to their
// minimum: no message at or below it can still appear. It tells its
// attached members, in their delivery queues behind every message queued
// before, so a client is told only after it has received what the promise
// covers (clients also ignore the notice while they are syncing the room).
//
// The set of chat servers is every server this one has ever seen (kept on
// disk): a server that is down holds the settled point back until it is
// back, since it may hold messages nobody else has. A server added later
// whose clock is behind the others could stamp below a point already
// settled; settled prefixes therefore assume a fixed set of chat servers,
// as the original system had.

// heartbeat makes and sends this server's watermark.
func (s *Server) heartbeat() {
	s.mu.Lock()
	if s.inflight > 0 {
		// A post is between stamping and durable; try again shortly.
		s.after(heartbeatEvery/10, s.heartbeat)
		s.mu.Unlock()
		return
	}
	w := max(s.stamper.last, s.clk.Now().UnixNano())
	s.stamper.last = w
	durable := map[string]uint64{}
	for _, r := range s.sortedRooms() {
		durable[r.name] = r.ownSeq
		// A room of ours whose membership is stale may have gained a
		// destination (a notification was lost): refreshing it dispatches
		// our messages there, after which our watermark covers it.
		if r.ownSeq > 0 && (!r.infoValid || s.clk.Since(r.infoAt) >= roomInfoTTL) {
			s.refreshSoonLocked(r)
		}
	}
	var known []string
	if s.knownDirty {
		known = sortedKeys(s.known)
		s.knownDirty = false
	}
	s.mu.Unlock()

	// The promise is durable before anyone is told.
	if err := s.commit.submit(&commitReq{last: w, known: known}); err != nil {
		s.log.Warn("store watermark", "err", err)
		s.mu.Lock()
		s.after(heartbeatEvery, s.heartbeat)
		s.mu.Unlock()
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// Our own messages reach our members at commit: our promise covers
	// every room here.
	s.wmDefault[s.name] = max(s.wmDefault[s.name], w)
	for _, f := range s.livePeersLocked() {
		wm := map[string]int64{"": w}
		for _, r := range s.sortedRooms() {
			if durable[r.name] == 0 {
				continue // nothing of ours in this room: the default covers it
			}
			if s.cursors[f.name][r.name] >= durable[r.name] {
				wm[r.name] = w
			} else {
				wm[r.name] = 0 // it lacks some of ours: no promise yet
			}
		}
		f.wm = wm // supersedes any unsent one
		s.kickLocked(f)
	}
	s.recomputeSettledLocked()
	s.after(heartbeatEvery, s.heartbeat)
}

// applyWatermarks records the watermarks a Forward carried: the entry ""
// is the sender's watermark for every room it has no messages in, and
// each other entry its watermark for one room (0: none yet).
func (s *Server) applyWatermarks(from string, wms map[string]int64) {
	if len(wms) == 0 || !validServerName(from) || from == s.name {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known[from] {
		s.known[from] = true
		s.knownDirty = true
	}
	for room, w := range wms {
		if room == "" {
			s.wmDefault[from] = max(s.wmDefault[from], w)
			continue
		}
		if s.wm[room] == nil {
			s.wm[room] = map[string]int64{}
		}
		s.wm[room][from] = max(s.wm[room][from], w)
	}
	s.recomputeSettledLocked()
}

// recomputeSettledLocked tells the members of every room with local
// members whose settled point moved. Callers hold s.mu.
func (s *Server) recomputeSettledLocked() {
	for _, room := range sortedKeysS(s.local) {
		settled, ok := s.settledLocked(room)
		if !ok || settled <= s.settledSent[room] {
			continue
		}
		s.settledSent[room] = settled
		for _, a := range sortedAtts(s.local[room]) {
			a.enqueueSettledLocked(s, room, settled)
		}
	}
}

// settledLocked is the minimum, over every chat server known, of its
// watermark for room; ok is false while some server has promised nothing.
func (s *Server) settledLocked(room string) (settled int64, ok bool) {
	first := true
	for name := range s.known {
		v, explicit := s.wm[room][name]
		if !explicit {
			v = s.wmDefault[name]
		}
		if v == 0 {
			return 0, false
		}
		if first || v < settled {
			settled, first = v, false
		}
	}
	return settled, !first
}

// enqueueSettledLocked queues a settled notice behind every message queued
// so far.
func (a *attachment) enqueueSettledLocked(s *Server, room string, t int64) {
	if a.gone {
		return
	}
	if a.settled == nil {
		a.settled = map[string]int64{}
	}
	a.settled[room] = max(a.settled[room], t)
	a.settledMark = len(a.queue)
	if !a.sending {
		a.sending = true
		s.after(0, func() { s.pump(a) })
	}
}

// takeWatermarks returns the watermarks to send f with its next Forward.
// Callers hold s.mu.
func (f *forwarder) takeWatermarks() map[string]int64 {
	wm := f.wm
	f.wm = nil
	return wm
}

// restoreWatermarks puts back watermarks a failed Forward did not deliver.
// Callers hold s.mu.
func (f *forwarder) restoreWatermarks(wm map[string]int64) {
	for r, w := range wm {
		if f.wm == nil {
			f.wm = map[string]int64{}
		}
		f.wm[r] = max(f.wm[r], w)
	}
}

// Settled returns the settled point this server last told the room's
// members, or 0 (for tests and diagnostics).
func (s *Server) Settled(room string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settledSent[room]
}
