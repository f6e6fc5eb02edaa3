#!/bin/bash
# Benchmark of the webhook plugin's outbound side: one nova-worker delivers
# N pending webhook_deliveries rows (over E webhooks) to a local Node
# receiver that verifies every signature; one delivery run (a `deliver`
# job) does it all. Prints deliveries per second (job added to last row
# recorded) and the CPU per delivery (utime + stime from /proc/PID/stat
# over the same window) of the worker, and for comparison of the receiver
# and of PostgreSQL (all its processes), for each of RUNS runs. Not part of
# `make check`; docs/benchmarks.md has results.
#
# usage: tests/webhook/bench.sh BUILDDIR [N] [RUNS] [CONCURRENCY] [ENDPOINTS]
set -euo pipefail
WH_SRC=$(cd "$(dirname "$0")/../.." && pwd)
WH_BUILD=$(cd "${1:?usage: bench.sh BUILDDIR [N] [RUNS] [CONCURRENCY] [ENDPOINTS]}" && pwd)
N=${2:-5000}
RUNS=${3:-3}
CONC=${4:-64}
ENDPOINTS=${5:-20}
export NOVA_MODULE_DIR=${NOVA_MODULE_DIR:-$WH_BUILD/runtime/.libs}
. "$WH_SRC/tests/webhook/lib.sh"

wh_setup
# the receiver without a per-request log: it only verifies and counts
node "$WH_SRC/tests/webhook/receiver.js" --host 127.0.0.2 --port 0 --secrets "$WH_TMP/secrets.json" \
    --modes "$WH_TMP/modes.json" >"$WH_TMP/receiver.out" 2>"$WH_TMP/receiver.err" </dev/null &
receiver=$!
WH_PIDS="$WH_PIDS $receiver"
for _ in $(seq 100); do
    grep -q '"ready":true' "$WH_TMP/receiver.out" 2>/dev/null && break
    sleep 0.05
done
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$WH_TMP/receiver.out")
[ -n "$port" ] || wh_die "receiver did not start"
WH_LOG_LEVEL=warn WH_POOL_MAX=10 wh_config bench "allow_networks = 127.0.0.2/32" "schedule =" \
    "concurrency = $CONC" "endpoint_concurrency = $CONC" "batch_size = 100" "run_limit = 30m" \
    "breaker_threshold = 0" "retry_delays = 1h"
wh_migrate bench
wh_seed
for i in $(seq 1 "$ENDPOINTS"); do
    s=$(wh_secret)
    wh_hook "b$i" "$(wh_encrypt "$WH_KEY" "$s")" "$s" "http://127.0.0.2:$port/hook/b$i" '{*}' >/dev/null
done
wh_psql -c "INSERT INTO webhook_deliveries (webhook_id, event_type, payload)
            SELECT w.id, 'reward.distributed', jsonb_build_object('event', 'reward.distributed',
                   'timestamp', '2026-01-01T00:00:00.000Z', 'data', jsonb_build_object(
                   'source', 'issuance', 'issuanceId', g, 'campaignId', 1, 'merchantId', 1,
                   'userId', 1, 'walletAddress', 'GBK33AQ2ZYSCUR2AQOCAWSE5ENJ36PUBZIKJVIODWAYWL35CS22K7OPW',
                   'amount', '12.5000000', 'txHash', md5(g::text) || md5(g::text)))
            FROM generate_series(1, $N) g
            JOIN webhooks w ON w.id = 1 + g % $ENDPOINTS"
wh_start_worker bench
eval "pid=\$WH_PID_bench"
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys() { awk '{print $15}' "/proc/$1/stat"; }
postmaster=$(head -1 "$WH_PGDATA/postmaster.pid")
pg_cpu() { # the postmaster and its children
    local t=0 p
    for p in "$postmaster" $(pgrep -P "$postmaster"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

echo "nova-worker webhook benchmark: $N deliveries over $ENDPOINTS endpoints, concurrency $CONC, $(nproc) CPUs"
for run in $(seq 1 "$RUNS"); do
    if [ "$run" -gt 1 ]; then
        wh_psql -c "UPDATE webhook_deliveries SET status = 'pending', attempt = 1, next_retry_at = NULL,
                    http_status = NULL, response_body = NULL, delivered_at = NULL" >/dev/null
    fi
    # every run starts from a vacuumed table (no autovacuum of the last
    # run's dead rows inside the window)
    wh_psql -c "VACUUM ANALYZE webhook_deliveries" >/dev/null
    before=$(curl -s "http://127.0.0.2:$port/__stats")
    c0=$(cpu "$pid")
    s0=$(sys "$pid")
    r0=$(cpu "$receiver")
    p0=$(pg_cpu)
    t0=$(date +%s%N)
    r=$(wh_run bench "bench-$run" 1800)
    t1=$(date +%s%N)
    c1=$(cpu "$pid")
    s1=$(sys "$pid")
    r1=$(cpu "$receiver")
    p1=$(pg_cpu)
    after=$(curl -s "http://127.0.0.2:$port/__stats")
    done_rows=$(wh_psql -c "SELECT count(*) FROM webhook_deliveries WHERE status = 'success'")
    [ "$done_rows" = "$N" ] || wh_die "run $run: $done_rows of $N delivered ($r)"
    node -e '
      const [b, a, n, t0, t1, c0, c1, tck, run, r0, r1, p0, p1, s0, s1] = process.argv.slice(1);
      const B = JSON.parse(b), A = JSON.parse(a);
      const valid = A.valid - B.valid, sent = A.requests - B.requests;
      if (valid !== Number(n) || sent !== Number(n)) { console.error(`run ${run}: receiver saw ${sent}, ${valid} valid`); process.exit(1); }
      const secs = (Number(t1) - Number(t0)) / 1e9;
      const us = (x0, x1) => ((Number(x1) - Number(x0)) * 1e6 / Number(tck) / n).toFixed(0);
      console.log(`run ${run}: ${(n / secs).toFixed(0)} deliveries/s (${secs.toFixed(2)} s), CPU per delivery: worker ${us(c0, c1)} µs (system ${us(s0, s1)} µs), receiver ${us(r0, r1)} µs, PostgreSQL ${us(p0, p1)} µs; every signature verified`);
    ' "$before" "$after" "$N" "$t0" "$t1" "$c0" "$c1" "$tck" "$run" "$r0" "$r1" "$p0" "$p1" "$s0" "$s1"
done
wh_stop_worker bench
