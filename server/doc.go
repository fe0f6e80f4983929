// Package server is a distchat chat server.
//
// A chat server accepts the sessions central places on it (Attach), and
// for each post it is the first to receive it stamps the message with its
// own clock as (Time, Server, Seq), stores it durably, acknowledges it, and
// then fans it out: it asks central which servers the room's members are
// on, forwards the message once to each of those servers (Peer.Forward),
// and delivers it to its own attached members through their callbacks.
//
// The hot path is built for throughput:
//
//   - group commit: concurrent posts and forwards share one bbolt
//     transaction and one fsync (committer);
//   - batched forwarding: one forwarder per destination server drains every
//     room's pending messages into one Forward call (forwarder);
//   - batched callbacks: each attached client has a bounded queue drained by
//     one delivery task into one Deliver call per batch; a client that falls
//     too far behind loses its queue and is told to resync, so a slow reader
//     never stalls a room (attachment);
//   - no lock is held across a remote call.
//
// Durability: a post is acknowledged only after it is in the server's bbolt
// file. Each room's own messages are forwarded to each destination with a
// durable cursor (the outbox), retried until acknowledged; receivers drop
// duplicates by (room, origin server, seq). A server that gains members in a
// room pulls the room's history from every live server (Peer.Fetch), and
// rooms with local members are re-checked against all live servers
// periodically (anti-entropy), so a message reaches everyone who needs it
// even across crashes and membership changes.
//
// Background work is started only through the injected clock
// (clock.AfterFunc), never with a bare goroutine, so the simulator can
// schedule it deterministically.
package server
