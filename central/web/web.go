// Package web is the central server's web port: the login page, signup
// and forgot-password pages, and the redirect that sends a logged-in
// browser to the chat server central placed it on, with a one-time ticket
// (see central.IssueTicket). Every page is rendered on the server with
// html/template (which escapes what users typed); the pages need no
// JavaScript.
//
// The handlers call the same *central.Central methods the rmi interface
// serves (Login, Reassign, SignUp, ResetPassword), so there is one
// implementation of accounts and of login throttling: the web port tells
// central the browser's IP (central.WithCallerAddr), and a browser is
// throttled exactly like an rmi client from that address.
//
// Every form carries a CSRF token (csrf.go), every response the security
// headers (headers.go), and request bodies are small and bounded.
package web

import (
	"crypto/x509"
	"embed"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/rmi/pki"
)

// Cookie names.
const (
	// SessionCookie holds the session token of a browser that logged in at
	// central; /go uses it to place the session on another chat server.
	SessionCookie = "distchat_central"
	// csrfCookie holds the browser's random CSRF secret (csrf.go).
	csrfCookie = "distchat_csrf"
)

// maxFormBytes bounds a form's body: two passwords of up to 1024 bytes,
// percent-encoded (up to 3 bytes each), a name, a code and the CSRF
// token fit with room to spare.
const maxFormBytes = 16 << 10

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a Handler.
type Config struct {
	// Central is the central server the pages act on. Required.
	Central *central.Central
	// CA is the cluster CA's certificate, offered for download at /ca.crt
	// with its fingerprint on the login page. Required.
	CA *x509.Certificate
	// Secure says the port serves HTTPS: cookies are then marked Secure.
	Secure bool
	// Logger receives the log; nil means slog.Default().
	Logger *slog.Logger
}

// Handler is the central web port's http.Handler. It is safe for
// concurrent use.
type Handler struct {
	c       *central.Central
	ca      *x509.Certificate
	caPEM   []byte
	caFP    string
	secure  bool
	log     *slog.Logger
	csrfKey []byte
	pages   map[string]*template.Template
	mux     *http.ServeMux
}

// Page names: each is templates/NAME.html rendered inside layout.html.
const (
	pageLogin  = "login"
	pageSignup = "signup"
	pageForgot = "forgot"
	pageCode   = "code"
)

// New returns the web port's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Central == nil || cfg.CA == nil {
		return nil, errors.New("web: Config.Central and Config.CA are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{
		c:      cfg.Central,
		ca:     cfg.CA,
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cfg.CA.Raw}),
		caFP:   pki.Fingerprint(cfg.CA),
		secure: cfg.Secure,
		log:    cfg.Logger.With("component", "central-web"),
		pages:  map[string]*template.Template{},
	}
	key, err := randomBytes(32)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	h.csrfKey = key
	for _, p := range []string{pageLogin, pageSignup, pageForgot, pageCode} {
		t, err := template.ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("web: page %s: %w", p, err)
		}
		h.pages[p] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.loginPage)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("GET /go", h.reassign)
	m.HandleFunc("GET /signup", h.signupPage)
	m.HandleFunc("POST /signup", h.signup)
	m.HandleFunc("GET /forgot", h.forgotPage)
	m.HandleFunc("POST /forgot", h.forgot)
	m.HandleFunc("GET /ca.crt", h.caCert)
	for _, name := range []string{"style.css", "favicon.svg"} {
		m.HandleFunc("GET /static/"+name, func(w http.ResponseWriter, r *http.Request) {
			http.ServeFileFS(w, r, static, name)
		})
	}
	h.mux = m
	return h, nil
}

// ServeHTTP implements http.Handler: every response gets the security
// headers, then the route's handler runs (the mux answers 404 for an
// unknown path and 405 for a wrong method).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	h.mux.ServeHTTP(w, r)
}

// caCert serves the cluster CA certificate (PEM), to be imported into a
// browser or given to the terminal client as --ca.
func (h *Handler) caCert(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Header().Set("Content-Disposition", `attachment; filename="distchat-ca.crt"`)
	w.Write(h.caPEM)
}
