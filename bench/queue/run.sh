#!/bin/sh
# run.sh - nova-worker's queue engine (C daemon + echo plugin) against a
# stock BullMQ 5.81 Node Worker, side by side on one throwaway Redis.
#
# Builds nothing: BUILDDIR must hold nova-worker and plugins/echo/.libs/echo.so
# (a plain `make`). The Node side uses the bullmq pinned by
# tests/interop/package-lock.json (`npm ci` there first).
#
# usage: bench/queue/run.sh [OPTIONS] BUILDDIR
#   --quick            smoke run: 10,000 jobs, 2 s latency runs, no doc update
#   --jobs N           jobs per drain run (default 100000)
#   --concurrency L    comma list (default 1,10,100)
#   --rates L          latency producer rates in jobs/s (default 1000,5000)
#   --seconds S        latency producer duration (default 5)
#   --workers L        c,node (default both)
#   --parts L          drain,latency,idle (default all three)
#   --profile DIR      perf record the worker and redis-server during each
#                      drain into DIR (perf report -i DIR/perf-...data)
#   --doc FILE         write the report into FILE between the queue-bench
#                      markers (default: docs/benchmarks.md, and only for a
#                      full run with none of the options above)
#   --no-doc           only print the report
#   --timeout S        kill everything after S seconds (default 2400; quick 600)
# The report (markdown) goes to stdout, progress to stderr.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
command_line="bench/queue/run.sh $*"

die() {
    echo "run.sh: $*" >&2
    exit 1
}

quick=no
custom=no
jobs=100000
conc=1,10,100
rates=1000,5000
seconds=5
idle=10
workers=c,node
parts=drain,latency,idle
profile=
doc=$srcdir/docs/benchmarks.md
doc_set=no
limit=
builddir=
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=yes ;;
    --jobs) jobs=${2:?--jobs needs a value}; custom=yes; shift ;;
    --concurrency) conc=${2:?--concurrency needs a value}; custom=yes; shift ;;
    --rates) rates=${2:?--rates needs a value}; custom=yes; shift ;;
    --seconds) seconds=${2:?--seconds needs a value}; custom=yes; shift ;;
    --workers) workers=${2:?--workers needs a value}; custom=yes; shift ;;
    --parts) parts=${2:?--parts needs a value}; custom=yes; shift ;;
    --profile) profile=${2:?--profile needs a value}; shift ;;
    --doc) doc=${2:?--doc needs a value}; doc_set=yes; shift ;;
    --no-doc) doc= ;;
    --timeout) limit=${2:?--timeout needs a value}; shift ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$builddir" ] || die "only one BUILDDIR"; builddir=$1 ;;
    esac
    shift
done
[ -n "$builddir" ] || die "usage: run.sh [--quick] [OPTIONS] BUILDDIR (see --help)"
# A partial, customised or profiled run does not replace the published
# numbers unless asked.
if [ "$custom" = yes ] || [ -n "$profile" ]; then
    [ "$doc_set" = yes ] || doc=
fi
if [ "$quick" = yes ]; then
    jobs=10000
    seconds=2
    idle=3
    [ "$doc_set" = yes ] || doc=
    : "${limit:=600}"
fi
: "${limit:=2400}"

abs=$(cd "$builddir" 2>/dev/null && pwd) || die "BUILDDIR $builddir does not exist"
builddir=$abs
[ -x "$builddir/nova-worker" ] || die "$builddir/nova-worker is missing: run make in the build dir first"
[ -f "$builddir/plugins/echo/.libs/echo.so" ] ||
    die "$builddir/plugins/echo/.libs/echo.so is missing: run make in the build dir first"
command -v node >/dev/null 2>&1 || die "node is not installed"
command -v redis-server >/dev/null 2>&1 || die "redis-server is not installed"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli is not installed"
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) is not installed"
# NOVA_NODE_ROOT: the tree whose tests/*/node_modules hold the npm peers.
modules=${NOVA_NODE_ROOT:-$srcdir}/tests/interop/node_modules
[ -f "$modules/bullmq/package.json" ] ||
    die "$modules/bullmq is missing: run 'npm ci' in $srcdir/tests/interop"
if [ -n "$profile" ]; then
    command -v perf >/dev/null 2>&1 || die "--profile needs perf (linux-perf)"
    mkdir -p "$profile" || die "cannot create $profile"
    profile=$(cd "$profile" && pwd)
fi
if [ -n "$doc" ]; then
    [ -f "$doc" ] || die "$doc does not exist (use --no-doc or --doc FILE)"
    grep -q '<!-- queue-bench:begin -->' "$doc" || die "$doc has no <!-- queue-bench:begin --> marker"
fi

tmp=$(mktemp -d /tmp/nova-qbench-XXXXXX)
redis_pid=
bench_pid=
cleanup() {
    trap - EXIT INT TERM HUP
    if [ -n "$bench_pid" ]; then kill "$bench_pid" 2>/dev/null || true; fi
    # Processes bench.js started, in case it died before killing them.
    for f in "$tmp"/pids/*; do
        if [ -f "$f" ]; then kill -9 "$(basename "$f")" 2>/dev/null || true; fi
    done
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM HUP

free_port() {
    node -e 'const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# A free port can be taken between the probe and the bind: try a few.
for _ in 1 2 3; do
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$tmp" --logfile "$tmp/redis.log" --daemonize no &
    redis_pid=$!
    up=no
    i=0
    while [ $i -lt 100 ]; do
        if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then up=yes; break; fi
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    [ $up = yes ] && break
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
done
[ -n "$redis_pid" ] || die "redis-server did not start: $(tail -5 "$tmp/redis.log" 2>/dev/null)"

# The machine's latency floor for the same process shape without a queue
# (floor.js with the C relay), measured next to the workers at each rate.
floor_relay=
case ",$parts," in
*,latency,*)
    if cc -O2 -o "$tmp/floor_relay" "$here/floor_relay.c" -lhiredis 2>"$tmp/floor_relay.err"; then
        floor_relay=$tmp/floor_relay
    else
        echo "run.sh: cannot build floor_relay.c, the report will have no floor: $(head -3 "$tmp/floor_relay.err")" >&2
    fi
    ;;
esac

NODE_PATH=$modules
export NODE_PATH
timeout --signal=TERM --kill-after=10 "$limit" \
    node "$here/bench.js" --port "$port" --redis-pid "$redis_pid" --builddir "$builddir" \
    --tmp "$tmp" --jobs "$jobs" --concurrency "$conc" --rates "$rates" --seconds "$seconds" \
    --workers "$workers" --parts "$parts" ${profile:+--profile "$profile"} ${floor_relay:+--floor-relay "$floor_relay"} --idle-seconds "$idle" --clk-tck "$(getconf CLK_TCK)" \
    --json "$tmp/result.json" --command "$command_line" >"$tmp/report.md" &
bench_pid=$!
rc=0
wait "$bench_pid" || rc=$?
bench_pid=
[ $rc -eq 124 ] && die "gave up after $limit s (--timeout); everything was stopped"
[ $rc -eq 0 ] || die "benchmark failed (exit $rc); see the messages above"

cat "$tmp/report.md"
if [ -n "$doc" ]; then
    node - "$doc" "$tmp/report.md" <<'EOF'
const fs = require('fs');
const [doc, rep] = process.argv.slice(2);
const text = fs.readFileSync(doc, 'utf8');
const b = '<!-- queue-bench:begin -->';
const e = '<!-- queue-bench:end -->';
const i = text.indexOf(b);
const j = text.indexOf(e);
if (i < 0 || j < i) { console.error(`run.sh: ${doc}: markers missing or out of order`); process.exit(1); }
fs.writeFileSync(doc, `${text.slice(0, i + b.length)}\n${fs.readFileSync(rep, 'utf8').trim()}\n${text.slice(j)}`);
EOF
    echo "run.sh: report written into $doc" >&2
fi
