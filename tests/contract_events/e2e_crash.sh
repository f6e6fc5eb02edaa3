#!/bin/bash
# End to end: the cursor survives faults. 4,000 events over 3 contracts are
# indexed in pages of 50 while PostgreSQL crashes twice (immediate stop:
# commits in flight end with an unknown outcome), Redis is SIGKILLed and
# restarted on its AOF, and the Soroban RPC fails: the primary URL answers
# 503 (the client then asks [stellar] soroban_rpc_url_fallback, here given
# as SOROBAN_RPC_URL_FALLBACK), then both URLs answer JSON-RPC -32603,
# drop connections and answer 500 (the runs fail and are retried). Exactly
# 4,000 rows, equal to the events, no duplicate, every cursor at the end.
# (tests/unit/stellar/test_stellar_client.c checks each kind of failure
# that makes the client fall back.)
set -euo pipefail
CE_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
CE_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$CE_SRC/tests/contract_events/lib.sh"

fail() {
    echo "e2e_crash: FAIL: $*" >&2
    exit 1
}

fault() {
    curl -sf -XPOST "$RI_HORIZON/_admin/faults" -d "$1" >/dev/null || fail "fault $1"
}

export RI_REDIS_PERSIST=1 # read by ri_start_redis
ce_setup --ledger-close-ms 500
CONTRACTS=$(ce_events contracts 3 crash)
latest=$(curl -s "$RI_HORIZON/" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).history_latest_ledger)')
# the test network serves the RPC at /soroban/rpc and /rpc: the primary and
# the fallback are two URLs of it, and faults target the primary's path
CE_RPC_URL=$RI_HORIZON/soroban/rpc
export SOROBAN_RPC_URL_FALLBACK=$RI_HORIZON/rpc
ce_config "contract_ids = $CONTRACTS" "start_ledger = $latest" "page_size = 50" "schedule = every 1s"
ri_migrate
ce_start a
ce_wait_started a
progress() { echo "e2e_crash: $1 at $(ce_count 2>/dev/null || echo '?') rows"; }
# Four batches of 1,000 events, each arriving while a fault happens.
emit() {
    ce_events emit --contracts "$CONTRACTS" --count 1000 --per-call 40 --seed "$1" >"$RI_TMP/emit.json" ||
        fail "emit"
}
fault '{"kind":"status","status":503,"target":"rpc","path":"/soroban/rpc","count":1}'
emit 11
progress "PostgreSQL crash #1"
ri_restart_pg immediate 0.5
fault '{"kind":"rpc_error","code":-32603,"message":"unhealthy","target":"rpc","count":3}'
emit 12
progress "Redis SIGKILL"
ri_restart_redis 0.5
fault '{"kind":"disconnect","target":"rpc","count":3}'
emit 13
progress "PostgreSQL crash #2"
ri_restart_pg immediate 0.3
fault '{"kind":"status","status":500,"target":"rpc","count":4}'
emit 14
progress "all events sent"
ce_wait_rows 4000 180 || fail "not all events indexed"
last_ledger=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).last_ledger)' "$RI_TMP/emit.json")
for _ in $(seq 100); do
    cur=$(ri_psql -c "SELECT min(cursor) FROM contract_event_cursors")
    [ $(($(echo "$cur" | cut -c1-19 | sed 's/^0*//') >> 32)) -ge "$last_ledger" ] && break
    sleep 0.1
done

ce_rows_json "$RI_TMP/rows.json"
ce_events check "$RI_TMP/rows.json" --contracts "$CONTRACTS" >"$RI_TMP/check.json" ||
    fail "rows differ from the events: $(cat "$RI_TMP/check.json")"
[ "$(ri_psql -c "SELECT count(*), count(DISTINCT event_id) FROM contract_events")" = "4000|4000" ] ||
    fail "not exactly 4000 distinct rows"
[ "$(ri_psql -c "SELECT count(DISTINCT cursor) FROM contract_event_cursors")" = 1 ] || fail "cursors differ"
[ $(($(echo "$cur" | cut -c1-19 | sed 's/^0*//') >> 32)) -ge "$last_ledger" ] || fail "cursor $cur before ledger $last_ledger"
grep -q "Soroban RPC $CE_RPC_URL failed.*trying the fallback $SOROBAN_RPC_URL_FALLBACK first" "$RI_TMP/worker-a.log" ||
    fail "the fallback was never tried"
for _ in $(seq 150); do
    left=$(curl -s "$RI_HORIZON/_admin/faults" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).faults.length)')
    [ "$left" = 0 ] && break
    sleep 0.2
done
[ "$left" = 0 ] || fail "faults left unused: the indexer stopped asking"
for what in 'HTTP 500' 'error -32603: unhealthy'; do
    grep -q "contract_events: getEvents: RPC.*$what" "$RI_TMP/worker-a.log" || fail "no run failed on $what"
done
ce_finish a || fail "worker shutdown"
echo "e2e_crash: ok ($(cat "$RI_TMP/check.json"))"
