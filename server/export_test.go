package server

import (
	"maps"
	"slices"
)

// This file lets the external tests (package server_test, which run on
// servertest) see and turn the few internals they measure or need at their
// edges. Being a _test.go file of package server, it is compiled only into
// the package's own tests: none of this is part of the server's API.

// MaxFuture is how far ahead of now a client's Seen stamp can move the
// server's clock.
const MaxFuture = maxFuture

// DefaultDeliverBatch and DefaultForwardBatch are the messages per Deliver
// callback and per Forward call.
const (
	DefaultDeliverBatch = defaultDeliverBatch
	DefaultForwardBatch = defaultForwardBatch
)

// SetMaxQueue sets how many deliveries a client may have queued before it
// must resync.
func (s *Server) SetMaxQueue(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxQueue = n
}

// SetDeliverBatch sets the messages per Deliver callback.
func (s *Server) SetDeliverBatch(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliverBatch = n
}

// SetForwardBatch sets the messages per Forward call.
func (s *Server) SetForwardBatch(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.batch = n
}

// Commits returns how many group commits the server has written.
func (s *Server) Commits() int64 { return s.commit.commits.Load() }

// RoomEntries returns how many rooms the server keeps state for.
func (s *Server) RoomEntries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// KnownServers returns the chat servers the settled point waits for
// (every server ever seen, self included), sorted.
func (s *Server) KnownServers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.settled.known))
}
