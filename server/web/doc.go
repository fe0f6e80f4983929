// Package web is a chat server's web port: the browser chat app and the
// WebSocket gateway behind it.
//
// A browser arrives from central's login page at /auth with a one-time
// ticket; the handler redeems it at central (Cluster.RedeemTicket) for the
// session's token and keeps that in an HttpOnly cookie. The app (/, and
// its embedded assets under /static/) then opens a WebSocket at /ws. The
// gateway attaches the session to this very chat server with a
// [client.Client] (client.Attach), one per session however many tabs
// share it, so a browser reaches exactly the operations the terminal
// client uses: the chat server checks membership and takes the sender
// from the session, and the client's room views put every message in
// stamp order. The gateway only translates: each WebSocket command is one
// Client call, and each message the Client shows goes to the page with
// the id of the message it goes before (so the page never sorts).
//
// The files follow the jobs: handler.go (routes, cookies, security
// headers), session.go (one attached Client per session, shared by its
// WebSockets), conn.go (one WebSocket: reading commands, writing replies
// and pushes), ops.go (the commands), wire.go (the JSON shapes), and
// ratelimit.go (the per-user post rate limit).
package web
