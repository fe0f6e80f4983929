package rmi

import (
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// handle is the msgpack handle of Marshal and Unmarshal. A handle is safe
// for concurrent use once configured, and it caches how each Go type is
// encoded: building a fresh one per call made encoding several times
// slower. It is never modified after initialisation.
var handle = newHandle()

// newHandle returns a msgpack handle configured as every rmi encoder and
// decoder needs.
func newHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.WriteExt = true
	h.RawToString = true
	// Cap allocations made on the say-so of a length prefix, so a hostile
	// frame cannot make us allocate gigabytes before failing.
	h.MaxInitLen = 64 << 10
	// Our types nest a few levels deep; refuse (rather than recurse into)
	// deeper input, such as a deeply nested value under an unknown field.
	h.MaxDepth = 32
	// A key repeated in a map replaces the earlier value, rather than
	// being decoded into it: else maps repeated under one key would merge
	// into one larger than any the encoding declares, past the length
	// caps checkLens enforces (the fuzzer found it).
	h.MapValueReset = true
	h.InterfaceReset = true
	return h
}

// Marshal encodes v with the rmi msgpack handle.
func Marshal(v any) ([]byte, error) {
	var b []byte
	if err := codec.NewEncoderBytes(&b, handle).Encode(v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMarshal, err)
	}
	return b, nil
}

// Unmarshal decodes b into v with the rmi msgpack handle.
func Unmarshal(b []byte, v any) error {
	if err := codec.NewDecoderBytes(b, handle).Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrMarshal, err)
	}
	return nil
}
