package rmi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCheckLens(t *testing.T) {
	nested := func(depth int) any {
		var v any = 1
		for range depth {
			v = []any{v}
		}
		return v
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"scalars", mustMarshal(t, []any{[]any{1, -1, 1 << 40, int8(-100)}, []any{"s", []byte("b"), true, nil}, []any{1.5, float32(2.5), uint16(300), int32(-70000)}}), nil},
		{"a long array after long strings", mustMarshal(t, []any{strings.Repeat("x", 40), strings.Repeat("y", 300), []byte(strings.Repeat("z", 300)), make([]int, 5)}), ErrTooLarge},
		{"map at the cap", mustMarshal(t, map[string]int{"a": 1, "b": 2, "c": 3, "d": 4}), nil},
		{"map over the cap", mustMarshal(t, map[string]int{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}), ErrTooLarge},
		{"array over the cap", mustMarshal(t, make([]int, 5)), ErrTooLarge},
		{"long array in a struct", mustMarshal(t, syncArgs{Token: "t", Have: map[string]uint64{"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}}), ErrTooLarge},
		{"long array of 20", mustMarshal(t, make([]string, 20)), ErrTooLarge},
		{"a map32 claiming 4 billion entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k', 1}, ErrTooLarge},
		{"an array16 of 5 in a few bytes", []byte{0xdc, 0, 5}, ErrTooLarge},
		{"nested at the depth limit", mustMarshal(t, nested(maxScanDepth)), nil},
		{"nested too deep", mustMarshal(t, nested(maxScanDepth+1)), ErrTooLarge},
		{"truncated", []byte{0x93, 1}, nil},
		{"an empty ext8 whose value is an array of 5", []byte{0x92, 0xc7, 0, 0x30, 0x95, 1, 2, 3, 4, 5, 1}, ErrTooLarge},
		{"an empty ext16 whose value is an array of 3", []byte{0x92, 0xc8, 0, 0, 0x30, 0x93, 1, 2, 3, 1}, nil},
		{"an empty timestamp ext carries no value (the 5 is after the array)", []byte{0x92, 0xc7, 0, 0xff, 1, 0x95}, nil},
		{"a chain of empty exts nested too deep", emptyExtChain(maxScanDepth + 1), ErrTooLarge},
		{"never used byte", []byte{0xc1}, nil},
	} {
		err := checkLens(tc.b, 4)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// emptyExtChain is n ext8s with no data, each the value of the one
// before it, then a nil.
func emptyExtChain(n int) []byte {
	var b []byte
	for range n {
		b = append(b, 0xc7, 0, 0x30)
	}
	return append(b, 0xc0)
}

// FuzzCheckLens checks checkLens against the decoder: whatever it lets
// through decodes, if at all, to maps and slices of at most the cap.
// Run with: go test -run '^$' -fuzz '^FuzzCheckLens$' -fuzztime 10s ./rmi
func FuzzCheckLens(f *testing.F) {
	const maxLen = 4
	f.Add(mustMarshal(f, map[string]any{"a": []int{1, 2}, "b": map[string]int{"c": 1}}))
	f.Add(mustMarshal(f, syncArgs{Token: "t", Have: map[string]uint64{"s1": 1}}))
	f.Add([]byte{0xdf, 0, 0, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkLens(b, maxLen) != nil {
			return
		}
		var v any
		if Unmarshal(b, &v) != nil {
			return
		}
		var walk func(reflect.Value)
		walk = func(r reflect.Value) {
			switch r.Kind() {
			case reflect.Interface, reflect.Pointer:
				if !r.IsNil() {
					walk(r.Elem())
				}
			case reflect.Map:
				if r.Len() > maxLen {
					t.Fatalf("%x passed the check but decoded to a map of %d entries", b, r.Len())
				}
				for it := r.MapRange(); it.Next(); {
					walk(it.Key())
					walk(it.Value())
				}
			case reflect.Slice, reflect.Array:
				if r.Type().Elem().Kind() == reflect.Uint8 {
					return // a string or binary value, not a collection
				}
				if r.Len() > maxLen {
					t.Fatalf("%x passed the check but decoded to a slice of %d entries", b, r.Len())
				}
				for i := range r.Len() {
					walk(r.Index(i))
				}
			}
		}
		walk(reflect.ValueOf(v))
	})
}
