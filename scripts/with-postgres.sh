#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD [ARGS...]
#
# Runs CMD against a throw-away PostgreSQL 15 server: initdb into a temporary
# directory, start it on the first free loopback port from 54329 up, export
# CLOZIT_TEST_PG_URL=postgresql://postgres@127.0.0.1:PORT/postgres, run CMD,
# then stop the server and delete the directory whatever happened. Exits with
# CMD's status. Works as root (the server runs as user postgres, since
# PostgreSQL refuses root) and as an ordinary user. Durability is switched off:
# the data is thrown away anyway. CLOZIT_PG_DURABLE=1 keeps PostgreSQL's durable
# defaults (fsync, full-page writes, synchronous commit) for benchmarks.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

pg_bin=${CLOZIT_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$pg_bin/initdb" ]; then
  echo "$0: no PostgreSQL 15 server in $pg_bin (apt-get install postgresql)" >&2
  exit 2
fi

# The server must not run as root; run its tools as user postgres then.
as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/clozit-pg.XXXXXX")
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$dir"
fi
started=0

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$started" -eq 1 ]; then
    as_server_user "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_server_user "$pg_bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
  >"$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

port=54329
while :; do
  if [ "$port" -ge 54429 ]; then
    echo "$0: no free port in 54329..54428" >&2
    exit 1
  fi
  if port_in_use "$port"; then
    port=$((port + 1))
    continue
  fi
  : >"$dir/server.log"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/server.log"; fi
  durability="-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
  if [ "${CLOZIT_PG_DURABLE:-0}" = 1 ]; then durability=""; fi
  if as_server_user "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $durability -c max_connections=200" \
    start >/dev/null; then
    started=1
    break
  fi
  # Another process may have taken the port between the check and the start.
  if grep -q "could not bind\|Address already in use\|could not create any TCP/IP sockets" "$dir/server.log"; then
    port=$((port + 1))
    continue
  fi
  cat "$dir/server.log" >&2
  exit 1
done

export CLOZIT_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL on 127.0.0.1:$port" >&2

set +e
"$@"
status=$?
set -e
exit "$status"
