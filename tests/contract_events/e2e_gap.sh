#!/bin/bash
# End to end: a cursor older than the RPC's retention window. The test
# network keeps 50 ledgers of events; the indexer stops, events go on and
# 100 ledgers close, so what followed its cursor is gone. The next run
# reports the gap (log with the ledger range lost, the run's result, the
# gap metrics), resumes from the oldest ledger the RPC keeps and indexes
# everything from there; the run after it finds nothing to do (no stall,
# no repeated gap).
set -euo pipefail
CE_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
CE_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$CE_SRC/tests/contract_events/lib.sh"

fail() {
    echo "e2e_gap: FAIL: $*" >&2
    exit 1
}

ledger_of() { # the ledger of an RPC cursor
    echo $(($(echo "$1" | cut -c1-19 | sed 's/^0*//') >> 32))
}

rpc() {
    curl -s -XPOST "$CE_RPC" -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\"}"
}

# ledgers close only when asked: the test decides what falls out of retention
ce_setup --ledger-close-ms 0 --retention-ledgers 50
CONTRACTS=$(ce_events contracts 2 gap)
latest=$(rpc getLatestLedger | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).result.sequence)')
ce_config "contract_ids = $CONTRACTS" "start_ledger = $latest" "page_size = 40" "schedule ="
ri_migrate
ce_start a
ce_wait_started a

# 1. 200 events in 10 ledgers, indexed
ce_events emit --contracts "$CONTRACTS" --count 200 --per-call 20 --seed 1 >/dev/null || fail "emit"
ce_jobs wait "$(ce_jobs add 1)" >"$RI_TMP/run1.json" || fail "run 1"
[ "$(ce_count)" = 200 ] || fail "run 1 indexed $(ce_count) of 200"
cursor1=$(ri_psql -c "SELECT min(cursor) FROM contract_event_cursors")
from=$(ledger_of "$cursor1")

# 2. the indexer is away: 100 events, then 100 empty ledgers, then 60 events
ce_finish a || fail "worker shutdown"
ce_events emit --contracts "$CONTRACTS" --count 100 --per-call 20 --seed 2 >"$RI_TMP/lost.json" || fail "emit"
curl -sf -XPOST "$RI_HORIZON/_admin/close-ledger" -d '{"count":100}' >/dev/null || fail "close ledgers"
ce_events emit --contracts "$CONTRACTS" --count 60 --per-call 20 --seed 3 >"$RI_TMP/kept.json" || fail "emit"
oldest=$(rpc getHealth | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).result.oldestLedger)')
[ "$oldest" -gt "$from" ] || fail "the cursor (ledger $from) is still within retention ($oldest)"

# 3. the next run: the gap is reported, indexing resumes at the oldest ledger
ce_start a
ce_wait_started a
ce_jobs wait "$(ce_jobs add 1)" >"$RI_TMP/run2.json" || fail "run 2"
node -e '
const [r] = JSON.parse(require("fs").readFileSync(process.argv[1]));
const v = r.returnvalue, from = Number(process.argv[2]), oldest = Number(process.argv[3]);
if (r.state !== "completed" || !v.gap) { console.error("no gap in " + JSON.stringify(r)); process.exit(1); }
if (v.gap.from_ledger !== from || v.gap.to_ledger !== oldest - 1) {
  console.error(`gap ${JSON.stringify(v.gap)}, want ${from}-${oldest - 1}`); process.exit(1);
}
if (v.stopped !== "caught_up" || v.inserted !== 60 || v.lag !== 0) { console.error(JSON.stringify(v)); process.exit(1); }
' "$RI_TMP/run2.json" "$from" "$oldest" || fail "run 2: $(cat "$RI_TMP/run2.json")"
grep -q "GAP: the cursor at ledger $from is older than the RPC's retention window.*events of ledgers $from-$((oldest - 1)) are lost.*resuming at ledger $oldest" \
    "$RI_TMP/worker-a.log" || fail "no gap line in the log: $(grep -i gap "$RI_TMP/worker-a.log")"
ce_metrics a >"$RI_TMP/metrics.txt" || fail "/metrics"
grep -qx 'nova_contract_events_gaps_total 1' "$RI_TMP/metrics.txt" || fail "gaps_total: $(grep gap "$RI_TMP/metrics.txt")"
grep -qx "nova_contract_events_gap_ledgers_total $((oldest - from))" "$RI_TMP/metrics.txt" ||
    fail "gap_ledgers_total: $(grep gap "$RI_TMP/metrics.txt")"

# What the RPC still serves is indexed exactly; the lost events are not there.
[ "$(ce_count)" = 260 ] || fail "$(ce_count) rows, want 200 + 60"
ce_rows_json "$RI_TMP/rows.json"
node -e '
const rows = JSON.parse(require("fs").readFileSync(process.argv[1]));
require("fs").writeFileSync(process.argv[1] + ".kept", JSON.stringify(rows.filter((r) => r.ledger_sequence >= Number(process.argv[2]))));
' "$RI_TMP/rows.json" "$oldest"
ce_events check "$RI_TMP/rows.json.kept" --contracts "$CONTRACTS" --from-ledger "$oldest" >"$RI_TMP/check.json" ||
    fail "rows after the gap: $(cat "$RI_TMP/check.json")"
lost_first=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).first_ledger)' "$RI_TMP/lost.json")
[ "$(ce_count "AND ledger_sequence >= $lost_first AND ledger_sequence < $oldest")" = 0 ] ||
    fail "rows from the lost ledgers"

# 4. no stall and no second gap: the next run has nothing to do
ce_jobs wait "$(ce_jobs add 1)" >"$RI_TMP/run3.json" || fail "run 3"
grep -q '"gap"' "$RI_TMP/run3.json" && fail "a second gap: $(cat "$RI_TMP/run3.json")"
grep -q '"stopped":"caught_up"' "$RI_TMP/run3.json" || fail "run 3: $(cat "$RI_TMP/run3.json")"
cursor=$(ri_psql -c "SELECT DISTINCT cursor FROM contract_event_cursors")
[ "$(ledger_of "$cursor")" -ge "$(rpc getLatestLedger | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).result.sequence)')" ] ||
    fail "cursor $cursor is not at the end"

ce_finish a || fail "worker shutdown"
echo "e2e_gap: ok (gap of ledgers $from-$((oldest - 1)) reported, resumed at $oldest)"
