#!/bin/bash
# End to end: one event per ScVal type the contracts emit (and the others
# an event can carry), made with @stellar/stellar-base and served by the
# test network's getEvents; each row's value and topics equal stellar-base's
# scValToNative() of the event, with big integers as decimal strings (never
# floats) and bytes as hex; a data tuple gives schema_version and fields.
# Then the contracts from Nova's environment names instead of contract_ids.
set -euo pipefail
CE_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
CE_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$CE_SRC/tests/contract_events/lib.sh"

fail() {
    echo "e2e_values: FAIL: $*" >&2
    exit 1
}

ce_setup --ledger-close-ms 0
CONTRACT=$(ce_events contracts 1 values)
latest=$(curl -s "$RI_HORIZON/" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).history_latest_ledger)')
ce_config "contract_ids = $CONTRACT" "start_ledger = $latest" "schedule ="
ri_migrate
ce_events emit-values --contract "$CONTRACT" >"$RI_TMP/values.json" || fail "emit-values"
n=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).count)' "$RI_TMP/values.json")

ce_start a
ce_wait_started a
ce_jobs wait "$(ce_jobs add 1)" >"$RI_TMP/run.json" || fail "run"
[ "$(ce_count "AND status = 'processed'")" = "$n" ] ||
    fail "$(ce_count "AND status = 'processed'") of $n processed: $(ri_psql -c "SELECT event_type, error_message FROM contract_events WHERE status <> 'processed'")"
ce_rows_json "$RI_TMP/rows.json"
ce_events check "$RI_TMP/rows.json" --contracts "$CONTRACT" >"$RI_TMP/check.json" ||
    fail "values differ from scValToNative: $(cat "$RI_TMP/check.json")"

# Big integers are JSON strings in the table, never numbers.
ri_psql -c "SELECT event_type || ' ' || jsonb_typeof(event_data->'value') || ' ' || (event_data->>'value')
            FROM contract_events ORDER BY id" >"$RI_TMP/types.txt"
for t in u64 i64 u128 i128_min u256 i256 timepoint duration; do
    grep -q "^values:$t string -\?[0-9]\+$" "$RI_TMP/types.txt" || fail "values:$t: $(grep "values:$t " "$RI_TMP/types.txt")"
done
grep -qx 'values:u256 string 115792089237316195423570985008687907853269984665640564039457584007913129639935' \
    "$RI_TMP/types.txt" || fail "u256 max: $(grep 'values:u256 ' "$RI_TMP/types.txt")"
grep -qx 'values:i128_min string -170141183460469231731687303715884105728' "$RI_TMP/types.txt" ||
    fail "i128 min: $(grep 'values:i128_min ' "$RI_TMP/types.txt")"
grep -qx 'values:u32 number 4294967295' "$RI_TMP/types.txt" || fail "u32: $(grep 'values:u32 ' "$RI_TMP/types.txt")"
tuple=$(ri_psql -c "SELECT event_data->>'schema_version', event_data->>'fields' FROM contract_events
                   WHERE event_type = 'values:vec'")
[[ "$tuple" =~ ^1\|\[\"G[A-Z0-9]{55}\",\ \"-5\",\ \"7\"\]$ ]] || fail "schema_version and fields of a tuple: $tuple"

ce_finish a || fail "worker shutdown"

# Without contract_ids: Nova's environment names, blanks skipped; an id
# that is no contract stops the plugin, naming its variable.
ce_config "start_ledger = $latest" "schedule ="
NOVA_TOKEN_CONTRACT_ID=" " REWARD_POOL_CONTRACT_ID=$CONTRACT ce_start env
ce_wait_started env
grep -q "indexing 1 contract(s) {$CONTRACT}" "$RI_TMP/worker-env.log" || fail "contracts from the environment"
ce_finish env || fail "worker shutdown"
G=GAYW7RQYHRUBBNBXZKIQDLW2OXD6ANPOWTH7A5SFQ6I245CY3RN6S2TT
REWARD_POOL_CONTRACT_ID=$CONTRACT VESTING_CONTRACT_ID=$G ce_start bad
for _ in $(seq 100); do
    grep -q "VESTING_CONTRACT_ID: $G is not a C... contract id" "$RI_TMP/worker-bad.log" && break
    sleep 0.1
done
grep -q "VESTING_CONTRACT_ID: $G is not a C... contract id" "$RI_TMP/worker-bad.log" ||
    fail "a G... id was not refused: $(tail -3 "$RI_TMP/worker-bad.log")"
ce_kill bad TERM
echo "e2e_values: ok ($(cat "$RI_TMP/check.json"))"
