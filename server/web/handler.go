package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/server/chatapi"
)

//go:embed static
var staticFiles embed.FS

// Cookie names and defaults.
const (
	// SessionCookie holds the session token (HttpOnly, SameSite=Strict).
	SessionCookie = "distchat_session"
	// DefaultPostRate and DefaultPostBurst are the per-user post limit:
	// a token bucket of DefaultPostBurst refilled DefaultPostRate a second.
	DefaultPostRate  = 10
	DefaultPostBurst = 20
	// DefaultPageSize is how many messages a history page holds.
	DefaultPageSize = 50
	// callTimeout bounds the central calls the handler makes itself.
	callTimeout = 10 * time.Second
)

// Config configures a Handler. Server, Cluster and Client.Central and
// Client.Dial are required.
type Config struct {
	// Server is this chat server: its Name (tickets name it), the Addr of
	// its RMI listener, which the gateway's clients attach to, and HTTP,
	// the host:port of this web port.
	Server centralapi.ServerInfo
	// Origin is this web port's origin as browsers see it
	// (scheme://host:port); WebSockets from any other origin are refused.
	// Default centralapi.WebURL(Server.HTTP). Cookies are Secure when it
	// is https.
	Origin string
	// CentralWeb returns central's web base URL (such as
	// http://127.0.0.1:8080), where a browser without a session is sent to
	// log in; "" while it is unknown.
	CentralWeb func() string
	// Cluster is central's cluster interface: RedeemTicket and
	// SearchUsers.
	Cluster centralapi.Cluster
	// Client is the template of each session's client.Client: Central
	// (the registry's address, for logout and failover) and Dial (how to
	// reach Server.Addr, over TLS with the cluster CA in production) are
	// required; Clock and Logger default to the Handler's.
	Client client.Config
	// Clock is the only source of time (the rate limit); default
	// clock.New().
	Clock clock.Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// PostRate and PostBurst set the per-user post rate limit; defaults
	// DefaultPostRate and DefaultPostBurst.
	PostRate  float64
	PostBurst int
	// PageSize is the number of messages in a history page; default
	// DefaultPageSize.
	PageSize int
}

// Handler serves a chat server's web port. Close it to detach the
// sessions it attached.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	secure bool
	limit  *limiter
	// voiceLimit is the per-user limit of voice-join and voice-signal.
	voiceLimit *limiter
	// testVoice, set only by tests, replaces the sessions' voice
	// operations: those of user, delivering the SFU's signals to deliver.
	testVoice func(user string, deliver func(room string, sig chatapi.VoiceSignal)) voiceClient
	mux       *http.ServeMux
	index     *template.Template

	mu       sync.Mutex
	closed   bool
	sessions map[string]*session // by token
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Server.Name == "" || cfg.Server.Addr == "":
		return nil, errors.New("web: no chat server name or address")
	case cfg.Cluster == nil:
		return nil, errors.New("web: no central cluster interface")
	case cfg.Client.Central == "" || cfg.Client.Dial == nil:
		return nil, errors.New("web: no client Central or Dial")
	}
	if cfg.Origin == "" {
		cfg.Origin = centralapi.WebURL(cfg.Server.HTTP)
	}
	cfg.Origin = strings.TrimSuffix(cfg.Origin, "/")
	if cfg.CentralWeb == nil {
		cfg.CentralWeb = func() string { return "" }
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client.Clock == nil {
		cfg.Client.Clock = cfg.Clock
	}
	if cfg.Client.Logger == nil {
		cfg.Client.Logger = cfg.Logger
	}
	if cfg.PostRate <= 0 {
		cfg.PostRate = DefaultPostRate
	}
	if cfg.PostBurst <= 0 {
		cfg.PostBurst = DefaultPostBurst
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	index, err := template.ParseFS(staticFiles, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	assets, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	h := &Handler{
		cfg: cfg, log: cfg.Logger, secure: strings.HasPrefix(cfg.Origin, "https://"),
		limit:      newLimiter(cfg.Clock, cfg.PostRate, cfg.PostBurst),
		voiceLimit: newLimiter(cfg.Clock, voiceRate, voiceBurst),
		mux:        http.NewServeMux(), index: index, sessions: map[string]*session{},
	}
	h.mux.HandleFunc("GET /auth", h.serveAuth)
	h.mux.HandleFunc("GET /{$}", h.serveApp)
	h.mux.HandleFunc("POST /logout", h.serveLogout)
	h.mux.HandleFunc("GET /ws", h.serveWS)
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(assets)))
	return h, nil
}

// ServeHTTP implements http.Handler: every response carries the security
// headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// No inline script or style, nothing from elsewhere; forms may post
	// here only, and the logout's redirect goes to central.
	formAction := "'self'"
	if c := h.cfg.CentralWeb(); c != "" {
		formAction += " " + c
	}
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; base-uri 'none'; form-action "+formAction+"; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// Close detaches every session the gateway attached and closes the
// WebSockets; later ones are refused.
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed = true
	sessions := h.sessions
	h.sessions = map[string]*session{}
	h.mu.Unlock()
	for _, s := range sessions {
		s.shut()
	}
	return nil
}

// toCentral sends the browser to central's login page, or says where to
// go if central has no web port this server knows of.
func (h *Handler) toCentral(w http.ResponseWriter, r *http.Request) {
	if c := h.cfg.CentralWeb(); c != "" {
		http.Redirect(w, r, c+"/", http.StatusSeeOther)
		return
	}
	http.Error(w, "Not logged in: log in at the central server's web page.", http.StatusUnauthorized)
}

// serveAuth redeems a login ticket for the session cookie.
func (h *Handler) serveAuth(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	if ticket == "" || len(ticket) > 256 {
		h.toCentral(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	tr, err := h.cfg.Cluster.RedeemTicket(ctx, centralapi.TicketArgs{Ticket: ticket, Server: h.cfg.Server.Name})
	if err != nil {
		h.log.Info("web: ticket refused", "err", err)
		h.toCentral(w, r)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: tr.Token, Path: "/",
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// token returns the session token of r's cookie, or "".
func token(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken is the logout form's CSRF token for a session: an HMAC of a
// fixed label under the session token, which a page of another origin
// cannot read or compute.
func csrfToken(tok string) string {
	m := hmac.New(sha256.New, []byte(tok))
	m.Write([]byte("distchat logout"))
	return hex.EncodeToString(m.Sum(nil))
}

// serveApp serves the chat app to a browser with a session cookie.
func (h *Handler) serveApp(w http.ResponseWriter, r *http.Request) {
	tok := token(r)
	if tok == "" {
		h.toCentral(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	data := struct{ CSRF, Server, Central string }{csrfToken(tok), h.cfg.Server.Name, h.cfg.CentralWeb()}
	if err := h.index.Execute(w, data); err != nil {
		h.log.Warn("web: render app", "err", err)
	}
}

// serveLogout ends the session at central (everywhere: its WebSockets
// here are told it ended) and sends the browser to central's login page.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	tok := token(r)
	if tok == "" {
		h.toCentral(w, r)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(csrfToken(tok))) != 1 {
		http.Error(w, "Forbidden: bad or missing CSRF token.", http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	if err := client.LogoutSession(ctx, h.cfg.Client, tok); err != nil && !errors.Is(err, centralapi.ErrBadSession) {
		h.log.Warn("web: log out", "err", err)
		http.Error(w, "Could not log out: the central server did not answer. Try again.", http.StatusBadGateway)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode,
	})
	h.toCentral(w, r)
}

// sameOrigin reports whether the WebSocket request r comes from a page of
// this web port.
func (h *Handler) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme+"://"+u.Host, h.cfg.Origin)
}
