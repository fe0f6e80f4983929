package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/benbjohnson/clock"
	"github.com/coder/websocket"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/clocktest"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/servertest"
	"github.com/distchat/distchat/server/web"
)

// centralWeb is the central web URL the handlers send browsers to.
const centralWeb = "http://central.test:8080"

// env is an in-process cluster (servertest) with a web port on each chat
// server, served by httptest.
type env struct {
	t     *testing.T
	c     *servertest.Cluster
	clk   *clocktest.Mock // the handlers' clock: the rate limit
	sites map[string]*httptest.Server
	hs    map[string]*web.Handler // each chat server's web port
}

// newEnv starts n chat servers, each with a web port; tweak, if not nil,
// adjusts each web.Config.
func newEnv(t *testing.T, n int, tweak func(*web.Config)) *env {
	t.Helper()
	e := &env{t: t, c: servertest.New(t, servertest.Options{Servers: n}), clk: clocktest.New(), sites: map[string]*httptest.Server{}, hs: map[string]*web.Handler{}}
	for _, name := range e.c.Servers() {
		// The Handler is made once the listener exists: the origin is
		// the httptest server's URL.
		var h http.Handler
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
		cfg := web.Config{
			Server:     centralapi.ServerInfo{Name: name, Addr: e.c.Addr(name), HTTP: strings.TrimPrefix(ts.URL, "http://")},
			Origin:     ts.URL,
			CentralWeb: func() string { return centralWeb },
			Cluster:    e.c.Central(),
			Client: client.Config{
				Central: e.c.RegistryAddr(),
				Clock:   clock.New(), // the cluster's: deadlines are real
				Logger:  rmitest.QuietLogger(),
				Dial: func(ctx context.Context, addr string, cb *rmi.Table) (client.Conn, error) {
					conn, err := e.c.Dial(ctx, addr, cb)
					if err != nil {
						return nil, err
					}
					return conn, nil
				},
			},
			Clock:  e.clk,
			Logger: rmitest.QuietLogger(),
		}
		if tweak != nil {
			tweak(&cfg)
		}
		wh, err := web.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h = wh
		e.sites[name] = ts
		e.hs[name] = wh
		t.Cleanup(func() {
			_ = wh.Close()
			ts.Close()
		})
	}
	return e
}

// noRedirect is an HTTP client that shows redirects instead of following
// them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// login logs user in at central placed on chat server name, redeems a
// ticket at that server's web port and returns the session cookie.
func (e *env) login(user, name string) *http.Cookie {
	e.t.Helper()
	e.c.AddUser(user)
	e.c.Place(user, name)
	lr, err := e.c.Central().Login(context.Background(), centralapi.LoginArgs{User: user, Password: e.c.Password(user)})
	if err != nil {
		e.t.Fatal(err)
	}
	if lr.Server.Name != name {
		e.t.Fatalf("%s placed on %s, want %s", user, lr.Server.Name, name)
	}
	ticket, err := e.c.Central().IssueTicket(lr.Token, name)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := noRedirect.Get(e.sites[name].URL + "/auth?ticket=" + ticket)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		e.t.Fatalf("GET /auth: %s to %q, want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == web.SessionCookie {
			return c
		}
	}
	e.t.Fatalf("GET /auth set no %s cookie", web.SessionCookie)
	return nil
}

// msg is a message as a page receives it.
type msg struct {
	ID, Room, From, Text, Stamp, Server string
	Time                                int64
	Seq                                 uint64
	Settled                             bool
}

// frame is anything the gateway sends; each type uses some fields.
type frame struct {
	Type     string
	Req      int64
	Error    *struct{ Code, Message string }
	Room     string
	Msg      *msg
	Before   string
	Messages []msg
	More     bool
	Kind     string
	User     string
	Users    []string
	Members  []struct {
		User   string
		Online bool
	}
	Rooms []struct {
		Name   string
		Unread int
	}
}

// page is a WebSocket to a web port, as the app opens it, recording
// every frame it receives.
type page struct {
	t  *testing.T
	ws *websocket.Conn

	mu     sync.Mutex
	frames []frame
	closed bool
	req    int64
}

// dialWS opens a WebSocket to site with the cookie and Origin header.
func dialWS(site string, cookie *http.Cookie, origin string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	h.Set("Origin", origin)
	if cookie != nil {
		h.Set("Cookie", cookie.String())
	}
	return websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(site, "http")+"/ws", &websocket.DialOptions{HTTPHeader: h})
}

// open opens a page of the app of chat server name with cookie, and
// waits for its hello.
func (e *env) open(name string, cookie *http.Cookie) *page {
	e.t.Helper()
	ws, _, err := dialWS(e.sites[name].URL, cookie, e.sites[name].URL)
	if err != nil {
		e.t.Fatalf("open WebSocket: %v", err)
	}
	ws.SetReadLimit(1 << 22)
	p := &page{t: e.t, ws: ws}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				p.mu.Lock()
				p.closed = true
				p.mu.Unlock()
				return
			}
			var f frame
			if err := json.Unmarshal(data, &f); err != nil {
				panic(fmt.Sprintf("bad frame %s: %v", data, err))
			}
			p.mu.Lock()
			p.frames = append(p.frames, f)
			p.mu.Unlock()
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		_ = ws.CloseNow()
		<-done
	})
	p.wait("hello", func(f frame) bool { return f.Type == "hello" })
	return p
}

// wait waits for a frame that satisfies match and returns it.
func (p *page) wait(what string, match func(frame) bool) frame {
	p.t.Helper()
	var got frame
	rmitest.WaitForWhy(p.t, what, func() (bool, string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, f := range p.frames {
			if match(f) {
				got = f
				return true, ""
			}
		}
		var errs []string
		for _, f := range p.frames {
			if f.Error != nil {
				errs = append(errs, f.Error.Code+": "+f.Error.Message)
			}
		}
		return false, fmt.Sprintf("%d frames, errors %v (closed %v)", len(p.frames), errs, p.closed)
	})
	return got
}

// do sends a command and waits for its reply.
func (p *page) do(op string, fields map[string]any) frame {
	p.t.Helper()
	p.mu.Lock()
	p.req++
	req := p.req
	p.mu.Unlock()
	cmd := map[string]any{"req": req, "op": op}
	for k, v := range fields {
		cmd[k] = v
	}
	b, _ := json.Marshal(cmd)
	if err := p.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		p.t.Fatalf("send %s: %v", op, err)
	}
	return p.wait("the reply to "+op, func(f frame) bool { return f.Type == "reply" && f.Req == req })
}

// must is do for a command that must succeed.
func (p *page) must(op string, fields map[string]any) frame {
	p.t.Helper()
	f := p.do(op, fields)
	if f.Error != nil {
		p.t.Fatalf("%s %v: %s (%s)", op, fields, f.Error.Code, f.Error.Message)
	}
	return f
}

// pushes returns the message pushes of room received so far.
func (p *page) pushes(room string) []frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []frame
	for _, f := range p.frames {
		if f.Type == "message" && f.Room == room {
			out = append(out, f)
		}
	}
	return out
}

// shown is the list of message texts the app shows for room after the
// pushes so far, built as app.js builds it: each message goes before the
// one its push names, or last; one whose successor has not come yet
// waits for it.
func (p *page) shown(room string) []string {
	var ids []string
	text := map[string]string{}
	parked := map[string][]string{}
	var place func(id, before string)
	place = func(id, before string) {
		if _, dup := text[id]; dup && slices.Index(ids, id) >= 0 {
			return
		}
		if before == "" {
			ids = append(ids, id)
		} else if i := slices.Index(ids, before); i >= 0 {
			ids = append(ids[:i], append([]string{id}, ids[i:]...)...)
		} else {
			parked[before] = append(parked[before], id)
			return
		}
		waiting := parked[id]
		delete(parked, id)
		for _, w := range waiting {
			place(w, id)
		}
	}
	for _, f := range p.pushes(room) {
		text[f.Msg.ID] = f.Msg.Text
		place(f.Msg.ID, f.Before)
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = text[id]
	}
	return out
}

// isClosed reports whether the WebSocket ended.
func (p *page) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
