package rmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// DefaultPort is the registry's well-known TCP port, as in Java RMI.
const DefaultPort = 1099

// RegistryObjectName is the name a Registry is exported under.
const RegistryObjectName = "Registry"

// maxNameLen caps registry names.
const maxNameLen = 256

// Ref names a remote object: the address of the process exporting it and
// the name it is exported under there.
type Ref struct {
	// Addr is "host:port" of the rmi server.
	Addr string
	// Object is the name the object is exported under.
	Object string
}

// String returns the reference as an rmi URL.
func (r Ref) String() string { return "rmi://" + r.Addr + "/" + r.Object }

// RegistryService is the remote interface of a Registry.
type RegistryService interface {
	// Bind binds a.Name to a.Ref; ErrAlreadyBound if the name is taken.
	Bind(ctx context.Context, a BindArgs) error
	// Rebind binds a.Name to a.Ref, replacing any binding.
	Rebind(ctx context.Context, a BindArgs) error
	// Unbind removes the binding of a.Name; ErrNotBound if there is none.
	Unbind(ctx context.Context, a NameArgs) error
	// Lookup returns the reference bound to a.Name; ErrNotBound if none.
	Lookup(ctx context.Context, a NameArgs) (Ref, error)
	// List returns the bound names, sorted.
	List(ctx context.Context, a ListArgs) ([]string, error)
}

var _ RegistryService = (*Registry)(nil)

// Registry maps names to remote object references, like Java's
// rmiregistry. Lookup and List are open to anyone; Bind, Rebind and Unbind
// only to cluster peers and in-process callers (no Peer in the context);
// others get ErrUnauthorized. It is safe for concurrent use. Export it as
// a RegistryService under RegistryObjectName:
//
//	rmi.Export[rmi.RegistryService](t, rmi.RegistryObjectName, rmi.NewRegistry())
type Registry struct {
	mu    sync.Mutex
	names map[string]Ref
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{names: map[string]Ref{}} }

// BindArgs are the arguments of Registry.Bind and Registry.Rebind.
type BindArgs struct {
	// Name is the name to bind.
	Name string
	// Ref is the remote object it names.
	Ref Ref
}

// NameArgs are the arguments of Registry.Unbind and Registry.Lookup.
type NameArgs struct {
	// Name is the bound name.
	Name string
}

// ListArgs are the (empty) arguments of Registry.List.
type ListArgs struct{}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen || strings.ContainsAny(name, "/ \t\r\n") {
		return fmt.Errorf("registry: invalid name %q: %w", name, ErrBadArgs)
	}
	return nil
}

func mayMutate(ctx context.Context) error {
	if p := PeerFromContext(ctx); p != nil && !p.Cluster {
		return fmt.Errorf("registry: changing bindings: %w", ErrUnauthorized)
	}
	return nil
}

// Bind binds a.Name to a.Ref; it fails with ErrAlreadyBound if the name
// is taken.
func (r *Registry) Bind(ctx context.Context, a BindArgs) error {
	if err := mayMutate(ctx); err != nil {
		return err
	}
	if err := checkName(a.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.names[a.Name]; ok {
		return fmt.Errorf("registry: %q: %w", a.Name, ErrAlreadyBound)
	}
	r.names[a.Name] = a.Ref
	return nil
}

// Rebind binds a.Name to a.Ref, replacing any binding.
func (r *Registry) Rebind(ctx context.Context, a BindArgs) error {
	if err := mayMutate(ctx); err != nil {
		return err
	}
	if err := checkName(a.Name); err != nil {
		return err
	}
	r.mu.Lock()
	r.names[a.Name] = a.Ref
	r.mu.Unlock()
	return nil
}

// Unbind removes the binding of a.Name; it fails with ErrNotBound if there
// is none.
func (r *Registry) Unbind(ctx context.Context, a NameArgs) error {
	if err := mayMutate(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.names[a.Name]; !ok {
		return fmt.Errorf("registry: %q: %w", a.Name, ErrNotBound)
	}
	delete(r.names, a.Name)
	return nil
}

// Lookup returns the reference bound to a.Name, or ErrNotBound.
func (r *Registry) Lookup(ctx context.Context, a NameArgs) (Ref, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, ok := r.names[a.Name]
	if !ok {
		return Ref{}, fmt.Errorf("registry: %q: %w", a.Name, ErrNotBound)
	}
	return ref, nil
}

// List returns the bound names, sorted.
func (r *Registry) List(ctx context.Context, _ ListArgs) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.names))
	for n := range r.names {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// RegistryStub calls a remote Registry through Inv. Its methods take the
// name and reference themselves rather than RegistryService's argument
// structs, like Java's java.rmi.Naming.
type RegistryStub struct {
	// Inv reaches the process that exports the Registry.
	Inv Invoker
}

// Bind binds name to ref; ErrAlreadyBound if the name is taken.
func (s RegistryStub) Bind(ctx context.Context, name string, ref Ref) error {
	return s.Inv.Invoke(ctx, RegistryObjectName, "Bind", BindArgs{Name: name, Ref: ref}, nil)
}

// Rebind binds name to ref, replacing any binding.
func (s RegistryStub) Rebind(ctx context.Context, name string, ref Ref) error {
	return s.Inv.Invoke(ctx, RegistryObjectName, "Rebind", BindArgs{Name: name, Ref: ref}, nil)
}

// Unbind removes the binding of name; ErrNotBound if there is none.
func (s RegistryStub) Unbind(ctx context.Context, name string) error {
	return s.Inv.Invoke(ctx, RegistryObjectName, "Unbind", NameArgs{Name: name}, nil)
}

// Lookup returns the reference bound to name; ErrNotBound if there is none.
func (s RegistryStub) Lookup(ctx context.Context, name string) (Ref, error) {
	return Call[Ref](ctx, s.Inv, RegistryObjectName, "Lookup", NameArgs{Name: name})
}

// List returns the bound names, sorted.
func (s RegistryStub) List(ctx context.Context) ([]string, error) {
	return Call[[]string](ctx, s.Inv, RegistryObjectName, "List", ListArgs{})
}

// ParseURL splits an rmi URL into the registry's address ("host:port") and
// the bound name. Accepted forms: "rmi://host:port/name", "rmi://host/name",
// "//host:port/name", "host:port/name" and "host/name"; the port defaults
// to DefaultPort, and IPv6 hosts go in brackets ("rmi://[::1]:1099/name").
func ParseURL(s string) (addr, name string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("rmi: bad URL %q: %s", s, why)
	}
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		if !strings.EqualFold(s[:i], "rmi") {
			return bad("scheme must be rmi")
		}
		rest = s[i+3:]
	} else if strings.HasPrefix(s, "//") {
		rest = s[2:]
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return bad("no /name")
	}
	hostport, name := rest[:slash], rest[slash+1:]
	if err := checkName(name); err != nil {
		return bad("name must be non-empty, without '/' or spaces")
	}
	if addr, err = hostPort(hostport); err != nil {
		return "", "", fmt.Errorf("rmi: bad URL %q: %w", s, err)
	}
	return addr, name, nil
}

// hostPort checks "host:port", "host" or "[ipv6]" (port DefaultPort) and
// returns it as "host:port".
func hostPort(hostport string) (string, error) {
	var host, port string
	switch {
	case hostport == "":
		return "", errors.New("no host")
	case strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]"):
		host, port = hostport[1:len(hostport)-1], strconv.Itoa(DefaultPort)
	case strings.Count(hostport, ":") == 0:
		host, port = hostport, strconv.Itoa(DefaultPort)
	default:
		var err error
		if host, port, err = net.SplitHostPort(hostport); err != nil {
			return "", err
		}
	}
	if host == "" || strings.ContainsAny(host, " \t@?#[],/") {
		return "", errors.New("bad host")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", errors.New("bad port")
	}
	return net.JoinHostPort(host, port), nil
}

// registryArgBytes caps the encoded arguments of a registry method: a name
// of at most maxNameLen bytes and a reference.
const registryArgBytes = 2 << 10

// registryArgLen caps the maps and arrays of a registry method's
// arguments: structs of a few fields.
const registryArgLen = 16

// ArgCaps implements ArgLimits.
func (BindArgs) ArgCaps() ArgCaps { return ArgCaps{Bytes: registryArgBytes, Len: registryArgLen} }

// CheckLimits implements ArgLimits.
func (BindArgs) CheckLimits() error { return nil }

// ArgCaps implements ArgLimits.
func (NameArgs) ArgCaps() ArgCaps { return ArgCaps{Bytes: registryArgBytes, Len: registryArgLen} }

// CheckLimits implements ArgLimits.
func (NameArgs) CheckLimits() error { return nil }

// ArgCaps implements ArgLimits.
func (ListArgs) ArgCaps() ArgCaps { return ArgCaps{Bytes: registryArgBytes, Len: registryArgLen} }

// CheckLimits implements ArgLimits.
func (ListArgs) CheckLimits() error { return nil }
