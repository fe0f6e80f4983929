package rmi

import (
	"errors"
	"fmt"
	"reflect"
)

// ArgLimits is implemented by the argument type of a remote method to
// bound what a caller can make the callee allocate. [Table.Handle] refuses
// arguments that break their ArgCaps before decoding them, and decoded
// arguments that CheckLimits rejects before the method runs; both fail
// with ErrTooLarge. Remote interfaces declare these methods next to their
// argument types (see packages chatapi and centralapi).
type ArgLimits interface {
	// ArgCaps returns the caps checked before the argument is decoded.
	ArgCaps() ArgCaps
	// CheckLimits reports a decoded argument that is larger than the
	// method accepts in a way ArgCaps cannot say (one field's length).
	CheckLimits() error
}

// ArgCaps are the caps on a remote method's argument that are checked on
// its encoding, before it is decoded. A zero field sets no cap (the
// transport's cap on a request still applies).
type ArgCaps struct {
	// Bytes caps the size of the encoded argument.
	Bytes int
	// Len caps the entries of every map and array in the argument (a
	// struct counts as a map of its fields), so that a long collection of
	// tiny entries, a few bytes each on the wire and many times that once
	// decoded, is refused before the decoder builds it.
	Len int
}

var argLimitsType = reflect.TypeFor[ArgLimits]()

// argCaps returns the caps argument type t declares, if any.
func argCaps(t reflect.Type) ArgCaps {
	if !t.Implements(argLimitsType) {
		return ArgCaps{}
	}
	return reflect.Zero(t).Interface().(ArgLimits).ArgCaps()
}

// checkArgLimits runs the CheckLimits of a decoded argument, if it has one.
func checkArgLimits(arg reflect.Value) error {
	if l, ok := arg.Interface().(ArgLimits); ok {
		if err := l.CheckLimits(); err != nil {
			return fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
	}
	return nil
}

// ArgTooLarge is implemented by the argument type of a remote method that
// answers arguments over a size cap (its MaxArgBytes, or the transport's
// cap on a request) with an error of its own, such as "message text too
// large", rather than with ErrTooLarge alone.
type ArgTooLarge interface {
	// TooLarge returns the error for arguments larger than accepted.
	TooLarge() error
}

var argTooLargeType = reflect.TypeFor[ArgTooLarge]()

// argTooLarge returns the TooLarge error argument type t declares, or nil.
func argTooLarge(t reflect.Type) error {
	if !t.Implements(argTooLargeType) {
		return nil
	}
	return reflect.Zero(t).Interface().(ArgTooLarge).TooLarge()
}

// refuse returns err, an ErrTooLarge refusal of m's arguments, wrapped in
// the method's own too-large error if it declares one.
func (m *method) refuse(err error) error {
	if m.tooLarge == nil {
		return err
	}
	return fmt.Errorf("%w: %w", m.tooLarge, err)
}

// unread returns the error that answers req, a request the transport could
// not read whole: req.unread, wrapped in the error of req's method for
// arguments too large if that is why and the method declares one.
func (t *Table) unread(req *Request) error {
	if !errors.Is(req.unread, ErrTooLarge) {
		return req.unread
	}
	t.mu.RLock()
	e := t.objects[req.Object]
	t.mu.RUnlock()
	if e == nil || e.methods[req.Method] == nil {
		return req.unread
	}
	return e.methods[req.Method].refuse(req.unread)
}
