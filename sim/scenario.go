package sim

// Scenarios: readable scripts of a simulation with golden outputs, in the
// style of cockroachdb/datadriven. ScenarioHelp below is the reference of
// the language; this comment is its summary.
//
// A scenario file is a sequence of directives, one per line. Blank lines
// and lines starting with # are ignored. A directive that produces output
// (log, check, posts, errors, where, rooms, who) is followed by a line
// "----" and the expected output, ended by a blank line or the end of the
// file; an output that itself holds blank lines is enclosed in doubled
// separators instead (two "----" lines before it, two after). For example:
//
//	log bob lobby
//	----
//	pos  stamp          server  seq  posted         from   text
//	1    +1.002153310s  s1      1    +1.002000000s  bob    hi
//
// Directives:
//
//	config seed=N clock=wall|hlc delay=DIST drop=P dup=P settled=on|off   (first, if present)
//	server NAME [skew=DUR] [drift=RATE]
//	user NAME [on=SERVER]
//	create USER ROOM | join USER ROOM | leave USER ROOM
//	post USER ROOM TEXT...       msg USER PEER TEXT...
//	run DUR
//	partition A,B | C,D          heal
//	crash SERVER                 restart SERVER
//	step NODE DUR                link FROM TO [delay=DIST] [drop=P] [dup=P]
//	log USER ROOM   check   posts   errors   where USER   rooms USER   who ROOM
//
// Actions take effect at the current virtual time; only run advances it.
// RunScenario executes a script and returns each output directive's
// actual output; ScenarioResult.Rewrite writes the script back with those
// outputs in place of the expected ones (go test ./sim -update).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/sim/trace"
)

// ScenarioHelp is the reference of the scenario language, for people: the
// command's help can print it.
const ScenarioHelp = `Scenario files (testdata/*.scenario) script a simulation and hold its
expected outputs, in the style of cockroachdb/datadriven.

One directive per line; blank lines and lines starting with # are ignored.
A directive that produces output is followed by a line "----" and the
expected output, ended by a blank line (or the end of the file). An output
holding blank lines is enclosed in doubled separators instead: two "----"
lines before it and two after. "go test ./sim -update" rewrites the
expected outputs with the actual ones. Actions happen at the current
virtual time; only "run" advances it. Users and servers must be declared
before they are used; names of nodes are unique (central is taken).

Setup
  config seed=N clock=wall|hlc delay=DIST drop=P dup=P settled=on|off
        Must be the first directive if present; every key is optional.
        Defaults: seed=1 clock=hlc delay=1ms..10ms drop=0 dup=0 settled=on.
        settled=on: servers track settled prefixes (a watermark promise
        every second, which also floors later stamps), and the stability
        checker verifies no settled prefix changes; off: the original's
        plain clocks.
        DIST is 5ms (constant), 1ms..5ms (uniform), exp(1ms,4ms) (1ms plus
        exponential with mean 4ms) or tail(1ms..5ms,0.05,100ms..1s) (long-tail
        reordering). P is a probability in [0,1).
  server NAME [skew=DUR] [drift=RATE]
        Start a chat server whose clock is DUR ahead of virtual time (negative:
        behind) and runs fast by RATE (1e-4 = 100 ppm). Names: a-z 0-9 -.
  user NAME [on=SERVER]
        Sign NAME up and log in; central places the user on SERVER while it is
        live (without on=, on the least-loaded server).

Users act (each action runs in the user's client, as a task, from now)
  create USER ROOM        create ROOM (USER becomes its first member)
  join USER ROOM          join ROOM (the client fetches its history)
  leave USER ROOM         leave ROOM
  post USER ROOM TEXT...  post the rest of the line to ROOM
  msg USER PEER TEXT...   send TEXT in the direct (1:1) room of USER and PEER

Time and faults
  run DUR                 advance virtual time by DUR, running everything due
  partition A,B | C,D     split the network: nodes of different groups cannot
                          talk; nodes not named (central too!) form one more
                          group, so name central in the group that keeps it
  heal                    end the partition
  crash SERVER            stop SERVER abruptly (its disk survives)
  restart SERVER          start SERVER again from its disk
  step NODE DUR           jump NODE's clock by DUR (negative: backwards)
  link FROM TO [delay=DIST] [drop=P] [dup=P]
                          set the one-way link FROM->TO; keys not given take
                          the config's defaults (so "link a b" restores it)

Outputs (compared with the expected block)
  log USER ROOM   USER's view of ROOM, in display order: position, stamp time
                  (relative to the start of the run, by the stamping server's
                  clock), stamping server, its seq, virtual time the author
                  posted, author, text. ROOM "@PEER" is USER's direct room
                  with PEER.
  check           the checkers: agreement, completeness, causality
  posts           every post so far: when, who, where, text, and its outcome
                  (acked with its stamp, failed with the error, or pending)
  errors          every failed user operation so far, with its time
  where USER      the chat server USER is connected to (or that it is not)
  rooms USER      the rooms USER's client belongs to
  who ROOM        central's view of ROOM: its members and their servers
`

// ScenarioError is a problem at a line of a scenario: a directive that does
// not parse, or an action the simulation refused.
type ScenarioError struct {
	File string // the name given to ParseScenario or RunScenario
	Line int    // 1-based
	Err  error
}

// Error formats the error as file:line: problem.
func (e *ScenarioError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

// Unwrap returns the underlying error.
func (e *ScenarioError) Unwrap() error { return e.Err }

// Directive is one directive of a scenario.
type Directive struct {
	// Line is the directive's 1-based line number.
	Line int
	// Text is the directive line as written, without surrounding space.
	Text string
	// Cmd is the directive's name (the first word); Args the other words.
	Cmd  string
	Args []string
	// Output reports whether the directive produces output.
	Output bool
	// Expected is the expected output (each line ending in a newline), if
	// the file has a "----" block for the directive (HasExpected).
	Expected    string
	HasExpected bool

	end  int                                  // 0-based index of the first line after the directive and its block
	exec func(r *scenarioRun) (string, error) // runs the directive
}

// Scenario is a parsed scenario file: a script of a simulation (servers,
// users, their actions, faults, and the passing of virtual time) with the
// expected output of each output directive. ScenarioHelp describes the
// language.
type Scenario struct {
	// Name identifies the file in errors.
	Name       string
	Directives []*Directive

	lines []string // the file, for Rewrite
	cfg   Config   // from the config directive, with defaults
}

// ScenarioConfig sets how RunScenario runs a script. Zero values keep
// what the script says.
type ScenarioConfig struct {
	// Seed, when not nil, replaces the script's seed.
	Seed *uint64
	// ClockMode, when not empty, replaces the script's clock mode, so the
	// same script can be run both ways.
	ClockMode string
	// Settled, when not nil, replaces the script's settled setting.
	Settled *bool
	// Dir holds the nodes' data; empty means a temporary directory.
	Dir string
	// Logger receives the components' logs; nil discards them.
	Logger *slog.Logger
	// Wall is real time (see Config.Wall); nil means clock.New().
	Wall clock.Clock
}

// ScenarioOutput is the actual output of one output directive.
type ScenarioOutput struct {
	Directive *Directive
	// Got is the output, each line ending in a newline.
	Got string
}

// Match reports whether the output is the expected one.
func (o ScenarioOutput) Match() bool {
	return o.Directive.HasExpected && o.Got == o.Directive.Expected
}

// ScenarioResult is what running a scenario produced.
type ScenarioResult struct {
	Scenario *Scenario
	// Outputs holds one entry per output directive, in file order.
	Outputs []ScenarioOutput
	// Sim is the simulation as the script left it, with its full trace
	// (for the trace, ShiViz and SVG outputs). The caller must Close it.
	Sim *Sim
	// Report is the checkers' report at the end of the script.
	Report *Report
}

// Mismatches returns the outputs that differ from the expected ones (or
// have no expected block).
func (r *ScenarioResult) Mismatches() []ScenarioOutput {
	var out []ScenarioOutput
	for _, o := range r.Outputs {
		if !o.Match() {
			out = append(out, o)
		}
	}
	return out
}

// Rewrite writes the scenario file with each output directive's block
// replaced by (or, if missing, given) its actual output. Everything else —
// comments, blank lines, directives — is copied as it was.
func (r *ScenarioResult) Rewrite(w io.Writer) error {
	bw := bufio.NewWriter(w)
	lines := r.Scenario.lines
	i := 0
	for _, o := range r.Outputs {
		d := o.Directive
		for ; i < d.Line; i++ {
			bw.WriteString(lines[i] + "\n")
		}
		bw.WriteString(formatBlock(o.Got))
		i = d.end
		if i < len(lines) && strings.TrimSpace(lines[i]) != "" {
			bw.WriteString("\n")
		}
	}
	for ; i < len(lines); i++ {
		bw.WriteString(lines[i] + "\n")
	}
	return bw.Flush()
}

// formatBlock formats an output as a block: "----" and the output, or the
// doubled separators when the output holds a blank line.
func formatBlock(out string) string {
	if hasBlankLine(out) {
		return "----\n----\n" + out + "----\n----\n"
	}
	return "----\n" + out
}

// hasBlankLine reports whether an output holds an empty or all-space line.
func hasBlankLine(out string) bool {
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if strings.TrimSpace(l) == "" {
			return true
		}
	}
	return false
}

// RunScenario parses a scenario from r (name identifies it in errors) and
// runs it. On success the caller must Close the result's Sim. A directive
// that does not parse or an action the simulation refuses is reported as a
// *ScenarioError with its line; mismatching outputs are not errors (see
// ScenarioResult.Mismatches).
func RunScenario(r io.Reader, name string, cfg ScenarioConfig) (*ScenarioResult, error) {
	sc, err := ParseScenario(r, name)
	if err != nil {
		return nil, err
	}
	return sc.Run(cfg)
}

// ParseScenario reads a scenario; name identifies it in errors. Every
// directive is checked here (names of commands and keys, numbers,
// durations, distributions), so a script with a typo fails before it runs.
func ParseScenario(r io.Reader, name string) (*Scenario, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read scenario %s: %w", name, err)
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	lines := strings.Split(text, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	sc := &Scenario{Name: name, lines: lines, cfg: defaultScenarioConfig()}
	fail := func(line int, format string, args ...any) error {
		return &ScenarioError{File: name, Line: line, Err: fmt.Errorf(format, args...)}
	}
	for i := 0; i < len(lines); {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			i++
			continue
		}
		if line == "----" {
			return nil, fail(i+1, "output block without a directive before it")
		}
		fields := strings.Fields(line)
		d := &Directive{Line: i + 1, Text: line, Cmd: fields[0], Args: fields[1:]}
		spec, ok := directiveSpecs[d.Cmd]
		if !ok {
			return nil, fail(d.Line, "unknown directive %q (directives: %s)", d.Cmd, strings.Join(directiveNames(), ", "))
		}
		d.Output = spec.output
		if d.Cmd == "config" {
			if len(sc.Directives) > 0 {
				return nil, fail(d.Line, "config must be the first directive")
			}
			if err := parseConfig(d.Args, &sc.cfg); err != nil {
				return nil, fail(d.Line, "%v", err)
			}
			d.exec = func(*scenarioRun) (string, error) { return "", nil }
		} else {
			if len(d.Args) < spec.min || (spec.max >= 0 && len(d.Args) > spec.max) {
				return nil, fail(d.Line, "%s: wrong number of arguments (want %q)", d.Cmd, spec.usage)
			}
			if d.exec, err = spec.parse(d); err != nil {
				return nil, fail(d.Line, "%s: %v (want %q)", d.Cmd, err, spec.usage)
			}
		}
		i++
		d.end = i
		if i < len(lines) && strings.TrimSpace(lines[i]) == "----" {
			if !d.Output {
				return nil, fail(i+1, "%s produces no output, so it takes no ---- block", d.Cmd)
			}
			var body []string
			if i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "----" {
				// Doubled separators: the block ends at "----" "----".
				j := i + 2
				for ; j+1 < len(lines); j++ {
					if strings.TrimSpace(lines[j]) == "----" && strings.TrimSpace(lines[j+1]) == "----" {
						break
					}
				}
				if j+1 >= len(lines) {
					return nil, fail(i+1, "output block opened with ----/---- is not closed with ----/----")
				}
				body = lines[i+2 : j]
				i = j + 2
			} else {
				j := i + 1
				for ; j < len(lines) && strings.TrimSpace(lines[j]) != ""; j++ {
				}
				body = lines[i+1 : j]
				i = j
			}
			d.HasExpected = true
			for _, l := range body {
				d.Expected += l + "\n"
			}
			d.end = i
			if i < len(lines) && strings.TrimSpace(lines[i]) != "" {
				return nil, fail(i+1, "want a blank line after the output block")
			}
		}
		sc.Directives = append(sc.Directives, d)
	}
	return sc, nil
}

func defaultScenarioConfig() Config {
	return Config{Seed: 1, ClockMode: server.ClockHLC, Delay: Uniform{time.Millisecond, 10 * time.Millisecond}, Settled: true}
}

// parseConfig reads the config directive's keys into cfg.
func parseConfig(args []string, cfg *Config) error {
	kv, err := keyValues(args, "seed", "clock", "delay", "drop", "dup", "settled")
	if err != nil {
		return err
	}
	if v, ok := kv["seed"]; ok {
		if cfg.Seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			return fmt.Errorf("seed=%s: want a non-negative integer", v)
		}
	}
	if v, ok := kv["clock"]; ok {
		if v != server.ClockWall && v != server.ClockHLC {
			return fmt.Errorf("clock=%s: want wall or hlc", v)
		}
		cfg.ClockMode = v
	}
	if v, ok := kv["delay"]; ok {
		if cfg.Delay, err = ParseDist(v); err != nil {
			return err
		}
	}
	if v, ok := kv["drop"]; ok {
		if cfg.Drop, err = parseProb("drop", v); err != nil {
			return err
		}
	}
	if v, ok := kv["dup"]; ok {
		if cfg.Dup, err = parseProb("dup", v); err != nil {
			return err
		}
	}
	if v, ok := kv["settled"]; ok {
		switch v {
		case "on":
			cfg.Settled = true
		case "off":
			cfg.Settled = false
		default:
			return fmt.Errorf("settled=%s: want on or off", v)
		}
	}
	return nil
}

func parseProb(key, v string) (float64, error) {
	p, err := strconv.ParseFloat(v, 64)
	if err != nil || p < 0 || p >= 1 {
		return 0, fmt.Errorf("%s=%s: want a probability in [0,1)", key, v)
	}
	return p, nil
}

// keyValues reads key=value arguments, allowing only the given keys, each
// at most once.
func keyValues(args []string, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q: want key=value (keys: %s)", a, strings.Join(allowed, ", "))
		}
		known := false
		for _, x := range allowed {
			known = known || x == k
		}
		if !known {
			return nil, fmt.Errorf("unknown key %q (keys: %s)", k, strings.Join(allowed, ", "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("key %q given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// restAfter returns line after its first n words, with inner spacing kept
// (tabs become spaces, so they cannot upset the output's columns).
func restAfter(line string, n int) string {
	s := strings.TrimSpace(line)
	for i := 0; i < n; i++ {
		j := strings.IndexAny(s, " \t")
		if j < 0 {
			return ""
		}
		s = strings.TrimLeft(s[j:], " \t")
	}
	return strings.ReplaceAll(s, "\t", " ")
}

// serverNameRE is what a chat server accepts as its name.
var serverNameRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// noOutput is what an action directive returns.
const noOutput = ""

// directiveSpec describes a directive: its usage, its number of
// positional words (max -1: any), whether it produces output, and how to
// parse it into an executor.
type directiveSpec struct {
	usage    string
	min, max int
	output   bool
	parse    func(d *Directive) (func(r *scenarioRun) (string, error), error)
}

var directiveSpecs = map[string]directiveSpec{
	"config":    {usage: "config seed=N clock=wall|hlc delay=DIST drop=P dup=P", max: -1},
	"server":    {usage: "server NAME [skew=DUR] [drift=RATE]", min: 1, max: 3, parse: parseServer},
	"user":      {usage: "user NAME [on=SERVER]", min: 1, max: 2, parse: parseUser},
	"create":    {usage: "create USER ROOM", min: 2, max: 2, parse: parseRoomAction},
	"join":      {usage: "join USER ROOM", min: 2, max: 2, parse: parseRoomAction},
	"leave":     {usage: "leave USER ROOM", min: 2, max: 2, parse: parseRoomAction},
	"post":      {usage: "post USER ROOM TEXT...", min: 3, max: -1, parse: parsePost},
	"msg":       {usage: "msg USER PEER TEXT...", min: 3, max: -1, parse: parsePost},
	"run":       {usage: "run DUR", min: 1, max: 1, parse: parseRun},
	"partition": {usage: "partition A,B | C,D", min: 1, max: -1, parse: parsePartition},
	"heal":      {usage: "heal", parse: parseHeal},
	"crash":     {usage: "crash SERVER", min: 1, max: 1, parse: parseCrash},
	"restart":   {usage: "restart SERVER", min: 1, max: 1, parse: parseCrash},
	"step":      {usage: "step NODE DUR", min: 2, max: 2, parse: parseStep},
	"link":      {usage: "link FROM TO [delay=DIST] [drop=P] [dup=P]", min: 2, max: 5, parse: parseLink},
	"log":       {usage: "log USER ROOM", min: 2, max: 2, output: true, parse: parseLog},
	"check":     {usage: "check", output: true, parse: parseCheck},
	"posts":     {usage: "posts", output: true, parse: parsePosts},
	"errors":    {usage: "errors", output: true, parse: parseErrors},
	"where":     {usage: "where USER", min: 1, max: 1, output: true, parse: parseWhere},
	"rooms":     {usage: "rooms USER", min: 1, max: 1, output: true, parse: parseRooms},
	"who":       {usage: "who ROOM", min: 1, max: 1, output: true, parse: parseWho},
}

// directiveNames lists the directives in the order ScenarioHelp gives.
func directiveNames() []string {
	return []string{"config", "server", "user", "create", "join", "leave", "post", "msg", "run",
		"partition", "heal", "crash", "restart", "step", "link",
		"log", "check", "posts", "errors", "where", "rooms", "who"}
}

func parseServer(d *Directive) (func(*scenarioRun) (string, error), error) {
	name := d.Args[0]
	if !serverNameRE.MatchString(name) || name == "central" {
		return nil, fmt.Errorf("server name %q: want 1-32 of a-z 0-9 -, not \"central\"", name)
	}
	kv, err := keyValues(d.Args[1:], "skew", "drift")
	if err != nil {
		return nil, err
	}
	var skew time.Duration
	var drift float64
	if v, ok := kv["skew"]; ok {
		if skew, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("skew=%s: want a duration such as 200ms or -1s", v)
		}
	}
	if v, ok := kv["drift"]; ok {
		if drift, err = strconv.ParseFloat(v, 64); err != nil || drift <= -1 || drift >= 1 {
			return nil, fmt.Errorf("drift=%s: want a rate such as 1e-4 (100 ppm fast) or -5e-5", v)
		}
	}
	return func(r *scenarioRun) (string, error) {
		if err := r.newName(name); err != nil {
			return "", err
		}
		r.servers[name] = true
		return noOutput, r.sim.AddServer(name, skew, drift)
	}, nil
}

func parseUser(d *Directive) (func(*scenarioRun) (string, error), error) {
	name := d.Args[0]
	if !central.ValidUserName(name) || name == "central" {
		return nil, fmt.Errorf("user name %q: want 1-32 of a-z 0-9 _ . -, starting with a letter or digit, not \"central\"", name)
	}
	kv, err := keyValues(d.Args[1:], "on")
	if err != nil {
		return nil, err
	}
	home := kv["on"]
	return func(r *scenarioRun) (string, error) {
		if err := r.newName(name); err != nil {
			return "", err
		}
		if home != "" && !r.servers[home] {
			return "", fmt.Errorf("user %s on=%s: no such server", name, home)
		}
		r.users[name] = true
		return noOutput, r.sim.AddUser(name, home)
	}, nil
}

func parseRoomAction(d *Directive) (func(*scenarioRun) (string, error), error) {
	user, room := d.Args[0], d.Args[1]
	act := map[string]func(*Sim, string, string) error{"create": (*Sim).Create, "join": (*Sim).Join, "leave": (*Sim).Leave}[d.Cmd]
	return func(r *scenarioRun) (string, error) {
		if err := r.needUser(user); err != nil {
			return "", err
		}
		return noOutput, act(r.sim, user, r.roomName(user, room))
	}, nil
}

func parsePost(d *Directive) (func(*scenarioRun) (string, error), error) {
	user, to, text := d.Args[0], d.Args[1], restAfter(d.Text, 3)
	direct := d.Cmd == "msg"
	return func(r *scenarioRun) (string, error) {
		if err := r.needUser(user); err != nil {
			return "", err
		}
		if direct {
			if err := r.needUser(to); err != nil {
				return "", err
			}
			return noOutput, r.sim.Direct(user, to, text)
		}
		return noOutput, r.sim.Post(user, r.roomName(user, to), text)
	}, nil
}

func parseRun(d *Directive) (func(*scenarioRun) (string, error), error) {
	dur, err := time.ParseDuration(d.Args[0])
	if err != nil || dur <= 0 {
		return nil, fmt.Errorf("%q: want a positive duration such as 500ms or 30s", d.Args[0])
	}
	return func(r *scenarioRun) (string, error) {
		r.sim.Run(dur)
		return noOutput, nil
	}, nil
}

func parsePartition(d *Directive) (func(*scenarioRun) (string, error), error) {
	var groups [][]string
	seen := map[string]bool{}
	for _, g := range strings.Split(restAfter(d.Text, 1), "|") {
		var names []string
		for _, n := range strings.Split(g, ",") {
			n = strings.TrimSpace(n)
			if n == "" || strings.ContainsAny(n, " \t") {
				return nil, fmt.Errorf("group %q: want node names separated by commas", strings.TrimSpace(g))
			}
			if seen[n] {
				return nil, fmt.Errorf("node %q is in two groups", n)
			}
			seen[n] = true
			names = append(names, n)
		}
		groups = append(groups, names)
	}
	return func(r *scenarioRun) (string, error) {
		return noOutput, r.sim.Partition(groups...)
	}, nil
}

func parseHeal(*Directive) (func(*scenarioRun) (string, error), error) {
	return func(r *scenarioRun) (string, error) {
		r.sim.Heal()
		return noOutput, nil
	}, nil
}

func parseCrash(d *Directive) (func(*scenarioRun) (string, error), error) {
	name, crash := d.Args[0], d.Cmd == "crash"
	return func(r *scenarioRun) (string, error) {
		if crash {
			return noOutput, r.sim.Crash(name)
		}
		return noOutput, r.sim.Restart(name)
	}, nil
}

func parseStep(d *Directive) (func(*scenarioRun) (string, error), error) {
	name := d.Args[0]
	dur, err := time.ParseDuration(d.Args[1])
	if err != nil {
		return nil, fmt.Errorf("%q: want a duration such as 300ms or -1s", d.Args[1])
	}
	return func(r *scenarioRun) (string, error) {
		return noOutput, r.sim.StepClock(name, dur)
	}, nil
}

func parseLink(d *Directive) (func(*scenarioRun) (string, error), error) {
	from, to := d.Args[0], d.Args[1]
	kv, err := keyValues(d.Args[2:], "delay", "drop", "dup")
	if err != nil {
		return nil, err
	}
	var delay Dist
	var drop, dup *float64
	if v, ok := kv["delay"]; ok {
		if delay, err = ParseDist(v); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{"drop", "dup"} {
		if v, ok := kv[k]; ok {
			p, err := strconv.ParseFloat(v, 64)
			if err != nil || p < 0 || p > 1 {
				return nil, fmt.Errorf("%s=%s: want a probability in [0,1]", k, v)
			}
			if k == "drop" {
				drop = &p
			} else {
				dup = &p
			}
		}
	}
	return func(r *scenarioRun) (string, error) {
		for _, n := range []string{from, to} {
			if err := r.needNode(n); err != nil {
				return "", err
			}
		}
		l := Link{Delay: r.sim.cfg.Delay, Drop: r.sim.cfg.Drop, Dup: r.sim.cfg.Dup}
		if delay != nil {
			l.Delay = delay
		}
		if drop != nil {
			l.Drop = *drop
		}
		if dup != nil {
			l.Dup = *dup
		}
		r.sim.SetLink(from, to, l)
		return noOutput, nil
	}, nil
}

func parseLog(d *Directive) (func(*scenarioRun) (string, error), error) {
	user, room := d.Args[0], d.Args[1]
	return func(r *scenarioRun) (string, error) {
		if err := r.needUser(user); err != nil {
			return "", err
		}
		return r.logOutput(user, r.roomName(user, room)), nil
	}, nil
}

func parseCheck(*Directive) (func(*scenarioRun) (string, error), error) {
	return func(r *scenarioRun) (string, error) { return r.sim.Check().Checks(), nil }, nil
}

func parsePosts(*Directive) (func(*scenarioRun) (string, error), error) {
	return func(r *scenarioRun) (string, error) { return r.postsOutput(), nil }, nil
}

func parseErrors(*Directive) (func(*scenarioRun) (string, error), error) {
	return func(r *scenarioRun) (string, error) { return r.errorsOutput(), nil }, nil
}

func parseWhere(d *Directive) (func(*scenarioRun) (string, error), error) {
	user := d.Args[0]
	return func(r *scenarioRun) (string, error) {
		if err := r.needUser(user); err != nil {
			return "", err
		}
		if r.sim.nodes[user].cl == nil {
			return user + " is not logged in\n", nil
		}
		if srv := r.sim.ServerOf(user); srv != "" {
			return srv + "\n", nil
		}
		return "(not connected to a chat server)\n", nil
	}, nil
}

func parseRooms(d *Directive) (func(*scenarioRun) (string, error), error) {
	user := d.Args[0]
	return func(r *scenarioRun) (string, error) {
		if err := r.needUser(user); err != nil {
			return "", err
		}
		if r.sim.nodes[user].cl == nil {
			return user + " is not logged in\n", nil
		}
		rooms := r.sim.Rooms(user)
		if len(rooms) == 0 {
			return "(no rooms)\n", nil
		}
		return strings.Join(rooms, "\n") + "\n", nil
	}, nil
}

func parseWho(d *Directive) (func(*scenarioRun) (string, error), error) {
	room := d.Args[0]
	return func(r *scenarioRun) (string, error) {
		info, err := r.sim.central.cen.Room(context.Background(), centralapi.RoomQuery{Room: room})
		if err != nil {
			return fmt.Sprintf("central: %v\n", err), nil
		}
		var b strings.Builder
		for _, m := range info.Members {
			on := "not attached"
			if len(m.Servers) > 0 {
				on = "on " + strings.Join(m.Servers, ", ")
			}
			fmt.Fprintf(&b, "%s (%s)\n", m.User, on)
		}
		if b.Len() == 0 {
			return "(no members)\n", nil
		}
		return b.String(), nil
	}, nil
}

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
