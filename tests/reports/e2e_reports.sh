#!/bin/bash
# End to end, with real Redis, PostgreSQL 15, bullmq and node-pg: `generate`
# jobs of the reports plugin write, for every type and for the filters
# Nova's API forwards (none, merchantId, dates, txType, values that are
# falsy or null, filters matching nothing), the Redis entry Nova's
# reportingService writes, byte for byte (generatedAt checked for its format
# and time), at Nova's cache key with Nova's TTL; cache_ttl and
# REPORT_CACHE_TTL change the TTL; bad input fails the job with a reason
# naming it; metrics count the runs; the worker exits 0 on SIGTERM without
# sanitizer reports.
set -euo pipefail
. "$NOVA_SRCDIR/tests/reports/lib.sh"

rp_setup
pl_start_worker w1 "$RP_CONF"

jobs() { # SPEC_JSON (nova_reports.js jobs)
    node "$PL_SRC/tests/reports/nova_reports.js" "$PL_DSN" "$PL_REDIS_URL" jobs "$1"
}

since=$(pl_psql -c "SELECT to_char(now() - interval '4 days', 'YYYY-MM-DD')")
until=$(pl_psql -c "SELECT to_char((now() - interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
gen=
for type in user campaign transaction revenue; do
    for params in '{}' "{\"startDate\":\"$since\"}" "{\"endDate\":\"$until\",\"startDate\":\"$since\"}" \
        "{\"startDate\":\"$since\",\"endDate\":\"$until\",\"merchantId\":1}" \
        "{\"endDate\":\"$until\"}"; do
        gen+="{\"type\":\"$type\",\"params\":$params},"
    done
done
gen+='{"type":"campaign","params":{"merchantId":"4"}},
{"type":"transaction","params":{"txType":"redemption"}},
{"type":"transaction","params":{"merchantId":2,"txType":"refund","startDate":null}},
{"type":"transaction","params":{"merchantId":0,"txType":""}},
{"type":"campaign","params":{"merchantId":null,"endDate":""}},
{"type":"revenue","params":{"startDate":"2001-01-01","endDate":"2001-01-02"}},
{"type":"transaction","params":{"merchantId":3,"txType":"transfer","startDate":"2099-01-01"}},
{"type":"user","params":{"startDate":"2024-01-01T00:00:00+05:30"}}'
bad='{"data":{"type":"users"},"reason":"data.type must be one of user, campaign, transaction, revenue (got \"users\")"},
{"data":{},"reason":"data.type must be one of"},
{"data":{"type":"user","params":[1]},"reason":"params must be an object"},
{"data":{"type":"user","params":{"merchantID":1}},"reason":"params.merchantID: unknown filter"},
{"data":{"type":"transaction","params":{"merchantId":true}},"reason":"params.merchantId must be a string, a number or null"},
{"data":{"type":"campaign","params":{"merchantId":"abc"}},"reason":"invalid input syntax for type integer"},
{"data":{"type":"user","params":{"startDate":"yesterday-ish"}},"reason":"invalid input syntax for type timestamp"},
{"data":{"type":"user","extra":1},"reason":"data.extra: unknown field"}'
out=$(jobs "{\"generate\":[${gen}],\"bad\":[${bad}]}") || rp_fail "generate jobs differ from Nova's"
echo "$out"
n=$(echo "$out" | grep -c "equal to Nova's")
[ "$n" = 28 ] || rp_fail "$n reports checked, expected 28"
[ "$(echo "$out" | grep -c '^  refused')" = 8 ] || rp_fail "bad input"
[ "$(rp_key transaction '{"txType":"a","merchantId":7,"endDate":null}')" = "report:transaction:merchantId=7&txType=a" ] ||
    rp_fail "Nova's key helper"

# metrics: the runs by type and outcome
m=$(curl -sf "http://127.0.0.1:$PL_METRICS_PORT/metrics") || rp_fail "no /metrics"
echo "$m" | grep -E '^nova_reports_runs_total\{.*type="transaction".*outcome="ok".*\} 9$' >/dev/null ||
    rp_fail "nova_reports_runs_total: $(echo "$m" | grep nova_reports_runs_total)"
echo "$m" | grep -E '^nova_reports_runs_total\{.*type="campaign".*outcome="failed".*\} 1$' >/dev/null ||
    rp_fail "nova_reports_runs_total (failed): $(echo "$m" | grep nova_reports_runs_total)"
echo "$m" | grep -E '^nova_reports_duration_seconds_count\{.*type="user".*\} [0-9]+$' >/dev/null ||
    rp_fail "nova_reports_duration_seconds: $(echo "$m" | grep nova_reports_duration_seconds_count)"
pl_finish_worker w1 || rp_fail "worker shutdown"

# cache_ttl, and REPORT_CACHE_TTL as Nova reads it
rp_config "cache_ttl = 42"
pl_start_worker w2 "$RP_CONF"
jobs '{"generate":[{"type":"user","params":{}}],"ttl":42}' || rp_fail "cache_ttl = 42"
pl_finish_worker w2 || rp_fail "worker shutdown"
rp_config
REPORT_CACHE_TTL=77 pl_start_worker w3 "$RP_CONF"
jobs '{"generate":[{"type":"revenue","params":{}}],"ttl":77}' || rp_fail "REPORT_CACHE_TTL=77"
pl_finish_worker w3 || rp_fail "worker shutdown"

# SIGTERM while a report waits on PostgreSQL longer than shutdown_timeout
# (a lock held elsewhere): the worker gives the job back and exits 0
# without a sanitizer report or leak (the host rolls back the lease whose
# statement is still running, and says so)
pl_start_worker w4 "$RP_CONF"
pl_psql -c "BEGIN; LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT" \
    >/dev/null 2>&1 &
locker=$!
sleep 0.3
id=$(pl_job add reports generate '{"type":"transaction","params":{}}')
for _ in $(seq 50); do
    grep -q "\"job\":\"$id\"" "$PL_TMP/w4.log" 2>/dev/null && break
    [ "$(redis-cli -p "$PL_REDIS_PORT" llen bull:reports:active)" = 1 ] && break
    sleep 0.1
done
[ "$(redis-cli -p "$PL_REDIS_PORT" llen bull:reports:active)" = 1 ] || rp_fail "the job is not running"
pid=${PL_PID[w4]}
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
PL_PID[w4]=
nova_san_exit_ok "$rc" "$PL_TMP/w4.log" || rp_fail "worker exited $rc after SIGTERM with a report in flight"
[ -z "$(nova_san_findings "$PL_TMP/w4.log")" ] || rp_fail "sanitizer report at shutdown: $(nova_san_findings "$PL_TMP/w4.log")"
kill "$locker" 2>/dev/null || true
wait "$locker" 2>/dev/null || true
state=$(redis-cli -p "$PL_REDIS_PORT" zscore bull:reports:delayed "$id")
[ -n "$state" ] || [ "$(redis-cli -p "$PL_REDIS_PORT" lpos bull:reports:wait "$id")" != "" ] ||
    rp_fail "the job in flight at SIGTERM was not given back: $(redis-cli -p "$PL_REDIS_PORT" hgetall "bull:reports:$id")"

echo "e2e_reports: ok"
