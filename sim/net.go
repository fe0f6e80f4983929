package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/distchat/distchat/rmi"
)

// Dist is a distribution of network delays.
type Dist interface {
	// Sample draws one delay.
	Sample(r *rand.Rand) time.Duration
	// String describes the distribution in the syntax ParseDist reads.
	String() string
}

// Constant is a fixed delay.
type Constant time.Duration

// Sample implements Dist.
func (c Constant) Sample(*rand.Rand) time.Duration { return time.Duration(c) }
func (c Constant) String() string                  { return time.Duration(c).String() }

// Uniform is a delay drawn uniformly from [Min, Max].
type Uniform struct{ Min, Max time.Duration }

// Sample implements Dist.
func (u Uniform) Sample(r *rand.Rand) time.Duration {
	if u.Max <= u.Min {
		return u.Min
	}
	return u.Min + time.Duration(r.Int64N(int64(u.Max-u.Min)+1))
}
func (u Uniform) String() string { return u.Min.String() + ".." + u.Max.String() }

// Exponential is Min plus an exponentially distributed delay with the
// given mean.
type Exponential struct{ Min, Mean time.Duration }

// Sample implements Dist.
func (e Exponential) Sample(r *rand.Rand) time.Duration {
	return e.Min + time.Duration(r.ExpFloat64()*float64(e.Mean))
}
func (e Exponential) String() string { return "exp(" + e.Min.String() + "," + e.Mean.String() + ")" }

// LongTail is Base, except that with probability P the delay is drawn
// from Tail instead — the "long reordering" of MIT 6.824's labrpc, where a
// few messages arrive far later than their successors.
type LongTail struct {
	Base Dist
	P    float64
	Tail Dist
}

// Sample implements Dist.
func (l LongTail) Sample(r *rand.Rand) time.Duration {
	if r.Float64() < l.P {
		return l.Tail.Sample(r)
	}
	return l.Base.Sample(r)
}
func (l LongTail) String() string {
	return fmt.Sprintf("tail(%s,%g,%s)", l.Base, l.P, l.Tail)
}

// ParseDist reads a delay distribution: "5ms" (constant), "1ms..10ms"
// (uniform), "exp(1ms,4ms)" (1ms plus exponential with mean 4ms), or
// "tail(1ms..5ms,0.05,100ms..1s)" (long-tail reordering).
func ParseDist(s string) (Dist, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "exp(") && strings.HasSuffix(s, ")"):
		parts := strings.Split(s[4:len(s)-1], ",")
		if len(parts) != 2 {
			return nil, fmt.Errorf("delay %q: want exp(MIN,MEAN)", s)
		}
		min, err1 := time.ParseDuration(strings.TrimSpace(parts[0]))
		mean, err2 := time.ParseDuration(strings.TrimSpace(parts[1]))
		if err1 != nil || err2 != nil || min < 0 || mean < 0 {
			return nil, fmt.Errorf("delay %q: want exp(MIN,MEAN) with durations", s)
		}
		return Exponential{min, mean}, nil
	case strings.HasPrefix(s, "tail(") && strings.HasSuffix(s, ")"):
		inner := s[5 : len(s)-1]
		i, j := strings.Index(inner, ","), strings.LastIndex(inner, ",")
		if i < 0 || i == j {
			return nil, fmt.Errorf("delay %q: want tail(BASE,P,TAIL)", s)
		}
		base, err := ParseDist(inner[:i])
		if err != nil {
			return nil, err
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(inner[i+1:j]), 64)
		if err != nil || p < 0 || p > 1 {
			return nil, fmt.Errorf("delay %q: probability must be in [0,1]", s)
		}
		tail, err := ParseDist(inner[j+1:])
		if err != nil {
			return nil, err
		}
		return LongTail{base, p, tail}, nil
	case strings.Contains(s, ".."):
		parts := strings.SplitN(s, "..", 2)
		min, err1 := time.ParseDuration(strings.TrimSpace(parts[0]))
		max, err2 := time.ParseDuration(strings.TrimSpace(parts[1]))
		if err1 != nil || err2 != nil || min < 0 || max < min {
			return nil, fmt.Errorf("delay %q: want MIN..MAX with MIN <= MAX", s)
		}
		return Uniform{min, max}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return nil, fmt.Errorf("delay %q: want a duration, MIN..MAX, exp(MIN,MEAN) or tail(BASE,P,TAIL)", s)
	}
	return Constant(d), nil
}

// Link is how the network treats messages between two nodes.
type Link struct {
	Delay Dist
	Drop  float64 // probability a message is lost
	Dup   float64 // probability a request is delivered twice
}

// network decides each message's fate.
type network struct {
	sim      *Sim
	def      Link
	links    map[[2]string]Link // overrides, by (from, to)
	parts    map[string]int     // partition group of each node; nodes in different groups cannot talk
	inflight int
}

func (n *network) link(from, to string) Link {
	if l, ok := n.links[[2]string{from, to}]; ok {
		return l
	}
	return n.def
}

func (n *network) partitioned(from, to string) bool {
	if len(n.parts) == 0 {
		return false
	}
	return n.parts[from] != n.parts[to]
}

// deliver decides one message's fate: ok=false means it is lost.
func (n *network) fate(from, to string) (delay time.Duration, ok bool) {
	l := n.link(from, to)
	r := n.sim.rng
	if n.partitioned(from, to) {
		return 0, false
	}
	if l.Drop > 0 && r.Float64() < l.Drop {
		return 0, false
	}
	d := l.Delay.Sample(r)
	return d, true
}

// call is one remote call in flight.
type call struct {
	id       uint64
	from, to *node
	object   string
	method   string
	wake     chan struct{}
	done     bool
	resp     *rmi.Response
	err      error
	sentAt   time.Time
	vc       vclock
	parkedAt int // caller incarnation
}

// invoker is a simulated connection from one node to objects on another.
// It is an rmi.Transport: behind rmi.Caller on the caller's node and
// rmi.Table.Handle on the callee's, exactly as TCP is, it only moves the
// encoded request and response, with the network's delays, losses and
// duplicates, in virtual time.
type invoker struct {
	sim  *Sim
	from *node
	to   *node
	// table returns the callee's table (nil when it has none: a crashed
	// server); callbacks go to a client's per-connection table.
	table func() *rmi.Table
	peer  *rmi.Peer
	// bound, when set, ties the invoker to one incarnation of the callee,
	// like a TCP connection: after the callee restarts, calls fail.
	bound bool
	inc   int
}

// Invoke implements rmi.Invoker. It must be called from a task. Deadlines
// are read on the caller's node clock.
func (iv *invoker) Invoke(ctx context.Context, object, method string, args, reply any) error {
	return rmi.Caller{Transport: iv, Clock: iv.from.clock, Remote: iv.to.name}.Invoke(ctx, object, method, args, reply)
}

// RoundTrip implements rmi.Transport. It parks the calling task until the
// reply arrives, the connection is refused, or the caller's deadline
// (req.Timeout of its node's time) passes in virtual time.
func (iv *invoker) RoundTrip(ctx context.Context, req *rmi.Request) (*rmi.Response, error) {
	s := iv.sim
	sc := s.sched
	if sc.closing {
		return nil, rmi.ErrClosed
	}
	if iv.bound && (iv.to.inc != iv.inc || !iv.to.up) {
		return nil, fmt.Errorf("connection to %s: %w", iv.to.name, rmi.ErrConnLost)
	}
	// The request travels later, and the caller reuses its buffer once
	// this returns (rmi.Transport): what is on the wire is a copy.
	req = &rmi.Request{Object: req.Object, Method: req.Method, Timeout: req.Timeout, Args: bytes.Clone(req.Args)}
	timeout := iv.from.clock.toVirtual(time.Duration(req.Timeout))
	s.callSeq++
	c := &call{id: s.callSeq, from: iv.from, to: iv.to, object: req.Object, method: req.Method, wake: make(chan struct{}),
		sentAt: sc.now, parkedAt: iv.from.inc}
	c.vc = iv.from.tick()
	s.pending[c.id] = c
	if s.cfg.Trace {
		s.record(Event{Kind: "send", Node: iv.from.name, Peer: iv.to.name, Call: c.id, Method: c.name(), VC: c.vc})
	}
	iv.sendRequest(c, req, false)
	if s.rng.Float64() < s.net.link(iv.from.name, iv.to.name).Dup {
		iv.sendRequest(c, req, true)
	}
	// The deadline's event finds the call by its id, so that a call
	// answered long before its deadline is not kept until then.
	id := c.id
	sc.after(timeout, iv.from, func() {
		if c := s.pending[id]; c != nil {
			s.finish(c, nil, fmt.Errorf("no reply from %s: %w", iv.to.name, context.DeadlineExceeded))
		}
	})
	sc.park(c.wake)
	return c.resp, c.err
}

// name names c's method for the trace.
func (c *call) name() string { return c.object + "." + c.method }

// sendRequest sends c's request; the callee runs it as a task and sends
// the response back through the network.
func (iv *invoker) sendRequest(c *call, req *rmi.Request, dup bool) {
	s := iv.sim
	delay, ok := s.net.fate(iv.from.name, iv.to.name)
	if !ok {
		if s.cfg.Trace {
			s.record(Event{Kind: "drop", Node: iv.from.name, Peer: iv.to.name, Call: c.id, Method: c.name()})
		}
		return
	}
	s.sched.after(delay, nil, func() {
		to := iv.to
		if !to.up {
			// Connection refused: the caller learns quickly.
			back, ok := s.net.fate(to.name, iv.from.name)
			if ok {
				s.sched.after(back, nil, func() {
					err := fmt.Errorf("%s is down: %w", to.name, rmi.ErrConnect)
					if !c.done {
						if s.cfg.Trace {
							s.record(Event{Kind: "refused", Node: c.from.name, Peer: to.name, Call: c.id, Method: c.name(), Err: err.Error()})
						}
					}
					s.finish(c, nil, err)
				})
			}
			return
		}
		table := iv.table()
		if table == nil {
			return
		}
		vc := to.recv(c.vc)
		if s.cfg.Trace {
			s.record(Event{Kind: "recv", Node: to.name, Peer: iv.from.name, Call: c.id, Method: c.name(), VC: vc, Dup: dup})
		}
		inc := to.inc
		s.sched.runTask(func() {
			// The callee runs under the caller's deadline, on its own clock.
			resp := table.Handle(rmi.WithPeer(context.Background(), iv.peer), to.clock, rmi.DefaultMaxRequestBytes, req)
			// The reply leaves only if the callee is still the same process.
			if !to.up || to.inc != inc {
				return
			}
			rvc := to.tick()
			if s.cfg.Trace {
				s.record(Event{Kind: "reply", Node: to.name, Peer: iv.from.name, Call: c.id, Method: c.name(), VC: rvc, Err: c.errText(resp)})
			}
			delay, ok := s.net.fate(to.name, iv.from.name)
			if !ok {
				if s.cfg.Trace {
					s.record(Event{Kind: "drop", Node: to.name, Peer: iv.from.name, Call: c.id, Method: c.name()})
				}
				return
			}
			s.sched.after(delay, nil, func() {
				if !c.done && c.from.up && c.from.inc == c.parkedAt {
					vc := iv.from.recv(rvc)
					if s.cfg.Trace {
						s.record(Event{Kind: "return", Node: c.from.name, Peer: to.name, Call: c.id, Method: c.name(), VC: vc, Err: c.errText(resp)})
					}
				}
				s.finish(c, resp, nil)
			})
		})
	})
}

// errText is the trace's account of a response: the remote error's text,
// or "" for a result.
func (c *call) errText(resp *rmi.Response) string {
	if !resp.Failed {
		return ""
	}
	return (&rmi.RemoteError{Code: resp.ErrCode, Message: resp.ErrMsg, Object: c.object, Method: c.method}).Error()
}

// finish completes a call once (reply, refusal or timeout) and wakes the
// caller, unless the caller's node crashed meanwhile: then the parked
// goroutine is abandoned, as the process it belonged to is gone.
func (s *Sim) finish(c *call, resp *rmi.Response, err error) {
	if c.done {
		return
	}
	c.done = true
	c.resp, c.err = resp, err
	delete(s.pending, c.id)
	if errors.Is(err, context.DeadlineExceeded) {
		if s.cfg.Trace {
			s.record(Event{Kind: "timeout", Node: c.from.name, Peer: c.to.name, Call: c.id, Method: c.name()})
		}
	}
	if !c.from.up || c.from.inc != c.parkedAt {
		s.abandoned = append(s.abandoned, c)
		return
	}
	s.sched.resume(c.wake)
}

// vclock is a vector clock, by node name, for the ShiViz log.
type vclock map[string]uint64

func (v vclock) clone() vclock {
	out := make(vclock, len(v))
	for k, x := range v {
		out[k] = x
	}
	return out
}

func mergeMax(a, b vclock) {
	for k, x := range b {
		a[k] = max(a[k], x)
	}
}
