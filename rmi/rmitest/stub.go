package rmitest

import (
	"context"
	"errors"
	"math/rand"
	"reflect"
	"testing"
	"testing/quick"
)

// Invoker has the method set of rmi.Invoker, so a stub built for
// rmi.Invoker accepts one (rmitest does not import rmi, so that rmi's own
// tests may use it).
type Invoker interface {
	Invoke(ctx context.Context, object, method string, args, reply any) error
}

// CheckStub checks a typed stub against its remote interface I, so that
// stubs cannot drift from their interfaces. For every method of I, it
// calls the method of the stub newStub builds on a recording Invoker, with
// generated arguments, twice: once answered with a generated result, once
// failed with an error. It fails the test unless each time the stub made
// exactly one call, to the method of the same name on object, with the
// arguments it was given and a reply of the method's result type (nil for
// a method that returns only an error), and returned that result or that
// error.
func CheckStub[I any](t *testing.T, object string, newStub func(Invoker) I) {
	t.Helper()
	it := reflect.TypeFor[I]()
	if it.Kind() != reflect.Interface {
		t.Fatalf("CheckStub: %v is not an interface type", it)
	}
	rng := rand.New(rand.NewSource(1))
	rec := &recorder{}
	stub := reflect.ValueOf(newStub(rec))
	for i := range it.NumMethod() {
		m := it.Method(i)
		ft := m.Type
		if ft.NumIn() != 2 || ft.NumOut() < 1 || ft.NumOut() > 2 {
			t.Errorf("%v.%s is not a remote method", it, m.Name)
			continue
		}
		var resultType reflect.Type
		if ft.NumOut() == 2 {
			resultType = ft.Out(0)
		}
		args := generate(t, ft.In(1), rng)
		for _, failing := range []bool{false, true} {
			*rec = recorder{}
			var result reflect.Value
			if failing {
				rec.err = errStub
			} else if resultType != nil {
				result = generate(t, resultType, rng)
				rec.result = result
			}
			out := stub.MethodByName(m.Name).Call([]reflect.Value{reflect.ValueOf(context.Background()), args})
			what := it.String() + "." + m.Name
			if len(rec.calls) != 1 {
				t.Errorf("%s: the stub made %d calls, want 1", what, len(rec.calls))
				continue
			}
			c := rec.calls[0]
			if c.object != object || c.method != m.Name {
				t.Errorf("%s: the stub called %s.%s, want %s.%s", what, c.object, c.method, object, m.Name)
			}
			if !reflect.DeepEqual(c.args, args.Interface()) {
				t.Errorf("%s: the stub sent arguments %#v, want %#v", what, c.args, args.Interface())
			}
			switch {
			case resultType == nil && c.replyType != nil:
				t.Errorf("%s: the stub passed a %v reply for a method without a result", what, c.replyType)
			case resultType != nil && c.replyType != reflect.PointerTo(resultType):
				t.Errorf("%s: the stub passed a %v reply, want %v", what, c.replyType, reflect.PointerTo(resultType))
			}
			gotErr, _ := out[len(out)-1].Interface().(error)
			if failing {
				if !errors.Is(gotErr, errStub) {
					t.Errorf("%s: the stub returned %v, want the invoker's error", what, gotErr)
				}
				continue
			}
			if gotErr != nil {
				t.Errorf("%s: the stub returned %v, want no error", what, gotErr)
			}
			if resultType != nil && !reflect.DeepEqual(out[0].Interface(), result.Interface()) {
				t.Errorf("%s: the stub returned %#v, want the reply %#v", what, out[0].Interface(), result.Interface())
			}
		}
	}
}

// errStub is the error the recorder fails calls with.
var errStub = errors.New("rmitest: invoker failed the call")

// stubCall is one call a stub made.
type stubCall struct {
	object, method string
	args           any
	replyType      reflect.Type // nil for a nil reply
}

// recorder is an Invoker that records calls and answers them with result
// (stored through the reply pointer) or err.
type recorder struct {
	calls  []stubCall
	result reflect.Value
	err    error
}

// Invoke implements Invoker.
func (r *recorder) Invoke(_ context.Context, object, method string, args, reply any) error {
	c := stubCall{object: object, method: method, args: args}
	if reply != nil {
		c.replyType = reflect.TypeOf(reply)
	}
	r.calls = append(r.calls, c)
	if r.err != nil {
		return r.err
	}
	if r.result.IsValid() && c.replyType == reflect.PointerTo(r.result.Type()) {
		reflect.ValueOf(reply).Elem().Set(r.result)
	}
	return nil
}

// generate returns a random value of type ty that is not its zero value
// (unless ty has no other), so that a stub that drops or swaps values is
// caught.
func generate(t *testing.T, ty reflect.Type, rng *rand.Rand) reflect.Value {
	t.Helper()
	for range 100 {
		v, ok := quick.Value(ty, rng)
		if !ok {
			t.Fatalf("CheckStub: cannot generate a %v", ty)
		}
		if !v.IsZero() || ty.Size() == 0 {
			return v
		}
	}
	t.Fatalf("CheckStub: generated only zero values of %v", ty)
	return reflect.Value{}
}
