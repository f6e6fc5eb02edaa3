# tests/plugins/lib.sh - a throw-away world for the plugin e2e tests:
# redis-server and PostgreSQL 15 on free 127.0.0.1 ports in a temp dir, the
# schema `nova-worker migrate` makes, and nova-worker processes with the
# plugin under test. Modelled on tests/reward/lib.sh, without the Stellar
# test network.
#
# Needs: PL_SRC (source tree), PL_BUILD (build tree). Everything it starts
# is stopped by pl_teardown (the EXIT trap pl_setup sets).

. "${PL_SRC:?}/tests/lib/common.sh"

pl_die() {
    echo "plugins: $*" >&2
    exit 1
}

# pl_psql [-d DB] ARGS...: one value per line, no headers, stops on error.
pl_psql() {
    dsn=$PL_DSN
    if [ "${1:-}" = -d ]; then
        dsn=postgresql://postgres@127.0.0.1:$PL_PG_PORT/$2
        shift 2
    fi
    psql -X -q -A -t -v ON_ERROR_STOP=1 "$dsn" "$@"
}

pl_pg_pid() {
    [ -n "${PL_PGDATA:-}" ] && [ -f "$PL_PGDATA/postmaster.pid" ] || return 0
    head -1 "$PL_PGDATA/postmaster.pid" 2>/dev/null
}

# True when postmaster.pid names a live postmaster of OUR data dir (never
# signal a reused pid of another suite's server).
pl_pg_ours() {
    pm=$(pl_pg_pid)
    [ -n "$pm" ] && [ -r "/proc/$pm/cmdline" ] &&
        tr '\0' ' ' <"/proc/$pm/cmdline" | grep -qF -- "-D $PL_PGDATA "
}

pl_dump_logs() {
    [ -n "${PL_TMP:-}" ] && [ -d "$PL_TMP" ] || return 0
    {
        echo "==== plugins: diagnostics from $PL_TMP ===="
        for f in "$PL_TMP/pgsock/pg.log" "$PL_TMP"/*.log; do
            [ -s "$f" ] || continue
            echo "---- tail of ${f#"$PL_TMP"/} ----"
            tail -n "${PL_LOG_TAIL:-30}" "$f"
        done
        echo "==== end of diagnostics ===="
    } >&2
}

declare -A PL_PID

pl_teardown() {
    rc=$?
    set +e
    [ "$rc" = 0 ] || pl_dump_logs
    for name in "${!PL_PID[@]}"; do
        pid=${PL_PID[$name]}
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    [ -n "${PL_REDIS_PID:-}" ] && kill -TERM "$PL_REDIS_PID" 2>/dev/null && wait "$PL_REDIS_PID" 2>/dev/null
    if [ -n "${PL_PGDATA:-}" ] && [ -d "$PL_PGDATA" ] && pl_pg_ours; then
        nova_as_pg "$(nova_pg_bin pg_ctl)" -D "$PL_PGDATA" -m immediate stop >/dev/null 2>&1
    fi
    if [ -n "${PL_TMP:-}" ] && [ -z "${PL_KEEP:-}" ]; then
        rm -rf "$PL_TMP"
    elif [ -n "${PL_TMP:-}" ]; then
        echo "plugins: kept $PL_TMP" >&2
    fi
}

pl_setup() {
    command -v node >/dev/null || pl_die "node is not installed"
    command -v redis-server >/dev/null || pl_die "redis-server is not installed"
    # NOVA_NODE_ROOT: the tree whose tests/*/node_modules hold the npm peers
    PL_NODE_ROOT=${NOVA_NODE_ROOT:-$PL_SRC}
    [ -d "$PL_NODE_ROOT/tests/interop/node_modules/bullmq" ] ||
        pl_die "run 'npm ci' in tests/interop (scripts/deps.sh does)"
    [ -d "$PL_NODE_ROOT/tests/plugins/node_modules/pg" ] ||
        pl_die "run 'npm ci' in tests/plugins (scripts/deps.sh does)"
    NODE_PATH=$PL_NODE_ROOT/tests/interop/node_modules:$PL_NODE_ROOT/tests/plugins/node_modules
    export NODE_PATH
    PL_TMP=$(mktemp -d /tmp/nova-plugins.XXXXXX)
    chmod 755 "$PL_TMP"
    trap pl_teardown EXIT
    trap 'exit 130' INT TERM

    PL_REDIS_PORT=$(nova_free_port)
    redis-server --port "$PL_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$PL_TMP" --maxmemory-policy noeviction >>"$PL_TMP/redis.log" 2>&1 &
    PL_REDIS_PID=$!
    for _ in $(seq 50); do
        redis-cli -p "$PL_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    redis-cli -p "$PL_REDIS_PORT" ping 2>/dev/null | grep -q PONG ||
        pl_die "redis-server did not start on port $PL_REDIS_PORT"
    PL_REDIS_URL=redis://127.0.0.1:$PL_REDIS_PORT

    PL_PGDATA=$PL_TMP/pg
    mkdir -p "$PL_PGDATA" "$PL_TMP/pgsock"
    [ "$(id -u)" = 0 ] && chown postgres "$PL_PGDATA" "$PL_TMP/pgsock"
    nova_as_pg "$(nova_pg_bin initdb)" -D "$PL_PGDATA" -A trust -U postgres >"$PL_TMP/initdb.out" 2>&1 ||
        pl_die "initdb failed: $(tail -3 "$PL_TMP/initdb.out")"
    started=
    for _ in 1 2 3; do
        PL_PG_PORT=$(nova_free_port)
        if nova_as_pg "$(nova_pg_bin pg_ctl)" -D "$PL_PGDATA" -w -l "$PL_TMP/pgsock/pg.log" \
            -o "-p $PL_PG_PORT -k $PL_TMP/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=16MB" \
            start >/dev/null; then
            started=1
            break
        fi
        grep -q 'Address already in use' "$PL_TMP/pgsock/pg.log" || break
    done
    [ -n "$started" ] || pl_die "PostgreSQL did not start: $(tail -5 "$PL_TMP/pgsock/pg.log")"
    pl_create_db nova
    PL_DSN=postgresql://postgres@127.0.0.1:$PL_PG_PORT/nova
    export PL_TMP PL_DSN PL_REDIS_URL PL_REDIS_PORT PL_PG_PORT
}

pl_create_db() {
    psql -X -q -h 127.0.0.1 -p "$PL_PG_PORT" -U postgres -c "CREATE DATABASE $1" postgres >/dev/null ||
        pl_die "CREATE DATABASE $1 failed"
}

# pl_config FILE PLUGIN [DB] ["key = value"...]: a worker config with one
# plugin enabled (the plugin from the build tree), on database DB (nova).
pl_config() {
    file=$1
    plugin=$2
    db=${3:-nova}
    shift 3 || shift $#
    {
        echo "[worker]"
        echo "log_level = ${PL_LOG_LEVEL:-info}"
        echo "plugin_dir = $PL_BUILD/plugins/$plugin/.libs"
        echo "shutdown_timeout = 5s"
        echo "[redis]"
        echo "url = $PL_REDIS_URL"
        echo "stalled_interval = 1s"
        echo "[postgres]"
        echo "dsn = postgresql://postgres@127.0.0.1:$PL_PG_PORT/$db"
        echo "pool_max = 4"
        echo "[http]"
        echo "listen = 127.0.0.1:${PL_METRICS_PORT:-0}"
        echo "[plugin $plugin]"
        echo "enabled = yes"
        for line in "$@"; do echo "$line"; done
    } >"$file"
}

pl_migrate() {
    "$PL_BUILD/nova-worker" migrate -c "$1" --dir "$PL_SRC/migrations" >>"$PL_TMP/migrate.log" 2>&1 ||
        pl_die "migrate failed: $(tail -5 "$PL_TMP/migrate.log")"
}

# pl_start_worker NAME CONFIG: runs nova-worker in the background, logging
# to $PL_TMP/NAME.log, and waits until it took the plugin's queue.
pl_start_worker() {
    touch "$PL_TMP/$1.log"
    from=$(($(wc -l <"$PL_TMP/$1.log") + 1))
    "$PL_BUILD/nova-worker" run -c "$2" >>"$PL_TMP/$1.log" 2>&1 &
    PL_PID[$1]=$!
    for _ in $(seq 100); do
        tail -n +"$from" "$PL_TMP/$1.log" | grep -q 'plugin [a-z_]* [0-9.]* started' && return 0
        kill -0 "${PL_PID[$1]}" 2>/dev/null || pl_die "worker $1 exited: $(tail -5 "$PL_TMP/$1.log")"
        sleep 0.1
    done
    pl_die "worker $1 did not start: $(tail -5 "$PL_TMP/$1.log")"
}

# pl_kill_worker NAME [SIGNAL]: a crash by default (SIGKILL).
pl_kill_worker() {
    pid=${PL_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -"${2:-KILL}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    PL_PID[$1]=
}

# pl_finish_worker NAME: SIGTERM; fails unless the worker exits 0 without a
# sanitizer report (ASan/UBSan/LSan write to its stderr, the log).
pl_finish_worker() {
    pid=${PL_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    PL_PID[$1]=
    nova_san_exit_ok "$rc" "$PL_TMP/$1.log" ||
        { echo "plugins: worker $1 exited $rc after SIGTERM" >&2; return 1; }
    if [ -n "$(nova_san_findings "$PL_TMP/$1.log")" ] || grep 'leaked transaction lease' "$PL_TMP/$1.log" >&2; then
        nova_san_findings "$PL_TMP/$1.log" >&2
        echo "plugins: sanitizer report or leaked lease in the log of worker $1" >&2
        return 1
    fi
}

# pl_job ARGS...: tests/plugins/jobs.js against our Redis (bullmq).
pl_job() {
    node "$PL_SRC/tests/plugins/jobs.js" "$PL_REDIS_URL" "$@"
}

# pl_wait_log WORKER TEXT SECONDS: true once TEXT appears in the log of
# WORKER, false when it has not within SECONDS.
pl_wait_log() {
    for _ in $(seq $(($3 * 10))); do
        grep -qF -- "$2" "$PL_TMP/$1.log" && return 0
        sleep 0.1
    done
    grep -qF -- "$2" "$PL_TMP/$1.log"
}

# pl_wait_finished QUEUE ID_PREFIX SECONDS [SKIP]: prints the first finished
# job of QUEUE whose id starts with ID_PREFIX (and does not contain SKIP),
# as jobs.js prints it; prints nothing when none finished within SECONDS.
pl_wait_finished() {
    for _ in $(seq $(($3 * 10))); do
        found=$(pl_job finished "$1" | grep -F "\"id\":\"$2" |
            { if [ -n "${4:-}" ]; then grep -vF -- "$4"; else cat; fi; } | head -1 || true)
        [ -n "$found" ] && { echo "$found"; return 0; }
        sleep 0.1
    done
}
