#!/bin/sh
# Self-test of the Stellar Horizon / Soroban RPC test double (tests/testnet).
# It FAILS (never skips) when node or the pinned npm packages are missing:
# CI must run `npm ci --prefix tests/testnet` before `make check`.
# NODE_PATH may point at another node_modules (e.g. for make distcheck).
set -eu

dir=""
if [ -n "${NOVA_SRCDIR:-}" ] && [ -f "$NOVA_SRCDIR/tests/testnet/server.js" ]; then
	dir="$NOVA_SRCDIR/tests/testnet"
else
	dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
fi

if ! command -v node >/dev/null 2>&1; then
	echo "selftest.sh: FAIL: node is not installed (Debian: nodejs >= 20)" >&2
	exit 1
fi
cd "$dir"
# NOVA_NODE_ROOT: the tree whose tests/*/node_modules hold the npm peers
# (make distcheck's unpacked tarball has none).
if [ -n "${NOVA_NODE_ROOT:-}" ]; then
	NODE_PATH=$NOVA_NODE_ROOT/tests/testnet/node_modules
	export NODE_PATH
fi
if ! node -e '
const want = require("./package.json").dependencies["@stellar/stellar-base"];
let got;
try { got = require("@stellar/stellar-base/package.json").version; } catch (e) { process.exit(3); }
if (got !== want) { console.error(`@stellar/stellar-base ${got} installed, package.json pins ${want}`); process.exit(4); }
'; then
	echo "selftest.sh: FAIL: @stellar/stellar-base (pinned in $dir/package-lock.json) is not installed;" >&2
	echo "selftest.sh: run: npm ci --prefix tests/testnet" >&2
	exit 1
fi
exec node "$dir/selftest.js"
