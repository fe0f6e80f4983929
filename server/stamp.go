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

// stamper hands out stamp times. It is not safe for concurrent use; the
// server calls it under its lock.
type stamper struct {
	mode string
	last int64 // the largest time handed out or (in hlc mode) observed
}

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
// largest time the author has seen. Times strictly increase per server, so
// each origin's stream of a room is in stamp order.
func (s *stamper) next(now, seen int64) int64 {
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
