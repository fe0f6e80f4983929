#!/usr/bin/env bash
# The empty remote call across two processes: distchat's rmi (plaintext
# TCP and TLS 1.3, bench/rmiping) and the bare stack under it (net/rpc
# with the go-msgpack codec, rmiping --netrpc) against Java RMI (plain
# TCP, no TLS, bench/javarmi), pinned to one CPU (same: server and client both on CPU
# 0) and to two (split: server on CPU 0, client on CPU 1). ROUNDS rounds,
# each running every implementation at every placement in turn (so that
# the machine's noise falls on all alike); then the median p50 and p99 of
# each over the rounds. Each run times N calls after WARMUP calls.
#
#   bench/ping.sh                          # N=20000 WARMUP=20000 ROUNDS=5
set -euo pipefail
N=${N:-20000}
WARMUP=${WARMUP:-20000}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-11100}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
javac -d "$work/java" "$here"/javarmi/*.java
(cd "$here/.." && go build -o "$work/rmiping" ./bench/rmiping)

machine
echo "# Java RMI over plain TCP (no TLS); go-netrpc (bare net/rpc + go-msgpack) over plain TCP; go-rmi over plaintext TCP (tcp) and TLS 1.3 (tls13)"
jvm=(java -Djava.rmi.server.hostname=127.0.0.1 -cp "$work/java")
for _ in $(seq "$ROUNDS"); do
	for placement in same:0:0 split:0:1; do
		IFS=: read -r name scpu ccpu <<<"$placement"
		for impl in java netrpc tcp tls; do
			addr=127.0.0.1:$PORT
			case $impl in
			java)
				server=("${jvm[@]}" PingServer "$PORT")
				client=("${jvm[@]}" PingClient 127.0.0.1 "$PORT" "$N" "$WARMUP")
				;;
			netrpc)
				server=("$work/rmiping" serve --listen "$addr" --netrpc)
				client=("$work/rmiping" call --addr "$addr" --netrpc --n "$N" --warmup "$WARMUP")
				;;
			tcp)
				server=("$work/rmiping" serve --listen "$addr")
				client=("$work/rmiping" call --addr "$addr" --n "$N" --warmup "$WARMUP")
				;;
			tls)
				server=("$work/rmiping" serve --listen "$addr" --tls "$work/ca")
				client=("$work/rmiping" call --addr "$addr" --n "$N" --warmup "$WARMUP" --tls "$work/ca")
				;;
			esac
			echo "$(pinned "$scpu" "$ccpu") placement=$name" | tee -a "$work/results"
			PORT=$((PORT + 1))
		done
	done
done

echo "# medians over $ROUNDS rounds (µs)"
awk '
function field(name,   i, kv) {
	for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] }
}
function median(list,   v, n, i, j, t) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
	return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
{
	key = sprintf("%-9s %-9s %-9s", field("placement"), field("impl"), field("transport"))
	if (!(key in p50)) order[++nkeys] = key
	p50[key] = p50[key] " " field("p50_us")
	p99[key] = p99[key] " " field("p99_us")
}
END {
	printf "%-9s %-9s %-9s %9s %9s\n", "placement", "impl", "transport", "p50", "p99"
	for (k = 1; k <= nkeys; k++) printf "%s %9.1f %9.1f\n", order[k], median(p50[order[k]]), median(p99[order[k]])
}' "$work/results"
