#!/usr/bin/env bash
# Measures Java RMI's empty remote call (Ping.ping(), no arguments, no
# result) between two JVMs on plain TCP (no TLS: java.rmi's default
# sockets), pinned to one CPU (same: server and client both on CPU 0)
# and to two (split: server on CPU 0, client on CPU 1). Each run prints
# the client's line: p50, p99 and mean round trip in µs over N calls
# after WARMUP calls.
#
#   bench/javarmi/run.sh                   # N=20000 WARMUP=20000 ROUNDS=1
#   ROUNDS=3 N=50000 bench/javarmi/run.sh
#
# bench/ping.sh runs it interleaved with distchat's rmi and prints medians.
set -euo pipefail
N=${N:-20000}
WARMUP=${WARMUP:-20000}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-11099}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"

classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
javac -d "$classes" "$here"/*.java

machine
echo "# Java RMI over plain TCP (no TLS)"
jvm=(java -Djava.rmi.server.hostname=127.0.0.1 -cp "$classes")
for _ in $(seq "$ROUNDS"); do
	for placement in same:0:0 split:0:1; do
		IFS=: read -r name scpu ccpu <<<"$placement"
		server=("${jvm[@]}" PingServer "$PORT")
		client=("${jvm[@]}" PingClient 127.0.0.1 "$PORT" "$N" "$WARMUP")
		echo "$(pinned "$scpu" "$ccpu") placement=$name"
		PORT=$((PORT + 1))
	done
done
