#!/bin/bash
# Every refusal is recorded: a job whose payload still names an issuance
# (a bad address or checksum, an amount that is 0, negative, over 7
# decimals or not a number, a campaign other than the row's) counts the
# attempt, marks that reward_issuances row failed with a reason naming what
# was wrong, fails the job for good and dead-letters it. A database that
# refuses the bookkeeping on the final attempt still ends in a dead letter.
# Each case is checked on the row, the job and the DLQ.
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
ri_finish_worker || fail "worker shutdown"
echo "e2e_refusals: ok"
