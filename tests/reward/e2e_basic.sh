#!/bin/bash
# End to end, with real Redis, PostgreSQL, bullmq and the test network:
# issuances enqueued like Nova's API end confirmed with exactly one payment
# each, batched; an inactive campaign is skipped; a missing trustline and an
# invalid payload are dead-lettered after their attempts; a DLQ replay of a
# confirmed issuance pays nothing; distribute pays each recipient once.
set -euo pipefail
RI_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
RI_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$RI_SRC/tests/reward/lib.sh"

fail() {
    echo "e2e_basic: FAIL: $*" >&2
    tail -20 "$RI_TMP/worker.log" >&2 || true
    exit 1
}

# 5 recipients, the last without a NOVA trustline
ri_setup 5 1 --ledger-close-ms 200
ri_config "batch_wait = 300ms" "poll = 50ms"
ri_migrate
ri_seed
# reward.distributed webhooks: merchant 1 (every campaign here) subscribes;
# merchant 2 listens to everything and must hear nothing of merchant 1's.
ri_psql -c "INSERT INTO merchants (id, name, wallet_address, api_key) VALUES (2, 'Other', 'GOTHERMERCHANT', 'other-key');
            INSERT INTO webhooks (merchant_id, url, secret, events) VALUES
              (1, 'https://hooks.example/nova', 'k1', ARRAY['reward.distributed']),
              (2, 'https://hooks.example/other', 'k2', ARRAY['*'])" >/dev/null

# Horizon is reached through the host's [stellar] client: a plugin
# horizon_url or network naming something else is refused at start, never
# silently ignored (the host would submit to [stellar]'s Horizon).
for bad in "horizon_url = http://127.0.0.1:1" "network = public"; do
    key=${bad%% =*}
    awk -v key="$key" -v bad="$bad" '/^\[plugin / { p = 1 } p && index($0, key " = ") == 1 { $0 = bad } { print }' \
        "$RI_TMP/nova-worker.conf" >"$RI_TMP/bad.conf"
    grep -qx "$bad" "$RI_TMP/bad.conf" || fail "could not write the $key test config"
    timeout 10 "$RI_BUILD/nova-worker" run -c "$RI_TMP/bad.conf" >"$RI_TMP/bad.log" 2>&1 &
    bad_pid=$!
    for _ in $(seq 100); do
        grep -q "differs from \[stellar\]" "$RI_TMP/bad.log" && break
        sleep 0.05
    done
    kill -TERM "$bad_pid" 2>/dev/null || true
    wait "$bad_pid" 2>/dev/null || true
    grep -q "$key: .* differs from \[stellar\] $key" "$RI_TMP/bad.log" ||
        fail "a plugin $key other than [stellar]'s was not refused: $(tail -5 "$RI_TMP/bad.log")"
    ! grep -q "plugin reward_issuance .* started" "$RI_TMP/bad.log" ||
        fail "the plugin started with a $key other than [stellar]'s"
done

ri_start_worker

# 1. 100 issuances on the active campaign (20 to the recipient without trustline)
ri_issue 100 1 >"$RI_TMP/good.json"
# 2. 6 on the ended campaign
ri_issue 6 2 >"$RI_TMP/ended.json"
# Nova's balance cache for user 1 and its wallet: deleted once paid
w1=$(ri_psql -c "SELECT wallet_address FROM users WHERE id = 1")
redis-cli -p "$RI_REDIS_PORT" mset "wallet:balance:$w1" 1 "wallet:tokenBalance:$w1" 1 balance:1 1 tokenBalance:1 1 >/dev/null
ri_enqueue --backoff 200 <"$RI_TMP/good.json" >/dev/null
ri_enqueue --backoff 200 <"$RI_TMP/ended.json" >/dev/null
# 3. invalid payloads: bad address, > 7 decimals, unknown issuance
w=$(head -1 "$RI_TMP/good.json" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).walletAddress)')
printf '%s\n' \
    '{"issuanceId":1,"idempotencyKey":"bad-addr","campaignId":1,"walletAddress":"GNOTANADDRESS","amount":"1"}' \
    "{\"issuanceId\":2,\"idempotencyKey\":\"bad-amount\",\"campaignId\":1,\"walletAddress\":\"$w\",\"amount\":\"1.123456789\"}" \
    "{\"issuanceId\":99999,\"idempotencyKey\":\"unknown-id\",\"campaignId\":1,\"walletAddress\":\"$w\",\"amount\":\"1\"}" |
    ri_enqueue >/dev/null

ri_wait_settled 60 || fail "issuances did not settle"
ri_check --expect-confirmed 80 --expect-failed 26 || fail "exactly-once check"

n=$(redis-cli -p "$RI_REDIS_PORT" exists "wallet:balance:$w1" "wallet:tokenBalance:$w1" balance:1 tokenBalance:1)
[ "$n" = 0 ] || fail "balance cache keys not deleted ($n left)"

# the ended campaign: failed with Nova's message, never paid
n=$(ri_psql -c "SELECT count(*) FROM reward_issuances WHERE campaign_id = 2 AND status = 'failed'
                AND error_message = 'Campaign is inactive or expired'")
[ "$n" = 6 ] || fail "inactive campaign: $n of 6 marked"
n=$(ri_psql -c "SELECT count(*) FROM nova_worker_payments WHERE issuance_id IN (SELECT id FROM reward_issuances WHERE campaign_id = 2)")
[ "$n" = 0 ] || fail "inactive campaign: $n payments queued"
# the missing trustline: failed with the reason after 3 attempts, no payment
n=$(ri_psql -c "SELECT count(*) FROM reward_issuances WHERE status = 'failed' AND attempts = 3
                AND error_message LIKE 'no_trustline%'")
[ "$n" = 20 ] || fail "no trustline: $n of 20 failed after 3 attempts"
# one reward.distributed delivery per confirmed issuance, queued with the
# confirmation, carrying its tx hash, for merchant 1's webhook only
n=$(ri_psql -c "SELECT count(*) FROM webhook_deliveries d JOIN reward_issuances ri
                  ON ri.id = (d.payload->'data'->>'issuanceId')::int
                WHERE d.event_type = 'reward.distributed' AND ri.status = 'confirmed'
                  AND d.payload->'data'->>'txHash' = ri.tx_hash
                  AND d.webhook_id = (SELECT id FROM webhooks WHERE merchant_id = 1)")
[ "$n" = 80 ] || fail "reward.distributed webhooks: $n of 80 confirmed issuances announced"
n=$(ri_psql -c "SELECT count(*) FROM webhook_deliveries")
[ "$n" = 80 ] || fail "reward.distributed webhooks: $n deliveries, expected 80 (none for failures or merchant 2)"
# batching: 80 payments in far fewer transactions
txs=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE status = 'confirmed'")
[ "$txs" -le 10 ] || fail "80 payments took $txs transactions"
# memos reference the issuance or the batch
n=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE memo !~ '^nova:[ib][0-9]+$'")
[ "$n" = 0 ] || fail "memo format"

# the DLQ: 20 no-trustline + 3 invalid, each with the original data and failedReason
wait_dlq() {
    for _ in $(seq 50); do
        n=$(redis-cli -p "$RI_REDIS_PORT" llen bull:reward-issuance-dlq:wait)
        [ "$n" = "$1" ] && return 0
        sleep 0.1
    done
    fail "dead-letter queue holds $n jobs, expected $1"
}
wait_dlq 23
node -e '
const { Queue } = require("bullmq");
const u = new URL(process.argv[1]);
(async () => {
  const q = new Queue("reward-issuance-dlq", { connection: { host: u.hostname, port: +u.port } });
  const jobs = await q.getJobs(["wait"], 0, -1);
  const bad = jobs.filter((j) => j.name !== "dead-letter" || typeof j.data.failedReason !== "string" || !j.data.idempotencyKey);
  const reasons = new Set(jobs.map((j) => j.data.failedReason.split(":")[0]));
  await q.close();
  if (bad.length) { console.error("malformed dead letters", bad.length); process.exit(1); }
  for (const r of ["no_trustline", "invalid payload", "issuance 99999 does not exist"])
    if (![...reasons].some((x) => x.startsWith(r))) { console.error("missing DLQ reason", r, [...reasons]); process.exit(1); }
})();' "$RI_REDIS_URL" || fail "dead letters"

# `nova-worker queue replay` (docs/operations.md §8) of dead letters of
# confirmed issuances, written as the plugin writes them (the job's data
# plus failedReason): --dry-run changes nothing; the replay adds them back
# as issue-reward jobs, empties the DLQ of them, and they pay nothing.
paid_before=$(curl -s "$RI_HORIZON/_admin/payments" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).payments.length)')
ri_psql -c "SELECT json_build_object('issuanceId', id, 'idempotencyKey', idempotency_key, 'campaignId',
            campaign_id, 'userId', user_id, 'walletAddress', wallet_address, 'amount', amount::text,
            'failedReason', 'tx_timeout: no answer from Horizon')
            FROM reward_issuances WHERE status = 'confirmed' ORDER BY id LIMIT 30" |
    while read -r dl; do
        "$RI_BUILD/nova-worker" queue add reward-issuance-dlq dead-letter "$dl" -c "$RI_TMP/nova-worker.conf"
    done >"$RI_TMP/dl.ids" || fail "adding dead letters"
[ "$(wc -l <"$RI_TMP/dl.ids")" = 30 ] || fail "$(wc -l <"$RI_TMP/dl.ids") dead letters added"
"$RI_BUILD/nova-worker" queue replay reward-issuance-dlq $(cat "$RI_TMP/dl.ids") --dry-run \
    -c "$RI_TMP/nova-worker.conf" >"$RI_TMP/dry.txt" 2>/dev/null || fail "replay --dry-run"
[ "$(grep -c ' -> .*-replay-1 {"issuanceId":' "$RI_TMP/dry.txt")" = 30 ] || fail "dry run: $(head -3 "$RI_TMP/dry.txt")"
grep -q failedReason "$RI_TMP/dry.txt" && fail "dry run keeps failedReason"
[ "$(redis-cli -p "$RI_REDIS_PORT" llen bull:reward-issuance-dlq:wait)" = 53 ] || fail "the dry run changed the DLQ"
"$RI_BUILD/nova-worker" -c "$RI_TMP/nova-worker.conf" queue replay reward-issuance-dlq $(cat "$RI_TMP/dl.ids") \
    >"$RI_TMP/replay.txt" 2>/dev/null || fail "replay: $(cat "$RI_TMP/replay.txt")"
while read -r id; do
    grep -qx "$id -> $id-replay-1" "$RI_TMP/replay.txt" || fail "dead letter $id not replayed: $(head -3 "$RI_TMP/replay.txt")"
done <"$RI_TMP/dl.ids"
[ "$(redis-cli -p "$RI_REDIS_PORT" llen bull:reward-issuance-dlq:wait)" = 23 ] || fail "the DLQ still holds replayed dead letters"
# and the same jobs again under their original ids (duplicates of finished jobs)
ri_psql -c "SELECT json_build_object('issuanceId', id, 'idempotencyKey', idempotency_key, 'campaignId',
            campaign_id, 'userId', user_id, 'walletAddress', wallet_address, 'amount', amount)
            FROM reward_issuances WHERE status = 'confirmed' ORDER BY id LIMIT 30" |
    ri_enqueue >/dev/null
for _ in $(seq 100); do
    left=$(redis-cli -p "$RI_REDIS_PORT" eval "return redis.call('llen', KEYS[1]) + redis.call('llen', KEYS[2])" 2 bull:reward-issuance:wait bull:reward-issuance:active)
    [ "$left" = 0 ] && break
    sleep 0.1
done
sleep 1
paid_after=$(curl -s "$RI_HORIZON/_admin/payments" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).payments.length)')
[ "$paid_before" = "$paid_after" ] || fail "replays paid again: $paid_before -> $paid_after"
# the replayed jobs completed (removeOnComplete removed them); none failed
n=$(redis-cli -p "$RI_REDIS_PORT" --scan --pattern 'bull:reward-issuance:*-replay-*' | wc -l)
[ "$n" = 0 ] || fail "$n replayed jobs left (failed or not run)"
ri_check --quiet --expect-confirmed 80 || fail "exactly-once after replays"
n=$(ri_psql -c "SELECT count(*) FROM webhook_deliveries")
[ "$n" = 80 ] || fail "replays announced payments again: $n deliveries"

# reward-distribution: 4 payable recipients + 1 without trustline + 1 bad address
recips=$(node -e '
const k = require(process.argv[1]);
const r = k.recipients.map((x) => ({ walletAddress: x.public }));
r.push({ walletAddress: "GBAD" });
r[0].amount = "2.5";
console.log(JSON.stringify({ campaignId: 1, merchantId: 1, recipients: r, defaultAmount: "1" }));' "$RI_TMP/keys.json")
# run the job, then remove it and run it again under the same id (what a
# stalled or retried job amounts to): the second run pays nobody again
distribute() {
    node -e '
const { Queue, QueueEvents, Job } = require("bullmq");
const u = new URL(process.argv[1]);
const conn = { host: u.hostname, port: +u.port };
(async () => {
  const q = new Queue("reward-distribution", { connection: conn });
  const ev = new QueueEvents("reward-distribution", { connection: conn });
  await ev.waitUntilReady();
  const old = await Job.fromId(q, "dist-1");
  if (old) await old.remove();
  const job = await q.add("distribute", JSON.parse(process.argv[2]), { jobId: "dist-1", attempts: 1, removeOnComplete: { count: 500 } });
  const rv = await job.waitUntilFinished(ev, 30000);
  console.log(JSON.stringify(rv));
  await ev.close(); await q.close();
})().catch((e) => { console.error(e); process.exit(1); });' "$RI_REDIS_URL" "$recips"
}
result=$(distribute) || fail "distribute job"
paid1=$(curl -s "$RI_HORIZON/_admin/payments" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).payments.length)')
result2=$(distribute) || fail "distribute job (re-run)"
paid2=$(curl -s "$RI_HORIZON/_admin/payments" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).payments.length)')
[ "$paid1" = "$paid2" ] || fail "re-run of a distribute job paid again: $paid1 -> $paid2"
[ "$(echo "$result" | node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(0)).succeeded))')" = \
  "$(echo "$result2" | node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(0)).succeeded))')" ] ||
    fail "re-run reported other payments: $result / $result2"
echo "$result" | node -e '
const r = JSON.parse(require("fs").readFileSync(0));
if (r.succeeded.length !== 4 || r.failed.length !== 2) { console.error("distribution result", JSON.stringify(r)); process.exit(1); }
if (!r.succeeded.every((s) => /^[0-9a-f]{64}$/.test(s.txHash))) process.exit(1);
const errs = r.failed.map((f) => f.error).sort();
if (errs[0] !== "invalid_address" || errs[1] !== "no_trustline") { console.error(errs); process.exit(1); }' ||
    fail "distribution result: $result"
ri_check --quiet || fail "exactly-once after distribution"
# the 4 distribution payments announced once each (the re-run added none)
n=$(ri_psql -c "SELECT count(*) FROM webhook_deliveries d JOIN nova_worker_payments p
                  ON p.id = (d.payload->'data'->>'paymentId')::bigint
                WHERE d.payload->'data'->>'source' = 'distribution' AND p.status = 'confirmed'")
[ "$n" = 4 ] || fail "distribution webhooks: $n of 4 payments announced"
n=$(ri_psql -c "SELECT count(*) FROM webhook_deliveries")
[ "$n" = 84 ] || fail "webhook deliveries after the distribution: $n, expected 84"

# an underfunded distribution account: 3 NOVA left, 4 issuances of 1.5 to
# trusted recipients in one batch: the batch is included as failed, split,
# the two that fit are paid once, the other two fail as underfunded
ri_psql -c "DELETE FROM users WHERE id = 5" >/dev/null # the one without trustline
node -e '
const k = require(process.argv[1]);
fetch(process.argv[2] + "/_admin/trustlines", { method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ account: k.distribution.public, code: "NOVA", issuer: k.issuer.public, balance: "3" }) })
  .then((r) => { if (!r.ok) process.exit(1); });' "$RI_TMP/keys.json" "$RI_HORIZON" || fail "draining the distribution account"
ri_issue 4 1 1.5 | ri_enqueue --backoff 200 >/dev/null
ri_wait_settled 60 || fail "underfunded issuances did not settle"
ri_check --quiet --expect-confirmed 82 --expect-failed 28 || fail "exactly-once when underfunded"
n=$(ri_psql -c "SELECT count(*) FROM reward_issuances WHERE status = 'failed' AND error_message LIKE '%op_underfunded%'")
[ "$n" = 2 ] || fail "underfunded: $n of 2 failed with op_underfunded"
n=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE status = 'failed' AND result_code = 'tx_failed'")
[ "$n" -ge 1 ] || fail "underfunded: no envelope was included as failed"
wait_dlq 25

ri_finish_worker || fail "worker shutdown"
echo "e2e_basic: ok"
