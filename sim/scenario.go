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
//
// This file holds the language's reference and types; ParseScenario
// (scenario_parse.go) reads a script, each directive's parser
// (scenario_directives.go) checks it and returns what it does, and
// Scenario.Run (scenario_run.go) runs it and prints the outputs.

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/benbjohnson/clock"
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
