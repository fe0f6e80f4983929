package sim

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/sim/trace"
)

// scenarioRun is the state of one run of a scenario.
type scenarioRun struct {
	sim     *Sim
	servers map[string]bool
	users   map[string]bool
}

// Run executes the scenario in a new simulation. On success the caller
// must Close the result's Sim; on error it has been closed.
func (sc *Scenario) Run(cfg ScenarioConfig) (*ScenarioResult, error) {
	simCfg := sc.cfg
	if cfg.Seed != nil {
		simCfg.Seed = *cfg.Seed
	}
	if cfg.ClockMode != "" {
		simCfg.ClockMode = cfg.ClockMode
	}
	if cfg.Settled != nil {
		simCfg.Settled = *cfg.Settled
	}
	simCfg.Dir, simCfg.Logger, simCfg.Wall = cfg.Dir, cfg.Logger, cfg.Wall
	simCfg.Trace = true
	s, err := New(simCfg)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	r := &scenarioRun{sim: s, servers: map[string]bool{}, users: map[string]bool{}}
	res := &ScenarioResult{Scenario: sc, Sim: s}
	for _, d := range sc.Directives {
		out, err := d.exec(r)
		if err != nil {
			s.Close()
			return nil, &ScenarioError{File: sc.Name, Line: d.Line, Err: err}
		}
		if d.Output {
			if !strings.HasSuffix(out, "\n") {
				out += "\n"
			}
			res.Outputs = append(res.Outputs, ScenarioOutput{Directive: d, Got: out})
		}
	}
	res.Report = s.Check()
	return res, nil
}

func (r *scenarioRun) newName(name string) error {
	if r.sim.nodes[name] != nil {
		return fmt.Errorf("name %q is taken", name)
	}
	return nil
}

func (r *scenarioRun) needUser(name string) error {
	if !r.users[name] {
		return fmt.Errorf("no user %q (declare it with: user %s on=SERVER)", name, name)
	}
	return nil
}

func (r *scenarioRun) needNode(name string) error {
	if r.sim.nodes[name] == nil {
		return fmt.Errorf("no node %q", name)
	}
	return nil
}

// roomName resolves "@PEER" to user's direct room with PEER.
func (r *scenarioRun) roomName(user, room string) string {
	if peer, ok := strings.CutPrefix(room, "@"); ok {
		return centralapi.DirectRoomName(user, peer)
	}
	return room
}

// sinceEpoch formats a stamp time (UnixNano) relative to trace.Epoch, with a
// sign and nanoseconds, e.g. +1.200345678s.
func sinceEpoch(ns int64) string { return signedSeconds(time.Duration(ns - trace.Epoch.UnixNano())) }

// signedSeconds formats d as +S.NNNNNNNNNs.
func signedSeconds(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%d.%09ds", sign, d/time.Second, d%time.Second)
}

// postedAt maps (author, message id) to the virtual time the author
// posted it, for acknowledged posts.
func (r *scenarioRun) postedAt() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range r.sim.obs.posts {
		if p.acked {
			out[p.msg.From+"\x00"+p.msg.ID] = p.at
		}
	}
	return out
}

// table formats rows as aligned columns (two spaces apart).
func table(rows [][]string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	return b.String()
}

func (r *scenarioRun) logOutput(user, room string) string {
	if r.sim.nodes[user].cl == nil {
		return user + " is not logged in\n"
	}
	msgs := r.sim.Log(user, room)
	if len(msgs) == 0 {
		return "(no messages)\n"
	}
	posted := r.postedAt()
	rows := [][]string{{"pos", "stamp", "server", "seq", "posted", "from", "text"}}
	for i, m := range msgs {
		at := "?"
		if t, ok := posted[m.From+"\x00"+m.ID]; ok {
			at = signedSeconds(t)
		}
		rows = append(rows, []string{strconv.Itoa(i + 1), sinceEpoch(m.Stamp.Time), m.Stamp.Server,
			strconv.FormatUint(m.Stamp.Seq, 10), at, m.From, m.Text})
	}
	return table(rows)
}

func (r *scenarioRun) postsOutput() string {
	if len(r.sim.obs.posts) == 0 {
		return "(no posts)\n"
	}
	rows := [][]string{{"posted", "user", "room", "text", "outcome"}}
	for _, p := range r.sim.obs.posts {
		room, outcome := p.room, "pending"
		if room == "" {
			room = "-"
		}
		switch {
		case p.acked:
			outcome = fmt.Sprintf("acked: stamp %s by %s seq %d", sinceEpoch(p.msg.Stamp.Time), p.msg.Stamp.Server, p.msg.Stamp.Seq)
		case p.err != "":
			outcome = "failed: " + p.err
		}
		rows = append(rows, []string{signedSeconds(p.at), p.user, room, p.text, outcome})
	}
	return table(rows)
}

func (r *scenarioRun) errorsOutput() string {
	var rows [][]string
	for _, e := range r.sim.trace {
		if e.Kind == "error" {
			rows = append(rows, []string{signedSeconds(e.T), e.Node, e.Text})
		}
	}
	if len(rows) == 0 {
		return "(no errors)\n"
	}
	return table(rows)
}
