// Package argtest checks, in the tests of a package of remote interfaces,
// that every argument type declares its limits (rmi.ArgLimits), that the
// largest valid arguments fit them, and that no bytes at all, handed to a
// method as its arguments, get past them or panic (a fuzz target).
package argtest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/rmi"
)

// EveryArgumentHasLimits fails t unless every method of the remote
// interface I takes an argument type that implements rmi.ArgLimits.
func EveryArgumentHasLimits[I any](t testing.TB) {
	t.Helper()
	it := reflect.TypeFor[I]()
	for i := range it.NumMethod() {
		m := it.Method(i)
		if at := m.Type.In(1); !at.Implements(reflect.TypeFor[rmi.ArgLimits]()) {
			t.Errorf("%v.%s: argument type %v does not implement rmi.ArgLimits", it, m.Name, at)
		}
	}
}

// LargestFit fails t unless each of args, the largest a well-behaved
// caller sends, is within its byte cap (when it has one) and its limits.
func LargestFit(t testing.TB, args ...rmi.ArgLimits) {
	t.Helper()
	for _, a := range args {
		b, err := rmi.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if caps := a.ArgCaps(); caps.Bytes > 0 && len(b) > caps.Bytes {
			t.Errorf("%T: the largest valid argument takes %d bytes, over its cap of %d", a, len(b), caps.Bytes)
		}
		if err := a.CheckLimits(); err != nil {
			t.Errorf("%T: the largest valid argument breaks its limits: %v", a, err)
		}
	}
}

// Within is what a limits-checking implementation's methods return: it
// panics if a reached the method though it breaks its limits (rmi must
// refuse such arguments before the method runs), else returns nil.
func Within(a rmi.ArgLimits) error {
	if err := a.CheckLimits(); err != nil {
		panic(fmt.Sprintf("%T reached its method though it breaks its limits: %v", a, err))
	}
	return nil
}

// Fuzzer hands arbitrary bytes, as the arguments of each method of the
// objects of a table, to rmi's Table.Handle.
type Fuzzer struct {
	tab   *rmi.Table
	calls []rmi.Request
}

// NewFuzzer returns a Fuzzer over a new table.
func NewFuzzer() *Fuzzer { return &Fuzzer{tab: rmi.NewTable(nil)} }

// Export exports impl as the remote interface I under name, and adds each
// of I's methods to the calls the fuzzer makes.
func Export[I any](f *Fuzzer, name string, impl I) error {
	if err := rmi.Export[I](f.tab, name, impl); err != nil {
		return err
	}
	it := reflect.TypeFor[I]()
	for i := range it.NumMethod() {
		f.calls = append(f.calls, rmi.Request{Object: name, Method: it.Method(i).Name})
	}
	return nil
}

// Seed adds args, encoded, as a seed of every call to method.
func (z *Fuzzer) Seed(f *testing.F, method string, args any) {
	f.Helper()
	b, err := rmi.Marshal(args)
	if err != nil {
		f.Fatal(err)
	}
	for i, c := range z.calls {
		if c.Method == method {
			f.Add(uint8(i), b)
		}
	}
}

// Fuzz runs the fuzz target: the bytes go, as a cluster peer's, to the
// call chosen by the first input; decoding and the limits must refuse
// what breaks them, before the method runs, and nothing may panic.
func (z *Fuzzer) Fuzz(f *testing.F) {
	f.Fuzz(func(t *testing.T, which uint8, args []byte) {
		c := z.calls[int(which)%len(z.calls)]
		c.Args, c.Timeout = args, int64(time.Minute)
		peer := rmi.NewPeer(1, "fuzz", true, nil)
		resp := z.tab.Handle(rmi.WithPeer(context.Background(), peer), clock.New(), rmi.DefaultMaxRequestBytes, &c)
		if resp.ErrCode == rmi.ErrPanic.Code {
			t.Fatalf("%s.%s(%x): %s", c.Object, c.Method, args, resp.ErrMsg)
		}
	})
}
