package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/distchat/distchat/central"
	"github.com/distchat/distchat/central/centralapi"
)

// Messages the pages show for bad input. Wrong credentials get one message
// whether or not the user exists.
const (
	msgBadCredentials  = "Wrong user name or password."
	msgBadRecoveryCode = "Wrong user name or recovery code."
	msgPasswordsDiffer = "The two passwords differ. Type the same password twice."
	msgWeakPassword    = "A password must be 8 to 1024 bytes long."
	msgBadName         = "A user name is 1 to 32 characters: lower-case letters a-z, digits 0-9 and _ . - (starting with a letter or a digit)."
	msgBusy            = "The server is busy checking passwords. Try again in a few seconds."
	msgNoServers       = "No chat server is available right now. Try again in a moment."
	msgNoUser          = "Type your user name."
	msgNoCode          = "Type your recovery code."
	msgInternal        = "Something went wrong on the server. Please try again."
)

// failure is an error as a page shows it: a message and an HTTP status.
type failure struct {
	status int
	msg    string
	// retryAfter, if positive, is sent as the Retry-After header.
	retryAfter time.Duration
}

// describe turns an error of central into what the page shows. Errors
// that name or reveal nothing about the user are described as they are;
// a bad name at login or reset is a wrong credential (msgBad).
func describe(err error, msgBad string) failure {
	var te *central.ThrottledError
	switch {
	case errors.As(err, &te):
		secs := max(1, int(math.Ceil(te.Wait.Seconds())))
		unit := "seconds"
		if secs == 1 {
			unit = "second"
		}
		return failure{http.StatusTooManyRequests,
			fmt.Sprintf("Too many failed attempts. Wait %d %s and try again.", secs, unit), time.Duration(secs) * time.Second}
	case errors.Is(err, centralapi.ErrThrottled):
		return failure{http.StatusTooManyRequests, "Too many failed attempts. Wait a little and try again.", 0}
	case errors.Is(err, centralapi.ErrBadCredentials), errors.Is(err, centralapi.ErrBadRecoveryCode):
		return failure{http.StatusUnauthorized, msgBad, 0}
	case errors.Is(err, centralapi.ErrBadName):
		if msgBad != "" {
			return failure{http.StatusUnauthorized, msgBad, 0}
		}
		return failure{http.StatusBadRequest, msgBadName, 0}
	case errors.Is(err, centralapi.ErrWeakPassword):
		return failure{http.StatusBadRequest, msgWeakPassword, 0}
	case errors.Is(err, centralapi.ErrUserExists):
		return failure{http.StatusConflict, "That user name is taken. Choose another.", 0}
	case errors.Is(err, centralapi.ErrBusy):
		return failure{http.StatusServiceUnavailable, msgBusy, 5 * time.Second}
	case errors.Is(err, centralapi.ErrNoServers):
		return failure{http.StatusServiceUnavailable, msgNoServers, 5 * time.Second}
	}
	return failure{http.StatusInternalServerError, msgInternal, 0}
}

// fail renders page p with the failure f, keeping the user name typed.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, p string, f failure, user string) {
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter/time.Second)))
	}
	h.render(w, r, p, f.status, pageData{Error: f.msg, User: user})
}
