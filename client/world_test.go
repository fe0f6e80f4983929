package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
)

// world is a real cluster (servertest: a real central and real chat
// servers in this process) and the clients' side of the network: each
// client dials through a Dialer that records what it dials and calls, and
// can stage what a network or a dying server does to one connection.
// Clients run on their own mock clock, so a test decides when their pings
// and background syncs happen; the servers run on the real clock.
type world struct {
	*servertest.Cluster
	t   *testing.T
	clk *clocktest.Mock // the clients' clock

	mu        sync.Mutex
	dials     map[string][]string                   // user -> addresses dialed
	calls     map[string][]call                     // user -> calls that returned without error
	postIDs   map[string][]string                   // user -> id of every Post attempt
	callbacks map[string]*rmi.Table                 // user -> the client's callback table
	drop      map[string]func(chatapi.Message) bool // user -> which deliveries to lose
	lose      map[string]map[string]func()          // user -> method -> run, then lose the reply
	after     map[string]map[string]func()          // user -> method -> run before the reply returns
	handled   map[string][]chatapi.Event            // user -> events of the deliveries its client handled
	loseEnded map[string]bool                       // user -> lose the session-ended event
	syncLimit int                                   // if set, clients ask for pages this small
}

// call is one call a client made: where to, and which method.
type call struct{ addr, method string }

// newWorld starts a cluster of n chat servers, server-1 … server-n.
func newWorld(t *testing.T, n int) *world {
	return newWorldWith(t, servertest.Options{Servers: n})
}

func newWorldWith(t *testing.T, opts servertest.Options) *world {
	clk := clocktest.New()
	clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	opts.ClientClock = clk
	w := &world{
		Cluster: servertest.New(t, opts), t: t, clk: clk,
		dials: map[string][]string{}, calls: map[string][]call{}, postIDs: map[string][]string{},
		callbacks: map[string]*rmi.Table{}, drop: map[string]func(chatapi.Message) bool{},
		lose: map[string]map[string]func(){}, loseEnded: map[string]bool{},
		after: map[string]map[string]func(){}, handled: map[string][]chatapi.Event{},
	}
	return w
}

// cfg returns user's client configuration: the registry (default port),
// the clients' clock, and the recording Dialer.
func (w *world) cfg(user string) Config {
	return Config{
		Central:  "registry",
		User:     user,
		Password: w.Password(user),
		Clock:    w.clk,
		Dial:     w.dialer(user),
		Logger:   rmitest.QuietLogger(),
	}
}

// dialer returns the Dialer of user's client.
func (w *world) dialer(user string) Dialer {
	return func(ctx context.Context, addr string, callbacks *rmi.Table) (Conn, error) {
		w.mu.Lock()
		w.dials[user] = append(w.dials[user], addr)
		w.mu.Unlock()
		if callbacks != nil {
			w.mu.Lock()
			w.callbacks[user] = callbacks
			w.mu.Unlock()
			// Deliveries pass through a filter that can lose some.
			filtered := rmi.NewTable(rmitest.QuietLogger())
			next := chatapi.CallbackStub{Inv: rmi.Local{Table: callbacks, Clock: w.clk}}
			if err := rmi.Export[chatapi.Callback](filtered, chatapi.CallbackObjectName, &lossyCallback{w: w, user: user, next: next}); err != nil {
				return nil, err
			}
			callbacks = filtered
		}
		conn, err := w.Dial(ctx, addr, callbacks)
		if err != nil {
			return nil, err
		}
		return &recordingConn{Conn: conn, w: w, user: user, addr: addr}, nil
	}
}

// recordingConn is a client's connection as the world sees it.
type recordingConn struct {
	*servertest.Conn
	w          *world
	user, addr string
}

// Invoke implements rmi.Invoker.
func (r *recordingConn) Invoke(ctx context.Context, object, method string, args, reply any) error {
	w := r.w
	w.mu.Lock()
	if a, ok := args.(chatapi.SyncArgs); ok && w.syncLimit > 0 {
		a.Limit = w.syncLimit
		args = a
	}
	if a, ok := args.(chatapi.PostArgs); ok {
		w.postIDs[r.user] = append(w.postIDs[r.user], a.ID)
	}
	w.mu.Unlock()
	err := r.Conn.Invoke(ctx, object, method, args, reply)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.calls[r.user] = append(w.calls[r.user], call{r.addr, method})
	then := w.lose[r.user][method]
	delete(w.lose[r.user], method)
	after := w.after[r.user][method]
	delete(w.after[r.user], method)
	w.mu.Unlock()
	if after != nil {
		after()
	}
	if then != nil {
		then()
		return fmt.Errorf("%s.%s at %s: reply lost: %w", object, method, r.addr, rmi.ErrConnLost)
	}
	return nil
}

// pageSyncs makes the clients ask for pages of at most n messages.
func (w *world) pageSyncs(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncLimit = n
}

// loseReply makes user's next successful call of method run then (say,
// crash the server) and fail as if its reply was lost with the connection.
func (w *world) loseReply(user, method string, then func()) { w.hook(w.lose, user, method, then) }

// afterCall makes user's next successful call of method run f before
// its reply returns to the client.
func (w *world) afterCall(user, method string, f func()) { w.hook(w.after, user, method, f) }

// hook sets hooks[user][method] to f.
func (w *world) hook(hooks map[string]map[string]func(), user, method string, f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if hooks[user] == nil {
		hooks[user] = map[string]func(){}
	}
	hooks[user][method] = f
}

// handledEvents returns the events of the deliveries user's client has
// finished handling (its Deliver returned).
func (w *world) handledEvents(user string) []chatapi.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.handled[user])
}

// lossyCallback stands between a chat server and a client's callback
// object, losing the deliveries the world says to lose.
type lossyCallback struct {
	w    *world
	user string
	next chatapi.CallbackStub
}

// Deliver implements chatapi.Callback.
func (l *lossyCallback) Deliver(ctx context.Context, args chatapi.DeliverArgs) error {
	l.w.mu.Lock()
	drop, loseEnded := l.w.drop[l.user], l.w.loseEnded[l.user]
	l.w.mu.Unlock()
	if loseEnded {
		args.Events = slices.DeleteFunc(slices.Clone(args.Events), func(e chatapi.Event) bool { return e.Kind == chatapi.EventSessionEnded })
	}
	if drop != nil {
		args.Messages = slices.DeleteFunc(slices.Clone(args.Messages), drop)
	}
	err := l.next.Deliver(ctx, args)
	l.w.mu.Lock()
	l.w.handled[l.user] = append(l.w.handled[l.user], args.Events...)
	l.w.mu.Unlock()
	return err
}

// Voice implements chatapi.Callback: voice signals pass unchanged.
func (l *lossyCallback) Voice(ctx context.Context, args chatapi.VoiceDeliverArgs) error {
	return l.next.Voice(ctx, args)
}

// loseDeliveries makes the deliveries to user of the messages drop
// selects get lost (nil: none).
func (w *world) loseDeliveries(user string, drop func(chatapi.Message) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drop[user] = drop
}

// deliver calls user's callback object directly, as a chat server could.
func (w *world) deliver(user string, args chatapi.DeliverArgs) {
	w.t.Helper()
	w.mu.Lock()
	table := w.callbacks[user]
	w.mu.Unlock()
	if err := (chatapi.CallbackStub{Inv: rmi.Local{Table: table, Clock: w.clk}}).Deliver(context.Background(), args); err != nil {
		w.t.Fatalf("deliver to %s: %v", user, err)
	}
}

// dialed returns the addresses user's client dialed.
func (w *world) dialed(user string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.dials[user])
}

// count returns how many calls of method user's client made to chat
// server (or "central") that returned without error.
func (w *world) count(user, server, method string) int {
	addr := w.CentralAddr()
	if server != "central" {
		addr = w.Addr(server)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls[user] {
		if c.addr == addr && c.method == method {
			n++
		}
	}
	return n
}

// posted returns the ids of every Post attempt user's client made.
func (w *world) posted(user string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.postIDs[user])
}

// recorder collects what a client's OnMessage, OnEvent and OnStatus
// report.
type recorder struct {
	mu       sync.Mutex
	msgs     []chatapi.Message
	events   []chatapi.Event
	statuses []Status
}

func (r *recorder) onMessage(m chatapi.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) onEvent(e chatapi.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) onStatus(s Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, s)
}

func (r *recorder) messages() []chatapi.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *recorder) status() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.statuses)
}
