# tests/contract_events/lib.sh - the contract_events plugin's world: the
# Redis, PostgreSQL 15 and Stellar test network of tests/reward/lib.sh
# (sourced), a worker config enabling contract_events, several workers at
# once, and helpers to add runs, read their results, and compare what the
# table holds with what the test network served.
#
# Needs: CE_SRC (source tree), CE_BUILD (build tree).

# shellcheck disable=SC2034 # read by tests/reward/lib.sh
RI_SRC=$CE_SRC
# shellcheck disable=SC2034
RI_BUILD=$CE_BUILD
# shellcheck source=../reward/lib.sh
. "$CE_SRC/tests/reward/lib.sh"

CE_PIDS=""

ce_die() {
    echo "contract_events: $*" >&2
    exit 1
}

# Stops every worker we started (SIGKILL: a failed test has no time to
# wait), then the rest of the world.
ce_teardown() {
    rc=$?
    set +e
    for pid in $CE_PIDS; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    (exit "$rc")
    ri_teardown
}

# ce_setup [testnet options...]: the world, with no Stellar accounts beyond
# setup.js's (the indexer needs none).
ce_setup() {
    ri_setup 1 0 "$@"
    trap ce_teardown EXIT
    CE_RPC=$RI_HORIZON/soroban/rpc
    export CE_RPC
}

# ce_config "key = value"...: a worker config whose [plugin contract_events]
# section gets the given lines (contract_ids, start_ledger, schedule...).
# CE_RPC_URL overrides [stellar] soroban_rpc_url.
ce_config() {
    {
        echo "[worker]"
        echo "log_level = ${CE_LOG_LEVEL:-info}"
        echo "plugin_dir = $CE_BUILD/plugins/contract_events/.libs"
        echo "shutdown_timeout = 5s"
        echo "[redis]"
        echo "url = $RI_REDIS_URL"
        echo "[postgres]"
        echo "dsn = $RI_DSN"
        echo "pool_max = 4"
        echo "[http]"
        echo "listen = 127.0.0.1:0"
        echo "[stellar]"
        echo "network = testnet"
        echo "horizon_url = $RI_HORIZON"
        echo "soroban_rpc_url = ${CE_RPC_URL:-$CE_RPC}"
        echo "[plugin contract_events]"
        echo "enabled = yes"
        for line in "$@"; do echo "$line"; done
    } >"$RI_TMP/nova-worker.conf"
}

# ce_start NAME: a worker logging to worker-NAME.log, its /metrics on a
# port of its own (CE_PORT_NAME); its pid in CE_PID_NAME.
ce_start() {
    port=$(nova_free_port)
    sed "s/^listen = 127.0.0.1:0\$/listen = 127.0.0.1:$port/" "$RI_TMP/nova-worker.conf" \
        >"$RI_TMP/worker-$1.conf"
    "$CE_BUILD/nova-worker" run -c "$RI_TMP/worker-$1.conf" >>"$RI_TMP/worker-$1.log" 2>&1 &
    eval "CE_PID_$1=$!"
    eval "CE_PORT_$1=$port"
    CE_PIDS="$CE_PIDS $!"
}

# ce_kill NAME [SIGNAL]: SIGKILL (a crash) by default.
ce_kill() {
    pid=$(eval echo "\${CE_PID_$1:-}")
    [ -n "$pid" ] || return 0
    kill -"${2:-KILL}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    eval "CE_PID_$1="
}

# ce_finish NAME: SIGTERM; fails unless it exits 0 without a sanitizer report.
ce_finish() {
    pid=$(eval echo "\${CE_PID_$1:-}")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    eval "CE_PID_$1="
    nova_san_exit_ok "$rc" "$RI_TMP/worker-$1.log" ||
        { echo "contract_events: worker $1 exited $rc after SIGTERM" >&2; return 1; }
    if [ -n "$(nova_san_findings "$RI_TMP/worker-$1.log")" ] || grep 'leaked' "$RI_TMP/worker-$1.log" >&2; then
        nova_san_findings "$RI_TMP/worker-$1.log" >&2
        echo "contract_events: sanitizer or leak report in worker-$1.log" >&2
        return 1
    fi
}

# The worker's log says it subscribed (or the plugin failed to start).
ce_wait_started() {
    for _ in $(seq 100); do
        grep -q 'contract_events: indexing' "$RI_TMP/worker-$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    ce_die "worker $1 did not start the plugin: $(tail -5 "$RI_TMP/worker-$1.log")"
}

ce_jobs() {
    node "$CE_SRC/tests/contract_events/jobs.js" "$RI_REDIS_URL" "$@"
}

# ce_events ARGS...: events.js against the test network.
ce_events() {
    node "$CE_SRC/tests/contract_events/events.js" "$RI_HORIZON" "$@"
}

# ce_rows_json FILE: every contract_events row the indexer wrote, as JSON.
ce_rows_json() {
    ri_psql -c "SELECT coalesce(json_agg(json_build_object('id', id, 'event_id', event_id,
                'contract_id', contract_id, 'event_type', event_type, 'event_data', event_data,
                'transaction_hash', transaction_hash, 'ledger_sequence', ledger_sequence,
                'status', status, 'error_message', error_message, 'retry_count', retry_count,
                'processed_at', processed_at) ORDER BY id), '[]')
                FROM contract_events WHERE event_id IS NOT NULL" >"$1"
}

# ce_count [SQL condition]: indexed rows (event_id set), "AND ..." narrows them.
# shellcheck disable=SC2120
ce_count() {
    ri_psql -c "SELECT count(*) FROM contract_events WHERE event_id IS NOT NULL $*"
}

# ce_wait_rows N TIMEOUT_S: until the table holds N indexed rows.
ce_wait_rows() {
    deadline=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        n=$(ce_count 2>/dev/null || echo "?")
        [ "$n" = "$1" ] && return 0
        sleep 0.2
    done
    echo "contract_events: $n of $1 rows after $2 s" >&2
    return 1
}

# ce_metrics NAME: the /metrics of worker NAME.
ce_metrics() {
    curl -sf "http://127.0.0.1:$(eval echo "\$CE_PORT_$1")/metrics"
}
