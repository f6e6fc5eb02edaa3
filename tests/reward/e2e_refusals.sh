#!/bin/bash
# Every refusal is recorded: a job whose payload still names an issuance
# (a bad address or checksum, an amount that is 0, negative, over 7
# decimals or not a number, a campaign other than the row's) counts the
# attempt, marks that reward_issuances row failed with a reason naming what
# was wrong, fails the job for good and dead-letters it. A database that
# refuses the bookkeeping on the final attempt still ends in a dead letter.
# Each case is checked on the row, the job and the DLQ. Distributions: a
# job id Redis handed out again never reports an old job's payment, a
# recipient reported failed is never paid afterwards, one whose payment is
# in a transaction is reported pending and paid once.
set -euo pipefail
RI_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
RI_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$RI_SRC/tests/reward/lib.sh"

fail() {
    echo "e2e_refusals: FAIL: $*" >&2
    tail -30 "$RI_TMP/worker.log" >&2 || true
    exit 1
}

ri_setup 2 0 --ledger-close-ms 200
ri_config "batch_wait = 200ms" "poll = 50ms"
ri_migrate
ri_seed
ri_start_worker

ri_issue 8 1 >"$RI_TMP/rows.json"
id_of() { sed -n "${1}p" "$RI_TMP/rows.json" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).issuanceId)'; }
good=$(head -1 "$RI_TMP/rows.json")
# A job with the row's own data and one field replaced (KEY VALUE as JSON).
job() { # job LINE FIELD JSON_VALUE
    sed -n "${1}p" "$RI_TMP/rows.json" | node -e '
const d = JSON.parse(require("fs").readFileSync(0));
d[process.argv[1]] = JSON.parse(process.argv[2]);
d.idempotencyKey += "-bad";
console.log(JSON.stringify(d));' "$2" "$3"
}
wallet=$(node -e 'console.log(JSON.parse(process.argv[1]).walletAddress)' "$good")
# the same account with its checksum broken (last character changed)
badsum=${wallet%?}$([ "${wallet: -1}" = A ] && echo B || echo A)

{
    job 1 walletAddress "\"$badsum\""
    job 2 walletAddress '"GNOTANADDRESS"'
    job 3 amount '"0"'
    job 4 amount '"-5"'
    job 5 amount '"1.12345678"'
    job 6 amount '"abc"'
    job 7 campaignId 2
} >"$RI_TMP/bad.json"
ri_enqueue --attempts 3 --backoff 100 <"$RI_TMP/bad.json" >/dev/null

# Row 8: the database refuses every update of it (a trigger), so even the
# bookkeeping of its final attempt fails: it must still be dead-lettered.
id8=$(id_of 8)
ri_psql >/dev/null <<SQL
CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN RAISE EXCEPTION 'row % is locked by the test', OLD.id; END \$\$;
CREATE TRIGGER refuse_row BEFORE UPDATE ON reward_issuances FOR EACH ROW
    WHEN (OLD.id = $id8) EXECUTE FUNCTION refuse_row();
SQL
sed -n 8p "$RI_TMP/rows.json" | ri_enqueue --attempts 1 >/dev/null

wait_dlq() {
    for _ in $(seq 200); do
        n=$(redis-cli -p "$RI_REDIS_PORT" llen bull:reward-issuance-dlq:wait)
        [ "$n" -ge "$1" ] && return 0
        sleep 0.1
    done
    fail "dead-letter queue holds $n jobs, expected $1"
}
wait_dlq 8

# The rows: failed, the attempt counted, a reason naming the field.
expect_row() { # expect_row LINE PATTERN
    id=$(id_of "$1")
    row=$(ri_psql -F '|' -c "SELECT status, attempts, error_message FROM reward_issuances WHERE id = $id")
    case "$row" in
    failed\|1\|*$2*) ;;
    *) fail "issuance $id: expected failed, 1 attempt, a reason with '$2'; got '$row'" ;;
    esac
    grep -q "issuance $id: " "$RI_TMP/worker.log" || fail "the log does not name issuance $id"
}
expect_row 1 "walletAddress"
expect_row 2 "walletAddress"
expect_row 3 "amount"
expect_row 4 "amount"
expect_row 5 "amount"
expect_row 6 "amount"
expect_row 7 "campaignId"
row8=$(ri_psql -c "SELECT status FROM reward_issuances WHERE id = $id8")
[ "$row8" = pending ] || fail "issuance $id8 changed under the trigger: $row8"
n=$(ri_psql -c "SELECT count(*) FROM nova_worker_payments")
[ "$n" = 0 ] || fail "$n payments queued for refused jobs"

# The jobs: failed for good (one attempt, not three), and the DLQ holds
# each with its original data and the reason.
node -e '
const { Queue } = require("bullmq");
const u = new URL(process.argv[1]);
const ids = process.argv.slice(2).map(Number);
(async () => {
  const conn = { host: u.hostname, port: +u.port };
  const q = new Queue("reward-issuance", { connection: conn });
  const dlq = new Queue("reward-issuance-dlq", { connection: conn });
  const failed = await q.getJobs(["failed"], 0, -1);
  const dead = await dlq.getJobs(["wait"], 0, -1);
  await q.close(); await dlq.close();
  const problems = [];
  for (const id of ids) {
    const j = failed.find((x) => x.data.issuanceId === id);
    if (!j) { problems.push(`job of issuance ${id} is not failed`); continue; }
    if (j.attemptsMade !== 1) problems.push(`job of issuance ${id}: ${j.attemptsMade} attempts, expected 1`);
    const d = dead.find((x) => x.data.issuanceId === id);
    if (!d) { problems.push(`issuance ${id} is not in the DLQ`); continue; }
    if (d.name !== "dead-letter" || typeof d.data.failedReason !== "string" || d.data.failedReason !== j.failedReason)
      problems.push(`issuance ${id}: DLQ reason "${d.data.failedReason}" vs job "${j.failedReason}"`);
    if (id === ids[ids.length - 1] && !/could not be marked failed/.test(d.data.failedReason))
      problems.push(`issuance ${id}: the DLQ does not say the row could not be marked: ${d.data.failedReason}`);
  }
  if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
})();' "$RI_REDIS_URL" $(for i in 1 2 3 4 5 6 7; do id_of "$i"; done) "$id8" || fail "jobs and dead letters"

# A good job for row 1 after its refusal: the issuance is paid once.
echo "$good" | ri_enqueue >/dev/null
ri_psql -c "DROP TRIGGER refuse_row ON reward_issuances" >/dev/null
for _ in $(seq 100); do
    st=$(ri_psql -c "SELECT status FROM reward_issuances WHERE id = $(id_of 1)")
    [ "$st" = confirmed ] && break
    sleep 0.1
done
[ "$st" = confirmed ] || fail "issuance $(id_of 1) not paid by a good job after its refusal ($st)"
ri_check --quiet --expect-confirmed 1 || fail "exactly-once"

# ---- distributions -------------------------------------------------------
# dist JSON [JOBID]: adds a distribute job (BullMQ's own numeric id when no
# JOBID) and prints its result once it completed.
dist() {
    node -e '
const { Queue, QueueEvents } = require("bullmq");
const u = new URL(process.argv[1]);
const conn = { host: u.hostname, port: +u.port };
(async () => {
  const q = new Queue("reward-distribution", { connection: conn });
  const ev = new QueueEvents("reward-distribution", { connection: conn });
  await ev.waitUntilReady();
  const opts = { attempts: 1 };
  if (process.argv[3]) opts.jobId = process.argv[3];
  const job = await q.add("distribute", JSON.parse(process.argv[2]), opts);
  const rv = await job.waitUntilFinished(ev, 30000);
  console.log(JSON.stringify({ id: job.id, rv }));
  await ev.close(); await q.close();
})().catch((e) => { console.error(e); process.exit(1); });' "$RI_REDIS_URL" "$@"
}
r0=$(node -e 'console.log(require(process.argv[1]).recipients[0].public)' "$RI_TMP/keys.json")
r1=$(node -e 'console.log(require(process.argv[1]).recipients[1].public)' "$RI_TMP/keys.json")
paid() { # paid DEST AMOUNT: how many times the network paid it
    curl -s "$RI_HORIZON/_admin/payments?destination=$1" |
        node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).payments.filter((p) => p.amount === process.argv[1]).length)' "$2"
}

# Redis loses its id counter: the next job gets an old job's id. Its
# recipient must be paid, not reported paid by the old job's payment.
first=$(dist "{\"campaignId\":1,\"recipients\":[{\"walletAddress\":\"$r0\",\"amount\":\"2.5\"}]}")
id1=$(node -e 'console.log(JSON.parse(process.argv[1]).id)' "$first")
node -e '
const { Queue, Job } = require("bullmq");
const u = new URL(process.argv[1]);
(async () => {
  const q = new Queue("reward-distribution", { connection: { host: u.hostname, port: +u.port } });
  const j = await Job.fromId(q, process.argv[2]);
  await j.remove();
  await (await q.client).del("bull:reward-distribution:id");
  await q.close();
})();' "$RI_REDIS_URL" "$id1" || fail "simulating a lost id counter"
second=$(dist "{\"campaignId\":1,\"recipients\":[{\"walletAddress\":\"$r1\",\"amount\":\"3.5\"}]}")
id2=$(node -e 'console.log(JSON.parse(process.argv[1]).id)' "$second")
[ "$id1" = "$id2" ] || fail "the id was not reused ($id1, $id2): the test did not test anything"
[ "$(paid "$r1" 3.5000000)" = 1 ] || fail "reused job id: $r1 not paid 3.5 once: $second"
[ "$(paid "$r0" 2.5000000)" = 1 ] || fail "reused job id: $r0 not paid 2.5 exactly once"
node -e 'const r = JSON.parse(process.argv[1]).rv; if (r.succeeded.length !== 1 || r.succeeded[0].walletAddress !== process.argv[2]) process.exit(1);' \
    "$second" "$r1" || fail "reused job id: result $second"

# job_timeout 2s: a recipient reported failed is never paid afterwards; one
# already in a transaction is reported pending and paid once.
ri_finish_worker || fail "worker shutdown"
ri_config "batch_wait = 200ms" "poll = 50ms" "job_timeout = 2s"
ri_start_worker
ri_psql -c "UPDATE nova_worker_lanes SET owner = 'elsewhere', lease_until = now() + interval '1 hour'" >/dev/null
out=$(dist "{\"campaignId\":1,\"recipients\":[{\"walletAddress\":\"$r0\",\"amount\":\"4.5\"}]}" timeout-failed)
node -e 'const r = JSON.parse(process.argv[1]).rv; if (r.failed.length !== 1 || !/queue_timeout/.test(r.failed[0].error) || r.pending) process.exit(1);' \
    "$out" || fail "not sent in time: expected failed/queue_timeout: $out"
ri_psql -c "UPDATE nova_worker_lanes SET lease_until = now() - interval '1 second'" >/dev/null
curl -sf -X POST -H 'content-type: application/json' -d '{"kind":"status","status":503,"count":100000}' \
    "$RI_HORIZON/_admin/faults" >/dev/null
out=$(dist "{\"campaignId\":1,\"recipients\":[{\"walletAddress\":\"$r1\",\"amount\":\"5.5\"}]}" timeout-pending)
node -e 'const r = JSON.parse(process.argv[1]).rv; if (!r.pending || r.pending.length !== 1 || r.failed.length !== 0) process.exit(1);' \
    "$out" || fail "in a transaction: expected pending: $out"
curl -sf -X DELETE "$RI_HORIZON/_admin/faults" >/dev/null
for _ in $(seq 100); do
    [ "$(paid "$r1" 5.5000000)" = 1 ] && break
    sleep 0.1
done
[ "$(paid "$r1" 5.5000000)" = 1 ] || fail "the pending recipient was not paid once"
sleep 1
[ "$(paid "$r0" 4.5000000)" = 0 ] || fail "a recipient reported failed was paid"
st=$(ri_psql -c "SELECT status FROM nova_worker_payments WHERE reference = 'distribution:timeout-failed:0'")
[ "$st" = failed ] || fail "the taken-back payment is $st"

ri_finish_worker || fail "worker shutdown"
echo "e2e_refusals: ok"
