# Shared by ping.sh and javarmi/run.sh (sourced, not run).

# pinned SERVER_CPU CLIENT_CPU runs the command in the array "server"
# pinned to SERVER_CPU (taskset), waits for the first line it prints
# ("ready ..."), runs the command in the array "client" pinned to
# CLIENT_CPU, prints what the client printed, and stops the server.
pinned() {
	local scpu=$1 ccpu=$2 ready out spid
	coproc SERVER { exec taskset -c "$scpu" "${server[@]}"; }
	spid=$SERVER_PID
	if ! read -r -t 60 ready <&"${SERVER[0]}"; then
		echo "server did not start: ${server[*]}" >&2
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
		return 1
	fi
	if ! out=$(taskset -c "$ccpu" "${client[@]}"); then
		echo "client failed: ${client[*]}" >&2
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
		return 1
	fi
	kill "$spid"
	wait "$spid" 2>/dev/null || true
	echo "$out"
}

# machine prints what the figures were measured on.
machine() {
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -sm), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "# $(go version 2>/dev/null || echo 'go: not found'); $(java -version 2>&1 | head -1)"
}
