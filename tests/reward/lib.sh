# tests/reward/lib.sh - a throw-away world for the reward_issuance plugin:
# redis-server, PostgreSQL 15 and the Stellar test network on free
# 127.0.0.1 ports in a temp dir, seeded like Nova's API would, and a
# nova-worker with the plugin. Sourced by the e2e tests and scripts/demo.sh.
#
# Needs: RI_SRC (source tree), RI_BUILD (build tree). Everything it starts
# is stopped by ri_teardown (set as an EXIT trap by ri_setup).

. "${RI_SRC:?}/tests/lib/common.sh"

ri_die() {
    echo "reward: $*" >&2
    exit 1
}

ri_psql() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 "$RI_DSN" "$@"
}

# The pid in our data dir's postmaster.pid while it runs, else "".
ri_pg_pid() {
    [ -n "${RI_PGDATA:-}" ] && [ -f "$RI_PGDATA/postmaster.pid" ] || return 0
    head -1 "$RI_PGDATA/postmaster.pid" 2>/dev/null
}

# True when the pid in postmaster.pid is a postmaster of OUR data dir. A
# postmaster that died abruptly leaves its postmaster.pid behind, and pg_ctl
# stop signals whatever process has that pid now, which after a pid
# wrap-around (pid_max 32768, a parallel `make check`) may be another
# suite's server: never let our teardown be that.
ri_pg_ours() {
    pm=$(ri_pg_pid)
    [ -n "$pm" ] && [ -r "/proc/$pm/cmdline" ] &&
        tr '\0' ' ' <"/proc/$pm/cmdline" | grep -qF -- "-D $RI_PGDATA "
}

# Prints what explains a failure while the temp dir still exists: whether
# our PostgreSQL still runs, the tails of its log, the workers' logs and the
# test network's, and the system's memory and disk (a server killed by the
# OOM killer or a full disk shows there).
ri_dump_logs() {
    [ -n "${RI_TMP:-}" ] && [ -d "$RI_TMP" ] || return 0
    {
        echo "==== reward: diagnostics from $RI_TMP ===="
        if ri_pg_ours; then
            echo "postgres: postmaster $pm (started as ${RI_PG_STARTED_PID:-?}) on port ${RI_PG_PORT:-?} is running"
        else
            echo "postgres: NOT running (postmaster.pid: ${pm:-none}, not ours or gone; started as ${RI_PG_STARTED_PID:-?}, port ${RI_PG_PORT:-?})"
        fi
        for f in "$RI_TMP/pgsock/pg.log" "$RI_TMP"/worker*.log "$RI_TMP/testnet.err" "$RI_TMP/redis.log"; do
            [ -s "$f" ] || continue
            echo "---- tail of ${f#"$RI_TMP"/} ----"
            tail -n "${RI_LOG_TAIL:-40}" "$f"
        done
        echo "---- memory and disk ----"
        free -m 2>/dev/null | head -3
        df -h "$RI_TMP" 2>/dev/null | tail -1
        # the OOM killer's verdicts, where the kernel log is readable
        dmesg 2>/dev/null | grep -iE 'out of memory|killed process|oom-kill' | tail -n 5
        echo "==== end of diagnostics ===="
    } >&2
}

ri_teardown() {
    rc=$?
    set +e
    [ "$rc" = 0 ] || ri_dump_logs
    [ -n "${RI_WORKER_PID:-}" ] && kill -TERM "$RI_WORKER_PID" 2>/dev/null && wait "$RI_WORKER_PID" 2>/dev/null
    [ -n "${RI_TESTNET_PID:-}" ] && kill -TERM "$RI_TESTNET_PID" 2>/dev/null && wait "$RI_TESTNET_PID" 2>/dev/null
    [ -n "${RI_REDIS_PID:-}" ] && kill -TERM "$RI_REDIS_PID" 2>/dev/null && wait "$RI_REDIS_PID" 2>/dev/null
    if [ -n "${RI_PGDATA:-}" ] && [ -d "$RI_PGDATA" ]; then
        if ri_pg_ours; then
            nova_as_pg "$(nova_pg_bin pg_ctl)" -D "$RI_PGDATA" -m immediate stop >/dev/null 2>&1
        elif [ -n "$(ri_pg_pid)" ]; then
            echo "reward: stale postmaster.pid ($(ri_pg_pid) is not our server): not signalled" >&2
        fi
    fi
    if [ -n "${RI_TMP:-}" ] && [ -z "${RI_KEEP:-}" ]; then
        rm -rf "$RI_TMP"
    elif [ -n "${RI_TMP:-}" ]; then
        echo "reward: kept $RI_TMP" >&2
    fi
}

# Redis on RI_REDIS_PORT, with the eviction policy BullMQ needs. With
# RI_REDIS_PERSIST=1 every write is in its append-only file first (fsync
# always), as a production Redis that must survive a restart.
ri_start_redis() {
    persist="--appendonly no"
    [ -n "${RI_REDIS_PERSIST:-}" ] && persist="--appendonly yes --appendfsync always"
    # shellcheck disable=SC2086
    redis-server --port "$RI_REDIS_PORT" --bind 127.0.0.1 --save '' $persist \
        --dir "$RI_TMP" --maxmemory-policy noeviction >>"$RI_TMP/redis.log" 2>&1 &
    RI_REDIS_PID=$!
    for _ in $(seq 50); do
        redis-cli -p "$RI_REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    ri_die "redis-server did not start on port $RI_REDIS_PORT"
}

# Kills Redis (SIGKILL: a crash) and starts it again on the same port.
ri_restart_redis() {
    kill -KILL "$RI_REDIS_PID" 2>/dev/null || true
    wait "$RI_REDIS_PID" 2>/dev/null || true
    sleep "${1:-0.5}"
    ri_start_redis
}

# Stops PostgreSQL (MODE: immediate = a crash, fast = sessions cut) and
# starts it again on the same port and data.
ri_restart_pg() {
    nova_as_pg "$(nova_pg_bin pg_ctl)" -D "$RI_PGDATA" -m "${1:-immediate}" stop >/dev/null 2>&1 ||
        ri_die "pg_ctl stop failed"
    sleep "${2:-0.5}"
    nova_as_pg "$(nova_pg_bin pg_ctl)" -D "$RI_PGDATA" -w -l "$RI_TMP/pgsock/pg.log" \
        -o "-p $RI_PG_PORT -k $RI_TMP/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50 -c shared_buffers=16MB" \
        start >/dev/null || ri_die "PostgreSQL did not start again: $(tail -5 "$RI_TMP/pgsock/pg.log")"
    RI_PG_STARTED_PID=$(ri_pg_pid)
}

# ri_setup RECIPIENTS WITHOUT_TRUST [testnet options...]
ri_setup() {
    recipients=$1
    without=$2
    shift 2
    command -v node >/dev/null || ri_die "node is not installed"
    command -v redis-server >/dev/null || ri_die "redis-server is not installed"
    # NOVA_NODE_ROOT: the tree whose tests/*/node_modules hold the npm peers
    # (make distcheck's unpacked tarball has none).
    RI_NODE_ROOT=${NOVA_NODE_ROOT:-$RI_SRC}
    [ -d "$RI_NODE_ROOT/tests/testnet/node_modules/@stellar" ] ||
        ri_die "run 'npm ci' in tests/testnet (scripts/deps.sh does)"
    [ -d "$RI_NODE_ROOT/tests/interop/node_modules/bullmq" ] ||
        ri_die "run 'npm ci' in tests/interop (scripts/deps.sh does)"
    NODE_PATH=$RI_NODE_ROOT/tests/testnet/node_modules:$RI_NODE_ROOT/tests/interop/node_modules
    export NODE_PATH
    RI_TMP=$(mktemp -d /tmp/nova-reward.XXXXXX)
    chmod 755 "$RI_TMP"
    trap ri_teardown EXIT
    trap 'exit 130' INT TERM

    # Redis, with the eviction policy BullMQ needs.
    RI_REDIS_PORT=$(nova_free_port)
    ri_start_redis

    # PostgreSQL 15 in the temp dir. The port is picked before the server
    # binds it, so another suite may take it in between: then pick again.
    RI_PGDATA=$RI_TMP/pg
    mkdir -p "$RI_PGDATA" "$RI_TMP/pgsock"
    [ "$(id -u)" = 0 ] && chown postgres "$RI_PGDATA" "$RI_TMP/pgsock"
    nova_as_pg "$(nova_pg_bin initdb)" -D "$RI_PGDATA" -A trust -U postgres >"$RI_TMP/initdb.log" 2>&1 ||
        ri_die "initdb failed: $(tail -3 "$RI_TMP/initdb.log")"
    started=
    for _ in 1 2 3; do
        RI_PG_PORT=$(nova_free_port)
        if nova_as_pg "$(nova_pg_bin pg_ctl)" -D "$RI_PGDATA" -w -l "$RI_TMP/pgsock/pg.log" \
            -o "-p $RI_PG_PORT -k $RI_TMP/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50 -c shared_buffers=16MB" \
            start >/dev/null; then
            started=1
            break
        fi
        grep -q 'Address already in use' "$RI_TMP/pgsock/pg.log" || break
    done
    [ -n "$started" ] || ri_die "PostgreSQL did not start: $(tail -5 "$RI_TMP/pgsock/pg.log")"
    RI_PG_STARTED_PID=$(ri_pg_pid)
    psql -X -q -h 127.0.0.1 -p "$RI_PG_PORT" -U postgres -c 'CREATE DATABASE nova' postgres >/dev/null
    RI_DSN=postgresql://postgres@127.0.0.1:$RI_PG_PORT/nova

    # The Stellar test network.
    node "$RI_SRC/tests/testnet/server.js" --port 0 "$@" >"$RI_TMP/testnet.out" 2>"$RI_TMP/testnet.err" &
    RI_TESTNET_PID=$!
    for _ in $(seq 100); do
        grep -q '"ready":true' "$RI_TMP/testnet.out" 2>/dev/null && break
        sleep 0.1
    done
    RI_TESTNET_PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$RI_TMP/testnet.out" | head -1)
    [ -n "$RI_TESTNET_PORT" ] || ri_die "the test network did not start: $(cat "$RI_TMP/testnet.err")"
    RI_HORIZON=http://127.0.0.1:$RI_TESTNET_PORT
    node "$RI_SRC/tests/testnet/setup.js" --url "$RI_HORIZON" --out "$RI_TMP/keys.json" \
        --recipients "$recipients" --without-trust "$without" --env "$RI_TMP/stellar.env" \
        >"$RI_TMP/setup.log" 2>&1 || ri_die "setup.js failed: $(cat "$RI_TMP/setup.log")"

    for _ in $(seq 50); do
        redis-cli -p "$RI_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    RI_REDIS_URL=redis://127.0.0.1:$RI_REDIS_PORT
    export RI_TMP RI_DSN RI_HORIZON RI_REDIS_URL RI_REDIS_PORT
}

# Writes the worker config; extra "key = value" lines for the plugin
# section come as arguments.
ri_config() {
    issuer=$(node -e 'console.log(require(process.argv[1]).issuer.public)' "$RI_TMP/keys.json")
    node -e 'require("fs").writeFileSync(process.argv[2], require(process.argv[1]).distribution.secret + "\n", {mode: 0o600})' \
        "$RI_TMP/keys.json" "$RI_TMP/distribution-secret"
    {
        echo "[worker]"
        echo "log_level = ${RI_LOG_LEVEL:-info}"
        echo "plugin_dir = $RI_BUILD/plugins/reward_issuance/.libs"
        echo "shutdown_timeout = 5s"
        echo "[redis]"
        echo "url = $RI_REDIS_URL"
        # more [redis] lines, one per line (a test that kills workers
        # shortens the stalled-job recovery)
        [ -z "${RI_REDIS_SETTINGS:-}" ] || printf '%s\n' "$RI_REDIS_SETTINGS"
        echo "[postgres]"
        echo "dsn = $RI_DSN"
        echo "pool_max = 8"
        echo "[http]"
        echo "listen = 127.0.0.1:${RI_METRICS_PORT:-0}"
        if [ -n "${RI_STELLAR_SECTION:-}" ]; then
            # the core section only: the plugin falls back to it and the
            # host signs with its distribution secret
            echo "[stellar]"
            echo "network = testnet"
            echo "horizon_url = $RI_HORIZON"
            echo "asset_code = NOVA"
            echo "asset_issuer = $issuer"
            echo "distribution_secret_file = $RI_TMP/distribution-secret"
            echo "[plugin reward_issuance]"
            echo "enabled = yes"
        else
            # Horizon and the network always come from [stellar] (the
            # plugin calls Horizon through the host's client); asset and
            # signing key are the plugin's own. Its horizon_url and network
            # keys are still accepted when they say the same.
            echo "[stellar]"
            echo "network = testnet"
            echo "horizon_url = $RI_HORIZON"
            echo "[plugin reward_issuance]"
            echo "enabled = yes"
            echo "horizon_url = $RI_HORIZON"
            echo "network = testnet"
            echo "asset_issuer = $issuer"
            echo "distribution_secret_file = $RI_TMP/distribution-secret"
        fi
        for line in "$@"; do echo "$line"; done
    } >"$RI_TMP/nova-worker.conf"
}

ri_migrate() {
    "$RI_BUILD/nova-worker" migrate -c "$RI_TMP/nova-worker.conf" --dir "$RI_SRC/migrations" \
        >"$RI_TMP/migrate.log" 2>&1 || ri_die "migrate failed: $(cat "$RI_TMP/migrate.log")"
}

# Nova's side: a merchant, an active and an inactive campaign, one user per
# recipient wallet.
ri_seed() {
    wallets=$(node -e 'for (const r of require(process.argv[1]).recipients) console.log(r.public)' "$RI_TMP/keys.json")
    {
        echo "INSERT INTO merchants (id, name, wallet_address, api_key) VALUES (1, 'Demo Coffee', 'GMERCHANT', 'demo-key');"
        echo "INSERT INTO campaigns (id, merchant_id, name, reward_rate, start_date, end_date, is_active, token_amount, reward_per_action) VALUES
              (1, 1, 'Loyalty', 1, CURRENT_DATE - 1, CURRENT_DATE + 30, true, 1000000, 1),
              (2, 1, 'Ended', 1, CURRENT_DATE - 30, CURRENT_DATE - 1, true, 1000000, 1);"
        i=0
        for w in $wallets; do
            i=$((i + 1))
            echo "INSERT INTO users (id, wallet_address) VALUES ($i, '$w');"
        done
    } | ri_psql >/dev/null || ri_die "seeding failed"
}

# ri_issue N CAMPAIGN [AMOUNT]: creates N reward_issuances rows the way the
# API does (recipients round-robin) and prints them as JSON lines.
ri_issue() {
    ri_psql -c "
      WITH w AS (SELECT id, wallet_address, row_number() OVER (ORDER BY id) - 1 AS k FROM users),
      n AS (SELECT count(*) AS c FROM users),
      ins AS (INSERT INTO reward_issuances (idempotency_key, campaign_id, user_id, wallet_address, amount)
              SELECT md5(random()::text || g::text), $2, w.id, w.wallet_address, ${3:-1.5}
              FROM generate_series(0, $1 - 1) g JOIN n ON true JOIN w ON w.k = g % n.c
              RETURNING id, idempotency_key, campaign_id, user_id, wallet_address, amount)
      SELECT json_build_object('issuanceId', id, 'idempotencyKey', idempotency_key,
             'campaignId', campaign_id, 'userId', user_id, 'walletAddress', wallet_address,
             'amount', amount::text) FROM ins ORDER BY id"
}

# Enqueues JSON lines from stdin through the real bullmq, as Nova does.
ri_enqueue() {
    node "$RI_SRC/tests/reward/enqueue.js" "$RI_REDIS_URL" "$@"
}

ri_start_worker() {
    "$RI_BUILD/nova-worker" run -c "$RI_TMP/nova-worker.conf" >>"$RI_TMP/worker.log" 2>&1 &
    RI_WORKER_PID=$!
}

ri_stop_worker() {
    sig=${1:-TERM}
    [ -n "${RI_WORKER_PID:-}" ] || return 0
    kill -"$sig" "$RI_WORKER_PID" 2>/dev/null || true
    wait "$RI_WORKER_PID" 2>/dev/null || true
    RI_WORKER_PID=
}

# ri_wait_settled TIMEOUT_S: until no issuance is pending and no envelope open.
ri_wait_settled() {
    deadline=$(($(date +%s) + $1))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if ! open=$(ri_psql -c "SELECT (SELECT count(*) FROM reward_issuances WHERE status = 'pending')
                                + (SELECT count(*) FROM nova_worker_stellar_txs WHERE status IN ('prepared','submitted'))"); then
            # our database is gone: waiting cannot help (the logs say why)
            if ! ri_pg_ours; then
                echo "reward: PostgreSQL of this test stopped (port ${RI_PG_PORT:-?})" >&2
                return 1
            fi
        fi
        [ "$open" = 0 ] && return 0
        if [ -n "${RI_PROGRESS:-}" ]; then
            ri_psql -F ' ' -c "SELECT 'progress: confirmed', count(*) FILTER (WHERE status='confirmed'),
                 'failed', count(*) FILTER (WHERE status='failed'), 'pending', count(*) FILTER (WHERE status='pending')
                 FROM reward_issuances"
        fi
        sleep "${RI_POLL:-0.5}"
    done
    echo "reward: not settled after $1 s ($open open)" >&2
    return 1
}

# Exactly-once check across PostgreSQL and the network; prints a summary.
ri_check() {
    ri_psql -c "SELECT json_build_object(
        'issuances', (SELECT coalesce(json_agg(json_build_object('id', id, 'status', status,
                      'tx_hash', tx_hash, 'wallet', wallet_address, 'amount', amount::text,
                      'error', error_message)), '[]') FROM reward_issuances),
        'payments', (SELECT coalesce(json_agg(json_build_object('id', p.id, 'reference', p.reference,
                      'status', p.status, 'dest', p.destination, 'amount', p.amount::text,
                      'op_index', p.op_index, 'tx_hash', t.tx_hash, 'error', p.error_message)), '[]')
                      FROM nova_worker_payments p LEFT JOIN nova_worker_stellar_txs t ON t.id = p.stellar_tx_id))" \
        >"$RI_TMP/db.json"
    node "$RI_SRC/tests/reward/check.js" "$RI_HORIZON" "$RI_TMP/db.json" "$@"
}

# Stops the worker with SIGTERM and fails unless it exited 0 without a
# sanitizer report (ASan/UBSan/LSan write to its stderr, the worker log).
ri_finish_worker() {
    [ -n "${RI_WORKER_PID:-}" ] || return 0
    kill -TERM "$RI_WORKER_PID" 2>/dev/null || true
    rc=0
    wait "$RI_WORKER_PID" 2>/dev/null || rc=$?
    RI_WORKER_PID=
    nova_san_exit_ok "$rc" "$RI_TMP/worker.log" ||
        { echo "reward: worker exited $rc after SIGTERM" >&2; return 1; }
    if [ -n "$(nova_san_findings "$RI_TMP/worker.log")" ]; then
        nova_san_findings "$RI_TMP/worker.log" >&2
        echo "reward: sanitizer report in the worker log" >&2
        return 1
    fi
}
