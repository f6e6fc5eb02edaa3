#!/bin/sh
# Cross-checks our Stellar encoders/decoders against the pinned
# @stellar/stellar-base (tests/stellar/package-lock.json). Fails - never
# skips - when node or the npm packages are missing: CI runs
# `npm ci --prefix tests/stellar` first.
#
# The packages are looked up in $NOVA_STELLAR_NODE_MODULES, then
# tests/stellar/node_modules, then the NODE_PATH entries (make distcheck
# unpacks a tree without node_modules and points NODE_PATH at the
# checkout's); interop.mjs refuses any version other than the pinned one.
set -eu
src=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
build=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
if ! command -v node >/dev/null 2>&1; then
    echo "FAIL: node is not installed (Debian: nodejs >= 20)" >&2
    exit 1
fi
# NOVA_NODE_ROOT: the tree whose tests/*/node_modules hold the npm peers
# (make distcheck's unpacked tarball has none).
modules=${NOVA_NODE_ROOT:-$src}/tests/stellar/node_modules
if [ ! -d "$modules/@stellar/stellar-base" ]; then
    echo "FAIL: $modules/@stellar/stellar-base is missing; run: npm ci --prefix tests/stellar" >&2
    exit 1
fi
NODE_PATH=$modules
export NODE_PATH
exec node "$src/tests/stellar/interop.mjs" "$build/tests/stellar/stellar-interop" "${NOVA_INTEROP_ROUNDS:-1}"
