#!/usr/bin/env bash
# Runs every test: format check, the AddressSanitizer + UndefinedBehaviorSanitizer
# build of everything, unit and integration tests on SQLite and on a throw-away
# PostgreSQL server, and a bounded libFuzzer run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== clang-format check"
git ls-files -z -- '*.cpp' '*.hpp' | xargs -0 clang-format --dry-run --Werror

echo "== build (ASan + UBSan, -Wall -Wextra -Werror)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCLOZIT_SANITIZE=ON >/dev/null
ninja -C build/asan

echo "== npm packages for the provider SDK tests"
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)

echo "== tests (SQLite and PostgreSQL)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
scripts/with-postgres.sh ctest --test-dir build/asan --output-on-failure -j2 --timeout 900 | tee build/asan/ctest.log

echo "== fuzz (bounded: 20 s per target, on a copy of its seed corpus)"
CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCLOZIT_FUZZ=ON >/dev/null
targets=()
for seeds in tests/fuzz/corpus/*/; do targets+=("fuzz_$(basename "$seeds")"); done
ninja -C build/fuzz "${targets[@]}"
for seeds in tests/fuzz/corpus/*/; do
  name=$(basename "$seeds")
  corpus=$(mktemp -d)
  cp "$seeds"* "$corpus"/
  # A target's token dictionary, when it has one, lets the mutator reach the shapes its checks are about.
  dict=()
  if [[ -f tests/fuzz/$name.dict ]]; then dict=(-dict="tests/fuzz/$name.dict"); fi
  echo "-- fuzz_$name"
  build/fuzz/tests/fuzz/fuzz_"$name" "${dict[@]}" -max_total_time=20 -print_final_stats=1 "$corpus" 2>&1 | tail -n 3
  rm -rf "$corpus"
done
summary=$(grep -Eo '[0-9]+ tests failed out of [0-9]+' build/asan/ctest.log | tail -n 1)
failed=$(awk '{print $1}' <<<"$summary")
total=$(awk '{print $NF}' <<<"$summary")
echo "== all tests passed"
echo "ctest: $((total - failed)) passed, $failed failed"
