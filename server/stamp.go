package server

import "fmt"

// Clock modes for stamping.
const (
	// ClockWall stamps with the server's wall clock (kept monotonic per
	// server), as the original did. With skewed clocks a reply can be
	// ordered before the message it answers.
	ClockWall = "wall"
	// ClockHLC stamps with a hybrid logical clock: above the wall clock,
	// above every stamp this server has stored, and above the largest stamp
	// the posting client has seen, so replies order after what they answer.
	ClockHLC = "hlc"
)

// stamper is the stamping core: it decides the time of each stamp. It is a
// plain value with no lock and no clock of its own: the server calls it
// under its lock and passes the wall clock in.
type stamper struct {
	mode string
	last int64 // the largest time handed out, promised or (in hlc mode) observed
}

// newStamper returns a stamper in mode ("" is ClockHLC) that stamps above
// last, the largest time this server handed out or promised before.
func newStamper(mode string, last int64) (*stamper, error) {
	switch mode {
	case "":
		mode = ClockHLC
	case ClockWall, ClockHLC:
	default:
		return nil, fmt.Errorf("clock mode %q: want %q or %q", mode, ClockWall, ClockHLC)
	}
	return &stamper{mode: mode, last: last}, nil
}

// next returns the time for a new stamp given the wall clock now and the
// largest time the author has seen (capped at now+maxFuture; ignored in
// wall mode). Times strictly increase per server, so each origin's stream
// of a room is in stamp order.
func (s *stamper) next(now, seen int64) int64 {
	seen = min(seen, now+int64(maxFuture))
	t := now
	if s.mode == ClockHLC && seen >= t {
		t = seen + 1
	}
	if t <= s.last {
		t = s.last + 1
	}
	s.last = t
	return t
}

// observe records a stamp time stored from elsewhere (hlc mode only), so
// later stamps order after it.
func (s *stamper) observe(t int64) {
	if s.mode == ClockHLC && t > s.last {
		s.last = t
	}
}

// promise returns a watermark, the larger of now and every time handed out
// so far, and stamps only above it from now on (see settled.go).
func (s *stamper) promise(now int64) int64 {
	s.last = max(s.last, now)
	return s.last
}
