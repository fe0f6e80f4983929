// Package server is a distchat chat server.
//
// A chat server accepts the sessions central places on it (Attach), and
// for each post it is the first to receive it stamps the message with its
// own clock as (Time, Server, Seq), stores it durably, acknowledges it, and
// then fans it out: it asks central which servers the room's members are
// on, forwards the message once to each of those servers (Peer.Forward),
// and delivers it to its own attached members through their callbacks.
//
// # Follow a post
//
// Each file has one job, and a post flows forward through them:
//
//   - post.go: Post validates the post, stamps it (the stamper) and hands
//     it to the committer.
//   - commit.go: the committer group-commits it; committed then hands the
//     durable batch on, to fan-out and to local delivery.
//   - fanout.go: the message goes out to every member. dispatchLocked and
//     runForwarder forward it once to each other server of the room's
//     members; there, Forward stores it through that server's committer,
//     whose committed hands it back here: deliverLocked queues it for every
//     local member, and pump sends each client's queue in Deliver
//     callbacks.
//
// # Cores
//
// The decisions are plain types with no lock, no I/O and no clock of their
// own (time is an argument), each with table tests: the server takes its
// lock, calls a core, and carries out what the core returns (store writes,
// remote calls after releasing the lock, timers through its clock).
//
//   - stamp.go: stamper, the stamp times (wall or hlc).
//   - outbox.go: outbox, what each other server is owed, what one Forward
//     carries, what an acknowledgement releases, the cursors to write, the
//     watermarks to send.
//   - settled.go: settledTracker, the watermarks of every server and the
//     settled point of each room (the protocol is described there).
//   - members.go: roomMembers, one room's cached membership and when it is
//     stale.
//
// # The other files
//
//   - server.go: Config, Open, Start, Close, and the timers (after).
//   - cluster.go: registration and lease at central, the live servers.
//   - session.go: Attach, Ping, Detach, and the attachments.
//   - rooms.go: membership from central, room operations, RoomChanged.
//   - catchup.go: Sync, Fetch, catch-up from peers and anti-entropy.
//   - heartbeat.go: this server's watermark, and settled notices.
//   - store.go: the log (package seglog) and its index in memory;
//     logrec.go: the log's records; migrate.go: an older version's bbolt
//     file converted.
//   - storage.go: a failing disk: refuse, move clients away, probe with
//     back-off, recover without a restart.
//   - voice.go: a client's voice operations (VoiceJoin, VoiceSignal,
//     VoiceLeave, VoiceWho), relayed to the server central names as the
//     host of the room's voice channel; the host's signals back to the
//     client (VoiceReturn, Callback.Voice).
//   - voicehost.go: the host's side: the SFU (package voice), created
//     when first needed and closed with the server, and VoiceRelay.
//   - ring.go: a direct room's call rings the other member (Peer.Ring,
//     an EventRing through the callee's delivery queue) every
//     Config.VoiceRing while the caller waits alone.
//
// # Throughput
//
// The hot path is built for throughput:
//
//   - group commit: concurrent posts and forwards share one append to
//     the log: one write and one fdatasync (committer, store);
//   - a forward reaches local members as soon as it arrives; its write
//     follows (storeForeign);
//   - batched forwarding: one forwarder per destination server drains every
//     room's pending messages into one Forward call (outbox);
//   - batched callbacks: each attached client has a bounded queue drained by
//     one delivery task into one Deliver call per batch; a client that falls
//     too far behind loses its queue and is told to resync, so a slow reader
//     never stalls a room (attachment);
//   - no lock is held across a remote call.
//
// # Durability
//
// A post is acknowledged only after it is in the server's log. Each
// room's own messages are forwarded to each destination with a durable
// cursor (the outbox), retried until acknowledged; receivers drop
// duplicates by (room, origin server, seq), and acknowledge a Forward
// only once its messages are in their own log. A server that gains members in
// a room pulls the room's history from every live server (Peer.Fetch), and
// rooms with local members are re-checked against all live servers
// periodically (anti-entropy), so a message reaches everyone who needs it
// even across crashes and membership changes.
//
// When a write fails (a full disk), the server refuses posts rather than
// acknowledge what is not durable, tells central to place no one there and
// its clients to move, and probes the disk until a write works again; then
// it takes posts again without a restart (storage.go).
//
// Background work is started only through the injected clock
// (clock.AfterFunc), never with a bare goroutine, so the simulator can
// schedule it deterministically.
package server
