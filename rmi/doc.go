// Package rmi is a small Java-RMI-style remote object layer built on the
// standard library's net/rpc with the msgpack codec of
// github.com/hashicorp/go-msgpack/v2.
//
// The pieces mirror Java RMI:
//
//   - A [Table] holds exported remote objects by name (Java's object table).
//     A remote method is any exported method of the form
//     func(ctx context.Context, args A) (R, error) or func(ctx context.Context, args A) error.
//   - An [Invoker] makes calls on remote objects. [*Client] is the TCP
//     implementation; [Local] is an in-memory one for tests, and the
//     simulator supplies its own. Typed stubs (for example central.Stub) wrap
//     an Invoker and implement a remote interface method by method.
//   - A [Server] accepts connections, authenticates the peer (optionally
//     with a shared cluster secret), and dispatches calls into its Table.
//   - Callbacks travel over the caller's own connection: a client that dials
//     with DialConfig.Callbacks exports objects that the server can call back
//     through [Peer.Back], so callbacks work even when the client cannot
//     accept inbound connections.
//   - The registry (Bind, Rebind, Unbind, Lookup, List) names remote objects
//     at rmi://host:port/name, default port 1099.
//   - [Leases] expire remote references that are not renewed, the way Java's
//     distributed garbage collector does.
//
// Errors are classified so callers can react correctly: [ErrConnect] (the
// call never left), [ErrMarshal] (it could not be encoded or decoded),
// [ErrTimeout] and [ErrConnLost] (the outcome is unknown: at-most-once
// semantics, so retry only idempotent methods), and [*RemoteError] (the
// remote method ran and returned an application error, whose [Error] code
// survives the wire so errors.Is works on the caller's side).
package rmi
