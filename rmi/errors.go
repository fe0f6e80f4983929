package rmi

import (
	"errors"
	"fmt"
)

// Error is an application error with a stable code. Packages declare their
// errors as *Error values (for example central.ErrNoSuchRoom); when a remote
// method returns an error wrapping one, the caller receives a *RemoteError
// carrying the same code, and errors.Is(err, central.ErrNoSuchRoom) holds on
// the caller's side.
type Error struct {
	// Code is the stable, machine-readable identifier, such as
	// "central.no_such_room". It is what crosses the wire.
	Code string
	// Msg is the human-readable default text.
	Msg string
}

// NewError returns an application error with the given code and message.
func NewError(code, msg string) *Error { return &Error{Code: code, Msg: msg} }

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Is reports whether target is an *Error or *RemoteError with the same code.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		return t.Code == e.Code
	case *RemoteError:
		return t.Code == e.Code
	}
	return false
}

// RemoteError is what a caller receives when the remote method ran and
// returned an error. Code is the code of the *Error the remote error wrapped
// (empty if it wrapped none); Message is the remote error's full text.
type RemoteError struct {
	Code    string
	Message string
	// Object and Method name the call that failed.
	Object, Method string
}

// Error returns the remote message, prefixed by the method that failed.
func (e *RemoteError) Error() string {
	if e.Object == "" {
		return e.Message
	}
	return fmt.Sprintf("%s.%s: %s", e.Object, e.Method, e.Message)
}

// Is reports whether target is an *Error or *RemoteError with the same
// non-empty code.
func (e *RemoteError) Is(target error) bool {
	if e.Code == "" {
		return false
	}
	switch t := target.(type) {
	case *Error:
		return t.Code == e.Code
	case *RemoteError:
		return t.Code == e.Code
	}
	return false
}

// Transport-level failures. Callers test them with errors.Is.
var (
	// ErrConnect means no connection could be made; the call was not sent.
	ErrConnect = errors.New("rmi: could not connect")
	// ErrMarshal means the arguments or result could not be encoded or decoded.
	ErrMarshal = errors.New("rmi: marshal failed")
	// ErrTimeout means the call's deadline passed before a reply came. The
	// outcome is unknown: the remote method may or may not have run.
	ErrTimeout = errors.New("rmi: call timed out (outcome unknown)")
	// ErrConnLost means the connection ended while the call was in flight.
	// The outcome is unknown.
	ErrConnLost = errors.New("rmi: connection lost (outcome unknown)")
	// ErrClosed means the client was closed before the call.
	ErrClosed = errors.New("rmi: client closed")
	// ErrHandshake means the peer did not speak this protocol or failed
	// authentication.
	ErrHandshake = errors.New("rmi: handshake failed")
)

// Application errors raised by the rmi layer itself; they travel like any
// other *Error.
var (
	ErrNoSuchObject = NewError("rmi.no_such_object", "no such remote object")
	ErrNoSuchMethod = NewError("rmi.no_such_method", "no such remote method")
	ErrPanic        = NewError("rmi.panic", "remote method panicked")
	ErrUnauthorized = NewError("rmi.unauthorized", "this object requires the cluster secret")
	ErrBadArgs      = NewError("rmi.bad_args", "arguments could not be decoded")
	ErrTooLarge     = NewError("rmi.too_large", "request too large")
	ErrAlreadyBound = NewError("rmi.already_bound", "name already bound")
	ErrNotBound     = NewError("rmi.not_bound", "name not bound")
	ErrNoCallback   = NewError("rmi.no_callback", "caller exported no callback objects")
	ErrLeaseExpired = NewError("rmi.lease_expired", "lease expired")
)

// IsOutcomeUnknown reports whether err leaves it unknown whether the remote
// method ran (a timeout or a lost connection).
func IsOutcomeUnknown(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnLost)
}

// IsUnreachable reports whether err means the peer could not be reached at
// all or the conversation broke (connect failure, lost connection, timeout,
// closed client, handshake failure) as opposed to an application error.
func IsUnreachable(err error) bool {
	return errors.Is(err, ErrConnect) || errors.Is(err, ErrConnLost) ||
		errors.Is(err, ErrTimeout) || errors.Is(err, ErrClosed) || errors.Is(err, ErrHandshake)
}

// ErrorCode returns what a caller learns of err when a remote method
// returns it: the code of the *Error or *RemoteError it wraps (or empty)
// and its text. A method that reports several outcomes in its reply
// (chatapi.PostBatch) sends each error in this form; the caller turns it
// back into a *RemoteError.
func ErrorCode(err error) (code, msg string) {
	var ae *Error
	if errors.As(err, &ae) {
		code = ae.Code
	} else {
		var re *RemoteError
		if errors.As(err, &re) {
			code = re.Code
		}
	}
	return code, err.Error()
}
