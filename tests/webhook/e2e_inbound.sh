#!/bin/bash
# End to end: inbound actions enqueued through the real bullmq exactly as
# Nova's route does (webhook-delivery, process-inbound-action, no job
# options). Known actions credit their points through the locked balance
# (true balance_before/after, type earned, Nova's description) with the
# audit_logs row, in one transaction; results are Nova's shapes; unknown
# actions complete unhandled; a userId that is not a user fails for good;
# other job names are not credited. 40 concurrent credits of one user keep
# an exact chain. A job killed after its transaction committed, before
# Redis heard of it, is run again by the next worker and credits nothing.
set -euo pipefail
WH_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
WH_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$WH_SRC/tests/webhook/lib.sh"

fail() {
    echo "e2e_inbound: FAIL: $*" >&2
    exit 1
}

wh_setup
# a dead worker's job is taken back within seconds
WH_REDIS_LINES="lock_duration~=~3s stalled_interval~=~1s"
wh_config in "schedule =" "inbound_concurrency = 8"
wh_migrate in
wh_seed
wh_psql -c "INSERT INTO user_balance (user_id, balance) VALUES (1, 50)"
wh_start_worker in

enqueue() {
    node "$WH_SRC/tests/webhook/enqueue.js" "$WH_REDIS_URL" "$@"
}
ts=1767225600000
enqueue >/dev/null <<EOF
{"_jobId":"in-1","action":"purchase","userId":1,"details":{"orderId":"o-1","total":12.5},"timestamp":$ts}
{"_jobId":"in-2","action":"sign-up","userId":"2","details":null,"timestamp":$ts}
{"_jobId":"in-3","action":"referral","userId":1,"details":{"referred":3},"timestamp":$ts}
{"_jobId":"in-4","action":"refund","userId":1,"details":{},"timestamp":$ts}
{"_jobId":"in-5","action":"purchase","userId":999,"details":{},"timestamp":$ts}
{"_jobId":"in-6","action":"purchase","userId":"abc","details":{},"timestamp":$ts}
{"_jobId":"in-7","_name":"something-else","action":"purchase","userId":1,"details":{},"timestamp":$ts}
EOF
declare -A out
for j in in-1 in-2 in-3 in-4 in-5 in-6; do
    out[$j]=$(wh_wait_job webhook-delivery "$j" 30)
done
tx_of() {
    sed -n 's/^{"handled":true,"transactionId":\([0-9][0-9]*\)}$/\1/p' <<<"$1"
}
t1=$(tx_of "${out[in-1]}")
t2=$(tx_of "${out[in-2]}")
t3=$(tx_of "${out[in-3]}")
[ -n "$t1" ] && [ -n "$t2" ] && [ -n "$t3" ] ||
    fail "results: ${out[in-1]} / ${out[in-2]} / ${out[in-3]}"
[ "${out[in-4]}" = '{"handled":false,"reason":"unrecognized_action"}' ] || fail "in-4: ${out[in-4]}"
[[ "${out[in-5]}" == "failed: userId 999 is not a user"* ]] || fail "in-5: ${out[in-5]}"
[[ "${out[in-6]}" == "failed: userId must be a users.id"* ]] || fail "in-6: ${out[in-6]}"
# another job name is left on the queue for whoever handles it
sleep 1
[ "$(redis-cli -p "$WH_REDIS_PORT" exists bull:webhook-delivery:in-7)" = 1 ] &&
    [ -z "$(redis-cli -p "$WH_REDIS_PORT" hget bull:webhook-delivery:in-7 finishedOn)" ] ||
    fail "the something-else job was finished here: $(redis-cli -p "$WH_REDIS_PORT" hgetall bull:webhook-delivery:in-7)"

check() { # check SQL: must answer t
    [ "$(wh_psql -c "$1")" = t ] || fail "$2"
}
check "SELECT count(*) = 3 FROM point_transactions" "point transactions: $(wh_psql -c 'SELECT * FROM point_transactions')"
check "SELECT user_id = 1 AND type = 'earned' AND amount = 100
        AND description = 'Awarded points for external action: purchase'
        AND balance_after = balance_before + 100 FROM point_transactions WHERE id = $t1" "purchase row"
check "SELECT user_id = 2 AND amount = 500 AND balance_before = 0 AND balance_after = 500
        AND description = 'Awarded points for external action: sign-up'
        FROM point_transactions WHERE id = $t2" "sign-up row"
check "SELECT user_id = 1 AND amount = 200 AND balance_after = balance_before + 200
        FROM point_transactions WHERE id = $t3" "referral row"
# user 1: 50, then both credits in some order, each on the true balance before
check "SELECT array_agg(balance_before ORDER BY balance_before) IN ('{50,150}', '{50,250}')
        AND max(balance_after) = 350 FROM point_transactions WHERE user_id = 1" "user 1's chain"
check "SELECT (SELECT balance FROM user_balance WHERE user_id = 1) = 350
        AND (SELECT balance FROM user_balance WHERE user_id = 2) = 500" "balances"
check "SELECT count(*) = 3 AND bool_and(a.entity_type = 'point_transaction' AND a.action = 'WEBHOOK_REWARD_ISSUANCE'
        AND a.actor_type = 'system' AND a.source = 'webhook_handler'
        AND (a.after_state->>'id')::int = a.entity_id AND (a.after_state->>'balance_after')::int = p.balance_after
        AND a.details->>'externalAction' = substr(p.description, 37)
        AND a.details->>'timestamp' = '$ts')
        FROM audit_logs a JOIN point_transactions p ON p.id = a.entity_id" "audit rows: $(wh_psql -c 'SELECT * FROM audit_logs')"
check "SELECT details->'originalDetails' = '{\"orderId\": \"o-1\", \"total\": 12.5}'::jsonb
        FROM audit_logs WHERE entity_id = $t1" "original details"
check "SELECT details->'originalDetails' = 'null'::jsonb FROM audit_logs WHERE entity_id = $t2" "null details"
check "SELECT count(*) = 3 AND bool_and(job_id ~ '^in-[123]@[0-9]{13}$') FROM nova_worker_processed_jobs
       WHERE queue = 'webhook-delivery'" "job marks: $(wh_psql -c 'SELECT queue, job_id FROM nova_worker_processed_jobs')"

# 40 credits of one user at once: one exact chain
for i in $(seq 1 40); do
    echo "{\"_jobId\":\"c-$i\",\"action\":\"purchase\",\"userId\":3,\"details\":{\"i\":$i},\"timestamp\":$ts}"
done | enqueue >/dev/null
for i in $(seq 1 40); do
    r=$(wh_wait_job webhook-delivery "c-$i" 60)
    [ -n "$(tx_of "$r")" ] || fail "c-$i: $r"
done
check "SELECT count(*) = 40 AND count(DISTINCT balance_before) = 40 AND min(balance_before) = 0
        AND max(balance_after) = 4000 AND bool_and(balance_after = balance_before + 100)
        FROM point_transactions WHERE user_id = 3" "the concurrent chain"
check "SELECT balance = 4000 FROM user_balance WHERE user_id = 3" "user 3's balance"

# Killed after commit: the balance row is held so the job waits inside its
# transaction; Redis stops taking writes; the lock is let go, the
# transaction commits, the worker cannot tell Redis, and is SIGKILLed.
psql -X -q "$WH_DSN" -c "BEGIN" -c "SELECT 1 FROM user_balance WHERE user_id = 3 FOR UPDATE" \
    -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
holder=$!
sleep 0.5
echo "{\"_jobId\":\"kill-1\",\"action\":\"purchase\",\"userId\":3,\"details\":{},\"timestamp\":$ts}" | enqueue >/dev/null
wh_wait_sql 10 "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'" ||
    fail "the job did not wait for the balance lock"
redis-cli -p "$WH_REDIS_PORT" client pause 60000 write >/dev/null
wait "$holder"
wh_wait_sql 10 "SELECT count(*) = 1 FROM nova_worker_processed_jobs WHERE job_id LIKE 'kill-1@%' AND result IS NOT NULL" ||
    fail "the job's transaction did not commit"
wh_stop_worker in KILL
redis-cli -p "$WH_REDIS_PORT" client unpause >/dev/null
[ -z "$(redis-cli -p "$WH_REDIS_PORT" hget bull:webhook-delivery:kill-1 finishedOn)" ] ||
    fail "the job finished before the kill: nothing to prove"
stored=$(wh_psql -c "SELECT result->>'transactionId' FROM nova_worker_processed_jobs WHERE job_id LIKE 'kill-1@%'")
check "SELECT count(*) = 41 FROM point_transactions WHERE user_id = 3" "the first run's credit"

wh_start_worker in
r=$(wh_wait_job webhook-delivery kill-1 60)
[ "$r" = "{\"handled\":true,\"transactionId\":$stored}" ] || fail "the run again answered $r, want transaction $stored"
check "SELECT count(*) = 41 FROM point_transactions WHERE user_id = 3" "credited twice: $(wh_psql -c "SELECT count(*) FROM point_transactions WHERE user_id = 3")"
check "SELECT balance = 4100 FROM user_balance WHERE user_id = 3" "user 3's balance after the kill"
check "SELECT count(*) = 44 FROM audit_logs" "audit rows after the kill"
grep -q 'already credited by an earlier run of this job' "$WH_TMP/worker-in.log" ||
    fail "the second run did not say it found the credit"
wh_stop_worker in
wh_no_sanitizer_report
echo "e2e_inbound: PASS"
