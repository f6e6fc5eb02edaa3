#!/usr/bin/env bash
# Installs everything nova-worker needs on Debian 12, as root: the Debian
# packages (once), Node.js >= 20 when the machine has none or an older one,
# then the pinned npm packages of the test peers from their lockfiles. Safe
# to run again; it says what it does at each step.
#
#   scripts/deps.sh          everything the test suite needs
#   scripts/deps.sh --demo   only what scripts/demo.sh needs (build tools,
#                            redis-server, PostgreSQL, Node and the peers of
#                            the local Stellar test network)
#
# Installing redis-server and postgresql-15 also starts Debian's system
# services of those names; the tests and the demo never use them (they run
# their own servers on free ports), so you may stop or disable them.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=test
[ "${1:-}" = --demo ] && profile=demo

say() { printf 'deps: %s\n' "$*" >&2; }

build=(
  build-essential autoconf automake libtool pkg-config
  libuv1-dev libhiredis-dev libssl-dev libpq-dev libcjson-dev libcurl4-openssl-dev
  libsodium-dev libinih-dev check
)
servers=(redis-server postgresql-15 postgresql-client-15 ca-certificates openssl python3 tzdata)
test_only=(
  redis-sentinel redis-tools prometheus valgrind clang clang-format libclang-rt-14-dev curl
  systemd man-db pgbouncer python3-aiosmtpd
)
packages=("${build[@]}" "${servers[@]}")
[ "$profile" = test ] && packages+=("${test_only[@]}")

# Node.js: the pinned peers (bullmq, @stellar/stellar-base) need >= 20;
# Debian 12's own nodejs is 18.
NODE_MIN=20
NODE_PIN=20.20.2
node_major() {
  node -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0
}
command -v npm >/dev/null 2>&1 || packages+=(npm)
command -v node >/dev/null 2>&1 || packages+=(nodejs)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${#missing[@]} Debian package(s): ${missing[*]}"
  say "(the first time this takes a few minutes; apt's progress follows)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends -o Dpkg::Progress-Fancy=0 "${missing[@]}" \
    | grep -E '^(Setting up|Get:[0-9]+ |Need to get|E:)' || true
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || { say "apt-get could not install $p"; exit 1; }
  done
else
  say "Debian packages: all ${#packages[@]} present"
fi

# An older Node is replaced by Node's own Linux build, which the npm
# registry publishes as node-linux-<arch> (what the `node` npm package
# installs); npm checks its integrity. It goes to /opt/nova-worker-node
# with a link in /usr/local/bin, ahead of /usr/bin in PATH.
install_node() { # install_node PREFIX
  local prefix=$1 arch
  case "$(dpkg --print-architecture)" in
    amd64) arch=x64 ;;
    arm64) arch=arm64 ;;
    *) say "no Node $NODE_PIN build for $(dpkg --print-architecture): install Node >= $NODE_MIN by hand"; exit 1 ;;
  esac
  say "installing Node $NODE_PIN (node-linux-$arch from the npm registry) into $prefix"
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error \
    "node-linux-$arch@$NODE_PIN" >/dev/null
  local bin="$prefix/node_modules/node-linux-$arch/bin/node"
  [ "$("$bin" --version)" = "v$NODE_PIN" ] || { say "the Node binary in $prefix does not run"; exit 1; }
  echo "$bin"
}
if [ "${NOVA_DEPS_NODE_PREFIX:-}" != "" ]; then
  # CI's check of the fresh-machine path, without touching this machine's Node.
  install_node "$NOVA_DEPS_NODE_PREFIX" >/dev/null
  say "Node $NODE_PIN installed and runs from $NOVA_DEPS_NODE_PREFIX"
  exit 0
fi
if [ "$(node_major)" -lt "$NODE_MIN" ]; then
  bin=$(install_node /opt/nova-worker-node)
  ln -sf "$bin" /usr/local/bin/node
  hash -r
  [ "$(node_major)" -ge "$NODE_MIN" ] || { say "node on PATH is still $(node --version)"; exit 1; }
fi
say "Node $(node --version), npm $(npm --version)"

# The pinned JavaScript peers of the tests and of the local test network.
dirs=(tests/testnet tests/interop)
[ "$profile" = test ] && dirs=(tests/interop tests/stellar tests/testnet tests/plugins tests/backups tests/reports)
for dir in "${dirs[@]}"; do
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
    say "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
say "done"
