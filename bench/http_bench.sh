#!/usr/bin/env bash
# Requests/s and p99 latency of GET /healthz and an API-key-authenticated
# GET /v1/me on the release build, beside nginx serving a small static file,
# all measured in this one run with wrk (64 connections, 2 threads) on loopback.
# Usage: bench/http_bench.sh [seconds-per-run]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOZIT_BUILD_TESTS=OFF >/dev/null
ninja -C build/release clozit >/dev/null

work=$(mktemp -d)
cleanup() {
  [ -n "${clozit_pid:-}" ] && kill "$clozit_pid" 2>/dev/null && wait "$clozit_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
clozit_port=$(free_port)
nginx_port=$(free_port)

# Clozit with production settings except the per-principal limit, which would otherwise cap the benchmark.
CLOZIT_DATABASE__URL="sqlite:$work/clozit.db" CLOZIT_SERVER__PORT=$clozit_port \
  CLOZIT_RATE_LIMIT__PER_PRINCIPAL_PER_SECOND=1000000 CLOZIT_RATE_LIMIT__PER_PRINCIPAL_BURST=1000000 \
  build/release/src/clozit serve 2>"$work/clozit.log" &
clozit_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$clozit_port/healthz" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$clozit_port/healthz" >/dev/null || { cat "$work/clozit.log"; exit 1; }

jar="$work/cookies"
signup=$(curl -fs -c "$jar" -H 'Content-Type: application/json' "http://127.0.0.1:$clozit_port/v1/signup" \
  -d '{"company":"Bench Co","name":"Bench Owner","email":"bench@example.com","phone":"+14155552671","password":"Sup3r-Secret-2026!"}')
csrf=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])' <<<"$signup")
key=$(curl -fs -b "$jar" -H 'Content-Type: application/json' -H "X-CSRF-Token: $csrf" \
  "http://127.0.0.1:$clozit_port/v1/api-keys" -d '{"name":"bench","role":"viewer"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
curl -fs -H "Authorization: Bearer $key" "http://127.0.0.1:$clozit_port/v1/me" >/dev/null

chmod 755 "$work"
mkdir -p "$work/www"
printf 'ok\n' >"$work/www/healthz.txt"
chmod -R a+rX "$work/www"
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log $work/nginx-access.log;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi;
  uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
CONF
nginx -c "$work/nginx.conf"
sleep 0.3

run() {  # name url [header]
  local out
  if [ $# -ge 3 ]; then
    out=$(wrk -t2 -c64 -d"${duration}s" --latency -H "$3" "$2")
  else
    out=$(wrk -t2 -c64 -d"${duration}s" --latency "$2")
  fi
  local rps p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)
  printf '| %s | %s | %s | %s |\n' "$1" "$rps" "$p99" "${errors:-none}"
}

echo "| target | requests/s | p99 latency | errors |"
echo "| --- | --- | --- | --- |"
run "nginx static file" "http://127.0.0.1:$nginx_port/healthz.txt"
run "clozit GET /healthz" "http://127.0.0.1:$clozit_port/healthz"
run "clozit GET /v1/me (API key)" "http://127.0.0.1:$clozit_port/v1/me" "Authorization: Bearer $key"
