package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/sim/trace"
)

// Event is one line of the trace: what happened, where and when. The
// simulator records events; package trace documents their kinds and
// writes them out (as JSON lines, a ShiViz log or an SVG diagram).
type Event = trace.Event

func (s *Sim) record(e Event) {
	if !s.cfg.Trace {
		return
	}
	e.T = s.Now()
	s.trace = append(s.trace, e)
}

// Trace returns the recorded events (Config.Trace must be set).
func (s *Sim) Trace() []Event { return s.trace }

// Nodes lists the simulated processes: central, then the chat servers and
// the users in the order they were added.
func (s *Sim) Nodes() []string {
	out := []string{s.central.name}
	for _, n := range s.servers {
		out = append(out, n.name)
	}
	for _, n := range s.clients {
		out = append(out, n.name)
	}
	return out
}

// Log returns user's view of room: the messages in the order the client
// shows them.
func (s *Sim) Log(user, room string) []chatapi.Message {
	n := s.nodes[user]
	if n == nil || n.cl == nil {
		return nil
	}
	return n.cl.View(room)
}

// Rooms returns the rooms user belongs to, as its client knows them.
func (s *Sim) Rooms(user string) []string {
	n := s.nodes[user]
	if n == nil || n.cl == nil {
		return nil
	}
	return n.cl.Rooms()
}

// ServerOf returns the chat server a user is connected to now.
func (s *Sim) ServerOf(user string) string {
	n := s.nodes[user]
	if n == nil || n.cl == nil {
		return ""
	}
	return n.cl.Server()
}

// Result is one checker's verdict.
type Result struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Checked counts what was checked (room logs, posts, pairs).
	Checked int `json:"checked"`
	// Violations counts failures; Counterexample describes the first.
	Violations     int    `json:"violations"`
	Counterexample string `json:"counterexample,omitempty"`
	// Pair is the causality counterexample: the message the author had
	// seen, and the reply ordered before it.
	Pair []chatapi.Message `json:"pair,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Seed         uint64        `json:"seed"`
	ClockMode    string        `json:"clock"`
	Servers      int           `json:"servers"`
	Clients      int           `json:"clients"`
	Rooms        int           `json:"rooms"`
	Posts        int           `json:"posts"`
	Acked        int           `json:"acked"`
	Deliveries   int           `json:"deliveries"`
	Events       int64         `json:"events"`
	Errors       int           `json:"errors"`
	Crashes      int           `json:"crashes"`
	Reorders     int           `json:"reorders"`
	Virtual      time.Duration `json:"virtual_ns"`
	Wall         time.Duration `json:"wall_ns"`
	Agreement    Result        `json:"agreement"`
	Completeness Result        `json:"completeness"`
	Causality    Result        `json:"causality"`
	// Stability checks settled prefixes: Checked counts the times a
	// client's settled point moved, Violations the messages that arrived
	// inside a settled prefix (there must be none).
	Stability Result `json:"stability"`
	// Settled counts the messages of the final logs inside their room's
	// settled prefix, out of Logged.
	Settled int `json:"settled"`
	Logged  int `json:"logged"`
}

// Failed reports whether the run failed: agreement or completeness broke,
// or causality broke in hlc mode. A causality violation in wall mode is
// the original system's documented behaviour, reported but not a failure.
func (r *Report) Failed() bool {
	return !r.Agreement.OK || !r.Completeness.OK || (!r.Causality.OK && r.ClockMode == server.ClockHLC)
}

// Check inspects the clients' room logs now (call it at quiescence) and
// returns the report.
func (s *Sim) Check() *Report {
	r := &Report{
		Seed: s.cfg.Seed, ClockMode: s.cfg.ClockMode, Servers: len(s.servers), Clients: len(s.clients),
		Events: s.sched.events, Errors: s.obs.errors, Crashes: s.obs.crashes, Deliveries: s.obs.deliveries,
		Virtual: s.Now(), Wall: s.cfg.Wall.Since(s.wallStart),
	}
	members := s.roomMembers()
	r.Rooms = len(members)
	logs := newRoomLogs()
	var same map[*node]map[string]bool
	r.Agreement, same = s.checkAgreement(members, logs)
	r.Completeness = s.checkCompleteness(members, logs, same)
	r.Causality = s.checkCausality()
	for _, p := range s.obs.posts {
		r.Posts++
		if p.acked {
			r.Acked++
		}
	}
	r.Stability = Result{Name: "stability", OK: true}
	for _, n := range s.clients {
		if n.cl == nil {
			continue
		}
		for _, room := range n.cl.Rooms() {
			st, ok := n.cl.ViewStats(room)
			if !ok {
				continue
			}
			r.Reorders += st.Reordered
			r.Stability.Checked += st.Settles
			r.Stability.Violations += st.SettledViolations
			if v, bad := n.cl.FirstSettledViolation(room); bad && r.Stability.Counterexample == "" {
				r.Stability.Counterexample = fmt.Sprintf("%s's view of %s was settled up to %s when %s arrived inside it",
					n.name, room, time.Unix(0, v.Settled).UTC().Format("15:04:05.000000000"), describe(v.Message))
			}
			sum := logs.sum(n, room)
			r.Logged += sum.n
			r.Settled += sum.settled
		}
	}
	r.Stability.OK = r.Stability.Violations == 0
	return r
}

// roomMembers asks central (directly: it is the oracle, not a
// participant) who is in each room the clients know, sorted.
func (s *Sim) roomMembers() map[string][]*node {
	rooms := map[string]bool{}
	for _, p := range s.obs.posts {
		if p.room != "" {
			rooms[p.room] = true
		}
	}
	for _, n := range s.clients {
		for r := range n.joined {
			rooms[r] = true
		}
	}
	out := map[string][]*node{}
	for _, room := range slices.Sorted(maps.Keys(rooms)) {
		info, err := s.central.cen.Room(context.Background(), centralapi.RoomQuery{Room: room})
		if err != nil {
			continue
		}
		for _, m := range info.Members {
			if n := s.nodes[m.User]; n != nil && n.cl != nil {
				out[room] = append(out[room], n)
			}
		}
	}
	return out
}

func describe(m chatapi.Message) string {
	return fmt.Sprintf("%s %q by %s (stamp %s)", m.ID, m.Text, m.From, m.Stamp)
}

// logSum is what a Check learns of one client's log of one room in a
// single pass over it, without copying it: its length, a digest of its
// messages in order, and how many lie inside the room's settled prefix.
type logSum struct {
	n, settled int
	digest     uint64
}

// roomLogs is how the checkers read the clients' room logs. Each log is
// read in place, once, into its logSum. Two logs with the same length and
// digest are taken as the same log: the digest is a 64-bit maphash of
// every field the agreement check compares, so two different logs share
// one with odds of 2^-64. Only a counterexample copies logs.
type roomLogs struct {
	// each calls fn with each message of n's log of room, in order.
	each func(n *node, room string, fn func(chatapi.Message))
	seed maphash.Seed
	sums map[*node]map[string]logSum
}

// newRoomLogs reads the clients' views.
func newRoomLogs() *roomLogs {
	return &roomLogs{
		each: func(n *node, room string, fn func(chatapi.Message)) { n.cl.Each(room, fn) },
		seed: maphash.MakeSeed(), sums: map[*node]map[string]logSum{},
	}
}

// sum returns the summary of n's log of room.
func (l *roomLogs) sum(n *node, room string) logSum {
	if l.sums[n] == nil {
		l.sums[n] = map[string]logSum{}
	}
	if sum, ok := l.sums[n][room]; ok {
		return sum
	}
	var sum logSum
	var h maphash.Hash
	h.SetSeed(l.seed)
	settled := n.cl.Settled(room)
	l.each(n, room, func(m chatapi.Message) {
		sum.n++
		if m.Stamp.Time <= settled {
			sum.settled++
		}
		// Every field, each string after its length, so that no two
		// different messages write the same bytes.
		var b [8]byte
		for _, n := range []uint64{uint64(m.Stamp.Time), m.Stamp.Seq, uint64(len(m.Stamp.Server)), uint64(len(m.ID)), uint64(len(m.From)), uint64(len(m.Text))} {
			binary.LittleEndian.PutUint64(b[:], n)
			h.Write(b[:])
		}
		for _, s := range []string{m.Stamp.Server, m.ID, m.From, m.Text} {
			h.WriteString(s)
		}
	})
	sum.digest = h.Sum64()
	l.sums[n][room] = sum
	return sum
}

// list returns a copy of n's log of room.
func (l *roomLogs) list(n *node, room string) []chatapi.Message {
	var out []chatapi.Message
	l.each(n, room, func(m chatapi.Message) { out = append(out, m) })
	return out
}

// checkAgreement: every member of a room holds the identical log. It
// also returns, by member and room, whose log is identical to the room's
// first member's.
func (s *Sim) checkAgreement(members map[string][]*node, logs *roomLogs) (Result, map[*node]map[string]bool) {
	res := Result{Name: "agreement", OK: true}
	same := map[*node]map[string]bool{}
	for _, room := range slices.Sorted(maps.Keys(members)) {
		ns := members[room]
		if len(ns) == 0 {
			continue
		}
		ref := logs.sum(ns[0], room)
		for _, n := range ns[1:] {
			res.Checked++
			got := logs.sum(n, room)
			ok := got.n == ref.n && got.digest == ref.digest
			if same[n] == nil {
				same[n] = map[string]bool{}
			}
			same[n][room] = ok
			if !ok {
				res.OK = false
				res.Violations++
				if res.Counterexample == "" {
					// Only now are the two logs copied, to say where
					// they part.
					a, b := logs.list(ns[0], room), logs.list(n, room)
					i, _ := firstDiff(a, b)
					res.Counterexample = fmt.Sprintf("room %s: %s and %s differ at position %d: %s has %s, %s has %s (logs of %d and %d messages)",
						room, ns[0].name, n.name, i, ns[0].name, at(a, i), n.name, at(b, i), len(a), len(b))
				}
			}
		}
	}
	return res, same
}

func at(ms []chatapi.Message, i int) string {
	if i >= len(ms) {
		return "nothing (log ends)"
	}
	return describe(ms[i])
}

func firstDiff(a, b []chatapi.Message) (int, bool) {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i].Stamp != b[i].Stamp || a[i].ID != b[i].ID || a[i].From != b[i].From || a[i].Text != b[i].Text {
			return i, false
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b)), false
	}
	return 0, true
}

// postKey names a post: its sender and ID.
type postKey struct{ from, id string }

// checkCompleteness: every acknowledged post is in every member's log of
// its room exactly once. The members whose log is the room's first
// member's (same, from checkAgreement) share its counts.
func (s *Sim) checkCompleteness(members map[string][]*node, logs *roomLogs, same map[*node]map[string]bool) Result {
	res := Result{Name: "completeness", OK: true}
	type logOf struct {
		n    *node
		room string
	}
	counts := map[logOf]map[postKey]int{} // built lazily
	countOf := func(n *node, room string, key postKey) int {
		if ns := members[room]; n != ns[0] && same[n][room] {
			n = ns[0]
		}
		k := logOf{n, room}
		if counts[k] == nil {
			c := map[postKey]int{}
			logs.each(n, room, func(m chatapi.Message) { c[postKey{m.From, m.ID}]++ })
			counts[k] = c
		}
		return counts[k][key]
	}
	for _, p := range s.obs.posts {
		if !p.acked {
			continue
		}
		key := postKey{p.msg.From, p.msg.ID}
		for _, n := range members[p.msg.Room] {
			res.Checked++
			if c := countOf(n, p.msg.Room, key); c != 1 {
				res.OK = false
				res.Violations++
				if res.Counterexample == "" {
					res.Counterexample = fmt.Sprintf("acknowledged post %s in room %s appears %d times in %s's log", describe(p.msg), p.msg.Room, c, n.name)
				}
			}
		}
	}
	return res
}

// checkCausality: a post is ordered after the latest message its author
// had seen in the room.
func (s *Sim) checkCausality() Result {
	res := Result{Name: "causality", OK: true}
	for _, p := range s.obs.posts {
		if !p.acked || !p.hasSeen {
			continue
		}
		res.Checked++
		if p.msg.Stamp.Less(p.seen.Stamp) {
			res.OK = false
			res.Violations++
			if res.Counterexample == "" {
				res.Counterexample = fmt.Sprintf("%s saw %s, then posted %s, which is ordered before it: %s's clock was behind %s's by more than the network delay",
					p.user, describe(p.seen), describe(p.msg), p.msg.Stamp.Server, p.seen.Stamp.Server)
				res.Pair = []chatapi.Message{p.seen, p.msg}
			}
		}
	}
	return res
}

// Summary formats the report as a table for people.
func (r *Report) Summary() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "  %-14s %s\n", k, v) }
	fmt.Fprintf(&b, "distchat simulation: seed %d, clock %s, %d servers, %d clients, %d rooms\n", r.Seed, r.ClockMode, r.Servers, r.Clients, r.Rooms)
	row("posts", fmt.Sprintf("%d (%d acknowledged)", r.Posts, r.Acked))
	row("deliveries", fmt.Sprint(r.Deliveries))
	row("events", fmt.Sprint(r.Events))
	row("reorders", fmt.Sprintf("%d (a message shown, then an earlier one inserted above it)", r.Reorders))
	row("settled", fmt.Sprintf("%d of %d logged messages are in their room's settled prefix", r.Settled, r.Logged))
	row("crashes", fmt.Sprint(r.Crashes))
	row("errors", fmt.Sprintf("%d (failed client operations: timeouts, refusals)", r.Errors))
	row("virtual time", r.Virtual.String())
	row("wall time", r.Wall.Round(time.Millisecond).String())
	b.WriteString("checks:\n")
	b.WriteString(r.Checks())
	return b.String()
}

// Checks formats the checkers' verdicts, one per line with the first
// counterexample under a failed one. Unlike Summary it holds nothing that
// varies between runs of the same seed (no wall time), so scenario
// goldens can compare it.
func (r *Report) Checks() string {
	var b strings.Builder
	for _, c := range []Result{r.Agreement, r.Completeness, r.Causality, r.Stability} {
		verdict := "ok"
		if !c.OK {
			verdict = fmt.Sprintf("VIOLATED (%d of %d)", c.Violations, c.Checked)
			if c.Name == "causality" && r.ClockMode == server.ClockWall {
				verdict += " — expected in wall mode with skew above the network delay"
			}
		}
		fmt.Fprintf(&b, "  %-14s %s (%d checked)\n", c.Name, verdict, c.Checked)
		if c.Counterexample != "" {
			fmt.Fprintf(&b, "    first counterexample: %s\n", c.Counterexample)
		}
	}
	return b.String()
}
