package server

import (
	"reflect"
	"testing"
)

// wms is one Forward's watermarks from one server.
type wms struct {
	from string
	wm   map[string]int64
}

func TestSettledPoint(t *testing.T) {
	cases := []struct {
		name     string
		known    []string // besides self "a"
		own      int64    // a's own promise (0: none)
		received []wms
		room     string
		want     int64
		wantOK   bool
	}{
		{name: "alone: its own promise", own: 50, room: "r", want: 50, wantOK: true},
		{name: "nothing promised", room: "r"},
		{
			name: "minimum over servers", known: []string{"b", "c"}, own: 50,
			received: []wms{{"b", map[string]int64{"": 70}}, {"c", map[string]int64{"": 40}}},
			room:     "r", want: 40, wantOK: true,
		},
		{
			name: "a server that never promised holds it back", known: []string{"b", "c"}, own: 50,
			received: []wms{{"b", map[string]int64{"": 70}}},
			room:     "r",
		},
		{
			name: "a room's own entry overrides the default", known: []string{"b"}, own: 50,
			received: []wms{{"b", map[string]int64{"": 70, "r": 60}}},
			room:     "r", want: 50, wantOK: true,
		},
		{
			name: "the default covers rooms without an entry", known: []string{"b"}, own: 90,
			received: []wms{{"b", map[string]int64{"": 70, "r": 60}}},
			room:     "other", want: 70, wantOK: true,
		},
		{
			name: "an entry of 0 (the peer lacks messages) holds the room back", known: []string{"b"}, own: 50,
			received: []wms{{"b", map[string]int64{"": 70, "r": 0}}},
			room:     "r",
		},
		{
			name: "a watermark never moves back", known: []string{"b"}, own: 100,
			received: []wms{{"b", map[string]int64{"": 70, "r": 80}}, {"b", map[string]int64{"": 30, "r": 20}}},
			room:     "r", want: 80, wantOK: true,
		},
		{
			name: "a sender not known before now holds other rooms back", own: 50,
			received: []wms{{"b", map[string]int64{"r": 60}}},
			room:     "other",
		},
		{
			name: "watermarks from self are ignored", own: 50,
			received: []wms{{"a", map[string]int64{"": 10}}},
			room:     "r", want: 50, wantOK: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := newSettledTracker("a", tc.known)
			if tc.own != 0 {
				st.promise(tc.own)
			}
			for _, r := range tc.received {
				st.receive(r.from, r.wm)
			}
			got, ok := st.point(tc.room)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("point(%q) = %d, %v; want %d, %v", tc.room, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestSettledAdvanceNotifiesOnlyWhenItMoves(t *testing.T) {
	st := newSettledTracker("a", []string{"b"})
	rooms := []string{"r", "s"}
	steps := []struct {
		name    string
		own     int64
		from    map[string]int64 // from b
		learn   string           // a server seen for the first time
		notices []settledNotice
	}{
		{name: "a alone has promised", own: 10},
		{name: "b promises: both rooms settle", from: map[string]int64{"": 20}, notices: []settledNotice{{"r", 10}, {"s", 10}}},
		{name: "the same again: no notice", from: map[string]int64{"": 20}},
		{name: "a moves: both advance to b's", own: 30, notices: []settledNotice{{"r", 20}, {"s", 20}}},
		{name: "b moves room s only", from: map[string]int64{"": 20, "s": 25}, notices: []settledNotice{{"s", 25}}},
		{name: "b lacks a's messages in r: r waits, s keeps b's own entry", from: map[string]int64{"": 40, "r": 0}},
		{name: "b has them now: both move to a's", from: map[string]int64{"": 40, "r": 40, "s": 40}, notices: []settledNotice{{"r", 30}, {"s", 30}}},
		{name: "a server seen for the first time holds both back", own: 60, learn: "c"},
	}
	for _, step := range steps {
		if step.own != 0 {
			st.promise(step.own)
		}
		if step.from != nil {
			st.receive("b", step.from)
		}
		if step.learn != "" {
			st.learn(step.learn)
		}
		if got := st.advance(rooms); !reflect.DeepEqual(got, step.notices) {
			t.Fatalf("%s: notices %v, want %v", step.name, got, step.notices)
		}
	}
	if st.told["r"] != 30 || st.told["s"] != 30 {
		t.Fatalf("told %v, want r=30 s=30", st.told)
	}
	// Only rooms asked about (those with local members) are told.
	st.promise(50)
	st.receive("b", map[string]int64{"": 50, "r": 50, "s": 50, "t": 50})
	st.receive("c", map[string]int64{"": 50})
	if got, want := st.advance([]string{"t"}), []settledNotice{{"t", 50}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("notices %v, want %v", got, want)
	}
}

func TestSettledKnownServers(t *testing.T) {
	st := newSettledTracker("a", []string{"c"})
	if got := st.takeKnown(); got != nil {
		t.Fatalf("takeKnown with nothing new = %v, want nil", got)
	}
	st.learn("c")
	if got := st.takeKnown(); got != nil {
		t.Fatalf("learning a known server dirtied the list: %v", got)
	}
	st.learn("b")
	if got, want := st.takeKnown(), []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("takeKnown = %v, want %v", got, want)
	}
	if got := st.takeKnown(); got != nil {
		t.Fatalf("takeKnown twice = %v, want nil", got)
	}
	// A list whose write failed is taken again.
	st.unsavedKnown()
	if got, want := st.takeKnown(), []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("takeKnown after a failed write = %v, want %v", got, want)
	}
	// A Forward's watermarks teach the sender, but an empty set does not.
	if st.receive("d", nil) {
		t.Fatal("an empty set of watermarks was recorded")
	}
	if st.receive("e", map[string]int64{"": 1}); !reflect.DeepEqual(st.takeKnown(), []string{"a", "b", "c", "e"}) {
		t.Fatal("sender of watermarks not learned")
	}
}
