package server

import (
	"errors"
	"reflect"
	"testing"
)

// The forwarding cursors a failed write took along are handed back, to be
// written with a later commit.
func TestCommitterGivesBackCursorsOfAFailedWrite(t *testing.T) {
	st, err := openStore(t.TempDir(), "a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	errFull := errors.New("disk full")
	st.fault = func() error { return errFull }
	cursors := map[string]map[string]uint64{"b": {"r": 3}}
	var back map[string]map[string]uint64
	c := &committer{
		st:        st,
		extra:     func() map[string]map[string]uint64 { return cursors },
		unwritten: func(m map[string]map[string]uint64) { back = m },
	}
	if err := c.submit(&commitReq{last: 1}); !errors.Is(err, errFull) {
		t.Fatalf("submit on a failing disk: %v, want %v", err, errFull)
	}
	if !reflect.DeepEqual(back, cursors) {
		t.Fatalf("cursors given back %v, want %v", back, cursors)
	}
}
