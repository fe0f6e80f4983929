package rmi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxScanDepth is how deep checkLens follows nested maps and arrays; it
// matches the decoder's MaxDepth.
const maxScanDepth = 32

// errMalformed stops checkLens at input that is not msgpack; the decoder
// then refuses it with a clearer error.
var errMalformed = errors.New("malformed msgpack")

// checkLens walks the msgpack encoding b, without decoding it or
// allocating, and fails with ErrTooLarge if a map or array in it declares
// more than maxLen entries (a struct counts as a map of its fields), or
// they nest deeper than the decoder would follow anyway. It
// bounds an argument's collections before the decoder builds them: an
// entry costs a few bytes on the wire and many times that once decoded.
func checkLens(b []byte, maxLen int) error {
	if _, err := scanValue(b, maxLen, 0); err != nil && !errors.Is(err, errMalformed) {
		return err
	}
	return nil
}

// scanValue checks the value at the start of b and returns what follows.
func scanValue(b []byte, maxLen, depth int) ([]byte, error) {
	if len(b) == 0 {
		return nil, errMalformed
	}
	c, b := b[0], b[1:]
	switch {
	case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		return b, nil
	case c <= 0x8f: // fixmap
		return scanCollection(b, int(c&0x0f), 2, maxLen, depth)
	case c <= 0x9f: // fixarray
		return scanCollection(b, int(c&0x0f), 1, maxLen, depth)
	case c <= 0xbf: // fixstr
		return skip(b, int(c&0x1f))
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return b, nil
	case 0xcc, 0xd0: // uint8, int8
		return skip(b, 1)
	case 0xcd, 0xd1: // uint16, int16
		return skip(b, 2)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return skip(b, 4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return skip(b, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: a type byte, then the data
		return skip(b, 1+1<<(c-0xd4))
	case 0xc4, 0xd9: // bin8, str8
		return skipSized(b, 1)
	case 0xc5, 0xda: // bin16, str16
		return skipSized(b, 2)
	case 0xc6, 0xdb: // bin32, str32
		return skipSized(b, 4)
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: a length, a type byte, the data
		return scanExt(b, 1<<(c-0xc7), maxLen, depth)
	case 0xdc: // array16
		n, b, err := readLen(b, 2)
		if err != nil {
			return nil, err
		}
		return scanCollection(b, n, 1, maxLen, depth)
	case 0xdd: // array32
		n, b, err := readLen(b, 4)
		if err != nil {
			return nil, err
		}
		return scanCollection(b, n, 1, maxLen, depth)
	case 0xde: // map16
		n, b, err := readLen(b, 2)
		if err != nil {
			return nil, err
		}
		return scanCollection(b, n, 2, maxLen, depth)
	case 0xdf: // map32
		n, b, err := readLen(b, 4)
		if err != nil {
			return nil, err
		}
		return scanCollection(b, n, 2, maxLen, depth)
	}
	return nil, errMalformed // 0xc1 is never used
}

// timeExtType is msgpack's timestamp extension type (-1).
const timeExtType = 0xff

// scanExt checks an extension whose length is size bytes (1, 2 or 4) at
// the start of b. go-msgpack decodes an extension with no data, of a type
// other than the timestamp, as a RawExt whose Value is the value that
// follows it: that value is read as part of the extension, so it is
// checked here too, one level deeper (a chain of such extensions nests
// like arrays, and is bounded like them).
func scanExt(b []byte, size, maxLen, depth int) ([]byte, error) {
	n, b, err := readLen(b, size)
	if err != nil {
		return nil, err
	}
	if len(b) < 1 {
		return nil, errMalformed
	}
	typ := b[0]
	if b, err = skip(b, 1+n); err != nil || n > 0 || typ == timeExtType {
		return b, err
	}
	if depth >= maxScanDepth {
		return nil, fmt.Errorf("values nested deeper than %d: %w", maxScanDepth, ErrTooLarge)
	}
	return scanValue(b, maxLen, depth+1)
}

// scanCollection checks a map or array of n entries, each of per values
// (2 for a map, 1 for an array), at the start of b.
func scanCollection(b []byte, n, per, maxLen, depth int) ([]byte, error) {
	if n > maxLen {
		return nil, fmt.Errorf("a map or array of %d entries, at most %d: %w", n, maxLen, ErrTooLarge)
	}
	if depth >= maxScanDepth {
		return nil, fmt.Errorf("maps and arrays nested deeper than %d: %w", maxScanDepth, ErrTooLarge)
	}
	var err error
	for range n * per {
		if b, err = scanValue(b, maxLen, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// readLen reads a big-endian length of size bytes: 1, 2 or 4.
func readLen(b []byte, size int) (int, []byte, error) {
	if len(b) < size {
		return 0, nil, errMalformed
	}
	switch size {
	case 1:
		return int(b[0]), b[1:], nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), b[2:], nil
	}
	return int(binary.BigEndian.Uint32(b)), b[4:], nil
}

// skip skips n bytes.
func skip(b []byte, n int) ([]byte, error) {
	if len(b) < n {
		return nil, errMalformed
	}
	return b[n:], nil
}

// skipSized skips a length of size bytes and as many bytes as it says.
func skipSized(b []byte, size int) ([]byte, error) {
	n, b, err := readLen(b, size)
	if err != nil {
		return nil, err
	}
	return skip(b, n)
}

// wellFormed reports whether b is exactly one complete msgpack value,
// nested no deeper than the decoder follows, with at most maxLen entries
// in each map and array (else ErrTooLarge, as checkLens). Every map and
// array in it then holds the entries it declares, so a decoder that
// allocates by a declared length allocates for data that arrived.
func wellFormed(b []byte, maxLen int) error {
	rest, err := scanValue(b, maxLen, 0)
	switch {
	case err != nil:
		return err
	case len(rest) > 0:
		return fmt.Errorf("%d bytes after the value: %w", len(rest), errMalformed)
	}
	return nil
}
