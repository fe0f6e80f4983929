package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi/rmitest"
)

// stalledBound is the longest a user may be stopped by a failure: the
// longest gap between two of its acknowledged posts, or the time from a
// central's death until a new user's join succeeded. A healthy run
// measures well under it (see the test's log); it is generous for a
// loaded machine.
const stalledBound = 15 * time.Second

// TestEtcdFailoverWithUsers is issue 11's failover test with users: three
// 'distchat central --etcd-member' front-ends, two chat servers and
// terminal clients ('distchat client --json') given all three central
// addresses, three users posting every 50 ms in one room on both chat
// servers. central-1, the front-end everyone uses and the etcd leader, is
// SIGKILLed; meanwhile a new user signs up, logs in and joins, and
// another leaves and rejoins. Every client says that it moved to another
// central, nobody is stopped for long, and later a chat server is
// SIGKILLed too: it leaves both remaining front-ends within its lease
// plus an election, and its users move to the other chat server. Once
// it is started again, every acknowledged post is in every member's
// history, in one order, and every account logs in.
func TestEtcdFailoverWithUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs nine processes")
	}
	h, addrs := startEtcdFrontEnds(t)
	list := strings.Join(addrs, ",")
	h.centralAddr = list // the chat servers' --central
	for _, name := range []string{"chat-1", "chat-2"} {
		h.serverNames = append(h.serverNames, name)
		h.startServer(name, "127.0.0.1:0")
	}
	accounts := []string{"ann", "bob", "cy", "probe"}
	for _, user := range accounts {
		if err := h.signupAt(list, user); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the cluster's cleanup: the clients are no longer driven
	const room = "lobby"
	ann := h.startTermUser(ctx, "ann", room, list)
	ann.must(t, "/create "+room, "create")
	bob := h.startTermUser(ctx, "bob", room, list)
	bob.must(t, "/join "+room, "join")
	cy := h.startTermUser(ctx, "cy", room, list)
	cy.must(t, "/join "+room, "join")
	users := []*termUser{ann, bob, cy}
	for _, u := range users {
		u.setPosting(t, true)
	}
	waitPosts(t, "posts before central-1's death", users, time.Time{}, 10)

	// SIGKILL central-1, the front-end everyone uses (first in the list),
	// once its member leads etcd: the two others elect a leader.
	makeLeader(t, h.dir, 1)
	killed := time.Now()
	h.kill("central-1")
	// Meanwhile bob leaves the room and rejoins it (queued now, run
	// between two of his posts), and dan signs up, logs in and joins.
	left, back := bob.send("/leave "+room), bob.send("/join "+room)
	if err := h.signupAt(list, "dan"); err != nil {
		t.Fatalf("signup during the failover: %v", err)
	}
	accounts = append(accounts, "dan")
	dan := h.startTermUser(ctx, "dan", room, list)
	dan.must(t, "/join "+room, "join")
	danJoined := time.Since(killed)
	dan.setPosting(t, true)
	var bobBack time.Duration
	for _, reply := range []<-chan termReply{left, back} {
		lines, err := bob.wait(reply)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(lines, func(l termLine) bool { return l.Type == "ok" })
		if i < 0 {
			t.Fatalf("bob's leave and rejoin during the failover: %+v; stderr:\n%s", lines, tail(bob.p.logFile, 10))
		}
		bobBack = lines[i].at.Sub(killed)
	}
	users = append(users, dan)
	// The clients that used central-1 moved by themselves and said so.
	var moved []string
	rmitest.WaitForWhy(t, "every client's central status line", func() (bool, string) {
		moved = moved[:0]
		for _, u := range []*termUser{ann, bob, cy} {
			l, ok := u.statusSince(killed, "central", func(l termLine) bool { return l.LostCentral == addrs[0] && l.Central != addrs[0] })
			if !ok {
				return false, u.name + " printed no central status line"
			}
			moved = append(moved, fmt.Sprintf("%s %v", u.name, l.at.Sub(killed).Round(time.Millisecond)))
		}
		return true, ""
	})
	// The chat servers moved too (they renew their leases at another
	// front-end).
	rmitest.WaitForWhy(t, "the chat servers to leave central-1", func() (bool, string) {
		for _, name := range h.serverNames {
			b, err := os.ReadFile(h.procs[name].logFile)
			if err != nil {
				return false, err.Error()
			}
			if !strings.Contains(string(b), "lost="+addrs[0]) {
				return false, name + " did not log its move from central-1"
			}
		}
		return true, ""
	})
	waitPosts(t, "posts after central-1's death", users, killed, 10)
	t.Logf("central-1 (the etcd leader) SIGKILLed: dan signed up, logged in and joined %v later; bob left and rejoined by %v; central status line after: %s",
		danJoined.Round(time.Millisecond), bobBack.Round(time.Millisecond), strings.Join(moved, ", "))
	checkGaps(t, "central-1's death", []*termUser{ann, bob, cy}, killed, time.Now())
	if danJoined > stalledBound {
		t.Errorf("dan joined %v after central-1's death, want within %v", danJoined, stalledBound)
	}

	// SIGKILL the chat server ann is on: it leaves both remaining
	// front-ends within its lease (plus an election), and its users move
	// to the other.
	victim := ann.lastServer()
	var survivor string
	var moving []*termUser
	for _, u := range users {
		switch s := u.lastServer(); s {
		case victim:
			moving = append(moving, u)
		default:
			survivor = s
		}
	}
	if victim == "" || survivor == "" {
		t.Fatalf("the users are not on both chat servers: %v", serversOfTerm(users))
	}
	probe, err := h.loginAt(addrs[1], "probe")
	if err != nil {
		t.Fatal(err)
	}
	// Reassign away from the survivor places the probe on the victim
	// while a front-end holds it live, and fails with ErrNoServers once
	// its lease ended there.
	placedAt := func(addr string) (string, error) {
		var rep centralapi.LoginReply
		err := h.centralAt(addr, func(ctx context.Context, st centralapi.Stub) (err error) {
			rep, err = st.Reassign(ctx, centralapi.ReassignArgs{Token: probe.Token, Failed: survivor})
			return err
		})
		return rep.Server.Name, err
	}
	for _, a := range addrs[1:] {
		if got, err := placedAt(a); err != nil || got != victim {
			t.Fatalf("the probe placed on %q (%v) at %s, want %s", got, err, a, victim)
		}
	}
	chatKilled := time.Now()
	h.kill(victim)
	rmitest.WaitForWhy(t, victim+"'s lease to end at both front-ends", func() (bool, string) {
		var why []string
		for _, a := range addrs[1:] {
			if got, err := placedAt(a); !errors.Is(err, centralapi.ErrNoServers) {
				why = append(why, fmt.Sprintf("%s places on %q (%v)", a, got, err))
			}
		}
		return len(why) == 0, strings.Join(why, "; ")
	})
	gone := time.Since(chatKilled)
	rmitest.WaitForWhy(t, "the users of "+victim+" on "+survivor, func() (bool, string) {
		for _, u := range moving {
			if _, ok := u.statusSince(chatKilled, "back", func(l termLine) bool { return l.Server == survivor }); !ok {
				return false, u.name + " printed no status back on " + survivor
			}
			if s := u.lastServer(); s != survivor {
				return false, fmt.Sprintf("%s's last post was stamped by %s", u.name, s)
			}
		}
		return true, ""
	})
	waitPosts(t, "posts after "+victim+"'s death", users, chatKilled, 10)
	t.Logf("%s SIGKILLed: it left both remaining front-ends %v later (lease %v); %s moved to %s",
		victim, gone.Round(time.Millisecond), central10s, userNamesTerm(moving), survivor)
	if gone > central10s+5*time.Second {
		t.Errorf("%s left %v after its death, want within its lease (%v) and an election", victim, gone, central10s)
	}
	checkGaps(t, victim+"'s death", users, chatKilled, time.Now())

	// Every acknowledged post is in every member's history, once, and
	// the histories are one order. A post that victim acknowledged (it
	// was durable there) but had not yet forwarded when it died reaches
	// the others only from victim's disk: victim is started again, as an
	// operator would, and forwards what it still holds.
	for _, u := range users {
		u.setPosting(t, false)
	}
	h.restart(victim)
	var acked []string
	failed := 0
	for _, u := range users {
		for _, a := range u.ackList() {
			acked = append(acked, a.text)
		}
		failed += u.failedPosts()
	}
	var n int
	rmitest.WaitForWhy(t, "every acknowledged post in every history, in one order", func() (bool, string) {
		var ref []termLine
		for i, u := range users {
			hist, err := u.do("/history " + room)
			if err != nil {
				return false, err.Error()
			}
			if i == 0 {
				ref = hist
				continue
			}
			if !slices.Equal(messageKeys(hist), messageKeys(ref)) {
				return false, fmt.Sprintf("%s's history (%d) differs from %s's (%d)", u.name, len(hist), users[0].name, len(ref))
			}
		}
		count := map[string]int{}
		for _, l := range ref {
			count[l.From+"|"+l.Text]++
		}
		for _, u := range users {
			for _, a := range u.ackList() {
				if c := count[u.name+"|"+a.text]; c != 1 {
					return false, fmt.Sprintf("%q is %d times in the history", a.text, c)
				}
			}
		}
		n = len(ref)
		return true, ""
	})
	t.Logf("%d posts acknowledged, %d not (a call that failed), %d messages in each of the %d histories", len(acked), failed, n, len(users))
	for _, u := range users {
		if errs := errorLines(u.p.logFile); len(errs) > 0 {
			t.Logf("%s's client printed: %s", u.name, strings.Join(errs, "; "))
		}
	}

	// Every account, made before and during the failover, logs in at both
	// remaining front-ends.
	for _, user := range accounts {
		for _, a := range addrs[1:] {
			if _, err := h.loginAt(a, user); err != nil {
				t.Errorf("%s at %s after the failovers: %v", user, a, err)
			}
		}
	}
}

// waitPosts waits until each of users has had n posts acknowledged after
// since.
func waitPosts(t *testing.T, what string, users []*termUser, since time.Time, n int) {
	t.Helper()
	rmitest.WaitForWhy(t, what, func() (bool, string) {
		for _, u := range users {
			if got := u.acksSince(since); got < n {
				return false, fmt.Sprintf("%s has %d (last error: %v); stderr:\n%s", u.name, got, u.stopErrIfAny(), tail(u.p.logFile, 5))
			}
		}
		return true, ""
	})
}

// checkGaps logs each user's longest gap between acknowledged posts
// around [from, to] and fails the test if one exceeds stalledBound.
func checkGaps(t *testing.T, what string, users []*termUser, from, to time.Time) {
	t.Helper()
	var gaps []string
	for _, u := range users {
		g := longestGap(u.ackList(), from, to)
		gaps = append(gaps, fmt.Sprintf("%s %v", u.name, g.Round(time.Millisecond)))
		if g > stalledBound {
			t.Errorf("%s posted nothing for %v around %s, want at most %v", u.name, g, what, stalledBound)
		}
	}
	t.Logf("longest gap between acknowledged posts around %s: %s", what, strings.Join(gaps, ", "))
}

// messageKeys returns what identifies each message of a history, in order.
func messageKeys(hist []termLine) []string {
	out := make([]string, 0, len(hist))
	for _, l := range hist {
		if l.Type == "message" {
			out = append(out, fmt.Sprintf("%d/%s/%d %s %s: %s", l.Stamp, l.Server, l.Seq, l.ID, l.From, l.Text))
		}
	}
	return out
}

// errorLines returns the "error: ..." lines of a terminal client's stderr.
func errorLines(logFile string) []string {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "error: ") {
			out = append(out, line)
		}
	}
	return out
}

func serversOfTerm(users []*termUser) map[string]string {
	out := map[string]string{}
	for _, u := range users {
		out[u.name] = u.lastServer()
	}
	return out
}

func userNamesTerm(users []*termUser) string {
	var out []string
	for _, u := range users {
		out = append(out, u.name)
	}
	return strings.Join(out, ", ")
}
