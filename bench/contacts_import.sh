#!/usr/bin/env bash
# Imports a generated CRM-style CSV (default 1,000,000 rows: mixed number
# formats, 5% invalid, 3% duplicates, 2% on the tenant's do-not-call list)
# into SQLite with the release build's `clozit import`, and loads the same
# file with `sqlite3 .import` (no validation at all) in the same run for
# scale. Prints wall time and peak RSS (/usr/bin/time -v) of both and a
# markdown row for docs/benchmarks.md. Targets: <= 15 s wall, <= 300 MB RSS.
# Usage: bench/contacts_import.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}

build=build/contacts-release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOZIT_BUILD_TESTS=OFF >/dev/null
ninja -C "$build" clozit >/dev/null
clozit="$build/src/clozit"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
g++ -O2 -std=c++20 -o "$work/generate" bench/contacts_generate.cpp
"$work/generate" "$rows" "$work/contacts.csv" "$work/dnc.txt"
bytes=$(stat -c %s "$work/contacts.csv")

export CLOZIT_DATABASE__URL="sqlite:$work/clozit.db" CLOZIT_DEMO__SEED=false CLOZIT_LOG__LEVEL=warn
"$clozit" migrate >/dev/null
tenant=ten_01JNBENCH0000000000000000A
user=usr_01JNBENCH0000000000000000A
sqlite3 "$work/clozit.db" <<SQL
INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ('$tenant', 'Bench Co', 'active', 0, 0);
INSERT INTO users (id, tenant_id, email, name, phone, password_hash, role, created_at, updated_at)
  VALUES ('$user', '$tenant', 'bench@example.com', 'Bench Owner', '+14155552671', 'x', 'owner', 0, 0);
CREATE TEMP TABLE dnc_numbers (number TEXT);
.import $work/dnc.txt dnc_numbers
INSERT INTO dnc_entries (tenant_id, number, kind, source, note, registry_import_id, added_by, added_at)
  SELECT '$tenant', number, 'tenant', 'bench', '', NULL, '$user', 0 FROM dnc_numbers;
SQL
dnc_entries=$(sqlite3 "$work/clozit.db" "SELECT count(*) FROM dnc_entries")

measure() {  # measure LABEL CMD...: runs CMD under /usr/bin/time -v, sets wall_s, cpu_s and rss_mb
  local log="$work/$1.time"
  /usr/bin/time -v "${@:2}" 2>"$log" >"$work/$1.out" || { cat "$log" "$work/$1.out" >&2; exit 1; }
  wall_s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.1f", s}' "$log")
  cpu_s=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {printf "%.1f", s}' "$log")
  rss_mb=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log")
}

measure clozit "$clozit" import "$work/contacts.csv" --tenant "$tenant" --list "Bench list" \
  --consent-type prior_express_written_consent --consent-where "bench web form" --consent-at 2025-12-01 \
  --consent-evidence "https://example.com/bench-consent" --attested-by "$user" --no-progress
clozit_wall=$wall_s clozit_cpu=$cpu_s clozit_rss=$rss_mb
load=$(cut -d' ' -f1 /proc/loadavg)
summary=$(cat "$work/clozit.out")
contacts=$(sqlite3 "$work/clozit.db" "SELECT count(*) FROM contacts")

measure sqlite "sqlite3" "$work/plain.db" ".import --csv $work/contacts.csv raw"
sqlite_wall=$wall_s sqlite_rss=$rss_mb
raw_rows=$(sqlite3 "$work/plain.db" "SELECT count(*) FROM raw")

echo
echo "file: $rows rows, $((bytes / 1024 / 1024)) MiB; tenant do-not-call entries: $dnc_entries"
echo "clozit import: ${clozit_wall} s wall, ${clozit_cpu} s CPU, ${clozit_rss} MB peak RSS; $summary; contacts table: $contacts rows"
echo "1-minute load average after the import (other work on the machine): $load"
echo "sqlite3 .import (no validation): ${sqlite_wall} s, ${sqlite_rss} MB peak RSS; $raw_rows rows"
echo
echo "| date | rows | clozit import wall | CPU (user+sys) | peak RSS | accepted / rejected / duplicates / on DNC | sqlite3 .import wall | sqlite3 RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
counts=$(sed -E 's/.*rows: ([0-9,]+) accepted, ([0-9,]+) rejected, ([0-9,]+) duplicates, ([0-9,]+) on a.*/\1 \/ \2 \/ \3 \/ \4/' <<<"$summary")
echo "| $(date -u +%Y-%m-%d) | $rows | ${clozit_wall} s | ${clozit_cpu} s | ${clozit_rss} MB | $counts | ${sqlite_wall} s | ${sqlite_rss} MB |"
