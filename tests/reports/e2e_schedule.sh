#!/bin/bash
# End to end: the runtime's scheduler runs the `daily` reports (daily_schedule
# overridden to every 2 s) through the daemon: each run writes, for the
# previous UTC day, Nova's cache entries (startDate/endDate the day's first
# instant and last microsecond, checked against Nova's statements through
# node-pg) and one CSV file per type in output_dir that Python's csv module
# reads back equal to Nova's rows (commas, quotes, newlines, non-ASCII);
# no temporary file is left behind; retention removes the files (and a stale
# temporary file) older than keep_days, keeps keep_files per type, and
# never touches other files; the job's result lists what was written and
# removed; a report that fails (a table Nova's SQL needs is locked away)
# does not stop the others and the job fails naming it.
set -euo pipefail
. "$NOVA_SRCDIR/tests/reports/lib.sh"

rp_setup
out=$PL_TMP/out
mkdir -p "$out"
# files of earlier runs: older than keep_days, within it, and not ours
for d in 2020-01-01 2020-01-02; do echo old >"$out/nova-user-report-$d.csv"; done
echo old >"$out/nova-revenue-report-2020-W01.csv"
echo old >"$out/nova-campaign-report-2020-01.csv"
echo crash >"$out/.nova-user-report-2020-01-03.csv.tmp"
echo mine >"$out/notes.txt"
echo mine >"$out/nova-user-report-latest.csv"
recent=()
for i in 2 3 4 5; do
    d=$(date -u -d "-$i days" +%F)
    echo recent >"$out/nova-transaction-report-$d.csv"
    recent+=("nova-transaction-report-$d.csv")
done
rp_config "daily = user, campaign, transaction, revenue" "daily_schedule = every 2s" \
    "output_dir = $out" "keep_days = 30" "keep_files = 3"
pl_start_worker w1 "$RP_CONF"

job=$(pl_wait_finished reports repeat:reports-daily: 15)
[ -n "$job" ] || rp_fail "no scheduled run finished within 15 s: $(tail -5 "$PL_TMP/w1.log")"
[ "$(rp_field "$job" state)" = completed ] || rp_fail "scheduled run: $job"
res=$(rp_field "$job" returnvalue)
echo "result: $res"

yesterday=$(date -u -d yesterday +%F)
start="${yesterday}T00:00:00Z"
end="${yesterday}T23:59:59.999999Z"
[ "$(rp_field "$res" startDate)" = "$start" ] && [ "$(rp_field "$res" endDate)" = "$end" ] ||
    rp_fail "period $(rp_field "$res" startDate) .. $(rp_field "$res" endDate), expected $start .. $end"
[ "$(rp_field "$res" failed)" = "[]" ] || rp_fail "failures: $(rp_field "$res" failed)"
params="{\"startDate\":\"$start\",\"endDate\":\"$end\"}"
i=0
for type in user campaign transaction revenue; do
    file=$out/nova-$type-report-$yesterday.csv
    [ "$(rp_field "$res" "reports.$i.type")" = "$type" ] || rp_fail "reports.$i: $(rp_field "$res" "reports.$i")"
    [ "$(rp_field "$res" "reports.$i.file")" = "$file" ] || rp_fail "reports.$i.file: $(rp_field "$res" "reports.$i.file")"
    [ "$(rp_field "$res" "reports.$i.bytes")" = "$(stat -c %s "$file")" ] || rp_fail "$file: size"
    c=$(rp_check "$type" "$params" --rows "$PL_TMP/$type.rows.json") ||
        rp_fail "$type: the cache of the scheduled run differs from Nova's"
    n=$(python3 "$PL_SRC/tests/reports/check_csv.py" "$file" "$PL_TMP/$type.rows.json") ||
        rp_fail "$file differs from Nova's rows"
    [ "$(rp_field "$res" "reports.$i.rows")" = "$n" ] || rp_fail "$type: result rows $(rp_field "$res" "reports.$i.rows"), file $n"
    echo "  $file: $n rows equal Nova's ($(rp_field "$c" key))"
    i=$((i + 1))
done
# the seed has yesterday's rows with every special character in the file
grep -q '"wrong item, ""damaged""' "$out/nova-transaction-report-$yesterday.csv" ||
    rp_fail "the transaction file has no quoted refund_reason of yesterday"
grep -q '日本' "$out/nova-transaction-report-$yesterday.csv" || rp_fail "no non-ASCII in the file"
ls -a "$out" | grep -q '\.tmp$' && rp_fail "a temporary file was left: $(ls -a "$out")"

# retention: old files and the stale temporary file gone, ours kept
for f in nova-user-report-2020-01-01.csv nova-user-report-2020-01-02.csv \
    nova-revenue-report-2020-W01.csv nova-campaign-report-2020-01.csv; do
    [ ! -e "$out/$f" ] || rp_fail "retention kept $f (older than keep_days)"
done
[ ! -e "$out/.nova-user-report-2020-01-03.csv.tmp" ] || rp_fail "retention kept the stale temporary file"
[ -e "$out/notes.txt" ] && [ -e "$out/nova-user-report-latest.csv" ] || rp_fail "retention removed a file not its own"
# keep_files = 3 transaction files: yesterday's and the two newest before it
[ -e "$out/${recent[0]}" ] && [ -e "$out/${recent[1]}" ] || rp_fail "keep_files removed a newer file"
[ ! -e "$out/${recent[2]}" ] && [ ! -e "$out/${recent[3]}" ] || rp_fail "keep_files = 3 kept $(ls "$out" | grep transaction)"
rp_field "$res" removed | grep -q 'nova-user-report-2020-01-01.csv' || rp_fail "removed: $(rp_field "$res" removed)"

# a run replaces its files whole: the next slot writes the same names again
before=$(stat -c %Y.%i "$out/nova-user-report-$yesterday.csv")
for _ in $(seq 60); do
    [ "$(stat -c %Y.%i "$out/nova-user-report-$yesterday.csv")" != "$before" ] && break
    sleep 0.1
done
[ "$(stat -c %Y.%i "$out/nova-user-report-$yesterday.csv")" != "$before" ] || rp_fail "the next run did not replace the file"
python3 "$PL_SRC/tests/reports/check_csv.py" "$out/nova-user-report-$yesterday.csv" "$PL_TMP/user.rows.json" >/dev/null ||
    rp_fail "the replaced file differs"
m=$(curl -sf "http://127.0.0.1:$PL_METRICS_PORT/metrics") || rp_fail "no /metrics"
echo "$m" | grep -E '^nova_reports_files_removed_total(\{.*\})? [0-9]+$' >/dev/null ||
    rp_fail "nova_reports_files_removed_total: $(echo "$m" | grep removed)"
pl_finish_worker w1 || rp_fail "worker shutdown"

# one failing report does not stop the others: merchants goes away under
# the running worker (revenue fails), the others are written, the job fails
# naming revenue and what was written
sed -i "s#^daily_schedule = .*#daily_schedule = 0 0 1 1 *#" "$RP_CONF"
rm -f "$out"/nova-*-report-"$yesterday".csv
pl_start_worker w2 "$RP_CONF"
pl_psql -c "ALTER TABLE merchants RENAME TO merchants_gone" >/dev/null
r=$(pl_job run reports scheduled '{"period":"daily"}' --timeout 30000) || rp_fail "run: $r"
[ "$(rp_field "$r" state)" = failed ] || rp_fail "a run with a failing report: $r"
reason=$(rp_field "$r" failedReason)
echo "$reason" | grep -q '^revenue: .*relation "merchants" does not exist' || rp_fail "reason: $reason"
echo "$reason" | grep -q "written: .*\"type\":\"user\"" || rp_fail "reason lists no written report: $reason"
for type in user campaign transaction; do
    [ -s "$out/nova-$type-report-$yesterday.csv" ] || rp_fail "$type was not written beside the failing revenue"
done
[ ! -e "$out/nova-revenue-report-$yesterday.csv" ] || rp_fail "revenue file written"
ls -a "$out" | grep -q '\.tmp$' && rp_fail "a temporary file was left after a failure"
pl_finish_worker w2 || rp_fail "worker shutdown"
pl_psql -c "ALTER TABLE merchants_gone RENAME TO merchants" >/dev/null

# a transient failure: revenue's statement times out behind a lock
# (statement_timeout 1 s); the job is retried and the retry redoes only
# revenue, the others kept from the first attempt (reports:progress:<id>)
rm -f "$out"/nova-*-report-"$yesterday".csv
sed -i '/^pool_max = /a statement_timeout = 1s' "$RP_CONF"
pl_start_worker w3 "$RP_CONF"
pl_psql -c "BEGIN; LOCK TABLE merchants IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2.5); COMMIT" \
    >/dev/null 2>&1 &
locker=$!
sleep 0.3
id=$(node -e '
const { Queue } = require("bullmq");
const u = new URL(process.argv[1]);
const q = new Queue("reports", { connection: { host: u.hostname, port: Number(u.port) } });
q.add("scheduled", { period: "daily" }, { attempts: 3, backoff: { type: "fixed", delay: 1000 } })
  .then((j) => { console.log(j.id); return q.close(); });' "$PL_REDIS_URL")
r=$(pl_job wait reports "$id" --timeout 30000) || rp_fail "wait: $r"
wait "$locker" || true
[ "$(rp_field "$r" state)" = completed ] || rp_fail "the retried run: $r"
res=$(rp_field "$r" returnvalue)
types=$(echo "$res" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).reports.map((x) => x.type).sort().join(","))')
[ "$types" = "campaign,revenue,transaction,user" ] || rp_fail "reports after the retry: $res"
[ "$(rp_field "$res" failed)" = "[]" ] || rp_fail "failed after the retry: $res"
grep "\"job\":\"$id\"" "$PL_TMP/w3.log" | grep -q 'report revenue (daily [0-9-]*) failed: .*statement timeout' ||
    rp_fail "no timeout of revenue in the first attempt"
[ "$(grep "\"job\":\"$id\"" "$PL_TMP/w3.log" | grep -c '"msg":"report user (daily')" = 1 ] ||
    rp_fail "user was run again by the retry"
[ "$(grep "\"job\":\"$id\"" "$PL_TMP/w3.log" | grep -c '"msg":"report revenue (daily [0-9-]*): ')" = 1 ] ||
    rp_fail "revenue was not written by the retry"
for type in user campaign transaction revenue; do
    [ -s "$out/nova-$type-report-$yesterday.csv" ] || rp_fail "no $type file after the retry"
done
pl_finish_worker w3 || rp_fail "worker shutdown"

echo "e2e_schedule: ok"
