#!/bin/bash
# Throughput of the contract_events indexer (not part of make check): N
# events of Nova's families over 3 contracts, served by the test network's
# getEvents, indexed by one run of one worker for each page size given;
# prints events indexed per second (the run's own time: its job's
# processedOn to finishedOn, getEvents, decoding and the page transactions
# included) and the worker's CPU time per event, and checks every row
# against the events.
# usage: NOVA_SRCDIR=... NOVA_BUILDDIR=... tests/contract_events/bench.sh [N] [PAGE...]
set -euo pipefail
CE_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
CE_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$CE_SRC/tests/contract_events/lib.sh"
N=${1:-20000}
shift || true
PAGES=("${@:-1000}")
ce_setup --ledger-close-ms 0
CONTRACTS=$(ce_events contracts 3 bench)
latest=$(curl -s "$RI_HORIZON/" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).history_latest_ledger)')
ce_events emit --contracts "$CONTRACTS" --count "$N" --per-call 100 --seed 5 >/dev/null
for page in "${PAGES[@]}"; do
    ce_config "contract_ids = $CONTRACTS" "start_ledger = $latest" "schedule =" "page_size = $page" \
        "max_run = 10m"
    ri_migrate
    ri_psql -c "DELETE FROM contract_events; DELETE FROM contract_event_cursors" >/dev/null
    ce_start bench
    ce_wait_started bench
    # shellcheck disable=SC2154 # set by ce_start
    cpu0=$(awk '{print $14 + $15}' "/proc/$CE_PID_bench/stat")
    ce_jobs wait "$(ce_jobs add 1)" --timeout 600000 >"$RI_TMP/run.json"
    cpu=$(($(awk '{print $14 + $15}' "/proc/$CE_PID_bench/stat") - cpu0))
    ce_finish bench
    ce_rows_json "$RI_TMP/rows.json"
    ce_events check "$RI_TMP/rows.json" --contracts "$CONTRACTS" >/dev/null
    ce_jobs results | node -e '
const runs = JSON.parse(require("fs").readFileSync(0));
const r = runs[runs.length - 1];
const s = (r.finishedOn - r.processedOn) / 1000;
const v = r.returnvalue;
const cpu = Number(process.argv[2]) / Number(process.argv[3]);
console.log(`bench: ${v.inserted} events, page_size ${process.argv[1]}: ${v.pages} pages in ${s.toFixed(2)} s, ` +
  `${Math.round(v.inserted / s)} events/s; worker CPU ${cpu.toFixed(2)} s (${Math.round((cpu * 1e6) / v.inserted)} us/event)`);' \
        "$page" "$cpu" "$(getconf CLK_TCK)"
    redis-cli -p "$RI_REDIS_PORT" flushall >/dev/null
done
