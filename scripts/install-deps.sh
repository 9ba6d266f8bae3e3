#!/usr/bin/env bash
# Installs every Debian package Clozit needs to build, run and test on a fresh Debian 12.
# Idempotent: when everything is present it only runs dpkg-query and exits.
set -euo pipefail

packages=(
  build-essential g++ clang clang-format libclang-rt-14-dev cmake ninja-build ccache pkg-config git
  libboost-dev libboost-system-dev libboost-context-dev libboost-coroutine-dev
  libssl-dev libsqlite3-dev sqlite3 libpq-dev postgresql
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libphonenumber-dev libicu-dev libprotobuf-dev
  libsodium-dev libhowardhinnant-date-dev tzdata
  libgtest-dev libgmock-dev libbenchmark-dev
  nginx-light wrk openssl ca-certificates curl procps python3
)

# Node.js + npm run the provider SDK tests (tests/sdk); the machine image may ship its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then packages+=(nodejs npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
