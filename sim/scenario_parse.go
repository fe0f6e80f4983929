package sim

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/distchat/distchat/server"
)

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
