package server

import (
	"cmp"
	"slices"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// roomMembers is the membership cache core of one room: who the members
// are and which servers they are on, as central last said, and whether
// that can still be trusted. It is a plain value with no lock, no I/O and
// no clock: the server passes the time in, and fetches from central when
// the cache says it must (rooms.go).
//
// The rules: membership is fresh for roomInfoTTL after it was fetched; a
// RoomChanged from another server (or any other reason to doubt it)
// invalidates it at once; and a fetch that started before an invalidation
// is not installed, since it may predate the change (gen).
type roomMembers struct {
	room  string              // the room's name
	info  centralapi.RoomInfo // as central last said (kept after invalidation)
	valid bool                // info was installed since the last invalidation
	at    time.Time           // when info was installed
	gen   uint64              // bumped by each invalidation
}

// memberChange is what installing new membership changed.
type memberChange struct {
	// events tell who joined and who left, ordered by user. Joins are
	// reported only against a non-empty earlier membership; with none
	// (the room's first fetch here), every member would look new.
	events []chatapi.Event
	// left holds the users who are no longer members.
	left map[string]bool
}

// fresh reports whether the cached membership can be used at now without
// asking central.
func (m *roomMembers) fresh(now time.Time) bool {
	return m.valid && now.Sub(m.at) < roomInfoTTL
}

// invalidate forgets that the membership is current: the next use
// refreshes it, and a fetch already under way is not installed.
func (m *roomMembers) invalidate() {
	m.gen++
	m.valid = false
}

// install records info, fetched at now by a fetch that started at
// generation gen, and reports what changed. ok is false, and nothing is
// installed, when an invalidation came after the fetch started.
func (m *roomMembers) install(gen uint64, info centralapi.RoomInfo, now time.Time) (ch memberChange, ok bool) {
	if gen != m.gen {
		return memberChange{}, false
	}
	// Compare with the last membership installed, even if it was
	// invalidated since: every join and leave invalidates the room before
	// the fetch that reflects it, and that fetch is what must tell the
	// other members.
	old := map[string]bool{}
	for _, u := range m.info.Members {
		old[u.User] = true
	}
	m.info, m.valid, m.at = info, true, now
	current := map[string]bool{}
	for _, u := range info.Members {
		current[u.User] = true
		if len(old) > 0 && !old[u.User] {
			ch.events = append(ch.events, chatapi.Event{Kind: chatapi.EventJoined, Room: m.room, User: u.User})
		}
	}
	ch.left = map[string]bool{}
	for u := range old {
		if !current[u] {
			ch.left[u] = true
			ch.events = append(ch.events, chatapi.Event{Kind: chatapi.EventLeft, Room: m.room, User: u})
		}
	}
	slices.SortFunc(ch.events, func(a, b chatapi.Event) int { return cmp.Compare(a.User, b.User) })
	return ch, true
}

// destinations returns the servers other than self that members are on:
// where this server's own messages of the room must go.
func (m *roomMembers) destinations(self string) []centralapi.ServerInfo {
	var out []centralapi.ServerInfo
	for _, sv := range m.info.Servers {
		if sv.Name != self {
			out = append(out, sv)
		}
	}
	return out
}
