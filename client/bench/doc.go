// Package bench is the load generator of "distchat bench": one room, C
// clients (real client.Clients), each posting M messages of S bytes, every
// message delivered to every member. It measures what a chat system is
// judged by, in the spirit of "nats bench": deliveries and posts per
// second, the latency from a post's start to its delivery at another
// member (both ends in this process, on one clock), the CPU spent per
// delivery, and two checks: every message arrived exactly once at every
// member, and every member ends with the identical room log.
//
// [Run] takes a running cluster (Config.Central and Config.Dial); starting
// one is the caller's business (the distchat command starts "distchat up"
// as a child process and reports its CPU and memory through
// Config.ServerUsage).
//
// A message is identified by its id, "SENDER.SEQ" (the sender's index
// among the clients and the message's index among its posts), so a
// delivery needs no lookup to be accounted for.
package bench
