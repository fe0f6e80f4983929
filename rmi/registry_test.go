package rmi

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestRegistryInProcess(t *testing.T) {
	tab := NewTable(quietLog())
	if err := Export[RegistryService](tab, RegistryObjectName, NewRegistry()); err != nil {
		t.Fatal(err)
	}
	// Local with no Peer is an in-process caller: allowed to mutate.
	reg := RegistryStub{Inv: Local{Table: tab}}
	ctx := context.Background()
	a := Ref{Addr: "10.0.0.1:1099", Object: "CentralServer"}
	b := Ref{Addr: "10.0.0.2:1099", Object: "CentralServer"}

	if _, err := reg.Lookup(ctx, "central"); !errors.Is(err, ErrNotBound) {
		t.Fatalf("lookup of unbound name: %v", err)
	}
	if err := reg.Bind(ctx, "central", a); err != nil {
		t.Fatal(err)
	}
	if err := reg.Bind(ctx, "central", b); !errors.Is(err, ErrAlreadyBound) {
		t.Fatalf("second bind: %v", err)
	}
	if got, err := reg.Lookup(ctx, "central"); err != nil || got != a {
		t.Fatalf("lookup: %v %v", got, err)
	}
	if err := reg.Rebind(ctx, "central", b); err != nil {
		t.Fatal(err)
	}
	if got, err := reg.Lookup(ctx, "central"); err != nil || got != b {
		t.Fatalf("lookup after rebind: %v %v", got, err)
	}
	if err := reg.Bind(ctx, "alpha", a); err != nil {
		t.Fatal(err)
	}
	if names, err := reg.List(ctx); err != nil || !slices.Equal(names, []string{"alpha", "central"}) {
		t.Fatalf("list: %v %v", names, err)
	}
	if err := reg.Unbind(ctx, "central"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Unbind(ctx, "central"); !errors.Is(err, ErrNotBound) {
		t.Fatalf("second unbind: %v", err)
	}
	if names, err := reg.List(ctx); err != nil || !slices.Equal(names, []string{"alpha"}) {
		t.Fatalf("list after unbind: %v %v", names, err)
	}
	for _, bad := range []string{"", "a/b", "has space"} {
		if err := reg.Bind(ctx, bad, a); !errors.Is(err, ErrBadArgs) {
			t.Errorf("bind %q: %v", bad, err)
		}
	}
	if got := a.String(); got != "rmi://10.0.0.1:1099/CentralServer" {
		t.Errorf("Ref.String() = %q", got)
	}
}

func TestRegistryOverTCP(t *testing.T) {
	secret := []byte("cluster")
	ts := startServer(t, ServerConfig{ClusterSecret: secret}, func(tab *Table) {
		if err := Export[RegistryService](tab, RegistryObjectName, NewRegistry()); err != nil {
			t.Fatal(err)
		}
	})
	member := RegistryStub{Inv: dial(t, ts.addr, DialConfig{ClusterSecret: secret})}
	outsider := RegistryStub{Inv: dial(t, ts.addr, DialConfig{})}
	ctx := ctxT(t)
	ref := Ref{Addr: ts.addr, Object: "svc"}

	if err := outsider.Bind(ctx, "x", ref); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("outsider bind: %v", err)
	}
	if err := member.Bind(ctx, "x", ref); err != nil {
		t.Fatal(err)
	}
	if err := member.Bind(ctx, "x", ref); !errors.Is(err, ErrAlreadyBound) {
		t.Fatalf("rebinding with Bind: %v", err)
	}
	if err := outsider.Rebind(ctx, "x", Ref{}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("outsider rebind: %v", err)
	}
	if err := outsider.Unbind(ctx, "x"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("outsider unbind: %v", err)
	}
	// Lookup and List are open to anyone.
	if got, err := outsider.Lookup(ctx, "x"); err != nil || got != ref {
		t.Fatalf("outsider lookup: %v %v", got, err)
	}
	if names, err := outsider.List(ctx); err != nil || !slices.Equal(names, []string{"x"}) {
		t.Fatalf("outsider list: %v %v", names, err)
	}
	// The reference found is usable.
	var out EchoArgs
	if err := outsider.Inv.Invoke(ctx, ref.Object, "Echo", EchoArgs{N: 1}, &out); err != nil || out.N != 2 {
		t.Fatalf("calling the looked-up object: %v %v", out, err)
	}
	if err := member.Unbind(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := member.Lookup(ctx, "x"); !errors.Is(err, ErrNotBound) {
		t.Fatalf("lookup after unbind: %v", err)
	}
	if names, err := member.List(ctx); err != nil || len(names) != 0 {
		t.Fatalf("empty list: %v %v", names, err)
	}
}

func TestParseURL(t *testing.T) {
	good := []struct{ in, addr, name string }{
		{"rmi://host:2000/Central", "host:2000", "Central"},
		{"rmi://host/Central", "host:1099", "Central"},
		{"RMI://10.1.2.3/Central", "10.1.2.3:1099", "Central"},
		{"host:2000/Central", "host:2000", "Central"},
		{"host/Central", "host:1099", "Central"},
		{"//host:2000/Central", "host:2000", "Central"},
		{"rmi://[::1]:2000/Central", "[::1]:2000", "Central"},
		{"rmi://[::1]/Central", "[::1]:1099", "Central"},
	}
	for _, g := range good {
		addr, name, err := ParseURL(g.in)
		if err != nil || addr != g.addr || name != g.name {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", g.in, addr, name, err, g.addr, g.name)
		}
	}
	bad := []string{
		"", "host", "rmi://host", "rmi://host/", "http://host/Central", "rmi:///Central",
		"/Central", "rmi://host:0/Central", "rmi://host:99999/Central", "rmi://host:abc/Central",
		"rmi://host:/Central", "rmi://host/a/b", "rmi://::1/Central", "rmi://:2000/Central",
		"rmi://host/has space",
	}
	for _, b := range bad {
		if addr, name, err := ParseURL(b); err == nil {
			t.Errorf("ParseURL(%q) = %q, %q; want an error", b, addr, name)
		}
	}
}
