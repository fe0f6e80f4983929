package sim

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
)

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
