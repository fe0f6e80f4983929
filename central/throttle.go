package central

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/distchat/distchat/central/centralapi"
)

// Login throttling. Every password (or recovery code) check is expensive
// on purpose (bcrypt), so guessing is slowed three ways:
//
//   - per address: an address (an IPv4 address, or an IPv6 /64) gets
//     throttleFree failed attempts, over all user names; after that each
//     further attempt must wait throttleBase after its last failure,
//     doubling with each failure up to throttleMax, or it is refused with
//     ErrThrottled before any password is checked;
//   - per user: once a user name has throttleFree failures from anywhere
//     (a guess spread over many addresses), each address gets one failure
//     for that user before the same growing wait applies to that pair. An
//     address that has not failed for the user (the real user, elsewhere)
//     is not slowed at all: nobody can lock a user out;
//   - at most one password check per CPU runs at once (Central.checks), so
//     a flood of wrong logins cannot starve the real ones of CPU, and at
//     most maxCheckWaiting calls wait for one, each at most maxCheckWait
//     (checkSlot), so a flood cannot hold requests without end.
//
// An attempt is counted as a failure when it is admitted, before its
// password is checked, and given back if it succeeds or is never checked:
// attempts running at once are counted as if they had run one after
// another, so concurrency cannot get more guesses past the rules (while
// every check slot is busy, an address still gets throttleFree attempts
// in, and then one per wait).
//
// Failures are forgotten throttleForget after the last one; a success
// clears the user's count and its pair with that address. The table only
// grows by failed checks, which the concurrency cap keeps to a few dozen a
// second, and is swept of forgotten entries.
//
// throttle is the pure core: no lock, no clock (now is an argument).
// Login and ResetPassword share one (Central.throttle); every later login
// surface must too.

// Throttle parameters.
const (
	throttleFree   = 20               // failures before any wait
	throttleBase   = time.Second      // the first wait
	throttleMax    = 30 * time.Second // the longest wait
	throttleForget = 15 * time.Minute // failures are forgotten this long after the last
)

// throttle counts recent failures by key: "a " + address, "u " + user,
// and "p " + user + " " + address.
type throttle struct {
	keys      map[string]*failures
	lastSweep time.Time
}

// failures is the recent failed attempts of one key.
type failures struct {
	n    int
	last time.Time
}

func newThrottle() *throttle { return &throttle{keys: map[string]*failures{}} }

// wait returns how long an attempt for user from addr must still wait at
// now; zero means it may go ahead.
func (t *throttle) wait(user, addr string, now time.Time) time.Duration {
	w := t.waitFor("a "+addr, throttleFree, now)
	if t.count("u "+user, now) >= throttleFree {
		// The user is under attack: one failure per address.
		w = max(w, t.waitFor("p "+user+" "+addr, 1, now))
	}
	return w
}

// failed records a failed attempt for user from addr at now.
func (t *throttle) failed(user, addr string, now time.Time) {
	for _, k := range []string{"a " + addr, "u " + user, "p " + user + " " + addr} {
		f := t.keys[k]
		if f == nil || now.Sub(f.last) >= throttleForget {
			f = &failures{}
			t.keys[k] = f
		}
		f.n++
		f.last = now
	}
	if now.Sub(t.lastSweep) >= throttleForget {
		t.lastSweep = now
		for k, f := range t.keys {
			if now.Sub(f.last) >= throttleForget {
				delete(t.keys, k)
			}
		}
	}
}

// unfailed takes back one failure that failed recorded for user from
// addr: the failure of an attempt counted before its check, that was not
// one after all.
func (t *throttle) unfailed(user, addr string) {
	for _, k := range []string{"a " + addr, "u " + user, "p " + user + " " + addr} {
		if f := t.keys[k]; f != nil && f.n > 0 {
			f.n--
		}
	}
}

// succeeded records a successful attempt for user from addr: the user is
// no longer under attack, and the pair starts afresh. The address keeps
// its count (it may be shared with the attacker).
func (t *throttle) succeeded(user, addr string) {
	delete(t.keys, "u "+user)
	delete(t.keys, "p "+user+" "+addr)
}

// count returns the recent failures of key.
func (t *throttle) count(key string, now time.Time) int {
	f := t.keys[key]
	if f == nil || now.Sub(f.last) >= throttleForget {
		return 0
	}
	return f.n
}

// waitFor returns how long key must still wait at now, given free
// failures before any wait.
func (t *throttle) waitFor(key string, free int, now time.Time) time.Duration {
	n := t.count(key, now)
	if n < free {
		return 0
	}
	d := throttleBase
	for i := free; i < n && d < throttleMax; i++ {
		d *= 2
	}
	d = min(d, throttleMax)
	if until := t.keys[key].last.Add(d); until.After(now) {
		return until.Sub(now)
	}
	return 0
}

// throttleAddr reduces a caller's network address to what throttling
// counts by: the IP without the port, an IPv6 address to its /64 (one
// host usually holds a whole /64). An address that does not parse is used
// as it is.
func throttleAddr(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// attemptOutcome is how an admitted attempt ended.
type attemptOutcome int

const (
	attemptFailed    attemptOutcome = iota // the secret was checked and wrong
	attemptSucceeded                       // the secret was checked and right
	attemptUnchecked                       // the secret was not checked (an error came first)
)

// admitAttempt returns ErrThrottled, with the wait, if an attempt for
// user from addr must not be checked now. Otherwise it counts the attempt
// as failed at once, before its check, and the caller must report how it
// ended with endAttempt.
func (c *Central) admitAttempt(user, addr string) error {
	c.throttleMu.Lock()
	now := c.clk.Now()
	w := c.throttle.wait(user, addr, now)
	if w <= 0 {
		c.throttle.failed(user, addr, now)
	}
	c.throttleMu.Unlock()
	if w <= 0 {
		return nil
	}
	c.log.Info("attempt throttled", "user", user, "addr", addr, "wait", w)
	return &ThrottledError{Wait: w.Round(time.Millisecond)}
}

// ThrottledError is the error of an attempt refused by the throttle: it
// says how long to wait, and wraps centralapi.ErrThrottled (so errors.Is
// works, and the code crosses rmi). An in-process caller, such as the web
// port, reads Wait with errors.As.
type ThrottledError struct {
	// Wait is how long the caller must wait before the next attempt.
	Wait time.Duration
}

// Error returns "retry in WAIT: " and ErrThrottled's message.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("retry in %v: %v", e.Wait, centralapi.ErrThrottled)
}

// Unwrap returns centralapi.ErrThrottled.
func (e *ThrottledError) Unwrap() error { return centralapi.ErrThrottled }

// endAttempt records how an attempt that admitAttempt admitted ended: a
// failure is already counted; a success or an unchecked attempt gives
// it back.
func (c *Central) endAttempt(user, addr string, out attemptOutcome) {
	c.throttleMu.Lock()
	defer c.throttleMu.Unlock()
	switch out {
	case attemptSucceeded:
		c.throttle.unfailed(user, addr)
		c.throttle.succeeded(user, addr)
	case attemptUnchecked:
		c.throttle.unfailed(user, addr)
	}
}
