package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/distchat/distchat/server/chatapi"
)

// The checkers catch what they are for: with one member's log missing an
// acknowledged post, another's holding it twice, and six more each with
// one field of one message changed, agreement fails for all eight (the
// digest covers every field), and completeness counts each post in each
// member's own log (the members whose log is the first member's share its
// counts).
func TestCheckersFindMissingAndDuplicatedPosts(t *testing.T) {
	s, err := New(Config{Seed: 3, Settled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := s.RunWorkload(Workload{Clients: 9, Rooms: 1, Posts: 30})
	if err != nil || rep.Failed() {
		t.Fatalf("the run itself failed: %v\n%s", err, rep.Summary())
	}
	members := s.roomMembers()
	var room string
	for r, ns := range members {
		if len(ns) >= 9 {
			room = r
		}
	}
	if room == "" {
		t.Fatalf("no room with 9 members: %v", members)
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
	}
	// And logs of the same posts, in the same order, with one field of
	// one message changed, each in another member's log.
	// (A string keeps its length: its bytes must count, not only that.)
	flip := func(s string) string { return s[:len(s)-1] + string(s[len(s)-1]^1) }
	change := []func(*chatapi.Message){
		func(m *chatapi.Message) { m.Text = flip(m.Text) },
		func(m *chatapi.Message) { m.ID = flip(m.ID) },
		func(m *chatapi.Message) { m.From = flip(m.From) },
		func(m *chatapi.Message) { m.Stamp.Time++ },
		func(m *chatapi.Message) { m.Stamp.Server = flip(m.Stamp.Server) },
		func(m *chatapi.Message) { m.Stamp.Seq++ },
	}
	if len(ns) < 3+len(change) {
		t.Fatalf("room %s has %d members, want %d", room, len(ns), 3+len(change))
	}
	for i, f := range change {
		ms := slices.Clone(ref)
		f(&ms[len(ms)-1])
		tampered[ns[3+i]] = ms
	}
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
	if want := 2 + len(change); agreement.OK || agreement.Violations != want {
		t.Errorf("agreement: %+v, want %d violations", agreement, want)
	}
	want := fmt.Sprintf("%s and %s differ at position 0", ns[0].name, ns[1].name)
	if !strings.Contains(agreement.Counterexample, want) {
		t.Errorf("agreement counterexample %q, want it to say %q", agreement.Counterexample, want)
	}
	res := s.checkCompleteness(members, logs, same)
	// m missing, m twice, and the last post missing where its ID or its
	// sender was changed.
	if res.OK || res.Violations != 4 {
		t.Errorf("completeness: %+v, want 4 violations", res)
	}
	if !strings.Contains(res.Counterexample, m.ID) || !strings.Contains(res.Counterexample, ns[1].name) {
		t.Errorf("completeness counterexample %q does not name %s missing from %s", res.Counterexample, m.ID, ns[1].name)
	}
	if res.Checked < len(ref)*len(ns) {
		t.Errorf("completeness checked %d post-member pairs, want at least %d", res.Checked, len(ref)*len(ns))
	}
}
