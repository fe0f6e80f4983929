package server

import "testing"

func TestStamperNext(t *testing.T) {
	const future = int64(maxFuture)
	cases := []struct {
		name            string
		mode            string
		last, now, seen int64
		want            int64
	}{
		{"wall: the clock", ClockWall, 5, 100, 0, 100},
		{"wall: ignores what the author saw", ClockWall, 5, 100, 500, 100},
		{"wall: clock stepped back stays monotonic", ClockWall, 200, 100, 0, 201},
		{"hlc: the clock when nothing seen is ahead", ClockHLC, 5, 100, 50, 100},
		{"hlc: after what the author saw", ClockHLC, 5, 100, 500, 501},
		{"hlc: after a seen stamp equal to the clock", ClockHLC, 5, 100, 100, 101},
		{"hlc: seen capped at now+maxFuture", ClockHLC, 5, 100, 100 + 10*future, 100 + future + 1},
		{"hlc: after its own last stamp", ClockHLC, 900, 100, 500, 901},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newStamper(tc.mode, tc.last)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.next(tc.now, tc.seen); got != tc.want {
				t.Fatalf("next(now=%d, seen=%d) after %d = %d, want %d", tc.now, tc.seen, tc.last, got, tc.want)
			}
			// The next stamp, even at the same instant, is later.
			if again := s.next(tc.now, tc.seen); again <= tc.want {
				t.Fatalf("second stamp %d not after %d", again, tc.want)
			}
		})
	}
}

func TestStamperObserve(t *testing.T) {
	cases := []struct {
		name     string
		mode     string
		observed int64
		want     int64 // the next stamp at now=100
	}{
		{"hlc orders after a stamp stored from elsewhere", ClockHLC, 300, 301},
		{"hlc ignores an older stamp", ClockHLC, 50, 100},
		{"wall ignores other servers' clocks", ClockWall, 300, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStamper(tc.mode, 0)
			s.observe(tc.observed)
			if got := s.next(100, 0); got != tc.want {
				t.Fatalf("next after observe(%d) = %d, want %d", tc.observed, got, tc.want)
			}
		})
	}
}

func TestStamperPromise(t *testing.T) {
	cases := []struct {
		name           string
		mode           string
		last, now      int64
		wantW          int64
		nextAt, wantAt int64 // a stamp at nextAt after the promise
	}{
		{"clock ahead of every stamp", ClockWall, 50, 100, 100, 100, 101},
		{"a stamp ahead of the clock", ClockHLC, 300, 100, 300, 100, 301},
		{"wall clock stepped back below the promise", ClockWall, 0, 1000, 1000, 10, 1001},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStamper(tc.mode, tc.last)
			if w := s.promise(tc.now); w != tc.wantW {
				t.Fatalf("promise(%d) after %d = %d, want %d", tc.now, tc.last, w, tc.wantW)
			}
			if got := s.next(tc.nextAt, 0); got != tc.wantAt {
				t.Fatalf("stamp at %d after the promise = %d, want %d (above the promise)", tc.nextAt, got, tc.wantAt)
			}
		})
	}
}

func TestNewStamperModes(t *testing.T) {
	for _, tc := range []struct {
		mode, want string
		ok         bool
	}{
		{"", ClockHLC, true},
		{ClockHLC, ClockHLC, true},
		{ClockWall, ClockWall, true},
		{"lamport", "", false},
	} {
		s, err := newStamper(tc.mode, 0)
		if (err == nil) != tc.ok {
			t.Fatalf("newStamper(%q): err %v, want ok=%v", tc.mode, err, tc.ok)
		}
		if tc.ok && s.mode != tc.want {
			t.Fatalf("newStamper(%q) mode %q, want %q", tc.mode, s.mode, tc.want)
		}
	}
}
