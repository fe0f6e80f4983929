// Package client is the distchat client library: it logs in at the
// central server, follows its redirect to a chat server, receives messages
// through a callback object exported over its own connection, and keeps
// each room as a log sorted by stamp. The terminal client on top of it is
// package client/term.
//
// # Room views
//
// A [View] holds one room's log sorted by [chatapi.Stamp], inserting late
// arrivals in their place, dropping duplicates by (Stamp.Server,
// Stamp.Seq), and showing a post stamped twice (retried on a second server)
// once, at the smaller stamp. The same set of messages gives the same log
// on every client, whatever order they arrived in. [View.Have] reports,
// per origin server, the contiguous prefix held, which is what a Sync asks
// the server to continue from: catching up has no gap and no duplicate.
// The views, and which prefix of each is settled, are a pure core
// (view.go, with the log kept in chunks in sortedlog.go and the index of
// shown posts in posts.go): no lock, no I/O, no clock; the Client calls
// it under its lock and carries out what it returns.
//
// # Client
//
// [Login] connects to the central server's registry, looks up the central
// server, logs in, and attaches to the chat server central placed the user
// on, then syncs every room. A [Client] pings its chat server on the
// configured clock; when the chat server becomes unreachable it asks central
// to place it on another live server, attaches there, catches every room up
// from its views' Have, and retries the failed call once (a post keeps its
// message id, so a retried post is stored once). Config.OnStatus hears of
// it once each way: [Lost], then [Back].
//
// The library starts no goroutines and never waits on a channel: background
// work (pings, resyncs) runs from the configured clock's AfterFunc, and all blocking
// happens in remote calls through the configured [Dialer]'s connections, so
// a simulator that supplies both can schedule it. No lock is held across a
// remote call. The one exception is a VoiceCall (voicecall.go, which the
// simulator does not use): a WebRTC peer in a room's voice channel, with a
// goroutine of its own that carries the SFU's signals to it and joins
// again when the channel's host goes; the voice methods themselves
// (voice.go) are plain remote calls.
//
// A post goes one way through the files: ops.go (Say: ChatServer.Post),
// then, as the chat server delivers it, deliver.go (the callback object's
// Deliver) and view.go (insertion in the room's view), and out through
// Config.OnMessage.
package client
