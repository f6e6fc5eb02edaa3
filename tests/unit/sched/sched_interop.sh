#!/bin/sh
# Cron slots of runtime/sched against the npm cron-parser that bullmq uses
# (the version pinned in tests/interop/package-lock.json). Node and C
# workers advance the same job schedulers, so their slots must be equal;
# sched_interop.js lists and counts the DST cases where they differ on
# purpose. It FAILS (never skips) when node or the npm packages are
# missing: run `npm ci` in tests/interop first.
set -eu

src=${NOVA_SRCDIR:-$(CDPATH= cd -- "$(dirname -- "$0")/../../.." && pwd)}
build=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}

if ! command -v node >/dev/null 2>&1; then
    echo "sched_interop: FAIL: node is not installed (Debian: nodejs >= 20)" >&2
    exit 1
fi
# NOVA_NODE_ROOT: the tree whose tests/*/node_modules hold the npm peers
# (make distcheck's unpacked tarball has none).
root=${NOVA_NODE_ROOT:-$src}
modules=$root/tests/interop/node_modules
NODE_PATH=$modules
export NODE_PATH
if ! node -e '
let want, got;
try {
    want = require(process.argv[1]).packages["node_modules/cron-parser"].version;
} catch (e) { console.error(`cannot read the pinned version: ${e.message}`); process.exit(2); }
try { got = require("cron-parser/package.json").version; require("luxon"); } catch (e) { process.exit(3); }
if (got !== want) { console.error(`cron-parser ${got} installed, bullmq pins ${want}`); process.exit(4); }
' "$src/tests/interop/package-lock.json"; then
    echo "sched_interop: FAIL: cron-parser (bullmq's, pinned in tests/interop/package-lock.json)" \
        "is not installed in $modules; run: npm ci --prefix tests/interop" >&2
    exit 1
fi

cli=$build/tests/unit/sched/sched_cli
if [ ! -x "$cli" ]; then
    echo "sched_interop: FAIL: $cli is not built (make tests/unit/sched/sched_cli)" >&2
    exit 1
fi
exec node "$src/tests/unit/sched/sched_interop.js" "$cli"
