// Package sim is a deterministic simulator for distchat. It runs the real
// central, server and client code — the same objects, exported through
// the same rmi.Table and called through the same typed stubs as in
// production — on virtual time and a simulated network, and checks what
// the ordering rule promises.
//
// # How it stays deterministic
//
// Everything happens in one event queue ordered by (virtual time,
// sequence number), and every random choice (delays, drops, skews, who
// posts what and when) comes from one seeded source. The components never
// start goroutines or timers of their own: they start background work with
// clock.AfterFunc on the clock they were given, and the simulator's clock
// turns each such call into an event. Component code runs in tasks, one
// at a time: only the goroutine holding the baton runs, and it runs the
// events in order, each task as a plain call. A remote call parks the
// task (its goroutine waits, and another takes the baton and runs the
// next events), schedules the request's arrival at the callee after a
// sampled delay, and the callee runs as another task; the reply wakes the
// caller, again as an event, by handing it the baton (sched.go). So the same seed and flags give the same
// sequence of events, byte for byte, on every run and machine.
//
// # What it checks
//
//   - agreement: at quiescence every member of a room holds the same log;
//   - completeness: every acknowledged post is in every member's log, once;
//   - causality: a post made after its author saw m is ordered after m
//     (violated in wall mode when clock skew exceeds the network delay —
//     the original system's known anomaly — and kept in hlc mode);
//   - stability: how often a client displayed a message and then had an
//     earlier one inserted above it.
package sim
