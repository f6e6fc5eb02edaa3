#!/bin/sh
# Interop test: the real bullmq npm package (pinned in package-lock.json)
# against the C queue engine. Needs `npm ci` in tests/interop first; a
# missing node or node_modules is a failure, not a skip.
set -eu
src=${NOVA_SRCDIR:?NOVA_SRCDIR not set}/tests/interop
build=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
if ! command -v node >/dev/null 2>&1; then
    echo "bullmq_interop: node is not installed" >&2
    exit 1
fi
# NOVA_NODE_ROOT: the tree whose tests/*/node_modules hold the npm peers
# (make distcheck's unpacked tarball has none).
modules=${NOVA_NODE_ROOT:-${NOVA_SRCDIR}}/tests/interop/node_modules
if [ ! -d "$modules/bullmq" ]; then
    echo "bullmq_interop: $modules is missing: run 'npm ci' in tests/interop" >&2
    exit 1
fi
NODE_PATH=$modules
export NODE_PATH
RUNNER=$build/tests/interop/engine_runner
ECHO_SO=$build/plugins/echo/.libs/echo.so
export RUNNER ECHO_SO
exec node "$src/interop.js"
