#!/usr/bin/env bash
# Reserve + settle pairs from concurrent clients over 1,000 tenants, on SQLite
# and on PostgreSQL (a throw-away server with PostgreSQL's durable defaults:
# fsync, full-page writes, synchronous commit), each beside the raw
# single-row INSERT rate through the same Database::Write path in the same
# run. Prints one JSON line per backend (bench/billing_bench.cpp).
# Targets (issue "Credits and billing"): >= 20,000 settled/s on SQLite,
# >= 5,000/s on PostgreSQL, reserve p99 < 5 ms.
# Usage: bench/billing_bench.sh [SECONDS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
clients=${2:-64}

source bench/release_build.sh
build_release billing_bench
bench="$build/bench/billing_bench"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bench" "sqlite:$work/billing.db" --seconds "$seconds" --clients "$clients" --batch 512
CLOZIT_PG_DURABLE=1 scripts/with-postgres.sh bash -c \
  "'$bench' \"\$CLOZIT_TEST_PG_URL\" --seconds '$seconds' --clients '$clients' --pool 8 --batch 512"
