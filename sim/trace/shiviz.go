package trace

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
	"unicode"
)

// ShiVizRegex is the log-parsing regular expression WriteShiViz puts on
// the first line of its output: a host and its vector clock on one line,
// the event's description on the next.
const ShiVizRegex = `(?<host>\S*) (?<clock>{.*})\n(?<event>.*)`

// WriteShiViz writes events as a log for ShiViz
// (https://bestchai.bitbucket.io/shiviz/), the vector-clock visualiser:
// the first line is ShiVizRegex, the second the (empty) delimiter between
// executions, then two lines per event, "HOST {VECTOR CLOCK}" and a
// description beginning with the event's kind and virtual time.
//
// Every event that happens on a node (Node set) is written; network-wide
// events (partition, heal) are not, as they belong to no host. ShiViz
// insists that a host's own clock component counts that host's events
// 1, 2, 3, ... and that every clock entry names an event in the log, so
// the vector clocks are recomputed here, over exactly the events written,
// rather than copied from Event.VC: each event increments its host's own
// entry; a recv also merges the clock of the matching send (same Call)
// and a return the clock of the reply it received. That makes the log
// consistent whatever the trace holds, including local events (post, ack,
// deliver, crash, ...) that carry no VC in the trace.
func WriteShiViz(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s\n\n", ShiVizRegex)
	legs := messageLegs(events)
	// cause[i] is the event whose clock event i merges (its send or
	// reply), or -1; readers[c] counts the events still to merge c's
	// clock, which is kept in inflight only until then, so memory follows
	// the messages in flight, not the length of the trace.
	cause := make([]int, len(events))
	for i := range cause {
		cause[i] = -1
	}
	readers := map[int]int{}
	for _, l := range legs {
		if l.to >= 0 {
			cause[l.to] = l.from
			readers[l.from]++
		}
	}
	cur := map[string]map[string]uint64{} // each host's clock now
	inflight := map[int]map[string]uint64{}
	for i := range events {
		e := &events[i]
		if e.Node == "" {
			continue
		}
		host := shivizHost(e.Node)
		vc := cur[host]
		if vc == nil {
			vc = map[string]uint64{}
			cur[host] = vc
		}
		if c := cause[i]; c >= 0 {
			for k, x := range inflight[c] {
				vc[k] = max(vc[k], x)
			}
			if readers[c]--; readers[c] == 0 {
				delete(inflight, c)
				delete(readers, c)
			}
		}
		vc[host]++
		if readers[i] > 0 {
			inflight[i] = maps.Clone(vc)
		}
		b, err := json.Marshal(vc)
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "%s %s\n%s\n", host, b, describe(e))
	}
	return bw.Flush()
}

// shivizHost is a node's name as a ShiViz host: the regex reads a host as
// \S*, so white space becomes '_'.
func shivizHost(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, name)
}
