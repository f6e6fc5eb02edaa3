#!/bin/sh
# Service modules (runtime/common/svc.h): the nova-worker binary, built and
# installed, links neither libpq nor libcurl; an idle queue-only worker maps
# neither; [postgres] dsn and a plugin requiring HTTP or Stellar load their
# module, which then works; a missing or wrong module is a clear error and a
# non-zero exit. [http] listen needs no module (the endpoint is in the
# binary): an idle worker with /metrics on, scraped, stays under 8 MiB.
set -eu
: "${NOVA_BUILDDIR:?}" "${NOVA_SRCDIR:?}" "${NOVA_MODULE_DIR:?}"
B=$NOVA_BUILDDIR
bin=$B/nova-worker
work=$(mktemp -d)
redis_pid=
worker_pid=
cleanup() {
    [ -z "$worker_pid" ] || kill -9 "$worker_pid" 2>/dev/null || true
    [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
heavy='libpq\.so|libcurl[-a-z]*\.so'

# ---- linking ----------------------------------------------------------------
ldd "$bin" >"$work/ldd" || fail "ldd $bin failed"
! grep -Eq "$heavy" "$work/ldd" || fail "nova-worker links a service library: $(grep -E "$heavy" "$work/ldd")"
for m in pg:libpq http:libcurl; do
    so=$NOVA_MODULE_DIR/nova-${m%%:*}.so
    [ -f "$so" ] || fail "$so was not built"
    ldd "$so" | grep -q "${m#*:}" || fail "$so does not link ${m#*:}"
    # one exported symbol: the table
    exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[A-TV-Z]$/ {print $3}' | grep -v '^_' || true)
    [ "$exported" = nova_service_module ] || fail "$so exports: $exported"
done

# Installed: the binary still links none of them, the modules land in the
# directory compiled into the binary.
make -s -C "$B" MAKEFLAGS= install DESTDIR="$work/root" >/dev/null
ibin=$(find "$work/root" -path '*/sbin/nova-worker' | head -n1)
[ -x "$ibin" ] || fail "sbin/nova-worker was not installed"
! ldd "$ibin" | grep -Eq "$heavy" || fail "the installed nova-worker links a service library"
ipg=$(find "$work/root" -name nova-pg.so | head -n1)
[ -n "$ipg" ] || fail "nova-pg.so was not installed"
imod=$(dirname "$ipg")
[ -f "$imod/nova-http.so" ] || fail "nova-http.so was not installed in $imod"
[ ! -e "$imod/nova-httpd.so" ] || fail "nova-httpd.so was installed: the endpoint is in the binary"
case "$imod" in */nova-worker/modules) ;; *) fail "modules installed in $imod" ;; esac
default_dir=${imod#"$work/root"}
strings "$ibin" | grep -qx "$default_dir" ||
    fail "the installed binary does not have $default_dir as its module directory"

# ---- a missing or wrong module ---------------------------------------------
port=$(free_port)
conf() { # conf FILE [extra lines...]
    f=$1
    shift
    {
        printf '[worker]\nname = modtest\nlog_level = info\nplugin_dir = %s\nshutdown_timeout = 5s\n' "${plugin_dir:-$B/plugins/echo/.libs}"
        printf '[redis]\nurl = redis://127.0.0.1:%s\n' "$port"
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$f"
}
expect_fail() { # expect_fail WHAT EXPECTED-TEXT command...
    what=$1 text=$2
    shift 2
    rc=0
    timeout 20 "$@" >"$work/out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "$what: exit 0 without its module"
    [ "$rc" -ne 124 ] || fail "$what: hung"
    [ "$rc" -lt 128 ] || fail "$what: crashed (exit $rc)"
    grep -qF -- "$text" "$work/out" || fail "$what: no '$text' in: $(cat "$work/out")"
}
none=$work/no-modules
dead_pg="postgresql://nova@127.0.0.1:$(free_port)/nova?connect_timeout=1"
conf "$work/pg.conf" '[http]' 'listen =' '[postgres]' "dsn = $dead_pg" '[plugin echo]' 'enabled = yes'
conf "$work/httpd.conf" '[http]' "listen = 127.0.0.1:0" '[plugin echo]' 'enabled = yes'
plugin_dir=$B/tests/fixtures/.libs conf "$work/http.conf" '[http]' 'listen =' \
    '[plugin needs_http]' 'enabled = yes'

NOVA_MODULE_DIR=$none expect_fail "run with [postgres] dsn" \
    "[postgres] dsn is set, but the PostgreSQL module $none/nova-pg.so cannot be loaded: No such file or directory" \
    "$bin" run -c "$work/pg.conf"
NOVA_MODULE_DIR=$none expect_fail "run with a plugin requiring HTTP" \
    "plugin needs_http requires the HTTP client, but the HTTP client module $none/nova-http.so cannot be loaded" \
    "$bin" run -c "$work/http.conf"
NOVA_MODULE_DIR=$none expect_fail "check" "$none/nova-pg.so cannot be loaded" \
    "$bin" check -c "$work/pg.conf"
NOVA_MODULE_DIR=$none expect_fail "check with a plugin requiring HTTP" \
    "plugin needs_http requires the HTTP client, but the HTTP client module $none/nova-http.so" \
    "$bin" check -c "$work/http.conf"
NOVA_MODULE_DIR=$none expect_fail "migrate" \
    "\`nova-worker migrate\` needs PostgreSQL, but the PostgreSQL module $none/nova-pg.so cannot be loaded" \
    "$bin" migrate -c "$work/pg.conf" --dir "$NOVA_SRCDIR/migrations"
NOVA_MODULE_DIR=$none expect_fail "stellar check" \
    "the HTTP client module $none/nova-http.so cannot be loaded" \
    "$bin" stellar check -c "$work/pg.conf"

# Something else under the module's name.
wrong=$work/wrong-modules
mkdir -p "$wrong"
cp "$NOVA_MODULE_DIR/nova-http.so" "$wrong/nova-pg.so"
cp "$B/plugins/echo/.libs/echo.so" "$wrong/nova-http.so"
NOVA_MODULE_DIR=$wrong expect_fail "check with a misnamed module" \
    "$wrong/nova-pg.so cannot be loaded: it is the 'http' module, not 'pg'" "$bin" check -c "$work/pg.conf"
NOVA_MODULE_DIR=$wrong expect_fail "check with a plugin as module" \
    "$wrong/nova-http.so cannot be loaded: it does not export nova_service_module" \
    "$bin" check -c "$work/http.conf"
# A module from another build.
old=$work/old-modules
mkdir -p "$old"
cp "$B/tests/fixtures/.libs/old_module.so" "$old/nova-pg.so"
NOVA_MODULE_DIR=$old expect_fail "check with an old module" \
    "$old/nova-pg.so cannot be loaded: it implements module interface 0 but this nova-worker needs 1" \
    "$bin" check -c "$work/pg.conf"
NOVA_MODULE_DIR=$old expect_fail "run with an old module" "module interface 0" \
    "$bin" run -c "$work/pg.conf"
# The endpoint needs no module.
NOVA_MODULE_DIR=$none "$bin" check -c "$work/httpd.conf" >"$work/out" 2>&1 ||
    fail "check with [http] listen and no modules: $(cat "$work/out")"
# With the modules, check passes.
"$bin" check -c "$work/pg.conf" >"$work/out" 2>&1 || fail "check with the modules: $(cat "$work/out")"

# ---- running ----------------------------------------------------------------
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
done

start() { # start CONF: runs the worker until it logs ready
    : >"$work/worker.log"
    "$bin" run -c "$1" 2>"$work/worker.log" &
    worker_pid=$!
    for _ in $(seq 200); do
        grep -q '"ready: ' "$work/worker.log" && return 0
        kill -0 "$worker_pid" 2>/dev/null || fail "worker exited: $(cat "$work/worker.log")"
        sleep 0.05
    done
    fail "worker not ready: $(cat "$work/worker.log")"
}
stop() {
    kill -TERM "$worker_pid"
    rc=0
    wait "$worker_pid" || rc=$?
    worker_pid=
    [ "$rc" -eq 0 ] || fail "worker exited $rc on SIGTERM: $(cat "$work/worker.log")"
}
mapped() { grep -Eo "$1" "/proc/$worker_pid/maps" | sort -u | tr '\n' ' '; }

# Idle queue-only worker: none of the service libraries are mapped.
conf "$work/echo.conf" '[http]' 'listen =' '[plugin echo]' 'enabled = yes' 'concurrency = 10'
start "$work/echo.conf"
found=$(mapped "$heavy|nova-(pg|http)\.so")
[ -z "$found" ] || fail "an echo-only worker mapped: $found"
check_rss() { # check_rss WHAT: VmRSS under 8 MiB, in the plain build
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$worker_pid/status")
    if ! ldd "$bin" | grep -q libasan; then
        [ "$rss" -lt 8192 ] || fail "$1 uses $rss kB (VmRSS), more than 8 MiB"
    else
        echo "test_modules: RSS limit not checked here: ASan's shadow memory inflates VmRSS (the plain build checks it)"
    fi
}
check_rss "an idle echo-only worker"
stop

# The default: /metrics on. The endpoint is the binary's own, so nothing
# more is mapped; after a scrape (the registry rendered, a connection
# served) the worker still stays under 8 MiB.
hport=$(free_port)
conf "$work/default.conf" '[http]' "listen = 127.0.0.1:$hport" '[plugin echo]' 'enabled = yes' \
    'concurrency = 10'
start "$work/default.conf"
found=$(mapped "$heavy|nova-(pg|http|httpd)\.so|libmicrohttpd")
[ -z "$found" ] || fail "an echo worker with /metrics mapped: $found"
curl -sf "http://127.0.0.1:$hport/metrics" >"$work/metrics" || fail "/metrics failed"
for metric in 'nova_worker_ready 1' 'nova_worker_loop_lag_seconds ' process_resident_memory_bytes; do
    grep -qF "$metric" "$work/metrics" || fail "/metrics lacks $metric"
done
for probe in healthz livez readyz; do
    curl -sf "http://127.0.0.1:$hport/$probe" >/dev/null || fail "/$probe did not answer 200"
done
sleep 0.5
check_rss "an idle echo worker with /metrics, scraped,"
stop

# Everything configured: each module is loaded and works. PostgreSQL is
# unreachable on purpose (tests/unit/core/test_daemon covers a real one): the
# pool's own metrics and "postgres unreachable" come through the module.
mport=$(free_port)
plugin_dir=$B/tests/fixtures/.libs conf "$work/all.conf" '[http]' "listen = 127.0.0.1:$mport" \
    '[postgres]' "dsn = $dead_pg" '[stellar]' "horizon_url = http://127.0.0.1:$(free_port)" \
    '[plugin needs_http]' 'enabled = yes' '[plugin needs_stellar]' 'enabled = yes'
: >"$work/worker.log"
"$bin" run -c "$work/all.conf" 2>"$work/worker.log" &
worker_pid=$!
code=
for _ in $(seq 100); do
    code=$(curl -s -o "$work/readyz" -w '%{http_code}' "http://127.0.0.1:$mport/readyz" || true)
    [ "$code" = 503 ] && grep -q 'postgres unreachable' "$work/readyz" && break
    sleep 0.1
done
[ "$code" = 503 ] || fail "/readyz answered $code: $(cat "$work/readyz" 2>/dev/null) $(cat "$work/worker.log")"
grep -q 'postgres unreachable' "$work/readyz" || fail "/readyz: $(cat "$work/readyz")"
curl -sf "http://127.0.0.1:$mport/metrics" >"$work/metrics" || fail "/metrics failed"
for metric in nova_worker_build_info nova_worker_pg_pool_size 'nova_worker_plugin_info{plugin="needs_http"' \
    'nova_worker_plugin_info{plugin="needs_stellar"'; do
    grep -qF "$metric" "$work/metrics" || fail "/metrics lacks $metric"
done
for lib in nova-pg.so libpq nova-http.so libcurl; do
    mapped "$lib" | grep -q . || fail "$lib is not mapped with everything configured"
done
grep -q '"plugin needs_stellar 0.0.1 started"' "$work/worker.log" || fail "needs_stellar did not start: $(cat "$work/worker.log")"
stop
echo "ok: modules"
