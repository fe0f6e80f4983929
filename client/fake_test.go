package client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
)

// This file is an in-memory distchat for the client's tests: a fake
// central server and fake chat servers, exported through rmi.Tables and
// reached through a Dialer whose connections are rmi.Local invokers. A
// chat server can be crashed (its connections then fail as a lost
// connection would) and restarted.

// world holds every fake process. One lock guards all of it; no remote
// call (a Deliver to a client) is made while holding it.
type world struct {
	t   *testing.T
	clk *clock.Mock

	mu       sync.Mutex
	users    map[string]string   // user -> password
	sessions map[string]*session // token -> session
	rooms    map[string]map[string]bool
	direct   map[string]bool
	servers  []*fakeServer // in placement order
	tables   map[string]*rmi.Table
	down     map[string]bool // addr -> crashed
	placeOn  string          // server name Login places on ("" = first live)
	dials    []string
	conns    []*fakeConn
	// rmiServers serve the processes over TCP after serveTCP.
	rmiServers map[string]*rmi.Server
	nextToken  int
	reassigns  int
	logins     int

	peerIDs atomic.Uint64
}

type session struct {
	user, server string
}

// fakeServer is a chat server. Its state is guarded by world.mu.
type fakeServer struct {
	w          *world
	name, addr string
	logs       map[string][]chatapi.Message // room -> messages held
	seq        map[string]uint64            // room -> last seq stamped here
	ids        map[string]map[postKey]chatapi.Stamp
	attached   map[string]*rmi.Peer // token -> connection of the attached client
	lastTime   int64
	skew       time.Duration
	noForward  bool // do not forward posts to other servers
	dieOnStore bool // crash right after storing the next post
	syncLimit  int
	detaches   int
	pings      int
}

// newWorld builds a central (its registry at reg:1099 pointing at
// central:1099) and chat servers s1.. at sN:7000.
func newWorld(t *testing.T, nServers int) *world {
	w := &world{
		t:        t,
		clk:      clock.NewMock(),
		users:    map[string]string{},
		sessions: map[string]*session{},
		rooms:    map[string]map[string]bool{},
		direct:   map[string]bool{},
		tables:   map[string]*rmi.Table{},
		down:     map[string]bool{},
	}
	w.clk.Set(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	ctx := context.Background()

	reg := rmi.NewTable(nil)
	if err := rmi.Export[rmi.RegistryService](reg, rmi.RegistryObjectName, rmi.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	if err := (rmi.RegistryStub{Inv: rmi.Local{Table: reg}}).Bind(ctx, centralapi.ObjectName,
		rmi.Ref{Addr: "central:1099", Object: centralapi.ObjectName}); err != nil {
		t.Fatal(err)
	}
	w.tables["reg:1099"] = reg

	ct := rmi.NewTable(nil)
	if err := rmi.Export[centralapi.CentralServer](ct, centralapi.ObjectName, &fakeCentral{w: w}); err != nil {
		t.Fatal(err)
	}
	w.tables["central:1099"] = ct

	for i := 1; i <= nServers; i++ {
		s := &fakeServer{
			w: w, name: fmt.Sprintf("s%d", i), addr: fmt.Sprintf("s%d:7000", i),
			logs: map[string][]chatapi.Message{}, seq: map[string]uint64{},
			ids: map[string]map[postKey]chatapi.Stamp{}, attached: map[string]*rmi.Peer{},
		}
		st := rmi.NewTable(nil)
		if err := rmi.Export[chatapi.ChatServer](st, chatapi.ObjectName, s); err != nil {
			t.Fatal(err)
		}
		w.tables[s.addr] = st
		w.servers = append(w.servers, s)
	}
	return w
}

func (w *world) server(name string) *fakeServer {
	for _, s := range w.servers {
		if s.name == name {
			return s
		}
	}
	w.t.Fatalf("no server %s", name)
	return nil
}

// addUser creates an account.
func (w *world) addUser(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.users[user] = "password-" + user
}

// addRoom creates a room with members.
func (w *world) addRoom(room string, members ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rooms[room] = map[string]bool{}
	for _, m := range members {
		w.rooms[room][m] = true
	}
}

// crash takes a chat server down: its connections fail and it forgets its
// attachments; its logs survive (they are durable).
func (w *world) crash(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.serverLocked(name)
	w.down[s.addr] = true
	s.attached = map[string]*rmi.Peer{}
	rs := w.rmiServers[s.addr]
	var hooks []func()
	for _, c := range w.conns {
		if c.addr == s.addr {
			hooks = append(hooks, c.onClose...)
			c.onClose = nil
		}
	}
	w.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	if rs != nil {
		_ = rs.Close()
	}
	w.mu.Lock()
}

// serveTCP serves every fake process with a real rmi.Server on a loopback
// port and rewrites the addresses (registry binding, server placement) to
// those ports. It returns the registry's address.
func (w *world) serveTCP() string {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	moved := map[string]string{}
	w.rmiServers = map[string]*rmi.Server{}
	tables := map[string]*rmi.Table{}
	for addr, table := range w.tables {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			w.t.Fatal(err)
		}
		rs := rmi.NewServer(table, rmi.ServerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		go func() { _ = rs.Serve(l) }()
		w.t.Cleanup(func() { _ = rs.Close() })
		moved[addr] = l.Addr().String()
		w.rmiServers[l.Addr().String()] = rs
		tables[l.Addr().String()] = table
	}
	w.tables = tables
	for _, s := range w.servers {
		s.addr = moved[s.addr]
	}
	err := rmi.RegistryStub{Inv: rmi.Local{Table: tables[moved["reg:1099"]]}}.Rebind(context.Background(),
		centralapi.ObjectName, rmi.Ref{Addr: moved["central:1099"], Object: centralapi.ObjectName})
	if err != nil {
		w.t.Fatal(err)
	}
	return moved["reg:1099"]
}

// restart brings a crashed server back; it forwards what it holds to the
// other live servers (its durable outbox), which deliver what is new.
func (w *world) restart(name string) {
	w.mu.Lock()
	s := w.serverLocked(name)
	delete(w.down, s.addr)
	s.dieOnStore = false
	var out []delivery
	for room, msgs := range s.logs {
		for _, m := range msgs {
			if m.Stamp.Server == s.name {
				out = append(out, s.forwardLocked(room, m)...)
			}
		}
	}
	w.mu.Unlock()
	deliverAll(out)
}

func (w *world) serverLocked(name string) *fakeServer {
	for _, s := range w.servers {
		if s.name == name {
			return s
		}
	}
	w.t.Fatalf("no server %s", name)
	return nil
}

func (w *world) cfg(user string) Config {
	return Config{
		Central:  "reg",
		User:     user,
		Password: "password-" + user,
		Clock:    w.clk,
		Dial:     w.dial,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// dial is the test Dialer: an rmi.Local onto the table at addr, with a
// Peer whose Back calls the client's callback table.
func (w *world) dial(ctx context.Context, addr string, callbacks *rmi.Table) (Conn, error) {
	w.mu.Lock()
	w.dials = append(w.dials, addr)
	table, down := w.tables[addr], w.down[addr]
	w.mu.Unlock()
	if table == nil || down {
		return nil, fmt.Errorf("dial %s: %w", addr, rmi.ErrConnect)
	}
	var back rmi.Invoker
	if callbacks != nil {
		back = rmi.Local{Table: callbacks, Clock: w.clk}
	}
	peer := rmi.NewPeer(w.peerIDs.Add(1), "client", false, back)
	c := &fakeConn{w: w, addr: addr, local: rmi.Local{Table: table, Peer: peer, Clock: w.clk}, peer: peer}
	w.mu.Lock()
	w.conns = append(w.conns, c)
	w.mu.Unlock()
	return c, nil
}

func (w *world) dialed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.dials)
}

// fakeConn is a connection from a client to a fake process.
type fakeConn struct {
	w       *world
	addr    string
	local   rmi.Local
	peer    *rmi.Peer
	closed  atomic.Bool
	onClose []func() // guarded by w.mu; run when the process crashes
}

// OnClose registers f to run when the connection is lost (the process
// crashes), as rmi.Client.OnClose does.
func (c *fakeConn) OnClose(f func()) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	c.onClose = append(c.onClose, f)
}

func (c *fakeConn) isDown() bool {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return c.w.down[c.addr]
}

// Invoke implements rmi.Invoker. A call to a crashed process fails as a
// lost connection; so does one during which the process crashed.
func (c *fakeConn) Invoke(ctx context.Context, object, method string, args, reply any) error {
	if c.closed.Load() {
		return rmi.ErrClosed
	}
	if c.isDown() {
		return fmt.Errorf("%s.%s at %s: %w", object, method, c.addr, rmi.ErrConnLost)
	}
	err := c.local.Invoke(ctx, object, method, args, reply)
	if c.isDown() {
		return fmt.Errorf("%s.%s at %s: %w", object, method, c.addr, rmi.ErrConnLost)
	}
	return err
}

// Close implements Conn.
func (c *fakeConn) Close() error {
	c.closed.Store(true)
	c.peer.Close()
	return nil
}

// fakeCentral is the central server.
type fakeCentral struct{ w *world }

func (f *fakeCentral) SignUp(ctx context.Context, a centralapi.SignUpArgs) (centralapi.SignUpReply, error) {
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.users[a.User]; ok {
		return centralapi.SignUpReply{}, centralapi.ErrUserExists
	}
	w.users[a.User] = a.Password
	return centralapi.SignUpReply{RecoveryCode: "code-" + a.User}, nil
}

func (f *fakeCentral) Login(ctx context.Context, a centralapi.LoginArgs) (centralapi.LoginReply, error) {
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if pw, ok := w.users[a.User]; !ok || pw != a.Password {
		return centralapi.LoginReply{}, centralapi.ErrBadCredentials
	}
	w.logins++
	var srv *fakeServer
	for _, s := range w.servers {
		if !w.down[s.addr] && (w.placeOn == "" || w.placeOn == s.name) {
			srv = s
			break
		}
	}
	if srv == nil {
		return centralapi.LoginReply{}, centralapi.ErrNoServers
	}
	w.nextToken++
	tok := fmt.Sprintf("tok%d", w.nextToken)
	w.sessions[tok] = &session{user: a.User, server: srv.name}
	return centralapi.LoginReply{User: a.User, Token: tok, Server: centralapi.ServerInfo{Name: srv.name, Addr: srv.addr}}, nil
}

func (f *fakeCentral) Reassign(ctx context.Context, a centralapi.ReassignArgs) (centralapi.LoginReply, error) {
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reassigns++
	sess := w.sessions[a.Token]
	if sess == nil {
		return centralapi.LoginReply{}, centralapi.ErrBadSession
	}
	for _, s := range w.servers {
		if !w.down[s.addr] && s.name != a.Failed {
			sess.server = s.name
			return centralapi.LoginReply{User: sess.user, Token: a.Token, Server: centralapi.ServerInfo{Name: s.name, Addr: s.addr}}, nil
		}
	}
	return centralapi.LoginReply{}, centralapi.ErrNoServers
}

func (f *fakeCentral) ResetPassword(ctx context.Context, a centralapi.ResetArgs) (centralapi.ResetReply, error) {
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if a.RecoveryCode != "code-"+a.User {
		return centralapi.ResetReply{}, centralapi.ErrBadRecoveryCode
	}
	w.users[a.User] = a.NewPassword
	return centralapi.ResetReply{RecoveryCode: "code2-" + a.User}, nil
}

func (f *fakeCentral) Logout(ctx context.Context, a centralapi.LogoutArgs) error {
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sessions[a.Token] == nil {
		return centralapi.ErrBadSession
	}
	delete(w.sessions, a.Token)
	return nil
}

var (
	_ centralapi.CentralServer = (*fakeCentral)(nil)
	_ chatapi.ChatServer       = (*fakeServer)(nil)
)

// delivery is one Deliver call to make once the world lock is released.
type delivery struct {
	back rmi.Invoker
	args chatapi.DeliverArgs
}

func deliverAll(ds []delivery) {
	for _, d := range ds {
		_ = chatapi.CallbackStub{Inv: d.back}.Deliver(context.Background(), d.args)
	}
}

// userLocked returns the user of an attached session.
func (s *fakeServer) userLocked(token string) (string, error) {
	if s.attached[token] == nil {
		return "", chatapi.ErrNotAttached
	}
	sess := s.w.sessions[token]
	if sess == nil {
		return "", centralapi.ErrBadSession
	}
	return sess.user, nil
}

func (s *fakeServer) memberLocked(token, room string) (string, error) {
	user, err := s.userLocked(token)
	if err != nil {
		return "", err
	}
	if s.w.rooms[room] == nil {
		return "", centralapi.ErrNoSuchRoom
	}
	if !s.w.rooms[room][user] {
		return "", centralapi.ErrNotMember
	}
	return user, nil
}

// storeLocked adds m to this server's log of its room unless present.
func (s *fakeServer) storeLocked(m chatapi.Message) bool {
	for _, x := range s.logs[m.Room] {
		if x.Stamp.Server == m.Stamp.Server && x.Stamp.Seq == m.Stamp.Seq {
			return false
		}
	}
	s.logs[m.Room] = append(s.logs[m.Room], m)
	if s.ids[m.Room] == nil {
		s.ids[m.Room] = map[postKey]chatapi.Stamp{}
	}
	if _, ok := s.ids[m.Room][postKey{m.From, m.ID}]; !ok {
		s.ids[m.Room][postKey{m.From, m.ID}] = m.Stamp
	}
	return true
}

// localDeliveriesLocked returns the Deliver calls that hand m to the
// room's members attached here.
func (s *fakeServer) localDeliveriesLocked(m chatapi.Message) []delivery {
	var out []delivery
	tokens := make([]string, 0, len(s.attached))
	for tok := range s.attached {
		tokens = append(tokens, tok)
	}
	sort.Strings(tokens)
	for _, tok := range tokens {
		if sess := s.w.sessions[tok]; sess != nil && s.w.rooms[m.Room][sess.user] {
			out = append(out, delivery{back: s.attached[tok].Back, args: chatapi.DeliverArgs{Messages: []chatapi.Message{m}}})
		}
	}
	return out
}

// forwardLocked stores m at every other live server and returns the
// deliveries to make there.
func (s *fakeServer) forwardLocked(room string, m chatapi.Message) []delivery {
	var out []delivery
	if s.noForward {
		return nil
	}
	for _, o := range s.w.servers {
		if o == s || s.w.down[o.addr] {
			continue
		}
		if o.storeLocked(m) {
			out = append(out, o.localDeliveriesLocked(m)...)
		}
	}
	return out
}

// Attach implements server.ChatServer.
func (s *fakeServer) Attach(ctx context.Context, a chatapi.AttachArgs) (chatapi.AttachReply, error) {
	p := rmi.PeerFromContext(ctx)
	if p == nil || p.Back == nil {
		return chatapi.AttachReply{}, chatapi.ErrNoCallback
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	sess := w.sessions[a.Token]
	if sess == nil {
		return chatapi.AttachReply{}, centralapi.ErrBadSession
	}
	if sess.server != s.name {
		return chatapi.AttachReply{}, chatapi.ErrNotAttached
	}
	s.attached[a.Token] = p
	p.OnClose(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if s.attached[a.Token] == p {
			delete(s.attached, a.Token)
		}
	})
	var rooms []string
	for r, members := range w.rooms {
		if members[sess.user] {
			rooms = append(rooms, r)
		}
	}
	sort.Strings(rooms)
	return chatapi.AttachReply{User: sess.user, Server: s.name, Rooms: rooms, LeaseTTL: 30 * time.Second}, nil
}

// Ping implements server.ChatServer.
func (s *fakeServer) Ping(ctx context.Context, a chatapi.TokenArgs) error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.pings++
	_, err := s.userLocked(a.Token)
	return err
}

// Detach implements server.ChatServer.
func (s *fakeServer) Detach(ctx context.Context, a chatapi.TokenArgs) error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if _, err := s.userLocked(a.Token); err != nil {
		return err
	}
	s.detaches++
	delete(s.attached, a.Token)
	return nil
}

// Post implements server.ChatServer.
func (s *fakeServer) Post(ctx context.Context, a chatapi.PostArgs) (chatapi.PostReply, error) {
	w := s.w
	w.mu.Lock()
	user, err := s.memberLocked(a.Token, a.Room)
	if err != nil {
		w.mu.Unlock()
		return chatapi.PostReply{}, err
	}
	if st, ok := s.ids[a.Room][postKey{user, a.ID}]; ok {
		w.mu.Unlock()
		return chatapi.PostReply{Stamp: st, Duplicate: true}, nil
	}
	tm := w.clk.Now().Add(s.skew).UnixNano()
	if a.Seen.Time >= tm {
		tm = a.Seen.Time + 1
	}
	if tm <= s.lastTime {
		tm = s.lastTime + 1
	}
	s.lastTime = tm
	s.seq[a.Room]++
	m := chatapi.Message{Room: a.Room, ID: a.ID, From: user, Text: a.Text,
		Stamp: chatapi.Stamp{Time: tm, Server: s.name, Seq: s.seq[a.Room]}}
	s.storeLocked(m)
	if s.dieOnStore {
		// Crash after the message is durable, before anyone hears of it.
		w.down[s.addr] = true
		s.attached = map[string]*rmi.Peer{}
		w.mu.Unlock()
		return chatapi.PostReply{Stamp: m.Stamp}, nil
	}
	out := append(s.localDeliveriesLocked(m), s.forwardLocked(a.Room, m)...)
	w.mu.Unlock()
	deliverAll(out)
	return chatapi.PostReply{Stamp: m.Stamp}, nil
}

// Sync implements server.ChatServer.
func (s *fakeServer) Sync(ctx context.Context, a chatapi.SyncArgs) (chatapi.SyncReply, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if _, err := s.memberLocked(a.Token, a.Room); err != nil {
		return chatapi.SyncReply{}, err
	}
	var msgs []chatapi.Message
	for _, m := range s.logs[a.Room] {
		if m.Stamp.Seq > a.Have[m.Stamp.Server] {
			msgs = append(msgs, m)
		}
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].Stamp.Less(msgs[j].Stamp) })
	limit := a.Limit
	if s.syncLimit > 0 && (limit == 0 || limit > s.syncLimit) {
		limit = s.syncLimit
	}
	if limit > 0 && len(msgs) > limit {
		return chatapi.SyncReply{Messages: msgs[:limit], More: true}, nil
	}
	return chatapi.SyncReply{Messages: msgs}, nil
}

func (s *fakeServer) roomInfoLocked(room string) centralapi.RoomInfo {
	info := centralapi.RoomInfo{Name: room, Direct: s.w.direct[room]}
	var users []string
	for u := range s.w.rooms[room] {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		info.Members = append(info.Members, centralapi.Member{User: u})
	}
	return info
}

// CreateRoom implements server.ChatServer.
func (s *fakeServer) CreateRoom(ctx context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	user, err := s.userLocked(a.Token)
	if err != nil {
		return centralapi.RoomInfo{}, err
	}
	if s.w.rooms[a.Room] != nil {
		return centralapi.RoomInfo{}, centralapi.ErrRoomExists
	}
	s.w.rooms[a.Room] = map[string]bool{user: true}
	return s.roomInfoLocked(a.Room), nil
}

// JoinRoom implements server.ChatServer.
func (s *fakeServer) JoinRoom(ctx context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	user, err := s.userLocked(a.Token)
	if err != nil {
		return centralapi.RoomInfo{}, err
	}
	if s.w.rooms[a.Room] == nil {
		return centralapi.RoomInfo{}, centralapi.ErrNoSuchRoom
	}
	s.w.rooms[a.Room][user] = true
	return s.roomInfoLocked(a.Room), nil
}

// LeaveRoom implements server.ChatServer.
func (s *fakeServer) LeaveRoom(ctx context.Context, a chatapi.RoomArgs) error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	user, err := s.memberLocked(a.Token, a.Room)
	if err != nil {
		return err
	}
	delete(s.w.rooms[a.Room], user)
	return nil
}

// Direct implements server.ChatServer.
func (s *fakeServer) Direct(ctx context.Context, a chatapi.DirectArgs) (centralapi.RoomInfo, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	user, err := s.userLocked(a.Token)
	if err != nil {
		return centralapi.RoomInfo{}, err
	}
	if _, ok := s.w.users[a.Peer]; !ok {
		return centralapi.RoomInfo{}, centralapi.ErrNoSuchUser
	}
	room := centralapi.DirectRoomName(user, a.Peer)
	if s.w.rooms[room] == nil {
		s.w.rooms[room] = map[string]bool{user: true, a.Peer: true}
		s.w.direct[room] = true
	}
	return s.roomInfoLocked(room), nil
}

// ListRooms implements server.ChatServer.
func (s *fakeServer) ListRooms(ctx context.Context, a chatapi.TokenArgs) (centralapi.ListReply, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	user, err := s.userLocked(a.Token)
	if err != nil {
		return centralapi.ListReply{}, err
	}
	var r centralapi.ListReply
	for name, members := range s.w.rooms {
		if s.w.direct[name] && !members[user] {
			continue
		}
		r.Rooms = append(r.Rooms, centralapi.RoomSummary{Name: name, Direct: s.w.direct[name], Members: len(members), Joined: members[user]})
	}
	sort.Slice(r.Rooms, func(i, j int) bool { return r.Rooms[i].Name < r.Rooms[j].Name })
	return r, nil
}

// Who implements server.ChatServer.
func (s *fakeServer) Who(ctx context.Context, a chatapi.RoomArgs) (centralapi.RoomInfo, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if _, err := s.userLocked(a.Token); err != nil {
		return centralapi.RoomInfo{}, err
	}
	if s.w.rooms[a.Room] == nil {
		return centralapi.RoomInfo{}, centralapi.ErrNoSuchRoom
	}
	return s.roomInfoLocked(a.Room), nil
}

// backOf returns the callback invoker of the client attached with token.
func (s *fakeServer) backOf(token string) rmi.Invoker {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if p := s.attached[token]; p != nil {
		return p.Back
	}
	return nil
}

// seed stores messages in room at server s directly (history).
func (s *fakeServer) seed(room, from string, texts ...string) []chatapi.Message {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	var out []chatapi.Message
	for _, text := range texts {
		s.seq[room]++
		s.lastTime = max(s.lastTime+1, s.w.clk.Now().UnixNano())
		m := chatapi.Message{Room: room, ID: fmt.Sprintf("%s-%s-%d", s.name, room, s.seq[room]), From: from, Text: text,
			Stamp: chatapi.Stamp{Time: s.lastTime, Server: s.name, Seq: s.seq[room]}}
		s.storeLocked(m)
		for _, o := range s.w.servers {
			if o != s {
				o.storeLocked(m)
			}
		}
		out = append(out, m)
	}
	return out
}

// recorder collects what a client's OnMessage and OnEvent report.
type recorder struct {
	mu     sync.Mutex
	msgs   []chatapi.Message
	events []chatapi.Event
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

func (r *recorder) messages() []chatapi.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}
