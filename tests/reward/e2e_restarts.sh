#!/bin/bash
# Exactly once across restarts of the servers underneath: while two
# workers pay issuances and distributions (behind lagging Horizon replicas),
# PostgreSQL crashes and comes back twice (immediate stop: every session
# and transaction cut mid-flight), then once with a fast shutdown, and
# Redis is killed with SIGKILL and restarted on its append-only file.
# Nothing may be paid twice, nothing lost, and both workers must still be
# running at the end.
set -euo pipefail
RI_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
RI_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$RI_SRC/tests/reward/lib.sh"
COUNT=${RI_COUNT:-250}

fail() {
    echo "e2e_restarts: FAIL: $*" >&2
    tail -30 "$RI_TMP/worker.log" >&2 || true
    exit 1
}

RI_REDIS_PERSIST=1
ri_setup 6 0 --ledger-close-ms 300 --replica-lag 3 --replica-probability 0.3 --replica-seed 5
ri_config "batch_max = 5" "batch_wait = 200ms" "lease = 1500ms" "poll = 50ms" "tx_timeout = 10s"
ri_migrate
ri_seed

ri_issue "$COUNT" 1 >"$RI_TMP/issuances.json"
ri_enqueue --attempts 30 --backoff 300 <"$RI_TMP/issuances.json" >/dev/null
node -e '
const { Queue } = require("bullmq");
const u = new URL(process.argv[1]);
const k = require(process.argv[2]);
(async () => {
  const q = new Queue("reward-distribution", { connection: { host: u.hostname, port: +u.port } });
  for (let j = 0; j < 3; j++)
    await q.add("distribute", { campaignId: 1, merchantId: 1, defaultAmount: "1",
      recipients: k.recipients.map((r, i) => ({ walletAddress: r.public, amount: `${j + 3}.0${i + 1}` })) },
      { jobId: `restart-dist-${j}`, attempts: 10, backoff: { type: "fixed", delay: 500 } });
  await q.close();
})();' "$RI_REDIS_URL" "$RI_TMP/keys.json" || fail "enqueue distributions"

ri_start_worker
"$RI_BUILD/nova-worker" run -c "$RI_TMP/nova-worker.conf" >"$RI_TMP/worker2.log" 2>&1 &
WORKER2=$!

open_payments() {
    ri_psql -c "SELECT count(*) FROM nova_worker_payments WHERE status IN ('pending','prepared','submitted')" 2>/dev/null || echo "?"
}
sleep 1
echo "e2e_restarts: PostgreSQL crash #1 ($(open_payments) payment(s) open)"
ri_restart_pg immediate 1
sleep 1.5
echo "e2e_restarts: Redis SIGKILL ($(open_payments) payment(s) open)"
ri_restart_redis 1
sleep 1.5
echo "e2e_restarts: PostgreSQL crash #2 ($(open_payments) payment(s) open)"
ri_restart_pg immediate 0.3
sleep 1
echo "e2e_restarts: PostgreSQL fast shutdown ($(open_payments) payment(s) open)"
ri_restart_pg fast 0.5

ri_wait_settled 180 || fail "issuances did not settle after the restarts"
for _ in $(seq 300); do
    n=$(redis-cli -p "$RI_REDIS_PORT" zcard bull:reward-distribution:completed)
    [ "$n" = 3 ] && break
    sleep 0.2
done
[ "$n" = 3 ] || fail "distributions: $n of 3 completed"
ri_check --expect-confirmed "$COUNT" --expect-failed 0 || fail "exactly-once across restarts"
node -e '
const k = require(process.argv[1]);
(async () => {
  const { payments } = await (await fetch(process.argv[2] + "/_admin/payments")).json();
  const problems = [];
  for (let j = 0; j < 3; j++)
    for (const [i, r] of k.recipients.entries()) {
      const amount = `${j + 3}.0${i + 1}`.padEnd(9, "0");
      const n = payments.filter((p) => p.destination === r.public && p.amount === amount).length;
      if (n !== 1) problems.push(`${r.public} ${amount}: paid ${n} times`);
    }
  if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
})();' "$RI_TMP/keys.json" "$RI_HORIZON" || fail "distribution paid other than once"

kill -0 "$WORKER2" 2>/dev/null || fail "the second worker died"
ri_finish_worker || fail "worker shutdown"
kill -TERM "$WORKER2"
rc=0
wait "$WORKER2" || rc=$?
[ "$rc" = 0 ] || fail "second worker exited $rc"
! grep -E 'Sanitizer|runtime error:' "$RI_TMP/worker2.log" || fail "sanitizer report (second worker)"
echo "e2e_restarts: ok"
