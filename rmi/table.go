package rmi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// ExportOption changes how an object is exported.
type ExportOption func(*exported)

// ClusterOnly restricts an exported object to peers that proved the cluster
// secret; others get ErrUnauthorized.
func ClusterOnly() ExportOption { return func(e *exported) { e.clusterOnly = true } }

// BorrowArgs lets the object's methods take arguments that borrow the
// request's bytes: an argument type that implements BorrowingUnmarshaler
// is decoded with UnmarshalMsgBorrowed, so its strings may point into the
// request, which is valid only until the method returns. A method that
// keeps such a string, or a value holding one, past its return must copy
// it. Other argument types are decoded as usual.
func BorrowArgs() ExportOption { return func(e *exported) { e.borrowArgs = true } }

// BorrowingUnmarshaler is implemented by an argument type that can be
// decoded without copying its strings out of the input (see BorrowArgs).
type BorrowingUnmarshaler interface {
	// UnmarshalMsgBorrowed decodes as msgp's UnmarshalMsg does, and
	// returns what follows the value, but its strings may point into b.
	UnmarshalMsgBorrowed(b []byte) ([]byte, error)
}

// Table holds the objects a process exports, by name, and runs calls on
// their methods. It is safe for concurrent use.
type Table struct {
	mu      sync.RWMutex
	objects map[string]*exported
	log     *slog.Logger
}

type exported struct {
	name        string
	clusterOnly bool
	borrowArgs  bool
	methods     map[string]*method
}

type method struct {
	fn        reflect.Value // the implementation's method
	argType   reflect.Type
	hasResult bool    // false when the method returns only an error
	borrow    bool    // the argument is decoded borrowing the request's bytes (BorrowArgs)
	caps      ArgCaps // the argument type's caps (see ArgLimits)
	tooLarge  error   // the argument type's ArgTooLarge error, or nil
}

var (
	ctxType       = reflect.TypeFor[context.Context]()
	errType       = reflect.TypeFor[error]()
	borrowingType = reflect.TypeFor[BorrowingUnmarshaler]()
)

// NewTable returns an empty table. A nil logger means slog.Default().
func NewTable(log *slog.Logger) *Table {
	if log == nil {
		log = slog.Default()
	}
	return &Table{objects: map[string]*exported{}, log: log}
}

// Export makes impl callable in t under name as the remote interface I,
// which must be an interface type: exactly I's methods become callable,
// never another method of impl's type. Every method of I must be a remote
// method, func(context.Context, A) (R, error) or
// func(context.Context, A) error. Export fails if I is not such an
// interface, impl is nil, or name is taken. Name I explicitly:
//
//	rmi.Export[chatapi.ChatServer](t, chatapi.ObjectName, srv)
func Export[I any](t *Table, name string, impl I, opts ...ExportOption) error {
	it := reflect.TypeFor[I]()
	if it.Kind() != reflect.Interface {
		return fmt.Errorf("rmi: export %q: %v is not an interface type; export an object as its remote interface", name, it)
	}
	if it.NumMethod() == 0 {
		return fmt.Errorf("rmi: export %q: interface %v has no methods", name, it)
	}
	impv := reflect.ValueOf(impl)
	if !impv.IsValid() {
		return fmt.Errorf("rmi: export %q: nil %v", name, it)
	}
	e := &exported{name: name, methods: map[string]*method{}}
	for _, o := range opts {
		o(e)
	}
	for i := range it.NumMethod() {
		m := it.Method(i)
		if err := checkRemote(m); err != nil {
			return fmt.Errorf("rmi: export %q: %v.%s: %w", name, it, m.Name, err)
		}
		argType := m.Type.In(1)
		e.methods[m.Name] = &method{fn: impv.MethodByName(m.Name), argType: argType, hasResult: m.Type.NumOut() == 2,
			borrow: e.borrowArgs && reflect.PointerTo(argType).Implements(borrowingType),
			caps:   argCaps(argType), tooLarge: argTooLarge(argType)}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.objects[name]; ok {
		return fmt.Errorf("rmi: export %q: %w", name, ErrAlreadyBound)
	}
	t.objects[name] = e
	return nil
}

// checkRemote reports why m, a method of an interface, is not a remote
// method, or nil.
func checkRemote(m reflect.Method) error {
	ft := m.Type
	switch {
	case !m.IsExported():
		return errors.New("a remote method must be exported")
	case ft.NumIn() != 2 || ft.In(0) != ctxType || ft.IsVariadic():
		return errors.New("a remote method takes (context.Context, args)")
	case ft.NumOut() < 1 || ft.NumOut() > 2 || ft.Out(ft.NumOut()-1) != errType:
		return errors.New("a remote method returns (result, error) or error")
	}
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
	slices.Sort(names)
	return names
}

// Handle runs one call on t and returns the response to send back: the
// callee's half of every call, whatever transport carried it. It rejects
// a request whose arguments exceed maxBytes (if positive), or the limits
// their type declares (see ArgLimits), with ErrTooLarge, runs the method
// under the caller's remaining time (req.Timeout) measured on clk, and
// reports a method that returned after that deadline had passed as timed
// out, whatever it returned: the caller sees ErrTimeout, as if its own
// timer had fired first. ctx should carry the caller's Peer (see
// WithPeer); a missing Peer counts as an unauthenticated caller. A panic
// in the method is recovered and returned as ErrPanic.
func (t *Table) Handle(ctx context.Context, clk clock.Clock, maxBytes int, req *Request) *Response {
	resp := new(Response)
	t.handle(ctx, clk, maxBytes, req, resp)
	return resp
}

// handle is Handle writing into resp.
func (t *Table) handle(ctx context.Context, clk clock.Clock, maxBytes int, req *Request, resp *Response) {
	if maxBytes > 0 && len(req.Args) > maxBytes {
		resp.fail(tooLarge(maxBytes))
		return
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = clk.WithTimeout(ctx, time.Duration(req.Timeout))
		defer cancel()
	}
	out, err := t.dispatch(ctx, req.Object, req.Method, req.Args)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		resp.ErrCode, resp.ErrMsg, resp.Failed = timeoutCode, "the deadline passed while the method ran", true
		if err != nil {
			resp.ErrMsg += ": " + err.Error()
		}
	case err != nil:
		resp.fail(err)
	default:
		resp.Result = out
	}
}

// dispatch decodes args, calls methodName on the object exported as
// object, and returns the encoded result.
func (t *Table) dispatch(ctx context.Context, object, methodName string, args []byte) (reply []byte, err error) {
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
	if m.caps.Bytes > 0 && len(args) > m.caps.Bytes {
		err := fmt.Errorf("%d bytes of arguments, over the method's cap of %d: %w", len(args), m.caps.Bytes, ErrTooLarge)
		return nil, fmt.Errorf("%s.%s: %w", object, methodName, m.refuse(err))
	}
	argp := reflect.New(m.argType)
	if err := unmarshalArgs(args, argp.Interface(), m.caps.Len, m.borrow); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("%s.%s: %w", object, methodName, err)
		}
		return nil, fmt.Errorf("%s.%s: %w: %w", object, methodName, ErrBadArgs, err)
	}
	if err := checkArgLimits(argp.Elem()); err != nil {
		return nil, fmt.Errorf("%s.%s: %w", object, methodName, err)
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
	if !m.hasResult {
		return nil, nil
	}
	return Marshal(out[0].Interface())
}
