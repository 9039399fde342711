#!/usr/bin/env bash
# A D-Bus method call on a private bus (Debian's dbus-daemon, sd-bus from
# libsystemd on both ends, a 64-byte array echoed by another process)
# against a raw socketpair ping-pong of the same 64 bytes: the usual IPC of
# Linux daemons, next to bench/ipc.sh's ipc_call_vs_raw_ratio for ours.
#
# Prints dbus_call_us, dbus_bus_ping_us (a call the bus answers itself),
# dbus_bench_raw_pingpong_us and dbus_call_vs_raw_ratio. Everything on CPU 0
# unless "--cpus=any" is passed after the build directory.
#
# Usage: bench/dbus.sh [BUILD_DIR] [--cpus=any] [--rounds N] [--calls N]
set -euo pipefail
cd "$(dirname "$0")/.."
shift || true        # BUILD_DIR: nothing of the build is needed here

work=$(mktemp -d /tmp/santa-bench-dbus.XXXXXX)
daemon=
cleanup() {
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2046
cc -O2 -std=gnu17 -o "$work/dbus-call" bench/dbus-call.c $(pkg-config --cflags --libs libsystemd)

pin=(taskset -c 0)
for a in "$@"; do
	[ "$a" = "--cpus=any" ] && pin=()
done

# A bus of our own: the session configuration, on a socket in $work.
address="unix:path=$work/bus"
timeout -s KILL 600 "${pin[@]}" dbus-daemon --config-file=/usr/share/dbus-1/session.conf \
	--address="$address" --nofork --nopidfile >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
	[ -S "$work/bus" ] && break
	sleep 0.05
done
if [ ! -S "$work/bus" ]; then
	cat "$work/daemon.log" >&2
	echo "bench/dbus.sh: dbus-daemon did not start" >&2
	exit 1
fi

timeout 300 "$work/dbus-call" "$address" "$@"
