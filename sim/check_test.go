package sim

import (
	"slices"
	"strings"
	"testing"

	"github.com/distchat/distchat/server/chatapi"
)

// The checkers catch what they are for: with one member's log missing an
// acknowledged post and another's holding it twice, agreement fails for
// both, and completeness counts the post in each member's own log (the
// members whose log is the first member's share its counts).
func TestCheckersFindMissingAndDuplicatedPosts(t *testing.T) {
	s, err := New(Config{Seed: 3, Settled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := s.RunWorkload(Workload{Clients: 6, Rooms: 1, Posts: 30})
	if err != nil || rep.Failed() {
		t.Fatalf("the run itself failed: %v\n%s", err, rep.Summary())
	}
	members := s.roomMembers()
	var room string
	for r, ns := range members {
		if len(ns) >= 4 {
			room = r
		}
	}
	if room == "" {
		t.Fatalf("no room with 4 members: %v", members)
	}
	ns := members[room]
	logs := logCache{}
	ref := logs.get(ns[0], room)
	if len(ref) < 2 {
		t.Fatalf("room %s has %d messages", room, len(ref))
	}
	m := ref[0]
	logs.get(ns[1], room)
	logs.get(ns[2], room)
	logs[ns[1]][room] = slices.Clone(ref[1:])                              // m missing
	logs[ns[2]][room] = append([]chatapi.Message{m}, slices.Clone(ref)...) // m twice
	agreement, same := s.checkAgreement(members, logs)
	if agreement.OK || agreement.Violations != 2 {
		t.Errorf("agreement: %+v, want 2 violations", agreement)
	}
	res := s.checkCompleteness(members, logs, same)
	if res.OK || res.Violations != 2 {
		t.Errorf("completeness: %+v, want 2 violations", res)
	}
	if !strings.Contains(res.Counterexample, m.ID) || !strings.Contains(res.Counterexample, ns[1].name) {
		t.Errorf("completeness counterexample %q does not name %s missing from %s", res.Counterexample, m.ID, ns[1].name)
	}
	if res.Checked < len(ref)*len(ns) {
		t.Errorf("completeness checked %d post-member pairs, want at least %d", res.Checked, len(ref)*len(ns))
	}
}
