package server

import (
	"context"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// Storage failure and recovery.
//
// A write to the data file can fail: the disk is full, or failing. The
// committer then refuses every write (commit.go), so nothing is
// acknowledged that is not durable, and until a write works again the
// server:
//
//   - refuses posts, attachments and pings with chatapi.ErrStorage, so
//     that clients go elsewhere (the client library fails over on it);
//   - tells each attached client to move (an EventMove delivery), and
//     central (StorageFailing, at once and in every lease renewal), which
//     places no one here;
//   - probes the disk with a write of its own (store.probe), first after
//     probeFirst, then twice as long after each failed probe, up to
//     probeMax.
//
// When a probe succeeds, writes resume without a restart, and central is
// told. Posts stamped before the failure were refused and never stored, so
// each room's stamp counter is set back from the data file, as Open does:
// this server's seqs in a room stay gap-free.

// The probes' back-off.
const (
	probeFirst = 100 * time.Millisecond // the first probe after a failure
	probeMax   = 10 * time.Second       // the longest wait between probes
)

// storageFailed is the committer's failed hook: a write failed while
// storage was healthy. It runs before the write's callers hear of it, so
// that what they do next already finds the server failing. Central is
// told by a task of its own: the committer must not wait on a remote call
// (the failed batch's posts would wait for their refusal, and probes for
// the committer, as long as central is slow). A client that moves away
// names this server to central as failed, so it need not wait either.
func (s *Server) storageFailed(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.storageErr = err
	s.probeWait = probeFirst
	s.after(s.probeWait, s.probeStorage)
	for _, a := range s.sortedAttachments() {
		a.enqueueEventsLocked(s, []chatapi.Event{{Kind: chatapi.EventMove}})
	}
	s.log.Error("storage failing: refusing posts and moving clients away until a write succeeds",
		"err", err, "clients", len(s.atts))
	s.after(0, s.reportStorage)
	s.mu.Unlock()
}

// probeStorage tries a write. If it works, storage is healthy again;
// otherwise the next probe waits twice as long.
func (s *Server) probeStorage() {
	err := s.st.probe()
	var ls *loadedState
	if err == nil {
		ls, err = s.st.load(s.name)
	}
	s.mu.Lock()
	resumed := err == nil && s.resumeStorageLocked(ls)
	if !resumed {
		s.probeWait = min(2*s.probeWait, probeMax)
		s.after(s.probeWait, s.probeStorage)
		s.log.Debug("storage still failing", "err", err, "next_probe", s.probeWait)
	}
	s.mu.Unlock()
	if resumed {
		s.log.Info("storage works again: accepting posts")
		s.reportStorage()
	}
}

// resumeStorageLocked lets writes through again, with each room's
// counters read back from the data file (ls), and reports whether it did
// (see committer.resumeLocked). Nothing else writes while storage is
// failing, so ls is what the file holds. Callers hold s.mu.
func (s *Server) resumeStorageLocked(ls *loadedState) bool {
	s.commit.mu.Lock()
	defer s.commit.mu.Unlock()
	if !s.commit.resumeLocked() {
		return false
	}
	for _, r := range s.sortedRooms() {
		var own uint64
		if rd := ls.rooms[r.name]; rd != nil {
			own = rd.ownSeq
		}
		r.stampSeq = own
		if own > r.heads[s.name] {
			// A write reported failed reached the file after all (its
			// fsync failed, say): its posts are stored, so they are
			// owed to the room's other servers.
			r.heads[s.name] = own
			s.out.stored(r.name, own)
			if s.started {
				s.dispatchLocked(r)
			}
		}
	}
	s.storageErr = nil
	return true
}

// storageCheck returns chatapi.ErrStorage while storage is failing.
func (s *Server) storageCheck() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.storageErr != nil {
		return chatapi.ErrStorage
	}
	return nil
}

// reportStorage tells central whether storage is failing. Every lease
// renewal tells it too, so a report that is lost, or overtaken by an
// older one, is made good by the next renewal.
func (s *Server) reportStorage() {
	s.mu.Lock()
	failing := s.storageErr != nil
	s.mu.Unlock()
	ctx, cancel := s.clk.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := s.central.RenewServer(ctx, centralapi.RenewArgs{Name: s.name, StorageFailing: failing}); err != nil {
		s.log.Warn("tell central about storage", "failing", failing, "err", err)
	}
}

// StorageErr returns the write error that made storage fail, or nil while
// storage is healthy (for tests and diagnostics).
func (s *Server) StorageErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storageErr
}
