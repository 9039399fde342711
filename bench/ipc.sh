#!/usr/bin/env bash
# Round trip of a small call through the IPC library against a raw
# SOCK_SEQPACKET ping-pong of the same datagram size, two processes each,
# same CPU pinning for both, interleaved rounds, medians.
#
# Prints ipc_call_us, raw_pingpong_us and ipc_call_vs_raw_ratio (the goal is
# <= 1.5), plus the same for the event-loop client (ipc_async_*).
# Usage: bench/ipc.sh [BUILD_DIR] [bench-ipc options, e.g. --cpus=any]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
exe="$build/src/ipc/bench-ipc"
if [ ! -x "$exe" ]; then
	echo "bench/ipc.sh: $exe is not built (run script/setup)" >&2
	exit 1
fi
exec timeout 300 "$exe" "$@"
