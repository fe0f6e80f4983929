package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
)

// callerCtx is r's context telling central the browser's address, so that
// Login and ResetPassword throttle it as they throttle an rmi client's.
// It is the TCP peer's address: a proxy's X-Forwarded-For is not trusted.
func callerCtx(r *http.Request) context.Context {
	return central.WithCallerAddr(r.Context(), r.RemoteAddr)
}

// loginPage is GET /: the login form.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, pageLogin, http.StatusOK, pageData{})
}

// login is POST /login: it logs the user in at central, keeps the session
// in central's own cookie (for /go), and redirects the browser to the chat
// server central placed it on.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r, pageLogin) {
		return
	}
	user := r.PostFormValue("user")
	rep, err := h.c.Login(callerCtx(r), centralapi.LoginArgs{User: user, Password: r.PostFormValue("password")})
	if err != nil {
		h.failed(w, r, pageLogin, err, msgBadCredentials, user)
		return
	}
	http.SetCookie(w, h.sessionCookie(rep.Token))
	h.toServer(w, r, rep)
}

// reassign is GET /go?failed=NAME: the chat app comes here when its chat
// server is gone (or the browser has no session there): the session of
// central's cookie is placed on another live server, and the browser sent
// there. Without a valid session it goes to the login page.
func (h *Handler) reassign(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	failed := r.URL.Query().Get("failed")
	rep, err := h.c.Reassign(r.Context(), centralapi.ReassignArgs{Token: c.Value, Failed: failed})
	switch {
	case errors.Is(err, centralapi.ErrBadSession):
		http.SetCookie(w, h.sessionCookie(""))
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	case errors.Is(err, centralapi.ErrBadName):
		h.render(w, r, pageLogin, http.StatusBadRequest, pageData{Error: "That link names no valid chat server."})
		return
	case err != nil:
		h.failed(w, r, pageLogin, err, "", "")
		return
	}
	h.toServer(w, r, rep)
}

// toServer sends the browser to the chat server of rep with a one-time
// ticket that server exchanges for the session.
func (h *Handler) toServer(w http.ResponseWriter, r *http.Request, rep centralapi.LoginReply) {
	if rep.Server.HTTP == "" {
		h.render(w, r, pageLogin, http.StatusServiceUnavailable, pageData{
			Error: "Chat server " + rep.Server.Name + " has no web port. Ask the operator to start it with --http.", User: rep.User})
		return
	}
	t, err := h.c.IssueTicket(rep.Token, rep.Server.Name)
	if err != nil {
		h.failed(w, r, pageLogin, err, "", rep.User)
		return
	}
	http.Redirect(w, r, centralapi.WebURL(rep.Server.HTTP)+"/auth?ticket="+url.QueryEscape(t), http.StatusSeeOther)
}

// sessionCookie is central's cookie holding token; an empty token deletes
// it.
func (h *Handler) sessionCookie(token string) *http.Cookie {
	c := &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/",
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
		MaxAge: int(central.DefaultSessionTTL.Seconds()),
	}
	if token == "" {
		c.MaxAge = -1
	}
	return c
}

// signupPage is GET /signup.
func (h *Handler) signupPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, pageSignup, http.StatusOK, pageData{})
}

// signup is POST /signup: it creates the account and shows its recovery
// code, once.
func (h *Handler) signup(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r, pageSignup) {
		return
	}
	user, pw := r.PostFormValue("user"), r.PostFormValue("password")
	if msg := checkNewPassword(user, pw, r.PostFormValue("password2")); msg != "" {
		h.render(w, r, pageSignup, http.StatusBadRequest, pageData{Error: msg, User: user})
		return
	}
	rep, err := h.c.SignUp(r.Context(), centralapi.SignUpArgs{User: user, Password: pw})
	if err != nil {
		h.failed(w, r, pageSignup, err, "", user)
		return
	}
	h.render(w, r, pageCode, http.StatusOK, pageData{Title: "Account created", User: user, Code: rep.RecoveryCode,
		Done: "Your account " + user + " is ready."})
}

// forgotPage is GET /forgot.
func (h *Handler) forgotPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, pageForgot, http.StatusOK, pageData{})
}

// forgot is POST /forgot: with the recovery code it sets the new password
// (central ends the user's sessions) and shows the next code.
func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r, pageForgot) {
		return
	}
	user, pw, code := r.PostFormValue("user"), r.PostFormValue("password"), r.PostFormValue("code")
	msg := checkNewPassword(user, pw, r.PostFormValue("password2"))
	if msg == "" && code == "" {
		msg = msgNoCode
	}
	if msg != "" {
		h.render(w, r, pageForgot, http.StatusBadRequest, pageData{Error: msg, User: user})
		return
	}
	rep, err := h.c.ResetPassword(callerCtx(r), centralapi.ResetArgs{User: user, RecoveryCode: code, NewPassword: pw})
	if err != nil {
		h.failed(w, r, pageForgot, err, msgBadRecoveryCode, user)
		return
	}
	h.render(w, r, pageCode, http.StatusOK, pageData{Title: "Password changed", User: user, Code: rep.RecoveryCode,
		Done: "The password of " + user + " is changed, and its sessions have ended."})
}

// checkNewPassword returns the message for a new-password form's obvious
// mistakes, before central is asked: no name, or two different passwords.
// Central checks the rest (the name's and the password's rules).
func checkNewPassword(user, pw, pw2 string) string {
	switch {
	case user == "":
		return msgNoUser
	case pw != pw2:
		return msgPasswordsDiffer
	}
	return ""
}

// failed renders page p with the description of central's error err (see
// describe), logging the unexpected ones.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, p string, err error, msgBad, user string) {
	f := describe(err, msgBad)
	if f.status == http.StatusInternalServerError {
		h.log.Error("request failed", "path", r.URL.Path, "err", err)
	}
	h.fail(w, r, p, f, user)
}
