#!/usr/bin/env bash
# Call set-ups per second: the real `clozit serve` (SQLite, embedded defaults
# but without its in-process emulator) and the real `carrier-emulator` binary,
# two processes on loopback, plus the driver (bench/call_setup_bench.cpp) that
# offers POST /v1/admin/calls open-loop at RATE/s for SECONDS and reads back
# which calls the carrier's `answered` webhook reached and moved.
# Once per carrier (fresh platform and emulator each time); prints one JSON
# line per carrier. Target (issue 5): 200 set-ups/s sustained.
#
# The callee answers after 1 s and hangs up 1 s later (so ≈ 2 × RATE calls are
# live at once); every call streams its media as the platform asks (the
# emulator's callee sends a silence frame every 20 ms, the platform's echo
# handler answers each). The emulator's carrier rate limits (Twilio 1 call/s
# queued, Telnyx 10/s then 429) are lifted to 1,000/s: this measures Clozit,
# not a carrier account's limits.
# Usage: bench/call_setup_bench.sh [RATE] [SECONDS] [twilio telnyx]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-200}
seconds=${2:-30}
shift $(($# < 2 ? $# : 2))
providers=("$@")
[ ${#providers[@]} -eq 0 ] && providers=(twilio telnyx)

source bench/release_build.sh
build_release clozit carrier-emulator call_setup_bench
clozit_bin=$PWD/$build/src/clozit
emulator_bin=$PWD/$build/tools/carrier-emulator/carrier-emulator
driver=$PWD/$build/bench/call_setup_bench
ulimit -n 16384

work=$(mktemp -d)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
# CALL_BENCH_KEEP=1 keeps the logs and databases (path on stderr).
trap 'stop_all; if [ -n "${CALL_BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat >"$work/scenario.json" <<'JSON'
{"default": {"persona": "answer", "ring_seconds": 1, "talk_seconds": 1}}
JSON
export CLOZIT_OPERATOR_PASSWORD="Night-Shift-2048-bench"

for provider in "${providers[@]}"; do
  run="$work/$provider"
  mkdir -p "$run"
  "$emulator_bin" --port 0 --scenario "$work/scenario.json" --twilio-cps 1000 --telnyx-cps 1000 --webhook-senders 8 \
    >"$run/emulator.out" 2>"$run/emulator.err" &
  emulator_pid=$!
  pids+=("$emulator_pid")
  for _ in $(seq 100); do [ -s "$run/emulator.out" ] && break; sleep 0.05; done
  emulator_port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$run/emulator.out")
  telnyx_key=$(sed -n 's/.*"telnyx_public_key":"\([^"]*\)".*/\1/p' "$run/emulator.out")

  db="sqlite:$run/clozit.db"
  port=$(free_port)
  # Production settings except the per-principal rate limit (one operator session offers every call here;
  # the dialer will place them in-process) and the in-process emulator (the real binary runs instead).
  export CLOZIT_DATABASE__URL="$db" CLOZIT_SERVER__PORT=$port CLOZIT_TELEPHONY__EMBEDDED_EMULATOR=false \
    CLOZIT_RATE_LIMIT__PER_PRINCIPAL_PER_SECOND=1000000 CLOZIT_RATE_LIMIT__PER_PRINCIPAL_BURST=1000000
  (cd "$run" && "$clozit_bin" admin create-operator --email bench-operator@clozit.local --name "Bench Operator" \
    >/dev/null 2>"$run/operator.err") || { tail -3 "$run/operator.err" >&2; exit 1; }
  (cd "$run" && exec "$clozit_bin" serve 2>"$run/clozit.log") &
  clozit_pid=$!
  pids+=("$clozit_pid")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$run/clozit.log" >&2; exit 1; }

  "$driver" --platform "http://127.0.0.1:$port" --emulator "http://127.0.0.1:$emulator_port" \
    --provider "$provider" --database-url "$db" --telnyx-public-key "$telnyx_key" \
    --rate "$rate" --seconds "$seconds" --ring-seconds 1 \
    --platform-pid "$clozit_pid" --emulator-pid "$emulator_pid"
  stop_all
  grep -c ' error \| warning ' "$run/clozit.log" >/dev/null && grep ' error \| warning ' "$run/clozit.log" | head -5 >&2 || true
done
