// Package rmi is a small Java-RMI-style remote object layer built on the
// standard library's net/rpc with the msgpack codec of
// github.com/hashicorp/go-msgpack/v2.
//
// The pieces mirror Java RMI:
//
//   - A remote interface is a Go interface whose every method is a remote
//     method: func(ctx context.Context, args A) (R, error) or
//     func(ctx context.Context, args A) error.
//   - A [Table] holds exported remote objects by name (Java's object table).
//     [Export] publishes an object as one remote interface, named
//     explicitly (rmi.Export[chatapi.ChatServer](t, name, srv)): exactly
//     that interface's methods become callable, never another method of
//     the object's type (a call to one fails with [ErrNoSuchMethod]).
//   - An [Invoker] makes calls on remote objects. A typed stub wraps an
//     Invoker and implements a remote interface, one line per method:
//     [Call] for methods with a result, Invoker.Invoke with a nil reply for
//     the others. (rmitest.CheckStub proves a stub calls the right remote
//     method for every method of its interface.)
//   - A [Server] accepts connections (over TLS 1.3), authenticates the
//     peer (optionally with a shared cluster secret bound to the TLS
//     session, and a client certificate), and runs their calls on its
//     Table.
//   - Callbacks travel over the caller's own connection: a client that dials
//     with DialConfig.Callbacks exports objects that the server can call back
//     through [Peer.Back], so callbacks work even when the client cannot
//     accept inbound connections.
//   - The registry ([Registry], exported as a [RegistryService]; Bind,
//     Rebind, Unbind, Lookup, List) names remote objects at
//     rmi://host:port/name, default port 1099.
//   - [Leases] expire remote references that are not renewed, the way Java's
//     distributed garbage collector does.
//
// # One call path
//
// Every call, whatever carries it, goes through the same two halves, and a
// [Transport] between them only moves bytes:
//
//	caller: Caller.Invoke --Request--> Transport --> Table.Handle: callee
//	        (classify)    <--Response--           <--
//
// [Caller] gives a call without a deadline one of its CallTimeout, fails
// at once a call whose deadline has passed, encodes the argument, and
// sends the caller's remaining time in the [Request]. [Table.Handle]
// rejects arguments over their caps with [ErrTooLarge], runs the method
// under the caller's remaining time measured on the callee's own clock
// (so the two clocks need not agree), recovers a panic as [ErrPanic], and
// encodes the result, or the error with its code, in the [Response]. A
// method that returns after its deadline has passed, whatever it returns,
// is answered as timed out, so the caller sees [ErrTimeout] just as if its
// own timer had fired first. Caller then classifies the outcome.
//
// There are three transports. [Client] (and Peer.Back) carry requests over
// TCP, as net/rpc calls; [Local] hands them to a Table in the same process,
// in the caller's goroutine, the callee seeing only the caller's Peer and
// deadline, as over a network; and the simulator (package sim) delivers
// them through its simulated network in virtual time, reading deadlines on
// each node's clock. Over TCP, RoundTrip stops waiting when the caller's
// context ends; in process, the call returns when the method does.
//
// # Errors
//
// Errors are classified so callers can react correctly: [ErrConnect] (the
// call never left), [ErrMarshal] (it could not be encoded or decoded),
// [ErrTimeout] and [ErrConnLost] (the outcome is unknown: at-most-once
// semantics, so retry only idempotent methods), and [*RemoteError] (the
// remote method ran and returned an application error, whose [Error] code
// survives the wire so errors.Is works on the caller's side). The
// classification uses only types and codes: context errors, the package's
// sentinel errors, and the codes in Response (including the rmi layer's
// own, such as a request over the size cap), never the text of an error.
// Errors wrap their causes, so errors.Is and errors.As see through them.
//
// # Wire protocol
//
// A connection is TCP and, when ServerConfig.TLS and DialConfig.TLS are
// set (as distchat always sets them), TLS 1.3 over it: the server refuses
// anything else, plaintext bytes included, by failing the TLS handshake
// and closing the connection. Inside, it opens with a handshake: a magic
// line naming the protocol and version, random nonces both ways and, when
// the client has a cluster secret, HMAC-SHA256 proofs of it in both
// directions; the server ends it with "OK" or a one-line "ERR" reason (a
// peer of another version, such as distchat-rmi/1, is told which one the
// server speaks).
//
// Then each side writes frames: a 5-byte header (the frame's kind, and
// its body's length as a big-endian uint32), then the body. A request
// frame carries net/rpc with the go-msgpack GoRpc codec (the net/rpc
// request header, then the argument), calling the one service, "RMI",
// whose Invoke method takes a [Request] and returns a [Response]; a
// response frame carries the net/rpc response header and the Response.
// Calls go both ways on the one connection: the client's to the server,
// and the server's callbacks (Peer.Back) to the client. Ping and pong
// frames, with no body, are the keepalive. There is no multiplexer: each
// end has one net/rpc client, whose input goroutine is the connection's
// only reader. It reads responses for its own calls, and each request it
// meets is run in a goroutine of its own (rpc.Server.ServeRequest), which
// writes the response frame itself; a frame is written by the goroutine
// that has it to send, under a lock. A call thus costs what a call over
// plain net/rpc does, and an idle connection costs one goroutine at each
// end.
//
// The bytes of a call are copied as little as they can be: its argument
// is encoded into a buffer reused from call to call, a frame gets one
// buffer of its size, and the callee reads a Request's Args (the caller a
// large Response's Result) where they lie in the frame, with msgp's
// zero-copy readers for the envelope go-msgpack wrote (envelope.go);
// anything else is decoded by go-msgpack as before.
//
// Length prefixes let a server refuse a request before decoding it: one
// over its size cap, or one that does not fit the byte budgets, is read,
// dropped (but for its first bytes, which name its method) and answered
// with an error code, and the connection carries on. A request whose body
// does not decode is answered as such too. A frame that breaks the
// framing (an unknown kind, a response larger than a response may be, a
// request whose net/rpc header does not decode) ends the connection.
//
// # Security
//
// TLS gives confidentiality and integrity: a man in the middle who relays
// a session can neither read it nor inject into it (a tampered record
// ends the connection), and one who terminates TLS with a certificate of
// his own fails the client's verification (DialConfig.TLS's RootCAs, or
// its VerifyConnection for trust on first use). Cluster rights rest on the
// cluster secret, proved with HMACs that cover the TLS session's exported
// keying material (RFC 9266 channel binding): a proof is valid on the one
// TLS session it was made on, so relaying a real member's handshake into
// another session fails on both sides. That is what lets a chat server's
// first contact with central accept central's certificate unverified: the
// secret authenticates central on that very session. Where
// ServerConfig.RequireClusterCert is set (chat servers between them), a
// cluster peer must also present a client certificate signed by the
// cluster CA (mutual TLS): it needs both the secret and a certificate
// central issued. Plain clients present no certificate and prove no
// secret; they authenticate the server by its certificate and themselves
// by their session token.
//
// Every wait is bounded: the dial (DialConfig.ConnectTimeout), the
// handshakes, TLS and protocol (HandshakeTimeout on both sides), each call (its context's
// deadline, else DialConfig.CallTimeout; the server runs the method under
// the caller's remaining deadline), and the server's reads and writes
// (ServerConfig.IdleTimeout: a connection that receives nothing, on which
// a request stalls half-sent, or on which a write blocks because the peer
// stopped reading, is closed; clients ping every 15 s, and the server
// answers, which keeps healthy idle connections alive), and each request
// as a whole (from its frame header to its last byte,
// Limits.RequestTimeout, however steadily it trickles: the connection is
// closed).
// All these timers run on the configured clock.Clock; context deadlines
// given to Invoke are read on that clock.
//
// # Resource limits
//
// No peer can make a server allocate without bound ([Limits], in
// ServerConfig; every cap has a default):
//
//   - Connections: at most MaxConns (1024) in all and MaxConnsPerAddr (64)
//     from one IP address; more are closed at once. Each idle one costs
//     about 10 KiB (one goroutine, TLS state, the net/rpc client; both
//     ends of a plaintext one, 19.5 KB in BenchmarkIdleConn).
//   - Requests in flight: at most MaxRequestsPerConn (256) read and not
//     yet answered on one connection, each running in a goroutine; while
//     a peer has that many, the server reads nothing more from it.
//   - Requests: at most MaxClientRequestBytes (64 KiB) from a peer without
//     the cluster secret, ServerConfig.MaxRequestBytes (8 MiB) from a
//     cluster peer; the length in a request's frame header is checked
//     before its body is read, and a request over the cap is refused with
//     [ErrTooLarge] (its body is read and dropped, never held).
//   - Bytes in flight: each request is charged its size plus 8 KiB (its
//     goroutine and bookkeeping) from its frame header until it is
//     answered, against its connection's budget (MaxClientConnBytes, 1 MiB,
//     or MaxConnBytes, 16 MiB, for a cluster peer) and the server's
//     (MaxInflightBytes, 64 MiB); a request from a peer without the
//     cluster secret also against its IP address's budget, shared by all
//     its connections (MaxAddrBytes, 4 MiB), and all such peers' budget
//     (MaxClientInflightBytes, 32 MiB), so that one address cannot take
//     much of the server's budget and clients together cannot take the
//     part kept for cluster peers (their lease renewals and session
//     checks). A request that does not fit is refused with [ErrBusy]
//     (read and dropped, like one over the size cap).
//   - Responses (to the server's callbacks): from a peer without the
//     cluster secret, no larger than its requests may be (64 KiB); from a
//     cluster peer, at most 64 MiB. A larger one ends the connection. A
//     frame is read into memory as its bytes arrive, so a length the peer
//     declares but does not send costs nothing.
//   - Arguments: an argument type declares its method's caps ([ArgLimits]):
//     [ArgCaps] bound its encoded size and the length of every map and
//     array in it, checked on the encoding before it is decoded (a map
//     entry costs a few bytes on the wire and many times that decoded),
//     and CheckLimits checks what is left after decoding. Within these
//     caps an argument decodes to at most a few times its size.
//   - Time: a request must arrive whole within RequestTimeout (10 s).
//
// So the memory that peers can make a server hold is bounded by about
//
//	MaxConns × 10 KiB + 3 × MaxInflightBytes
//
// that is about 10 MiB of connections and 192 MiB of requests and their
// decoded arguments with the defaults, plus the responses to callbacks
// being read: at most 64 KiB per client connection. Lower MaxConns for a
// smaller bound.
package rmi
