package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/distchat/distchat/server"
)

// propTB is what the runner needs of *testing.T and *rapid.T.
type propTB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// propRun is a schedule being run: the simulation and the script of what
// was done to it, in the scenario language.
type propRun struct {
	t          propTB
	sc         *propSchedule
	s          *Sim
	rep        *Report       // the checks at quiescence
	faultStart time.Duration // virtual time the fault phase started
	script     []string
	pending    time.Duration // run not yet written to the script
}

func (r *propRun) say(format string, args ...any) {
	r.flush()
	r.script = append(r.script, fmt.Sprintf(format, args...))
}

func (r *propRun) flush() {
	if r.pending > 0 {
		r.script = append(r.script, "run "+r.pending.String())
		r.pending = 0
	}
}

func (r *propRun) run(d time.Duration) {
	if d <= 0 {
		return
	}
	r.s.Run(d)
	r.pending += d
}

// Script returns the scenario script of everything done so far.
func (r *propRun) Script() string {
	r.flush()
	return strings.Join(r.script, "\n")
}

// fail ends the test, logging the script.
func (r *propRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Logf("schedule (scenario script):\n%s", r.Script())
	r.t.Fatalf(format, args...)
}

func propLinkArgs(l Link) string {
	return fmt.Sprintf("delay=%s drop=%g dup=%g", l.Delay, l.Drop, l.Dup)
}

// runUntil runs in steps of 250ms until cond holds or limit passes.
func (r *propRun) runUntil(limit time.Duration, cond func() bool) bool {
	for waited := time.Duration(0); !cond(); waited += 250 * time.Millisecond {
		if waited >= limit {
			return false
		}
		r.run(250 * time.Millisecond)
	}
	return true
}

// member reports whether user's client knows it is in room.
func (r *propRun) member(user, room string) bool {
	for _, x := range r.s.Rooms(user) {
		if x == room {
			return true
		}
	}
	return false
}

// runSchedule runs sc and leaves the simulation at quiescence, with the
// checkers' report in r.rep; the caller closes r.s. The setup (servers,
// logins, rooms, initial members) happens on a network that delays but
// loses nothing, and must complete; then the fault phase runs the steps;
// then every fault is repaired (partition healed, servers restarted,
// links restored) and the system settles for sc.Settle.
func propRunSchedule(t propTB, sc *propSchedule, trace bool) *propRun {
	t.Helper()
	s, err := New(Config{Seed: sc.Seed, ClockMode: sc.Mode, Delay: sc.Delay, Settled: sc.Settled, Trace: trace})
	if err != nil {
		t.Fatalf("new simulation: %v", err)
	}
	r := &propRun{t: t, sc: sc, s: s}
	ok := false
	defer func() {
		if !ok {
			r.closeAfter(recover())
		}
	}()
	settled := "off"
	if sc.Settled {
		settled = "on"
	}
	r.say("config seed=%d clock=%s delay=%s drop=0 dup=0 settled=%s", sc.Seed, sc.Mode, sc.Delay, settled)
	for _, sv := range sc.Servers {
		if err := s.AddServer(sv.Name, sv.Offset, sv.Drift); err != nil {
			r.fail("server %s: %v", sv.Name, err)
		}
		r.say("server %s skew=%s drift=%g", sv.Name, sv.Offset, sv.Drift)
	}
	// Central places users only on registered servers: give every server
	// time for its registration round trip.
	r.run(2*propMaxDelay(sc.Delay) + 100*time.Millisecond)
	for _, u := range sc.Users {
		if err := s.AddUser(u.Name, u.Home); err != nil {
			r.fail("user %s: %v", u.Name, err)
		}
		r.say("user %s on=%s", u.Name, u.Home)
	}
	const setupLimit = 60 * time.Second
	if !r.runUntil(setupLimit, func() bool {
		for _, u := range sc.Users {
			if s.ServerOf(u.Name) == "" {
				return false
			}
		}
		return true
	}) {
		r.fail("setup on a lossless network: not every user logged in within %v", setupLimit)
	}
	for _, room := range sc.Rooms {
		if err := s.Create(room.Creator, room.Name); err != nil {
			r.fail("create: %v", err)
		}
		r.say("create %s %s", room.Creator, room.Name)
	}
	if !r.runUntil(setupLimit, func() bool {
		for _, room := range sc.Rooms {
			if !r.member(room.Creator, room.Name) {
				return false
			}
		}
		return true
	}) {
		r.fail("setup on a lossless network: rooms not created within %v", setupLimit)
	}
	for _, room := range sc.Rooms {
		for _, m := range room.Members {
			if err := s.Join(m, room.Name); err != nil {
				r.fail("join: %v", err)
			}
			r.say("join %s %s", m, room.Name)
		}
	}
	if !r.runUntil(setupLimit, func() bool {
		for _, room := range sc.Rooms {
			for _, m := range room.Members {
				if !r.member(m, room.Name) {
					return false
				}
			}
		}
		return true
	}) {
		r.fail("setup on a lossless network: initial joins not done within %v", setupLimit)
	}

	// The fault phase.
	lossy := sc.Drop > 0 || sc.Dup > 0
	if lossy {
		r.say("# the fault phase: every link drops %g and duplicates %g of its messages", sc.Drop, sc.Dup)
		l := Link{Delay: sc.Delay, Drop: sc.Drop, Dup: sc.Dup}
		for _, p := range sc.pairs() {
			s.SetLink(p[0], p[1], l)
			r.say("link %s %s %s", p[0], p[1], propLinkArgs(l))
		}
	} else {
		r.say("# the fault phase")
	}
	for _, l := range sc.Links {
		s.SetLink(l.From, l.To, l.Link)
		r.say("link %s %s %s", l.From, l.To, propLinkArgs(l.Link))
	}
	r.faultStart = s.Now()
	for _, st := range sc.Steps {
		r.run(r.faultStart + st.At - s.Now())
		switch st.Kind {
		case "post":
			err = s.Post(st.User, st.Room, st.Text)
			r.say("post %s %s %s", st.User, st.Room, st.Text)
		case "msg":
			err = s.Direct(st.User, st.Peer, st.Text)
			r.say("msg %s %s %s", st.User, st.Peer, st.Text)
		case "join":
			err = s.Join(st.User, st.Room)
			r.say("join %s %s", st.User, st.Room)
		case "partition":
			err = s.Partition(st.Groups[0], st.Groups[1])
			r.say("partition %s | %s", strings.Join(st.Groups[0], ","), strings.Join(st.Groups[1], ","))
		case "heal":
			s.Heal()
			r.say("heal")
		case "crash":
			if s.nodes[st.Node].up {
				err = s.Crash(st.Node)
				r.say("crash %s", st.Node)
			}
		case "restart":
			if !s.nodes[st.Node].up {
				err = s.Restart(st.Node)
				r.say("restart %s", st.Node)
			}
		case "step":
			err = s.StepClock(st.Node, st.D)
			r.say("step %s %s", st.Node, st.D)
		default:
			err = fmt.Errorf("unknown step kind %q", st.Kind)
		}
		if err != nil {
			r.fail("%s at +%v: %v", st.Kind, st.At, err)
		}
	}

	// Repair everything and settle.
	r.run(time.Second)
	r.say("# repair: heal, restart every server, links lose nothing; then settle")
	s.Heal()
	r.say("heal")
	for _, sv := range sc.Servers {
		if !s.nodes[sv.Name].up {
			if err := s.Restart(sv.Name); err != nil {
				r.fail("restart %s: %v", sv.Name, err)
			}
			r.say("restart %s", sv.Name)
		}
	}
	clean := Link{Delay: sc.Delay}
	restored := map[[2]string]bool{}
	restore := func(a, b string) {
		if !restored[[2]string{a, b}] {
			restored[[2]string{a, b}] = true
			s.SetLink(a, b, clean)
			r.say("link %s %s", a, b)
		}
	}
	if lossy {
		for _, p := range sc.pairs() {
			restore(p[0], p[1])
		}
	}
	for _, l := range sc.Links {
		restore(l.From, l.To)
	}
	r.run(sc.Settle)
	r.rep = s.Check()
	ok = true
	return r
}

// closeAfter closes the simulation on the way out of a failed or
// panicking test and passes the panic p (if any) on. After the scheduler's
// watchdog panicked ("sim: a task ran for ...") a task may be stuck holding
// a component's lock, and Close would wait for it forever: then the
// simulation is left as it is.
func (r *propRun) closeAfter(p any) {
	if msg, ok := p.(string); !ok || !strings.HasPrefix(msg, "sim: ") {
		r.s.Close()
	}
	if p != nil {
		panic(p)
	}
}

// close is deferred by the callers of propRunSchedule.
func (r *propRun) close() { r.closeAfter(recover()) }

// requireProps fails the test if the run broke agreement or completeness,
// or causality in hlc mode. With lasting set, it first runs five more
// minutes of virtual time and reports whether the violation lasts, to
// tell a convergence that is merely slow from one that never happens (the
// property test leaves that out: it would slow every step of shrinking).
func (r *propRun) requireProps(lasting bool) {
	r.t.Helper()
	rep := r.rep
	if rep.Agreement.OK && rep.Completeness.OK && (rep.Causality.OK || r.sc.Mode != server.ClockHLC) {
		return
	}
	var detached []string
	for _, u := range r.sc.Users {
		if r.s.ServerOf(u.Name) == "" {
			detached = append(detached, u.Name)
		}
	}
	r.say("check")
	r.t.Logf("schedule (scenario script):\n%s", r.Script())
	r.t.Logf("at the check: users without a chat server: %v; calls in flight: %d", detached, len(r.s.pending))
	if lasting {
		r.s.Run(5 * time.Minute)
		r.t.Logf("five minutes later the checks say:\n%s", r.s.Check().Checks())
	}
	r.t.Fatalf("%s clock, %d servers, %d users, %d rooms, %d steps: %d posts (%d acked), %d errors; the checks after %v of quiescence:\n%s",
		r.sc.Mode, len(r.sc.Servers), len(r.sc.Users), len(r.sc.Rooms), len(r.sc.Steps), rep.Posts, rep.Acked, rep.Errors, r.sc.Settle, rep.Checks())
}
