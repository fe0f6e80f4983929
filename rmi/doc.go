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
//
// # Wire protocol
//
// A connection is TCP. It opens with a handshake: a magic line naming the
// protocol and version, random nonces both ways and, when the client has a
// cluster secret, HMAC-SHA256 proofs of it in both directions; the server
// ends it with "OK" or a one-line "ERR" reason. The connection is then
// multiplexed with yamux: the client opens a stream for its calls, and the
// server opens one back to the client for callbacks. Each stream carries
// net/rpc with the go-msgpack GoRpc codec and one service, "RMI", whose
// Invoke method takes a [Request] and returns a [Response].
//
// Every wait is bounded: the dial (DialConfig.ConnectTimeout), the
// handshake (HandshakeTimeout on both sides), each call (its context's
// deadline, else DialConfig.CallTimeout; the server runs the method under
// the caller's remaining deadline), and the server's reads
// (ServerConfig.IdleTimeout: a connection that receives nothing, or a
// request that stalls half-sent, is closed; yamux keepalives keep healthy
// idle connections alive). All these timers run on the configured
// clock.Clock; context deadlines given to Invoke are read on that clock.
package rmi
