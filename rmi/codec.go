package rmi

import (
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// newHandle returns the msgpack handle every rmi encoder and decoder uses.
func newHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.WriteExt = true
	h.RawToString = true
	// Cap allocations made on the say-so of a length prefix, so a hostile
	// frame cannot make us allocate gigabytes before failing.
	h.MaxInitLen = 64 << 10
	return h
}

// Marshal encodes v with the rmi msgpack handle.
func Marshal(v any) ([]byte, error) {
	var b []byte
	if err := codec.NewEncoderBytes(&b, newHandle()).Encode(v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMarshal, err)
	}
	return b, nil
}

// Unmarshal decodes b into v with the rmi msgpack handle.
func Unmarshal(b []byte, v any) error {
	if err := codec.NewDecoderBytes(b, newHandle()).Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMarshal, err)
	}
	return nil
}
