package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// CSRF protection, a signed double-submit: each browser gets a random
// secret in the csrfCookie cookie (HttpOnly, SameSite=Strict), and every
// form carries, in its hidden csrfField, the HMAC of that secret under a
// key only this process knows. A POST is accepted only if the field
// matches the cookie's HMAC. Another site can make the browser post a
// form here, but cannot read the page to learn the token, and cannot
// forge one for a cookie it planted: it lacks the key. The key is made
// afresh at every start, so a form left open across a central restart is
// refused once, and the page offers a fresh one.

// csrfField is the name of the forms' hidden token field.
const csrfField = "csrf"

// csrfSecretBytes is the size of a browser's random secret.
const csrfSecretBytes = 32

// csrfToken returns the token for the forms of the page answering r,
// setting a new secret cookie on w first if the browser has none.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(csrfCookie); err == nil && validSecret(c.Value) {
		return h.csrfMAC(c.Value), nil
	}
	b, err := randomBytes(csrfSecretBytes)
	if err != nil {
		return "", err
	}
	secret := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: secret, Path: "/",
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode,
	})
	return h.csrfMAC(secret), nil
}

// csrfOK reports whether the parsed form of r carries the token of the
// browser's secret cookie.
func (h *Handler) csrfOK(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validSecret(c.Value) {
		return false
	}
	got := r.PostFormValue(csrfField)
	return hmac.Equal([]byte(got), []byte(h.csrfMAC(c.Value)))
}

// csrfMAC is the token of a browser secret: the hex HMAC-SHA256 of it.
func (h *Handler) csrfMAC(secret string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

// validSecret reports whether s looks like a secret csrfToken made.
func validSecret(s string) bool {
	if len(s) != 2*csrfSecretBytes {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}
