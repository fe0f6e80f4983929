package sim

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Workload describes a random run: a topology and posts at random times.
type Workload struct {
	Servers int
	Clients int
	Rooms   int
	Posts   int
	// Skew is the largest clock offset between servers: server i of n is
	// offset by Skew*i/(n-1), so s1 is exact and the last is Skew ahead.
	Skew time.Duration
	// Drift is the largest rate error (e.g. 1e-4 = 100 ppm); server i runs
	// fast by Drift*i/(n-1).
	Drift float64
	// Gap is the mean time between posts (exponentially distributed).
	Gap time.Duration
	// Settle is how long to run after the last post before checking.
	Settle time.Duration
}

func (w *Workload) defaults() {
	if w.Servers <= 0 {
		w.Servers = 3
	}
	if w.Clients <= 0 {
		w.Clients = 6
	}
	if w.Rooms <= 0 {
		w.Rooms = 2
	}
	if w.Gap <= 0 {
		w.Gap = 20 * time.Millisecond
	}
	if w.Settle <= 0 {
		// Long enough for the slowest recoveries: a call timing out (30s)
		// then a failover and catch-up, or a few anti-entropy rounds (10s).
		w.Settle = time.Minute
	}
}

// Server, user and room names of random runs.
func serverName(i int) string { return fmt.Sprintf("s%d", i+1) }
func userName(i int) string   { return fmt.Sprintf("u%02d", i+1) }
func roomName(i int) string   { return fmt.Sprintf("r%d", i+1) }

// RunWorkload builds the topology, runs the posts, lets the system settle
// and returns the checkers' report.
func (s *Sim) RunWorkload(w Workload) (*Report, error) {
	w.defaults()
	for i := 0; i < w.Servers; i++ {
		frac := 0.0
		if w.Servers > 1 {
			frac = float64(i) / float64(w.Servers-1)
		}
		if err := s.AddServer(serverName(i), time.Duration(frac*float64(w.Skew)), frac*w.Drift); err != nil {
			return nil, err
		}
	}
	s.Run(100 * time.Millisecond)
	for i := 0; i < w.Clients; i++ {
		if err := s.AddUser(userName(i), serverName(i%w.Servers)); err != nil {
			return nil, err
		}
	}
	// Logins can be slow when the network loses messages (a lost call
	// waits out its timeout); wait for them, within reason.
	s.RunUntil(func() bool {
		for _, n := range s.clients {
			if n.cl == nil {
				return false
			}
		}
		return true
	}, 5*time.Minute)
	// The first user creates every room. Each user is in two rooms (or
	// all of them, when there are fewer): its home room (i mod rooms) and
	// one other drawn at random; the first user, as creator, is in all.
	for r := 0; r < w.Rooms; r++ {
		if err := s.Create(userName(0), roomName(r)); err != nil {
			return nil, err
		}
	}
	creator := s.nodes[userName(0)]
	for try := 0; try < 10 && !s.RunUntil(func() bool { return len(creator.joined) == w.Rooms }, time.Minute); try++ {
		// A lost reply leaves it unknown whether the room was made: join
		// (idempotent) what is missing; create what does not exist yet.
		for r := 0; r < w.Rooms; r++ {
			if !creator.joined[roomName(r)] {
				s.createOrJoin(userName(0), roomName(r))
			}
		}
	}
	for i := 1; i < w.Clients; i++ {
		home := i % w.Rooms
		rooms := []int{home}
		if w.Rooms > 1 {
			other := s.rng.IntN(w.Rooms - 1)
			if other >= home {
				other++
			}
			rooms = append(rooms, other)
		}
		for _, r := range rooms {
			s.wanted = append(s.wanted, [2]string{userName(i), roomName(r)})
			if err := s.Join(userName(i), roomName(r)); err != nil {
				return nil, err
			}
		}
	}
	for try := 0; try < 10 && !s.RunUntil(func() bool { return s.pendingJoins() == 0 }, time.Minute); try++ {
		for _, j := range s.wanted {
			if !s.nodes[j[0]].joined[j[1]] {
				s.Join(j[0], j[1])
			}
		}
	}
	// Posts: each by a random user to a random room of theirs.
	memberOf := make([][]string, w.Clients)
	for i := 0; i < w.Clients; i++ {
		n := s.nodes[userName(i)]
		memberOf[i] = slices.Sorted(maps.Keys(n.joined))
	}
	t := s.sched.now
	for p := 0; p < w.Posts; p++ {
		t = t.Add(time.Duration(s.rng.ExpFloat64() * float64(w.Gap)))
		i := s.rng.IntN(w.Clients)
		if len(memberOf[i]) == 0 {
			continue
		}
		room := memberOf[i][s.rng.IntN(len(memberOf[i]))]
		user, text := userName(i), fmt.Sprintf("%s#%d", userName(i), p+1)
		s.sched.at(t, nil, func() { s.Post(user, room, text) })
	}
	s.Run(t.Sub(s.sched.now))
	// Quiescence: faults stop (the network no longer loses or duplicates
	// messages) and the system is given time to converge.
	s.Quiesce(w.Settle)
	return s.Check(), nil
}

// pendingJoins is how many of the workload's joins have not completed.
func (s *Sim) pendingJoins() int {
	done := 0
	for _, n := range s.clients[1:] {
		done += len(n.joined)
	}
	return len(s.wanted) - done
}
