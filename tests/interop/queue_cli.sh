#!/bin/sh
# `nova-worker queue` against the real bullmq npm package (queue_cli.js):
# its state changes leave exactly what Node's own calls leave. Needs
# `npm ci` in tests/interop first; a missing node or node_modules is a
# failure, not a skip.
set -eu
src=${NOVA_SRCDIR:?NOVA_SRCDIR not set}/tests/interop
: "${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}"
if ! command -v node >/dev/null 2>&1; then
    echo "queue_cli: node is not installed" >&2
    exit 1
fi
modules=${NOVA_NODE_ROOT:-${NOVA_SRCDIR}}/tests/interop/node_modules
if [ ! -d "$modules/bullmq" ]; then
    echo "queue_cli: $modules is missing: run 'npm ci' in tests/interop" >&2
    exit 1
fi
NODE_PATH=$modules
export NODE_PATH NOVA_BUILDDIR
exec node "$src/queue_cli.js"
