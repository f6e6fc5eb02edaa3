#!/bin/bash
# Exactly once behind a Horizon fleet: every read may be answered by a
# replica several ledgers behind (Latest-Ledger on every answer, the test
# network's replica mode), lookups are forced onto lagging replicas right
# after ambiguous submissions, envelopes live only tx_timeout = 5s, and the
# worker is killed with SIGKILL while a second worker runs. Issuances and
# distributions (one job paying several recipients) both flow. Then a
# stretch where every submission answers 503 for longer than tx_timeout,
# so envelopes can only expire, and expiries must be proven across the
# lagging replicas. Nothing may be paid twice, nothing lost.
set -euo pipefail
RI_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
RI_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$RI_SRC/tests/reward/lib.sh"
COUNT=${RI_COUNT:-120}
KILLS=${RI_KILLS:-5}

fail() {
    echo "e2e_fleet: FAIL: $*" >&2
    tail -30 "$RI_TMP/worker.log" >&2 || true
    exit 1
}

admin() { # admin PATH JSON
    curl -sf -X POST -H 'content-type: application/json' -d "$2" "$RI_HORIZON$1" >/dev/null ||
        fail "admin $1"
}

# Half of all reads come from a replica 4 ledgers behind (ledgers close
# every 300 ms).
ri_setup 6 0 --ledger-close-ms 300 --replica-lag 4 --replica-probability 0.5 --replica-seed 11
# The jobs of a killed worker come back within seconds, not the default
# 30 s lock plus two 30 s sweeps (up to 90 s, close to wait_dist's limit);
# they may stall more than once across the kills.
RI_REDIS_SETTINGS="lock_duration = 5s
stalled_interval = 2s
max_stalled_count = 20"
ri_config "batch_max = 10" "batch_wait = 200ms" "lease = 1500ms" "poll = 50ms" "tx_timeout = 5s" \
    "distribution_concurrency = 4"
ri_migrate
ri_seed

# Ambiguous submissions, each followed by lookups that a lagging replica
# answers "not found" while the transaction is in fact in a ledger.
admin /_admin/faults '{"faults":[
  {"kind":"timeout_applied","count":2},
  {"kind":"lagging_read","lag_ledgers":6,"path":"/transactions/","count":2},
  {"kind":"disconnect","apply":true,"count":1},
  {"kind":"lagging_read","lag_ledgers":8,"path":"/transactions/","count":2},
  {"kind":"timeout_not_applied","count":2},
  {"kind":"timeout_applied","count":2},
  {"kind":"lagging_read","lag_ledgers":10,"target":"horizon","count":3}]}'

ri_issue "$COUNT" 1 >"$RI_TMP/issuances.json"
ri_enqueue --attempts 20 --backoff 300 <"$RI_TMP/issuances.json" >/dev/null
# Distributions: 6 jobs, each paying every recipient a different amount.
node -e '
const k = require(process.argv[1]);
for (let j = 0; j < 6; j++)
  console.log(JSON.stringify({ campaignId: 1, merchantId: 1, defaultAmount: "1",
    recipients: k.recipients.map((r, i) => ({ walletAddress: r.public, amount: `${j + 2}.0${i + 1}` })) }));' \
    "$RI_TMP/keys.json" >"$RI_TMP/dist.json"
node -e '
const { Queue } = require("bullmq");
const u = new URL(process.argv[1]);
const lines = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n");
(async () => {
  const q = new Queue("reward-distribution", { connection: { host: u.hostname, port: +u.port } });
  for (const [i, l] of lines.entries())
    await q.add("distribute", JSON.parse(l), { jobId: `fleet-dist-${i}`, attempts: 5, backoff: { type: "fixed", delay: 500 } });
  await q.close();
})();' "$RI_REDIS_URL" "$RI_TMP/dist.json" || fail "enqueue distributions"

ri_start_worker
"$RI_BUILD/nova-worker" run -c "$RI_TMP/nova-worker.conf" >"$RI_TMP/worker2.log" 2>&1 &
WORKER2=$!

for k in $(seq "$KILLS"); do
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.3, 1.5), 2))')"
    open=$(ri_psql -c "SELECT count(*) FROM nova_worker_payments WHERE status IN ('pending','prepared','submitted')")
    echo "e2e_fleet: SIGKILL #$k ($open payment(s) open)"
    ri_stop_worker KILL
    ri_start_worker
done

# The distributions finished: every recipient paid once (confirmed), none
# reported failed (they all have trustlines) or left pending.
wait_dist() {
    for _ in $(seq 600); do
        n=$(redis-cli -p "$RI_REDIS_PORT" zcard bull:reward-distribution:completed)
        [ "$n" = 6 ] && return 0
        sleep 0.2
    done
    fail "distributions: $n of 6 completed"
}
wait_dist
node -e '
const { Queue } = require("bullmq");
const u = new URL(process.argv[1]);
(async () => {
  const q = new Queue("reward-distribution", { connection: { host: u.hostname, port: +u.port } });
  const jobs = await q.getJobs(["completed"], 0, -1);
  await q.close();
  const bad = jobs.filter((j) => j.returnvalue.succeeded.length !== 6 || j.returnvalue.failed.length !== 0 || j.returnvalue.pending);
  if (bad.length) { console.error(JSON.stringify(bad.map((j) => [j.id, j.returnvalue]))); process.exit(1); }
})();' "$RI_REDIS_URL" || fail "distribution results"

ri_wait_settled 180 || fail "issuances did not settle"
ri_check --expect-confirmed "$COUNT" --expect-failed 0 || fail "exactly-once behind lagging replicas"
# each distribution recipient and amount paid exactly once on the network
node -e '
const k = require(process.argv[1]);
(async () => {
  const { payments } = await (await fetch(process.argv[2] + "/_admin/payments")).json();
  const problems = [];
  for (let j = 0; j < 6; j++)
    for (const [i, r] of k.recipients.entries()) {
      const amount = `${j + 2}.0${i + 1}`.padEnd(9, "0");
      const n = payments.filter((p) => p.destination === r.public && p.amount === amount).length;
      if (n !== 1) problems.push(`${r.public} ${amount}: paid ${n} times`);
    }
  if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
})();' "$RI_TMP/keys.json" "$RI_HORIZON" || fail "distribution paid other than once"

lagged=$(curl -s "$RI_HORIZON/_admin/replicas" | node -e 'const r = JSON.parse(require("fs").readFileSync(0)); console.log(r.counters.lagged + r.counters.forced)')
echo "e2e_fleet: $lagged read(s) answered by lagging replicas"
[ "$lagged" -ge 20 ] || fail "replica mode was barely exercised ($lagged lagged reads)"

# Only expiry can free these payments: every submission 503 for longer than
# tx_timeout, reads still lagging. Expiries need their proof.
curl -sf -X DELETE "$RI_HORIZON/_admin/faults" >/dev/null
admin /_admin/faults '{"kind":"status","status":503,"count":100000}'
ri_issue 10 1 | ri_enqueue --attempts 20 --backoff 300 >/dev/null
sleep 8
curl -sf -X DELETE "$RI_HORIZON/_admin/faults" >/dev/null
ri_wait_settled 120 || fail "expired envelopes not replaced"
n=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE status = 'expired'")
echo "e2e_fleet: $n envelope(s) expired on proof"
[ "$n" -ge 1 ] || fail "no envelope expired"
grep -h 'expired: ledger' "$RI_TMP"/worker*.log | head -2
ri_check --expect-confirmed "$((COUNT + 10))" --expect-failed 0 || fail "exactly-once after expiries"

ri_finish_worker || fail "worker shutdown"
kill -TERM "$WORKER2"
rc=0
wait "$WORKER2" || rc=$?
[ "$rc" = 0 ] || fail "second worker exited $rc"
! grep -E 'Sanitizer|runtime error:' "$RI_TMP/worker2.log" || fail "sanitizer report (second worker)"
echo "e2e_fleet: ok"
