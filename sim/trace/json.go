package trace

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes events as JSON lines: one Event per line, with the
// field names of Event's json tags. Durations (t) are integer nanoseconds
// of virtual time and vector clocks are objects with sorted keys, so
// identical events give identical bytes.
func WriteJSON(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return fmt.Errorf("trace event %d: %w", i, err)
		}
	}
	return bw.Flush()
}
