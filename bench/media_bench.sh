#!/usr/bin/env bash
# 1,000 concurrent two-way media streams (Twilio Media Streams frames, µ-law,
# 20 ms) between a carrier-side driver and the platform's media endpoint
# (http::Server + telephony::media::MediaEndpoints with the built-in echo
# handler, as `clozit serve` mounts them), two processes on this machine.
# Prints one JSON line: outbound frame-timing jitter p50/p99/max, frames,
# platform CPU per stream, and the load average during the run.
# Target (issue 5): jitter p99 < 5 ms.
# Both processes run their I/O threads SCHED_RR at priority $CLOZIT_BENCH_REALTIME
# (default 10; 0 = time-shared), as the platform does with server.io_realtime_priority
# (ADR 0018); needs root or CAP_SYS_NICE, else they say so and run time-shared.
# Usage: bench/media_bench.sh [STREAMS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-1000}
seconds=${2:-20}
realtime=${CLOZIT_BENCH_REALTIME:-10}
# The same priority for the driver: one above the other measured worse (ADR 0018).
driver_realtime=$realtime

source bench/release_build.sh
build_release media_bench
bench="$build/bench/media_bench"
ulimit -n 8192

work=$(mktemp -d)
"$bench" serve --handler echo --io-threads 2 --realtime "$realtime" >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$work/serve.out")
"$bench" drive --port "$port" --streams "$streams" --seconds "$seconds" --platform-pid "$serve_pid" --realtime "$driver_realtime"
kill -TERM "$serve_pid"
wait "$serve_pid" || true
cat "$work/serve.err" >&2
