#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to a running Clozit on its embedded defaults:
# installs packages, builds an optimised binary, applies migrations, seeds the
# demo tenant (owner demo@clozit.local; password in var/demo-owner-password)
# and serves http://127.0.0.1:8080 until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOZIT_BUILD_TESTS=OFF >/dev/null
ninja -C build/release clozit
mkdir -p var
echo "Clozit: http://127.0.0.1:8080  (demo owner: demo@clozit.local, password in var/demo-owner-password)"
exec build/release/src/clozit --config config/clozit.toml serve
