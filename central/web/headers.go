package web

import "net/http"

// contentSecurityPolicy allows the page's own style sheet and images and
// nothing else: no inline script or style, no script at all (the pages
// need none), no framing. It sets no form-action: a login form's POST is
// answered with a redirect to the chat server's origin, and browsers
// check form-action against redirects too.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// setSecurityHeaders sets the headers every response carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // the redirect's address holds a ticket
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}
