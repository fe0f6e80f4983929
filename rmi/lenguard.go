package rmi

import "fmt"

// lenGuard watches the msgpack bytes of a frame before they are decoded,
// and stops at a length prefix that declares more than a request (or a
// value of a response) may hold.
//
// The decoder trusts length prefixes: for some types (a time extension,
// for one) it allocates the declared length before reading a byte of it,
// so a 27-byte request declaring a 1 GiB value would make the server
// allocate 1 GiB, whatever the request size cap. The guard refuses the
// prefix before its last byte reaches the decoder, so nothing is
// allocated on its say-so beyond the cap.
//
// It needs no picture of the nesting: every msgpack value starts with a
// type byte, then perhaps length bytes, then perhaps a payload; after a
// map or array header comes the type byte of its first entry. So it only
// tracks where it is within one value's head and payload.
type lenGuard struct {
	max   int    // the largest length a prefix may declare
	skip  uint64 // payload bytes still to pass before the next type byte
	lenN  int    // length-prefix bytes still to come
	lenV  uint64 // the length read so far
	extra uint64 // payload beyond the declared length (an extension's type byte)
	count bool   // the length counts entries (array, map), not bytes
	pairs bool   // a map: each entry is a key and a value
}

// feed passes b through the guard. It returns len(b) if all of b is
// acceptable, else the index of the byte that would complete a length
// prefix declaring too much; the input must end before that byte.
func (g *lenGuard) feed(b []byte) int {
	for i := 0; i < len(b); {
		switch {
		case g.skip > 0:
			n := uint64(len(b) - i)
			if n > g.skip {
				n = g.skip
			}
			g.skip -= n
			i += int(n)
		case g.lenN > 0:
			g.lenV = g.lenV<<8 | uint64(b[i])
			g.lenN--
			if g.lenN == 0 {
				declared := g.lenV
				if g.pairs {
					declared *= 2
				}
				if declared > uint64(g.max) {
					return i
				}
				if !g.count {
					g.skip = g.lenV + g.extra
				}
			}
			i++
		default:
			g.head(b[i])
			i++
		}
	}
	return len(b)
}

// head reads a type byte: it sets how many length bytes or payload bytes
// follow it.
func (g *lenGuard) head(c byte) {
	g.lenV, g.extra, g.count, g.pairs = 0, 0, false, false
	switch {
	case c <= 0x9f || c >= 0xe0: // fixint, fixmap, fixarray: nothing follows
		return
	case c <= 0xbf: // fixstr
		g.skip = uint64(c & 0x1f)
		return
	case c >= 0xd4 && c <= 0xd8: // fixext 1..16: a type byte, then the data
		g.skip = 1 + 1<<(c-0xd4)
		return
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		g.lenN = 1
	case 0xc5, 0xda: // bin16, str16
		g.lenN = 2
	case 0xc6, 0xdb: // bin32, str32
		g.lenN = 4
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: the length, a type byte, the data
		g.lenN, g.extra = 1<<(c-0xc7), 1
	case 0xcc, 0xd0: // uint8, int8
		g.skip = 1
	case 0xcd, 0xd1: // uint16, int16
		g.skip = 2
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		g.skip = 4
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		g.skip = 8
	case 0xdc, 0xde: // array16, map16
		g.lenN, g.count, g.pairs = 2, true, c == 0xde
	case 0xdd, 0xdf: // array32, map32
		g.lenN, g.count, g.pairs = 4, true, c == 0xdf
	}
	// nil, false, true and the unused 0xc1 carry nothing more; the decoder
	// refuses 0xc1 itself.
}

// maxResponseValue is the most a length prefix in a response may declare.
// Responses have no size cap of their own (a page of history may be
// large), but no honest one holds a single value this big: the guard
// keeps a hostile server from making a client allocate gigabytes.
const maxResponseValue = 64 << 20

// errResponseTooLarge refuses a response whose length prefix declares
// more than maxResponseValue.
var errResponseTooLarge = fmt.Errorf("rmi: a response declares a value over %d bytes: %w", maxResponseValue, ErrTooLarge)
