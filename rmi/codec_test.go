package rmi

import (
	"errors"
	"testing"
)

// mustNotDecode is a type with a generated-style decoder that must never
// be reached.
type mustNotDecode struct{ t *testing.T }

func (m *mustNotDecode) UnmarshalMsg(b []byte) ([]byte, error) {
	m.t.Errorf("UnmarshalMsg ran on % x", b)
	return nil, nil
}

// TestGeneratedDecoderSeesOnlyWellFormedInput: a generated decoder sizes
// slices by their length prefix, so Unmarshal refuses, before calling it,
// input whose maps and arrays declare more entries than it holds, that
// nests too deep, is cut short or has bytes after the value.
func TestGeneratedDecoderSeesOnlyWellFormedInput(t *testing.T) {
	deep := make([]byte, 40)
	for i := range deep {
		deep[i] = 0x91 // an array of one array of one...
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"array32 claiming 4 billion entries", []byte{0x81, 0xa1, 'M', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}},
		{"map16 claiming more pairs than follow", []byte{0xde, 0x01, 0x00, 0xa1, 'k', 1}},
		{"cut short", []byte{0x82, 0xa1, 'a', 1}},
		{"nested 40 deep", append(deep, 1)},
		{"bytes after the value", []byte{0x80, 0x80}},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Unmarshal(tc.b, &mustNotDecode{t})
			if !errors.Is(err, ErrMarshal) {
				t.Errorf("Unmarshal: %v, want ErrMarshal", err)
			}
		})
	}
}

// passDecode counts decoder calls.
type passDecode struct{ calls int }

func (p *passDecode) UnmarshalMsg(b []byte) ([]byte, error) {
	p.calls++
	return nil, nil
}

// TestGeneratedDecoderUsed: well-formed input reaches the generated
// decoder.
func TestGeneratedDecoderUsed(t *testing.T) {
	var p passDecode
	if err := Unmarshal([]byte{0x81, 0xa1, 'k', 0x92, 1, 2}, &p); err != nil || p.calls != 1 {
		t.Fatalf("Unmarshal: %v, %d calls; want nil, 1", err, p.calls)
	}
}
