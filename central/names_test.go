package central

import (
	"regexp"
	"testing"

	"pgregory.net/rapid"
)

// The name checks are the regular expressions they are documented as,
// written out by hand: they agree with those expressions on names drawn
// from the bytes that matter (every class, and a few outside them) and
// around both length limits.
func TestNameChecksAreTheirRegexps(t *testing.T) {
	checks := []struct {
		name  string
		valid func(string) bool
		re    *regexp.Regexp
	}{
		{"user", ValidUserName, regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,31}$`)},
		{"room", ValidRoomName, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)},
		{"server", ValidServerName, regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)},
	}
	rapid.Check(t, func(t *rapid.T) {
		// Mostly the bytes one of the checks allows, so that long names
		// can pass it.
		alphabet := []byte(rapid.SampledFrom([]string{"az09_.-", "azAZ09_.-", "az09-", "azAZ09_.-:/ \n\x00\xff@"}).Draw(t, "alphabet"))
		n := rapid.SampledFrom([]int{0, 1, 2, 31, 32, 33, 63, 64, 65}).Draw(t, "len")
		b := make([]byte, n)
		for i := range b {
			b[i] = rapid.SampledFrom(alphabet).Draw(t, "byte")
		}
		if n > 0 && rapid.Bool().Draw(t, "valid start") {
			b[0] = rapid.SampledFrom([]byte("a0Z")).Draw(t, "start")
		}
		s := string(b)
		for _, c := range checks {
			if got, want := c.valid(s), c.re.MatchString(s); got != want {
				t.Fatalf("%s name %q: valid %v, regexp says %v", c.name, s, got, want)
			}
		}
	})
	for _, c := range checks { // names every check takes or refuses
		for _, s := range []string{"a", "a-b", "0"} {
			if !c.valid(s) {
				t.Errorf("%s name %q refused", c.name, s)
			}
		}
		for _, s := range []string{"", "-a", "a b", "a\n"} {
			if c.valid(s) {
				t.Errorf("%s name %q taken", c.name, s)
			}
		}
	}
}

// BenchmarkNameChecks checks the names a chat server checks in every
// message it is forwarded: a room's and a server's.
func BenchmarkNameChecks(b *testing.B) {
	for b.Loop() {
		if !ValidRoomName("bench-room.42") || !ValidServerName("s2") {
			b.Fatal("refused")
		}
	}
}
