package web

import (
	"bytes"
	"errors"
	"net/http"
)

// pageData is what a page template renders.
type pageData struct {
	// Title is the code page's heading (the others have their own).
	Title string
	// CSRF is the token of the page's form.
	CSRF string
	// Error is the one error message, shown in #error; empty for none.
	Error string
	// User refills the user name field after an error.
	User string
	// Code is the recovery code shown once (the code page).
	Code string
	// Done says what just happened (the code page).
	Done string
	// CAFingerprint is the cluster CA's fingerprint (the login page).
	CAFingerprint string
}

// render writes page p with status, after giving d the page's CSRF token.
// Pages are never cached: they hold tokens, and one holds a recovery code.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, p string, status int, d pageData) {
	tok, err := h.csrfToken(w, r)
	if err != nil {
		h.log.Error("no CSRF token", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.CSRF = tok
	d.CAFingerprint = h.caFP
	var buf bytes.Buffer
	if err := h.pages[p].ExecuteTemplate(&buf, "layout", d); err != nil {
		h.log.Error("rendering a page", "page", p, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// parseForm reads the body of a POST to form page p (bounded by
// maxFormBytes) and checks its CSRF token. If either fails it renders p
// again with the error and returns false: nothing else may happen then.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request, p string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.render(w, r, p, http.StatusRequestEntityTooLarge, pageData{Error: "The form is too large."})
			return false
		}
		h.render(w, r, p, http.StatusBadRequest, pageData{Error: "The form could not be read; please try again."})
		return false
	}
	if !h.csrfOK(r) {
		h.log.Info("form refused: bad CSRF token", "path", r.URL.Path, "addr", r.RemoteAddr)
		h.render(w, r, p, http.StatusForbidden, pageData{
			Error: "This form expired or was sent from another site. Please try again.",
		})
		return false
	}
	return true
}
