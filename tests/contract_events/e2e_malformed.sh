#!/bin/bash
# End to end: malformed XDR. Five events whose value or topic is not a
# ScVal sit in one page between 40 good ones: they are stored as failed
# with their error and raw XDR, the other 40 indexed. The retry pass then
# decodes failed rows again in bounded batches (retry_batch = 2) with
# FOR UPDATE SKIP LOCKED: a row another session holds locked is skipped
# without waiting, a row whose XDR became decodable (a newer decoder,
# simulated by fixing its stored XDR) ends processed, and the others stop
# at max_retries.
set -euo pipefail
CE_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
CE_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$CE_SRC/tests/contract_events/lib.sh"

fail() {
    echo "e2e_malformed: FAIL: $*" >&2
    exit 1
}

# run: one run added by hand, waited for; prints its return value
run() {
    ce_jobs wait "$(ce_jobs add 1)" | node -e '
const [r] = JSON.parse(require("fs").readFileSync(0));
if (r.state !== "completed") { console.error(JSON.stringify(r)); process.exit(1); }
console.log(JSON.stringify(r.returnvalue));'
}

field() { # field JSON NAME
    node -e 'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$1" "$2"
}

ce_setup --ledger-close-ms 0
CONTRACT=$(ce_events contracts 1 malformed)
latest=$(curl -s "$RI_HORIZON/" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).history_latest_ledger)')
ce_config "contract_ids = $CONTRACT" "start_ledger = $latest" "schedule =" "page_size = 100" \
    "retry_interval = 0" "retry_batch = 2" "max_retries = 3"
ri_migrate

ce_events emit --contracts "$CONTRACT" --count 20 --per-call 20 --seed 1 >/dev/null || fail "emit"
bad=""
# a vec of 5 elements, truncated; an unknown ScVal type; not even 4 bytes;
# a symbol topic cut short; a string that is too long for its bytes
for value in AAAAEAAAAAEAAAAF AAAAFgAAAAA= AAA= '' AAAADgAAAAhhYg==; do
    ev=$(ce_events emit-raw --contract "$CONTRACT" --value "${value:-AAAADw==}") || fail "emit-raw"
    bad="$bad,$(field "$ev" id)"
done
ev=$(ce_events emit-raw --contract "$CONTRACT" --value AAAAAwAAAAE= --topic AAAADwAAAAhub3ZhX3J3ZA== --topic AAAADw==) ||
    fail "emit-raw topic"
bad_topic=$(field "$ev" id)
bad="${bad#,},$bad_topic"
ce_events emit --contracts "$CONTRACT" --count 20 --per-call 20 --seed 2 >/dev/null || fail "emit"

ce_start a
ce_wait_started a
r1=$(run) || fail "run 1"
[ "$(field "$r1" events)" = 46 ] && [ "$(field "$r1" failed)" = 6 ] && [ "$(field "$r1" pages)" = 1 ] ||
    fail "run 1: $r1"
[ "$(ce_count "AND status = 'processed'")" = 40 ] || fail "not 40 good events processed"
[ "$(ce_count "AND status = 'failed' AND error_message IS NOT NULL")" = 6 ] || fail "not 6 failed"
ce_rows_json "$RI_TMP/rows.json"
ce_events check "$RI_TMP/rows.json" --contracts "$CONTRACT" --failed "$bad" >"$RI_TMP/check.json" ||
    fail "rows: $(cat "$RI_TMP/check.json")"
ri_psql -c "SELECT event_type, error_message FROM contract_events WHERE status = 'failed' ORDER BY id" \
    >"$RI_TMP/failed.txt"
grep -q "^nova_rwd:staked|value: " "$RI_TMP/failed.txt" || fail "failed rows: $(cat "$RI_TMP/failed.txt")"
grep -q "^contract|topic 2: " "$RI_TMP/failed.txt" || fail "bad topic row: $(cat "$RI_TMP/failed.txt")"
[ "$(field "$r1" redecoded)" = 2 ] || fail "the retry pass took $(field "$r1" redecoded), not 2"

# A newer decoder understands the first failed event: simulated by its
# stored XDR becoming a tuple (u32 1, i128 5).
fixed=$(ri_psql -c "SELECT id FROM contract_events WHERE status = 'failed' ORDER BY id DESC LIMIT 1 OFFSET 1")
ri_psql -c "UPDATE contract_events SET event_data = jsonb_set(event_data, '{xdr,value}',
            '\"AAAAEAAAAAEAAAACAAAAAwAAAAEAAAAKAAAAAAAAAAAAAAAAAAAABQ==\"') WHERE id = $fixed" >/dev/null
# Another session holds one failed row locked for 6 s.
locked=$(ri_psql -c "SELECT id FROM contract_events WHERE status = 'failed' AND id <> $fixed ORDER BY id LIMIT 1")
ri_psql -c "BEGIN; SELECT id FROM contract_events WHERE id = $locked FOR UPDATE; SELECT pg_sleep(6); COMMIT;" \
    >/dev/null &
holder=$!
for _ in $(seq 50); do
    [ "$(ri_psql -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE a.query LIKE '%pg_sleep(6)%' AND a.pid <> pg_backend_pid() AND l.mode = 'RowShareLock'")" -ge 1 ] && break
    sleep 0.1
done
before=$(ri_psql -c "SELECT retry_count FROM contract_events WHERE id = $locked")
for i in 1 2 3 4; do
    t0=$(date +%s%N)
    r=$(run) || fail "run with a locked row"
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$ms" -lt 3000 ] || fail "a run waited ${ms} ms for the locked row"
    [ "$(field "$r" redecoded)" -le 2 ] || fail "a retry pass took more than retry_batch: $r"
    echo "e2e_malformed: run $((i + 1)) with row $locked locked: $r (${ms} ms)"
done
[ "$(ri_psql -c "SELECT retry_count FROM contract_events WHERE id = $locked")" = "$before" ] ||
    fail "the locked row was retried"
wait "$holder"

# Enough runs: every failed row reaches max_retries (3) and stays failed;
# the fixed one is processed with its type and value.
for _ in $(seq 10); do
    r=$(run) || fail "run"
    [ "$(field "$r" redecoded)" = 0 ] && break
    [ "$(field "$r" redecoded)" -le 2 ] || fail "a retry pass took more than retry_batch: $r"
done
[ "$(field "$r" redecoded)" = 0 ] || fail "the retry passes never ended"
ri_psql -c "SELECT status, event_type, event_data->'value', retry_count, error_message IS NULL
            FROM contract_events WHERE id = $fixed" >"$RI_TMP/fixed.txt"
grep -qx 'processed|nova_rwd:staked|\[1, "5"\]|[123]|t' "$RI_TMP/fixed.txt" || fail "fixed row: $(cat "$RI_TMP/fixed.txt")"
[ "$(ce_count "AND status = 'failed' AND retry_count = 3")" = 5 ] ||
    fail "failed rows: $(ri_psql -c "SELECT id, retry_count FROM contract_events WHERE status = 'failed'")"
[ "$(ce_count "AND status = 'processed'")" = 41 ] || fail "not 41 processed"

ce_metrics a >"$RI_TMP/metrics.txt" || fail "/metrics"
grep -qx 'nova_contract_events_failures_total{kind="decode"} 6' "$RI_TMP/metrics.txt" ||
    fail "failures: $(grep failures "$RI_TMP/metrics.txt")"
grep -qx 'nova_contract_events_redecoded_total{result="processed"} 1' "$RI_TMP/metrics.txt" ||
    fail "redecoded: $(grep redecoded "$RI_TMP/metrics.txt")"
ce_finish a || fail "worker shutdown"
echo "e2e_malformed: ok"
