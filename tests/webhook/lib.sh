# tests/webhook/lib.sh - a throw-away world for the webhook plugin:
# redis-server and PostgreSQL 15 on free 127.0.0.1 ports in a temp dir,
# migrated like production, Node receivers that verify every signature as
# Nova's verifier does, and nova-worker processes with the plugin.
#
# Needs WH_SRC (source tree) and WH_BUILD (build tree). Everything started
# here is stopped by wh_teardown (the EXIT trap set by wh_setup).

. "${WH_SRC:?}/tests/lib/common.sh"

wh_die() {
    echo "webhook: $*" >&2
    exit 1
}

wh_psql() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 "$WH_DSN" "$@"
}

# True when postmaster.pid names a postmaster of our own data dir (a
# stale file may name another suite's server after a pid wrap-around).
wh_pg_ours() {
    [ -n "${WH_PGDATA:-}" ] && [ -f "$WH_PGDATA/postmaster.pid" ] || return 1
    pm=$(head -1 "$WH_PGDATA/postmaster.pid" 2>/dev/null)
    [ -n "$pm" ] && [ -r "/proc/$pm/cmdline" ] &&
        tr '\0' ' ' <"/proc/$pm/cmdline" | grep -qF -- "-D $WH_PGDATA "
}

wh_dump_logs() {
    [ -n "${WH_TMP:-}" ] && [ -d "$WH_TMP" ] || return 0
    {
        echo "==== webhook: diagnostics from $WH_TMP ===="
        for f in "$WH_TMP"/worker-*.log "$WH_TMP"/receiver-*.err "$WH_TMP/pg.log"; do
            [ -s "$f" ] || continue
            echo "---- tail of ${f#"$WH_TMP"/} ----"
            tail -n "${WH_LOG_TAIL:-30}" "$f"
        done
        echo "==== end of diagnostics ===="
    } >&2
}

wh_teardown() {
    rc=$?
    set +e
    [ "$rc" = 0 ] || wh_dump_logs
    for pid in ${WH_PIDS:-}; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in ${WH_PIDS:-}; do
        wait "$pid" 2>/dev/null
    done
    [ -n "${WH_REDIS_PID:-}" ] && kill -TERM "$WH_REDIS_PID" 2>/dev/null && wait "$WH_REDIS_PID" 2>/dev/null
    if wh_pg_ours; then
        nova_as_pg "$(nova_pg_bin pg_ctl)" -D "$WH_PGDATA" -m immediate stop >/dev/null 2>&1
    fi
    if [ -n "${WH_TMP:-}" ] && [ -z "${WH_KEEP:-}" ]; then
        rm -rf "$WH_TMP"
    elif [ -n "${WH_TMP:-}" ]; then
        echo "webhook: kept $WH_TMP" >&2
    fi
}

wh_setup() {
    command -v node >/dev/null || wh_die "node is not installed"
    command -v redis-server >/dev/null || wh_die "redis-server is not installed"
    WH_NODE_ROOT=${NOVA_NODE_ROOT:-$WH_SRC}
    [ -d "$WH_NODE_ROOT/tests/interop/node_modules/bullmq" ] ||
        wh_die "run 'npm ci' in tests/interop (scripts/deps.sh does)"
    NODE_PATH=$WH_NODE_ROOT/tests/interop/node_modules
    export NODE_PATH
    WH_TMP=$(mktemp -d /tmp/nova-webhook.XXXXXX)
    chmod 755 "$WH_TMP"
    echo '{}' >"$WH_TMP/secrets.json" # what the receivers know, by hook name
    echo '{}' >"$WH_TMP/modes.json"   # what they answer
    WH_PIDS=
    trap wh_teardown EXIT
    trap 'exit 130' INT TERM

    WH_REDIS_PORT=$(nova_free_port)
    redis-server --port "$WH_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WH_TMP" --maxmemory-policy noeviction >"$WH_TMP/redis.log" 2>&1 &
    WH_REDIS_PID=$!
    for _ in $(seq 50); do
        redis-cli -p "$WH_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    redis-cli -p "$WH_REDIS_PORT" ping 2>/dev/null | grep -q PONG || wh_die "redis did not start"
    WH_REDIS_URL=redis://127.0.0.1:$WH_REDIS_PORT

    WH_PGDATA=$WH_TMP/pg
    mkdir -p "$WH_PGDATA" "$WH_TMP/pgsock"
    [ "$(id -u)" = 0 ] && chown postgres "$WH_PGDATA" "$WH_TMP/pgsock"
    nova_as_pg "$(nova_pg_bin initdb)" -D "$WH_PGDATA" -A trust -U postgres >"$WH_TMP/initdb.log" 2>&1 ||
        wh_die "initdb failed: $(tail -3 "$WH_TMP/initdb.log")"
    started=
    for _ in 1 2 3; do
        WH_PG_PORT=$(nova_free_port)
        if nova_as_pg "$(nova_pg_bin pg_ctl)" -D "$WH_PGDATA" -w -l "$WH_TMP/pgsock/pg.log" \
            -o "-p $WH_PG_PORT -k $WH_TMP/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=16MB" \
            start >/dev/null; then
            started=1
            break
        fi
        grep -q 'Address already in use' "$WH_TMP/pgsock/pg.log" || break
    done
    [ -n "$started" ] || wh_die "PostgreSQL did not start: $(tail -5 "$WH_TMP/pgsock/pg.log")"
    ln -sf "$WH_TMP/pgsock/pg.log" "$WH_TMP/pg.log"
    psql -X -q -h 127.0.0.1 -p "$WH_PG_PORT" -U postgres -c 'CREATE DATABASE nova' postgres >/dev/null
    WH_DSN=postgresql://postgres@127.0.0.1:$WH_PG_PORT/nova
    export WH_TMP WH_DSN WH_REDIS_URL WH_REDIS_PORT
    # FIELD_ENCRYPTION_KEY now and before the last rotation, as Nova has them
    WH_KEY=$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')
    WH_KEY_PREV=$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')
}

# wh_config NAME [plugin lines...]: $WH_TMP/NAME.conf, for one worker.
wh_config() {
    name=$1
    shift
    printf '%s\n' "$WH_KEY" >"$WH_TMP/field-key"
    printf '%s\n' "$WH_KEY_PREV" >"$WH_TMP/field-key-previous"
    chmod 600 "$WH_TMP/field-key" "$WH_TMP/field-key-previous"
    {
        echo "[worker]"
        echo "name = $name"
        echo "log_level = ${WH_LOG_LEVEL:-info}"
        echo "plugin_dir = $WH_BUILD/plugins/webhook/.libs"
        echo "shutdown_timeout = 10s"
        echo "[redis]"
        echo "url = $WH_REDIS_URL"
        for line in ${WH_REDIS_LINES:-}; do echo "$line" | tr '~' ' '; done
        echo "[postgres]"
        echo "dsn = $WH_DSN"
        echo "pool_max = ${WH_POOL_MAX:-8}"
        echo "[http]"
        echo "listen = 127.0.0.1:${WH_METRICS_PORT:-0}"
        echo "[plugin webhook]"
        echo "enabled = yes"
        echo "encryption_key_file = $WH_TMP/field-key"
        echo "encryption_key_previous_file = $WH_TMP/field-key-previous"
        for line in "$@"; do echo "$line"; done
    } >"$WH_TMP/$name.conf"
}

wh_migrate() {
    "$WH_BUILD/nova-worker" migrate -c "$WH_TMP/$1.conf" --dir "$WH_SRC/migrations" \
        >"$WH_TMP/migrate.log" 2>&1 || wh_die "migrate failed: $(cat "$WH_TMP/migrate.log")"
}

# Nova's side: two merchants, a campaign of each, three users.
wh_seed() {
    wh_psql >/dev/null <<'SQL' || wh_die "seeding failed"
INSERT INTO merchants (id, name, wallet_address, api_key) VALUES
    (1, 'Demo Coffee', 'GMERCHANTONE', 'key-one'), (2, 'Other Shop', 'GMERCHANTTWO', 'key-two');
INSERT INTO campaigns (id, merchant_id, name, reward_rate, start_date, end_date, is_active,
                       token_amount, reward_per_action) VALUES
    (1, 1, 'Loyalty', 1, CURRENT_DATE - 1, CURRENT_DATE + 30, true, 1000000, 1),
    (2, 2, 'Other', 1, CURRENT_DATE - 1, CURRENT_DATE + 30, true, 1000000, 1);
INSERT INTO users (id, wallet_address) VALUES (1, 'GUSERONE'), (2, 'GUSERTWO'), (3, 'GUSERTHREE');
SQL
}

# wh_start_worker NAME: runs nova-worker with $WH_TMP/NAME.conf; its pid
# in WH_PID_<NAME>, its log in worker-NAME.log.
wh_start_worker() {
    "$WH_BUILD/nova-worker" run -c "$WH_TMP/$1.conf" >>"$WH_TMP/worker-$1.log" 2>&1 &
    eval "WH_PID_$1=$!"
    WH_PIDS="$WH_PIDS $!"
    for _ in $(seq 100); do
        grep -q '"plugin webhook' "$WH_TMP/worker-$1.log" 2>/dev/null && grep -q 'started' "$WH_TMP/worker-$1.log" && break
        sleep 0.1
    done
}

# wh_stop_worker NAME [SIGNAL]
wh_stop_worker() {
    eval "pid=\${WH_PID_$1:-}"
    [ -n "$pid" ] || return 0
    kill -"${2:-TERM}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    eval "WH_PID_$1="
}

# Fails when a worker log shows a sanitizer report.
wh_no_sanitizer_report() {
    for log in "$WH_TMP"/worker-*.log; do
        [ -z "$(nova_san_findings "$log")" ] || { nova_san_findings "$log" >&2; wh_die "sanitizer report in $log"; }
    done
}

# wh_start_receiver NAME HOST: a Node receiver on HOST (127.0.0.x) and a
# free port; WH_RPORT_<NAME> holds the port. Its secrets and modes are
# $WH_TMP/secrets.json and $WH_TMP/modes.json (read on every request);
# each request is a line of $WH_TMP/receiver-NAME.log.
wh_start_receiver() {
    node "$WH_SRC/tests/webhook/receiver.js" --host "$2" --port 0 \
        --secrets "$WH_TMP/secrets.json" --modes "$WH_TMP/modes.json" \
        --log "$WH_TMP/receiver-$1.log" >"$WH_TMP/receiver-$1.out" 2>"$WH_TMP/receiver-$1.err" &
    WH_PIDS="$WH_PIDS $!"
    for _ in $(seq 100); do
        grep -q '"ready":true' "$WH_TMP/receiver-$1.out" 2>/dev/null && break
        sleep 0.05
    done
    port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$WH_TMP/receiver-$1.out" | head -1)
    [ -n "$port" ] || wh_die "receiver $1 did not start: $(cat "$WH_TMP/receiver-$1.err")"
    eval "WH_RPORT_$1=$port"
    touch "$WH_TMP/receiver-$1.log"
}

# wh_hook NAME SECRET_STORED PLAINTEXT URL EVENTS [ACTIVE] [MERCHANT]: a
# webhooks row (prints its id); the receiver learns the plaintext secret
# under NAME.
wh_hook() {
    node -e '
      const fs = require("fs");
      const f = process.argv[1];
      const m = JSON.parse(fs.readFileSync(f, "utf8"));
      m[process.argv[2]] = process.argv[3];
      fs.writeFileSync(f + ".tmp", JSON.stringify(m));
      fs.renameSync(f + ".tmp", f);' "$WH_TMP/secrets.json" "$1" "$3"
    wh_psql -c "INSERT INTO webhooks (merchant_id, url, secret, events, is_active)
                VALUES (${7:-1}, '$4', '$2', '$5', ${6:-true}) RETURNING id"
}

# wh_mode NAME MODE: what the receivers answer for NAME (ok, status-N,
# hang-MS, slow-MS, reset, redirect-URL).
wh_mode() {
    node -e '
      const fs = require("fs");
      const f = process.argv[1];
      const m = JSON.parse(fs.readFileSync(f, "utf8"));
      m[process.argv[2]] = process.argv[3];
      fs.writeFileSync(f + ".tmp", JSON.stringify(m));
      fs.renameSync(f + ".tmp", f);' "$WH_TMP/modes.json" "$1" "$2"
}

# Nova's encryption of a webhook secret (tests/webhook/nova_crypto.js).
wh_encrypt() {
    node "$WH_SRC/tests/webhook/nova_crypto.js" encrypt "$1" "$2"
}

wh_secret() {
    node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))'
}

# wh_run WORKER_CONF JOB_ID: one delivery run now (a `deliver` job), and
# waits until it finished; prints its return value.
wh_run() {
    "$WH_BUILD/nova-worker" queue -c "$WH_TMP/$1.conf" add webhook-dispatch deliver '{}' \
        --job-id "$2" >/dev/null || wh_die "queue add failed"
    wh_wait_job webhook-dispatch "$2" "${3:-60}"
}

# wh_wait_job QUEUE JOB_ID TIMEOUT_S: waits for the job to finish; prints
# its return value (or "failed: reason").
wh_wait_job() {
    key="bull:$1:$2"
    deadline=$(($(date +%s) + $3))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        fin=$(redis-cli -p "$WH_REDIS_PORT" hget "$key" finishedOn)
        if [ -n "$fin" ]; then
            reason=$(redis-cli -p "$WH_REDIS_PORT" hget "$key" failedReason)
            if [ -n "$reason" ]; then
                echo "failed: $reason"
            else
                redis-cli -p "$WH_REDIS_PORT" hget "$key" returnvalue
            fi
            return 0
        fi
        sleep 0.1
    done
    wh_die "job $1/$2 did not finish within $3 s"
}

# wh_wait_sql TIMEOUT_S SQL: until SQL answers t.
wh_wait_sql() {
    deadline=$(($(date +%s) + $1))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ "$(wh_psql -c "$2")" = t ] && return 0
        sleep 0.2
    done
    return 1
}

# wh_metric NAME_WITH_LABELS: its value on the worker's /metrics (0 when absent).
wh_metric() {
    v=$(curl -s "http://127.0.0.1:$WH_METRICS_PORT/metrics" | grep -F "$1 " | awk '{print $2}' | head -1)
    echo "${v:-0}"
}

# The receiver's log as one JSON array on stdout.
wh_received() {
    node -e '
      const fs = require("fs");
      const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
      console.log(JSON.stringify(lines.map((l) => JSON.parse(l))));' "$WH_TMP/receiver-$1.log"
}
