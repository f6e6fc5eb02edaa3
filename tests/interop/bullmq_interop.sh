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
if [ ! -d "$src/node_modules/bullmq" ]; then
    echo "bullmq_interop: $src/node_modules is missing: run 'npm ci' in tests/interop" >&2
    exit 1
fi
RUNNER=$build/tests/interop/engine_runner
ECHO_SO=$build/plugins/echo/.libs/echo.so
export RUNNER ECHO_SO
exec node "$src/interop.js"
