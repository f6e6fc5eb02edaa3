#!/usr/bin/env bash
# Installs everything nova-worker needs to build, test and demo on Debian 12:
# the Debian packages (once), then the pinned npm packages of the test peers
# from their lockfiles. Safe to run again; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential autoconf automake libtool pkg-config
  libuv1-dev libhiredis-dev libssl-dev libpq-dev libcjson-dev libcurl4-openssl-dev
  libsodium-dev libinih-dev libmicrohttpd-dev check
  redis-server redis-sentinel redis-tools postgresql-15 postgresql-client-15 prometheus
  valgrind clang clang-format libclang-rt-14-dev curl ca-certificates openssl python3 systemd man-db pgbouncer
  tzdata
)
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The pinned JavaScript peers used by interop tests and the local test network.
for dir in tests/interop tests/stellar tests/testnet tests/plugins; do
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
    echo "deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
