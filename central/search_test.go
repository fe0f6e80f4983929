package central

import (
	"slices"
	"testing"

	"github.com/distchat/distchat/central/centralapi"
)

func TestSearchUsers(t *testing.T) {
	e := newEnv(t)
	e.signUp("bob", "alice", "alfred", "al", "carol")
	cases := []struct {
		prefix string
		limit  int
		want   []string
	}{
		{"al", 0, []string{"al", "alfred", "alice"}},
		{"al", 2, []string{"al", "alfred"}},
		{"ali", 0, []string{"alice"}},
		{"z", 0, nil},
		{"", 0, []string{"al", "alfred", "alice", "bob", "carol"}},
		{"", 1000, []string{"al", "alfred", "alice", "bob", "carol"}},
	}
	for _, c := range cases {
		got, err := e.c.SearchUsers(ctx, centralapi.SearchArgs{Prefix: c.prefix, Limit: c.limit})
		if err != nil || !slices.Equal(got.Users, c.want) {
			t.Errorf("SearchUsers(%q, %d) = %v, %v; want %v", c.prefix, c.limit, got.Users, err, c.want)
		}
	}
}

func TestRegisterTellsCentralHTTP(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.HTTP = "10.0.0.1:8080" })
	r, err := e.c.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s1", Addr: "127.0.0.1:7000"})
	if err != nil || r.CentralHTTP != "10.0.0.1:8080" {
		t.Fatalf("RegisterServer: %+v, %v", r, err)
	}
}
