package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/distchat/distchat/server/chatapi"
)

// The checkers catch what they are for: with one member's log missing an
// acknowledged post, another's holding it twice and a third's with one
// text changed, agreement fails for the three, and completeness counts
// the post in each member's own log (the members whose log is the first
// member's share its counts).
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
	logs := newRoomLogs()
	ref := logs.list(ns[0], room)
	if len(ref) < 2 {
		t.Fatalf("room %s has %d messages", room, len(ref))
	}
	m := ref[0]
	tampered := map[*node][]chatapi.Message{
		ns[1]: slices.Clone(ref[1:]),                              // m missing
		ns[2]: append([]chatapi.Message{m}, slices.Clone(ref)...), // m twice
		ns[3]: slices.Clone(ref),                                  // one text differs
	}
	tampered[ns[3]][len(ref)-1].Text += "!"
	read := logs.each
	logs.each = func(n *node, r string, fn func(chatapi.Message)) {
		if ms, ok := tampered[n]; ok && r == room {
			for _, m := range ms {
				fn(m)
			}
			return
		}
		read(n, r, fn)
	}
	agreement, same := s.checkAgreement(members, logs)
	if agreement.OK || agreement.Violations != 3 {
		t.Errorf("agreement: %+v, want 3 violations", agreement)
	}
	want := fmt.Sprintf("%s and %s differ at position 0", ns[0].name, ns[1].name)
	if !strings.Contains(agreement.Counterexample, want) {
		t.Errorf("agreement counterexample %q, want it to say %q", agreement.Counterexample, want)
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
