package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/distchat/distchat/server/chatapi"
)

// The records of the chat server's log (store.go). Each starts with its
// kind, one byte; strings are a uvarint length and the bytes; numbers are
// varints. A hand-written encoding rather than msgpack: a message is
// encoded on every commit and decoded on every read, and this needs no
// reflection.
const (
	recName    = 'n' // the server's name: the first record of a new log
	recMessage = 'm' // a message: room, id, from, text, stamp
	recCursors = 'c' // forwarding cursors: (dest, room, own seq) triples
	recLast    = 'l' // the largest stamp time (or watermark promised)
	recKnown   = 'k' // every chat server ever seen
	recProbe   = 'p' // a storage probe (storage.go), probeSize bytes of no meaning
)

// errBadRecord reports a record that does not decode.
var errBadRecord = errors.New("malformed log record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeName(name string) []byte { return appendString([]byte{recName}, name) }

func encodeMessage(m chatapi.Message) []byte {
	b := make([]byte, 0, 24+len(m.Room)+len(m.ID)+len(m.From)+len(m.Text)+len(m.Stamp.Server))
	b = append(b, recMessage)
	for _, s := range []string{m.Room, m.ID, m.From, m.Text, m.Stamp.Server} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, m.Stamp.Time)
	return binary.AppendUvarint(b, m.Stamp.Seq)
}

func encodeCursors(cursors map[string]map[string]uint64) []byte {
	b := []byte{recCursors}
	for _, dest := range slices.Sorted(maps.Keys(cursors)) {
		for _, room := range slices.Sorted(maps.Keys(cursors[dest])) {
			b = appendString(b, dest)
			b = appendString(b, room)
			b = binary.AppendUvarint(b, cursors[dest][room])
		}
	}
	return b
}

func encodeLast(last int64) []byte { return binary.AppendVarint([]byte{recLast}, last) }

func encodeKnown(known []string) []byte {
	b := binary.AppendUvarint([]byte{recKnown}, uint64(len(known)))
	for _, s := range known {
		b = appendString(b, s)
	}
	return b
}

func encodeProbe() []byte {
	b := make([]byte, 1+probeSize)
	b[0] = recProbe
	return b
}

// recReader decodes a record's fields in order; the first error sticks.
type recReader struct {
	b   []byte
	err error
	// whole, if set, is a string copy of the record b started as: str
	// then returns parts of it (decodeMessage).
	whole string
}

func (r *recReader) fail() {
	if r.err == nil {
		r.err = errBadRecord
	}
	r.b = nil
}

func (r *recReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	var s string
	if r.whole != "" {
		// r.b is the tail of the bytes r.whole copies: cut the string
		// out of r.whole instead of copying it again.
		at := len(r.whole) - len(r.b)
		s = r.whole[at : at+int(n)]
	} else {
		s = string(r.b[:n])
	}
	r.b = r.b[n:]
	return s
}

// end returns the reader's error, or one if bytes are left over.
func (r *recReader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = errBadRecord
	}
	return r.err
}

// decodeMessage decodes a recMessage record (kind byte included).
func decodeMessage(b []byte) (chatapi.Message, error) {
	if len(b) == 0 || b[0] != recMessage {
		return chatapi.Message{}, fmt.Errorf("not a message: %w", errBadRecord)
	}
	// One string copies the record, and the message's five strings are
	// parts of it: one allocation instead of five. They keep the whole
	// record alive as long as any of them is, which is as long as the
	// message: the index keeps none of them (addLocked).
	r := &recReader{b: b[1:], whole: string(b[1:])}
	m := chatapi.Message{Room: r.str(), ID: r.str(), From: r.str(), Text: r.str()}
	m.Stamp.Server = r.str()
	m.Stamp.Time = r.varint()
	m.Stamp.Seq = r.uvarint()
	return m, r.end()
}

// decodeCursors decodes a recCursors record's triples into cursors.
func decodeCursors(b []byte, cursors map[string]map[string]uint64) error {
	r := &recReader{b: b[1:]}
	for len(r.b) > 0 {
		dest, room, seq := r.str(), r.str(), r.uvarint()
		if r.err != nil {
			break
		}
		if cursors[dest] == nil {
			cursors[dest] = map[string]uint64{}
		}
		cursors[dest][room] = seq
	}
	return r.end()
}

func decodeKnown(b []byte) ([]string, error) {
	r := &recReader{b: b[1:]}
	n := r.uvarint()
	var out []string
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, r.str())
	}
	return out, r.end()
}
