package rmi

import (
	"context"
	"sync"
)

// Invoker calls methods of remote objects. A typed stub wraps an Invoker and
// implements a remote interface method by method.
//
// Invoke encodes args, calls method on the object exported under name
// object, and decodes the result into reply (a pointer, or nil for methods
// that return only an error). Errors are classified as described in the
// package documentation.
type Invoker interface {
	Invoke(ctx context.Context, object, method string, args, reply any) error
}

// Peer describes the other end of a connection, as seen by a remote method:
// [PeerFromContext] returns it inside a method.
type Peer struct {
	// ID identifies the connection; unique within the process.
	ID uint64
	// Addr is the remote network address.
	Addr string
	// Cluster reports whether the peer proved knowledge of the cluster secret.
	Cluster bool
	// Back calls the objects the peer exported on its own connection
	// (callbacks), or is nil if it exported none.
	Back Invoker

	mu     sync.Mutex
	closed bool
	hooks  []func()
}

// NewPeer returns a Peer. Transports (rmi's own server, the in-memory
// invoker, the simulator) create one per connection and call Close when the
// connection ends.
func NewPeer(id uint64, addr string, cluster bool, back Invoker) *Peer {
	return &Peer{ID: id, Addr: addr, Cluster: cluster, Back: back}
}

// OnClose registers f to run (once, in its own call) when the connection
// ends. If it has already ended, f runs at once. It is how a server learns
// that a client holding a lease went away.
func (p *Peer) OnClose(f func()) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		f()
		return
	}
	p.hooks = append(p.hooks, f)
	p.mu.Unlock()
}

// Closed reports whether the connection has ended.
func (p *Peer) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close marks the connection ended and runs the OnClose hooks. Only the
// transport that owns the connection calls it. It is safe to call twice.
func (p *Peer) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	hooks := p.hooks
	p.hooks = nil
	p.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

type peerKey struct{}

// WithPeer returns a context carrying p; transports use it before dispatching.
func WithPeer(ctx context.Context, p *Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFromContext returns the caller's Peer inside a remote method, or nil
// when the method was called directly rather than through a transport.
func PeerFromContext(ctx context.Context) *Peer {
	p, _ := ctx.Value(peerKey{}).(*Peer)
	return p
}
