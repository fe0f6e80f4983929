package rmi

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sort"
	"sync"
)

// ExportOption changes how an object is exported.
type ExportOption func(*exported)

// ClusterOnly restricts an exported object to peers that proved the cluster
// secret; others get ErrUnauthorized.
func ClusterOnly() ExportOption { return func(e *exported) { e.clusterOnly = true } }

// Table holds the objects a process exports, by name, and dispatches calls
// to their methods. It is safe for concurrent use.
type Table struct {
	mu      sync.RWMutex
	objects map[string]*exported
	log     *slog.Logger
}

type exported struct {
	name        string
	clusterOnly bool
	methods     map[string]*method
}

type method struct {
	fn        reflect.Value // bound method
	argType   reflect.Type
	replyType reflect.Type // nil when the method returns only an error
}

var (
	ctxType = reflect.TypeOf((*context.Context)(nil)).Elem()
	errType = reflect.TypeOf((*error)(nil)).Elem()
)

// NewTable returns an empty table. A nil logger means slog.Default().
func NewTable(log *slog.Logger) *Table {
	if log == nil {
		log = slog.Default()
	}
	return &Table{objects: map[string]*exported{}, log: log}
}

// Export makes obj's remote methods callable under name. A remote method is
// an exported method of the form func(context.Context, A) (R, error) or
// func(context.Context, A) error; other methods are ignored. Export fails if
// obj has no remote methods or name is taken.
func (t *Table) Export(name string, obj any, opts ...ExportOption) error {
	e := &exported{name: name, methods: map[string]*method{}}
	for _, o := range opts {
		o(e)
	}
	v := reflect.ValueOf(obj)
	ty := v.Type()
	for i := 0; i < ty.NumMethod(); i++ {
		m := ty.Method(i)
		ft := m.Type // includes receiver
		if ft.NumIn() != 3 || ft.In(1) != ctxType {
			continue
		}
		var replyType reflect.Type
		switch ft.NumOut() {
		case 1:
			if ft.Out(0) != errType {
				continue
			}
		case 2:
			if ft.Out(1) != errType {
				continue
			}
			replyType = ft.Out(0)
		default:
			continue
		}
		e.methods[m.Name] = &method{fn: v.Method(i), argType: ft.In(2), replyType: replyType}
	}
	if len(e.methods) == 0 {
		return fmt.Errorf("rmi: export %q: %T has no remote methods", name, obj)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.objects[name]; ok {
		return fmt.Errorf("rmi: export %q: %w", name, ErrAlreadyBound)
	}
	t.objects[name] = e
	return nil
}

// Unexport removes the object exported under name; later calls get
// ErrNoSuchObject.
func (t *Table) Unexport(name string) {
	t.mu.Lock()
	delete(t.objects, name)
	t.mu.Unlock()
}

// Names lists the exported object names, sorted.
func (t *Table) Names() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := make([]string, 0, len(t.objects))
	for n := range t.objects {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Dispatch decodes args (msgpack), calls method on the object exported as
// object, and returns the encoded result. ctx should carry the caller's Peer
// (see WithPeer); a missing Peer counts as an unauthenticated caller. A
// panic in the method is recovered and returned as ErrPanic. Transports,
// including the simulator's, deliver every call through Dispatch.
func (t *Table) Dispatch(ctx context.Context, object, methodName string, args []byte) (reply []byte, err error) {
	t.mu.RLock()
	e := t.objects[object]
	t.mu.RUnlock()
	if e == nil {
		return nil, fmt.Errorf("%q: %w", object, ErrNoSuchObject)
	}
	if e.clusterOnly {
		if p := PeerFromContext(ctx); p == nil || !p.Cluster {
			return nil, fmt.Errorf("%s: %w", object, ErrUnauthorized)
		}
	}
	m := e.methods[methodName]
	if m == nil {
		return nil, fmt.Errorf("%s.%s: %w", object, methodName, ErrNoSuchMethod)
	}
	argp := reflect.New(m.argType)
	if err := Unmarshal(args, argp.Interface()); err != nil {
		return nil, fmt.Errorf("%s.%s: %w: %v", object, methodName, ErrBadArgs, err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("rmi: remote method panicked", "object", object, "method", methodName,
				"panic", r, "stack", string(debug.Stack()))
			reply, err = nil, fmt.Errorf("%s.%s: %v: %w", object, methodName, r, ErrPanic)
		}
	}()
	out := m.fn.Call([]reflect.Value{reflect.ValueOf(ctx), argp.Elem()})
	if errv := out[len(out)-1]; !errv.IsNil() {
		return nil, errv.Interface().(error)
	}
	if m.replyType == nil {
		return nil, nil
	}
	return Marshal(out[0].Interface())
}

// Local is an in-memory Invoker that calls straight into a Table, encoding
// and decoding arguments exactly as a network transport would (so caller
// and callee share no memory). It is for tests and single-process wiring.
type Local struct {
	Table *Table
	// Peer is attached to each call's context; nil means an
	// unauthenticated caller with no callbacks.
	Peer *Peer
}

// Invoke implements Invoker.
func (l Local) Invoke(ctx context.Context, object, method string, args, reply any) error {
	b, err := Marshal(args)
	if err != nil {
		return err
	}
	if l.Peer != nil {
		ctx = WithPeer(ctx, l.Peer)
	}
	out, err := l.Table.Dispatch(ctx, object, method, b)
	if err != nil {
		if gaveUpAtDeadline(ctx, err) {
			// As over TCP: the caller's deadline passed while the method ran.
			return fmt.Errorf("rmi: %s.%s: %w (%w): the method gave up: %v", object, method, ErrTimeout, context.DeadlineExceeded, err)
		}
		return RemoteErrorOf(object, method, err)
	}
	return DecodeReply(out, reply)
}

// RemoteErrorOf converts an error returned by Dispatch into what the caller
// sees: a *RemoteError carrying the error's code and text.
func RemoteErrorOf(object, method string, err error) *RemoteError {
	code, msg := toWire(err)
	return &RemoteError{Code: code, Message: msg, Object: object, Method: method}
}

// DecodeReply decodes an encoded result into reply; a nil reply or empty
// result is a no-op.
func DecodeReply(b []byte, reply any) error {
	if reply == nil || len(b) == 0 {
		return nil
	}
	return Unmarshal(b, reply)
}
