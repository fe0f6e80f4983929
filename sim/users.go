package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// observations are what the checkers need, gathered as the run goes.
type observations struct {
	posts      []*postObs
	errors     int
	crashes    int
	deliveries int
}

// postObs is one post a user attempted.
type postObs struct {
	user, room, text string
	at               time.Duration
	seen             chatapi.Message // the latest message in the author's view of the room when posting
	hasSeen          bool
	acked            bool
	msg              chatapi.Message
	err              string
}

func password(user string) string { return "password-of-" + user }

// AddUser signs a user up and logs them in now. Central places them on
// home when it is live (empty: least-loaded).
func (s *Sim) AddUser(user, home string) error {
	if s.nodes[user] != nil {
		return fmt.Errorf("node %q exists", user)
	}
	n := s.addNode(user, "client", 0, 0)
	n.home = home
	s.clients = append(s.clients, n)
	cfg := client.Config{
		Central: centralAddr, User: user, Password: password(user),
		Clock: n.clock, Dial: s.dialer(n), Logger: s.cfg.Logger.With("node", user),
		Rand: s.seeded(),
		// The simulated clients keep their connection to central, as they
		// did when the scenarios' goldens were recorded: letting it go
		// when idle (client.DefaultCentralIdle) adds a reconnection to
		// their later calls to central, which moves the steps after it
		// (and the goldens' counts of checked stamps), though no check's
		// outcome.
		CentralIdle: -1,
		OnMessage: func(m chatapi.Message) {
			s.obs.deliveries++
			if s.cfg.Trace {
				st := m.Stamp
				s.record(Event{Kind: "deliver", Node: user, Room: m.Room, ID: m.ID, From: m.From, Text: m.Text, Stamp: &st})
			}
		},
	}
	s.login(n, cfg, false, 0)
	return nil
}

// login signs up (unless done) and logs in; like a person, it tries again
// a few seconds after a failure (a lost message, no server yet).
func (s *Sim) login(n *node, cfg client.Config, signedUp bool, attempt int) {
	s.task(n, "login", func(ctx context.Context) error {
		if !signedUp {
			_, err := client.SignUp(ctx, cfg)
			if err != nil && !errors.Is(err, centralapi.ErrUserExists) {
				s.retryLogin(n, cfg, false, attempt)
				return err
			}
			signedUp = true // ErrUserExists: an earlier attempt went through
		}
		cl, err := client.Login(ctx, cfg)
		if err != nil {
			s.retryLogin(n, cfg, true, attempt)
			return err
		}
		n.cl = cl
		s.record(Event{Kind: "login", Node: n.name, Peer: cl.Server()})
		return nil
	})
}

func (s *Sim) retryLogin(n *node, cfg client.Config, signedUp bool, attempt int) {
	if attempt >= 20 {
		return
	}
	s.sched.after(5*time.Second, n, func() { s.login(n, cfg, signedUp, attempt+1) })
}

// dialer connects a client node to the node at an address, over one
// simulated connection that also carries the callbacks back.
func (s *Sim) dialer(n *node) client.Dialer {
	return func(ctx context.Context, addr string, callbacks *rmi.Table) (client.Conn, error) {
		to := s.nodes[hostOf(addr)]
		if to == nil || !to.up || to.table == nil {
			return nil, fmt.Errorf("dial %s: %w", addr, rmi.ErrConnect)
		}
		var back rmi.Invoker
		if callbacks != nil {
			back = &invoker{sim: s, from: to, to: n, table: func() *rmi.Table { return callbacks }}
		}
		s.peerSeq++
		peer := rmi.NewPeer(s.peerSeq, n.name, false, back)
		inc := to.inc
		return &conn{
			sim:  s,
			inv:  &invoker{sim: s, from: n, to: to, table: func() *rmi.Table { return to.table }, peer: peer, bound: true, inc: inc},
			peer: peer,
		}, nil
	}
}

// conn is a client's simulated connection.
type conn struct {
	sim    *Sim
	inv    *invoker
	peer   *rmi.Peer
	closed bool
}

// Invoke implements rmi.Invoker.
func (c *conn) Invoke(ctx context.Context, object, method string, args, reply any) error {
	if c.closed {
		return rmi.ErrClosed
	}
	return c.inv.Invoke(ctx, object, method, args, reply)
}

// Close closes the connection; the server sees it end (after one delay).
func (c *conn) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	to := c.inv.to
	if c.sim.sched.closing || !to.up || to.inc != c.inv.inc {
		return nil
	}
	d, _ := c.sim.net.fate(c.inv.from.name, to.name)
	c.sim.sched.after(d, to, func() { c.sim.sched.runTask(c.peer.Close) })
	return nil
}

func (s *Sim) user(name string) (*node, error) {
	n := s.nodes[name]
	if n == nil || n.kind != "client" {
		return nil, fmt.Errorf("no user %q", name)
	}
	return n, nil
}

// userTask runs f as a task on a logged-in user's node.
func (s *Sim) userTask(name, what string, f func(ctx context.Context, n *node) error) error {
	n, err := s.user(name)
	if err != nil {
		return err
	}
	s.task(n, what, func(ctx context.Context) error {
		if n.cl == nil {
			return fmt.Errorf("%s is not logged in", name)
		}
		return f(ctx, n)
	})
	return nil
}

// Create makes user create room now.
func (s *Sim) Create(user, room string) error {
	return s.userTask(user, "create "+room, func(ctx context.Context, n *node) error {
		_, err := n.cl.CreateRoom(ctx, room)
		if err == nil {
			n.joined[room] = true
		}
		return err
	})
}

// createOrJoin creates room, or joins it if it exists (an earlier create
// whose answer was lost may have made it).
func (s *Sim) createOrJoin(user, room string) error {
	return s.userTask(user, "create "+room, func(ctx context.Context, n *node) error {
		_, err := n.cl.CreateRoom(ctx, room)
		if errors.Is(err, centralapi.ErrRoomExists) {
			_, err = n.cl.JoinRoom(ctx, room)
		}
		if err == nil {
			n.joined[room] = true
		}
		return err
	})
}

// Join makes user join room now.
func (s *Sim) Join(user, room string) error {
	return s.userTask(user, "join "+room, func(ctx context.Context, n *node) error {
		_, err := n.cl.JoinRoom(ctx, room)
		if err == nil {
			n.joined[room] = true
		}
		return err
	})
}

// Leave makes user leave room now.
func (s *Sim) Leave(user, room string) error {
	return s.userTask(user, "leave "+room, func(ctx context.Context, n *node) error {
		err := n.cl.LeaveRoom(ctx, room)
		if err == nil {
			delete(n.joined, room)
		}
		return err
	})
}

// Post makes user post text to room now.
func (s *Sim) Post(user, room, text string) error {
	p := &postObs{user: user, room: room, text: text, at: s.Now()}
	return s.userTask(user, "post", func(ctx context.Context, n *node) error {
		s.obs.posts = append(s.obs.posts, p)
		return s.say(ctx, n, p, func(ctx context.Context) (chatapi.Message, error) { return n.cl.Say(ctx, room, text) })
	})
}

// Direct makes user send text to peer in their direct room now.
func (s *Sim) Direct(user, peer, text string) error {
	p := &postObs{user: user, text: text, at: s.Now()}
	return s.userTask(user, "msg "+peer, func(ctx context.Context, n *node) error {
		s.obs.posts = append(s.obs.posts, p)
		room, err := n.cl.Direct(ctx, peer)
		if err != nil {
			p.err = err.Error()
			return err
		}
		p.room = room
		n.joined[room] = true
		return s.say(ctx, n, p, func(ctx context.Context) (chatapi.Message, error) { return n.cl.Say(ctx, room, text) })
	})
}

// say records what the author had seen, posts, and records the outcome.
func (s *Sim) say(ctx context.Context, n *node, p *postObs, post func(context.Context) (chatapi.Message, error)) error {
	p.seen, p.hasSeen = n.cl.Last(p.room)
	s.record(Event{Kind: "post", Node: n.name, Room: p.room, Text: p.text})
	m, err := post(ctx)
	if err != nil {
		p.err = err.Error()
		return err
	}
	p.acked, p.msg = true, m
	st := m.Stamp
	s.record(Event{Kind: "ack", Node: n.name, Room: m.Room, ID: m.ID, From: m.From, Text: m.Text, Stamp: &st})
	return nil
}
