#!/bin/bash
# End to end, with real Redis, PostgreSQL 15, bullmq and the test network's
# Soroban RPC (its paging rules and retention window): 10,000 events of
# Nova's families over 3 contracts, made with @stellar/stellar-base, indexed
# in pages of 100 while a worker is SIGKILLed mid-run and restarted, and two
# workers run at once (scheduled runs every second plus runs added by hand,
# so runs overlap): exactly 10,000 rows, each equal to its event, no gap,
# no duplicate, every cursor of the set at the end, overlapping runs seen
# stopping on the lock or the moved cursor, the schedule firing, metrics.
set -euo pipefail
CE_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
CE_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$CE_SRC/tests/contract_events/lib.sh"

fail() {
    echo "e2e_index: FAIL: $*" >&2
    exit 1
}

ce_setup --ledger-close-ms 500
CONTRACTS=$(ce_events contracts 3)
latest=$(curl -s "$RI_HORIZON/" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).history_latest_ledger)')
ce_config "contract_ids = $CONTRACTS" "start_ledger = $latest" "page_size = 100" \
    "schedule = every 1s" "retry_interval = 0"
ri_migrate

# Half the events exist before any worker runs.
ce_events emit --contracts "$CONTRACTS" --count 5000 --per-call 50 --seed 7 >"$RI_TMP/emit1.json" ||
    fail "emitting events"

# One worker, one run by hand: SIGKILL it mid-run.
ce_start a
ce_wait_started a
# pages answered slowly (50 ms), so the run is surely caught mid-way
curl -sf -XPOST "$RI_HORIZON/_admin/faults" -d '{"kind":"delay","delay_ms":50,"target":"rpc","count":40}' \
    >/dev/null || fail "delay fault"
ce_jobs add 1 >/dev/null
for _ in $(seq 600); do
    n=$(ce_count)
    [ "$n" -ge 1500 ] && break
    sleep 0.02
done
[ "$n" -ge 1500 ] && [ "$n" -lt 5000 ] || fail "could not catch the run mid-way ($n rows)"
ce_kill a KILL
killed_at=$(ce_count)
echo "e2e_index: SIGKILLed worker a mid-run at $killed_at rows"
# What was committed is consistent: every row's page moved the cursor.
[ "$(ri_psql -c "SELECT count(DISTINCT cursor) FROM contract_event_cursors WHERE contract_id = ANY('{$CONTRACTS}')")" = 1 ] ||
    fail "the set's cursors differ after the crash"

# Two workers at once, the other half of the events arriving meanwhile.
ce_start a
ce_start b
ce_wait_started a
ce_wait_started b
# the next getEvents answers are slow, so runs surely overlap
curl -sf -XPOST "$RI_HORIZON/_admin/faults" -d '{"kind":"delay","delay_ms":250,"target":"rpc","count":12}' \
    >/dev/null || fail "delay fault"
ids=$(ce_jobs add 2)
ce_events emit --contracts "$CONTRACTS" --count 5000 --per-call 50 --seed 8 >"$RI_TMP/emit2.json" ||
    fail "emitting events"
ids="$ids $(ce_jobs add 4)"
last_ledger=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).last_ledger)' "$RI_TMP/emit2.json")
ce_wait_rows 10000 120 || fail "not all events indexed"
# the scheduled runs go on: the cursor reaches the end of what the RPC has
for _ in $(seq 100); do
    cur=$(ri_psql -c "SELECT min(cursor) FROM contract_event_cursors WHERE contract_id = ANY('{$CONTRACTS}')")
    [ -n "$cur" ] && [ $(($(echo "$cur" | cut -c1-19 | sed 's/^0*//') >> 32)) -ge "$last_ledger" ] && break
    sleep 0.1
done
sleep 1.5 # a few more scheduled runs, which must change nothing

ce_rows_json "$RI_TMP/rows.json"
ce_events check "$RI_TMP/rows.json" --contracts "$CONTRACTS" >"$RI_TMP/check.json" ||
    fail "rows differ from the events served: $(cat "$RI_TMP/check.json")"
echo "e2e_index: $(cat "$RI_TMP/check.json")"
[ "$(ce_count)" = 10000 ] || fail "$(ce_count) rows, not 10000"
[ "$(ri_psql -c "SELECT count(DISTINCT event_id) FROM contract_events")" = 10000 ] || fail "duplicate event ids"

# Every cursor of the set: the same, at or past the last event.
ri_psql -c "SELECT contract_id, cursor FROM contract_event_cursors ORDER BY 1" >"$RI_TMP/cursors.txt"
[ "$(cut -d'|' -f2 "$RI_TMP/cursors.txt" | sort -u | wc -l)" = 1 ] || fail "cursors differ: $(cat "$RI_TMP/cursors.txt")"
[ "$(wc -l <"$RI_TMP/cursors.txt")" = 3 ] || fail "not one cursor per contract: $(cat "$RI_TMP/cursors.txt")"
max_id=$(ri_psql -c "SELECT max(event_id) FROM contract_events")
cursor=$(head -1 "$RI_TMP/cursors.txt" | cut -d'|' -f2)
[[ "$cursor" > "$max_id" || "$cursor" == "$max_id" ]] || fail "cursor $cursor is before the last event $max_id"
[ $(($(echo "$cursor" | cut -c1-19 | sed 's/^0*//') >> 32)) -ge "$last_ledger" ] ||
    fail "cursor $cursor is before ledger $last_ledger"

# The runs: overlapping ones stopped without writing, scheduled ones ran,
# and the rows the runs say they inserted add up.
# shellcheck disable=SC2086
ce_jobs wait $ids --timeout 60000 >"$RI_TMP/waited.json" || fail "runs added by hand did not finish"
ce_jobs results >"$RI_TMP/results.json"
node -e '
const runs = JSON.parse(require("fs").readFileSync(process.argv[1]));
const by = {};
for (const r of runs) {
  const k = r.state === "completed" ? r.returnvalue.stopped : "failed: " + r.failedReason;
  by[k] = (by[k] || 0) + 1;
}
const scheduled = runs.filter((r) => String(r.id).startsWith("repeat:")).length;
console.log(JSON.stringify({ runs: runs.length, scheduled, stopped: by }));
if (!(by.locked || by.cursor_moved)) { console.error("no run ever met another one"); process.exit(1); }
if (scheduled === 0) { console.error("the schedule never fired"); process.exit(1); }
// every row was inserted by exactly one run: the killed one, or one of these
const inserted = runs.reduce((n, r) => n + (r.returnvalue ? r.returnvalue.inserted : 0), 0);
if (inserted + Number(process.argv[2]) !== 10000) {
  console.error(`runs inserted ${inserted} rows, plus ${process.argv[2]} before the crash`);
  process.exit(1);
}
' "$RI_TMP/results.json" "$killed_at" || fail "runs: $(head -c 2000 "$RI_TMP/results.json")"
[[ "$(ce_jobs schedulers)" == *'"key":"contract-events"'* ]] || fail "no job scheduler contract-events"

# Metrics: what each worker indexed, per contract and type, adds up to the
# rows written after the crash; after a last run, the lag is 0.
ce_metrics a >"$RI_TMP/metrics-a.txt" || fail "/metrics of a"
ce_metrics b >"$RI_TMP/metrics-b.txt" || fail "/metrics of b"
counted=$(cat "$RI_TMP/metrics-a.txt" "$RI_TMP/metrics-b.txt" |
    awk '/^nova_contract_events_indexed_total\{/ { n += $NF } END { print n + 0 }')
[ "$counted" = $((10000 - killed_at)) ] ||
    fail "indexed_total adds up to $counted, not $((10000 - killed_at)): $(grep -h indexed_total "$RI_TMP"/metrics-*.txt)"
grep -hq '^nova_contract_events_indexed_total{contract="C[A-Z0-9]*",type="nova_rwd:staked"}' \
    "$RI_TMP"/metrics-*.txt || fail "no indexed_total{contract,type}: $(grep -h indexed_total "$RI_TMP"/metrics-*.txt)"
ce_finish b || fail "worker b shutdown"
ce_jobs wait "$(ce_jobs add 1)" >/dev/null || fail "last run"
ce_metrics a >"$RI_TMP/metrics-a.txt" || fail "/metrics of a"
grep -qx "nova_contract_events_lag_ledgers 0" "$RI_TMP/metrics-a.txt" ||
    fail "lag: $(grep "^nova_contract_events_lag" "$RI_TMP/metrics-a.txt")"
ce_finish a || fail "worker a shutdown"
echo "e2e_index: ok"
