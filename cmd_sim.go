package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/distchat/distchat/server"
	"github.com/distchat/distchat/sim"
	"github.com/distchat/distchat/sim/trace"
)

// errChecksFailed is the sim command's failure: a checker that must hold
// did not. The report has already been printed.
var errChecksFailed = errors.New("checks failed (see the report above)")

// runSim is the "sim" subcommand: a deterministic simulation of the real
// components, with a random workload or a scenario script.
func runSim(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "sim", "[flags]", `Runs the real central, chat server and client code on virtual time and a
simulated network, then checks what the ordering rule promises:
  agreement     every member of a room ends with the identical log
  completeness  every acknowledged post is in every member's log, once
  causality     a post made after its author saw m is ordered after m
                (violated in wall mode when clock skew exceeds the network
                delay: the original's anomaly; kept in hlc mode)
  stability     with settled-prefix tracking on (--settled), that no
                message ever arrives inside a prefix a client was told is
                final; also how often a client showed a message and then
                had an earlier one inserted above it (reorders)

The same seed and flags give the same run, byte for byte. Exit status 1
when agreement or completeness fails, or causality fails in hlc mode.

Examples:
  distchat sim --clock wall --skew 200ms --delay 1ms..5ms --svg anomaly.svg
  distchat sim --clock hlc  --skew 200ms --delay 1ms..5ms
  distchat sim --scenario testdata/skew-anomaly-wall.scenario
  distchat sim --seed 42 --drop 0.05 --posts 500 --trace run.jsonl

Delay syntax: 5ms (constant), 1ms..10ms (uniform), exp(1ms,4ms) (1ms plus
exponential, mean 4ms), tail(1ms..5ms,0.05,100ms..1s) (long-tail
reordering: 5% of messages take 100ms..1s).`, "error")
	seed := f.Uint64("seed", 1, "random seed: every delay, drop, skew and post comes from it")
	servers := f.Int("servers", 3, "chat servers (s1, s2, ...)")
	clients := f.Int("clients", 6, "users, each with a client (u01, u02, ...)")
	rooms := f.Int("rooms", 2, "rooms (r1, r2, ...); each user is in two")
	posts := f.Int("posts", 100, "posts, by random users to random rooms of theirs")
	clockMode := f.String("clock", server.ClockHLC, "stamping clock: wall (the original) or hlc")
	settled := f.Bool("settled", true, "track settled prefixes (servers promise watermarks; the stability checker verifies no settled prefix changes)")
	skew := f.Duration("skew", 0, "largest clock offset between servers (s1 exact, the last ahead by this)")
	drift := f.Float64("drift", 0, "largest clock rate error (1e-4 = 100 ppm fast)")
	delay := f.String("delay", "1ms..10ms", "one-way network delay `DIST`")
	drop := f.Float64("drop", 0, "probability a message is lost")
	dup := f.Float64("dup", 0, "probability a request is delivered twice")
	gap := f.Duration("gap", 20*time.Millisecond, "mean time between posts")
	settle := f.Duration("settle", time.Minute, "time to run after the last post, with faults stopped, before checking")
	scenarioHelp := f.Bool("scenario-help", false, "print the scenario language's reference and exit")
	scenario := f.String("scenario", "", "run the scenario script `FILE` (testdata/*.scenario) instead of a random workload")
	tracePath := f.String("trace", "", "write the event trace, one JSON object per line, to `FILE`")
	shivizPath := f.String("shiviz", "", "write a ShiViz log (vector clocks) to `FILE`")
	svgPath := f.String("svg", "", "write a space-time diagram to `FILE` (SVG; open it in a browser)")
	asJSON := f.Bool("json", false, "print the report as one JSON object")
	dataDir := f.String("data", "", "keep the nodes' data in `DIR` (default: a temporary directory)")
	if err := f.parse(args); err != nil {
		return err
	}
	if *scenarioHelp {
		fmt.Fprint(e.stdout, sim.ScenarioHelp)
		return nil
	}
	log, err := f.logger()
	if err != nil {
		return err
	}
	dist, err := sim.ParseDist(*delay)
	if err != nil {
		return usagef("--delay: %v", err)
	}
	wantTrace := *tracePath != "" || *shivizPath != "" || *svgPath != ""

	var s *sim.Sim
	var rep *sim.Report
	if *scenario != "" {
		file, err := os.Open(*scenario)
		if err != nil {
			return err
		}
		cfg := sim.ScenarioConfig{Dir: *dataDir, Logger: log}
		if f.Changed("seed") {
			cfg.Seed = seed
		}
		if f.Changed("clock") {
			cfg.ClockMode = *clockMode
		}
		if f.Changed("settled") {
			cfg.Settled = settled
		}
		res, err := sim.RunScenario(file, filepath.Base(*scenario), cfg)
		file.Close()
		if err != nil {
			return err
		}
		s, rep = res.Sim, res.Report
		if !*asJSON {
			// The script with what this run printed in place of the
			// expected outputs: a transcript.
			if err := res.Rewrite(e.stdout); err != nil {
				return err
			}
			if n := len(res.Mismatches()); n > 0 {
				fmt.Fprintf(e.stdout, "# %d output(s) differ from the script's expected ones (shown above as this run printed them)\n", n)
			}
			fmt.Fprintln(e.stdout)
		}
	} else {
		if *servers < 1 || *clients < 1 || *rooms < 1 || *posts < 0 {
			return usagef("--servers, --clients and --rooms must be at least 1, --posts at least 0")
		}
		s, err = sim.New(sim.Config{
			Seed: *seed, ClockMode: *clockMode, Delay: dist, Drop: *drop, Dup: *dup,
			Dir: *dataDir, Trace: wantTrace, Logger: log, Settled: *settled,
		})
		if err != nil {
			return usagef("%v", err)
		}
		rep, err = s.RunWorkload(sim.Workload{
			Servers: *servers, Clients: *clients, Rooms: *rooms, Posts: *posts,
			Skew: *skew, Drift: *drift, Gap: *gap, Settle: *settle,
		})
		if err != nil {
			s.Close()
			return err
		}
	}
	defer s.Close()

	if err := writeOutputs(s, rep, *tracePath, *shivizPath, *svgPath); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(e.stdout, rep.Summary())
		for _, out := range [][2]string{{*tracePath, "trace"}, {*shivizPath, "ShiViz log (paste into https://bestchai.bitbucket.io/shiviz/)"}, {*svgPath, "space-time diagram"}} {
			if out[0] != "" {
				fmt.Fprintf(e.stdout, "wrote %s to %s\n", out[1], out[0])
			}
		}
	}
	if rep.Failed() {
		return errChecksFailed
	}
	return nil
}

// writeOutputs writes the files the flags asked for.
func writeOutputs(s *sim.Sim, rep *sim.Report, tracePath, shivizPath, svgPath string) error {
	write := func(path string, fn func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		return f.Close()
	}
	events := s.Trace()
	if err := write(tracePath, func(w io.Writer) error { return trace.WriteJSON(w, events) }); err != nil {
		return err
	}
	if err := write(shivizPath, func(w io.Writer) error { return trace.WriteShiViz(w, events) }); err != nil {
		return err
	}
	return write(svgPath, func(w io.Writer) error {
		opt := trace.SVGOptions{Title: fmt.Sprintf("distchat sim: seed %d, %s clocks", rep.Seed, rep.ClockMode)}
		if !rep.Causality.OK {
			opt.Highlight = rep.Causality.Pair
		}
		return trace.WriteSVG(w, events, s.Nodes(), opt)
	})
}
