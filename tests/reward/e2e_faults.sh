#!/bin/bash
# Fault test: a run of issuances (RI_COUNT, default 200; 1000 with
# `RI_COUNT=1000`) paid while the worker is killed with SIGKILL at random
# moments (before, during and after submissions) and Horizon answers with
# 504s (with and without the transaction applied), dropped connections,
# 5xx, 429, tx_bad_seq and a batch included as failed (op_no_trust on one
# operation: split, the rest paid by the next envelope); then an envelope
# that can only expire. Every issuance must end confirmed with exactly one
# payment; none is lost.
set -euo pipefail
RI_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
RI_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$RI_SRC/tests/reward/lib.sh"
COUNT=${RI_COUNT:-200}
KILLS=${RI_KILLS:-8}

fail() {
    echo "e2e_faults: FAIL: $*" >&2
    tail -30 "$RI_TMP/worker.log" >&2 || true
    exit 1
}

admin() { # admin PATH JSON
    curl -sf -X POST -H 'content-type: application/json' -d "$2" "$RI_HORIZON$1" >/dev/null ||
        fail "admin $1"
}

# every recipient has a trustline; ledgers close every 300 ms and the
# synchronous submission answers only then, so kills land mid-submission
ri_setup 6 0 --ledger-close-ms 300
ri_config "batch_max = 10" "batch_wait = 200ms" "lease = 1500ms" "poll = 50ms" \
    "tx_timeout = 20s"
ri_migrate
ri_seed

# Horizon faults, taken in order by the first submissions.
admin /_admin/faults '{"faults":[
  {"kind":"timeout_applied","count":3},
  {"kind":"timeout_not_applied","count":2},
  {"kind":"disconnect","apply":true,"count":2},
  {"kind":"status","status":503,"count":1},
  {"kind":"delay","delay_ms":2500,"count":2},
  {"kind":"disconnect","apply":false,"count":1},
  {"kind":"status","status":500,"count":1},
  {"kind":"rate_limit","count":1},
  {"kind":"bad_seq","count":1},
  {"kind":"op_no_trust","op_index":3,"count":1},
  {"kind":"timeout_applied","count":2}]}'

ri_issue "$COUNT" 1 >"$RI_TMP/issuances.json"
ri_enqueue --attempts 10 --backoff 300 <"$RI_TMP/issuances.json" >/dev/null
ri_start_worker
# A second worker of the fleet, never killed: it queues payments for its
# jobs and takes the lane over whenever the first one dies holding it.
"$RI_BUILD/nova-worker" run -c "$RI_TMP/nova-worker.conf" >"$RI_TMP/worker2.log" 2>&1 &
WORKER2=$!

# SIGKILL (once SIGTERM) at random moments while work remains, then restart.
for k in $(seq "$KILLS"); do
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.2, 1.8), 2))')"
    open=$(ri_psql -c "SELECT count(*) FROM reward_issuances WHERE status = 'pending'")
    [ "$open" = 0 ] && break
    inflight=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE status IN ('prepared','submitted')")
    # the second stop is a graceful SIGTERM (drain), the others SIGKILL
    sig=KILL
    [ "$k" = 2 ] && sig=TERM
    echo "e2e_faults: SIG$sig #$k ($open pending, $inflight envelope(s) open)"
    ri_stop_worker $sig
    ri_start_worker
done

ri_wait_settled 120 || fail "issuances did not settle after the kills"
ri_check --expect-confirmed "$COUNT" --expect-failed 0 || fail "exactly-once after kills and 504s"
n=$(curl -s "$RI_HORIZON/_admin/submissions" | node -e '
const s = JSON.parse(require("fs").readFileSync(0)).submissions;
const byHash = {};
for (const x of s) byHash[x.hash] = (byHash[x.hash] || 0) + 1;
console.log(Object.values(byHash).filter((v) => v > 1).length);')
echo "e2e_faults: $n envelope(s) were resubmitted byte for byte"
[ "$n" -ge 1 ] || fail "no envelope was ever resubmitted (faults not exercised?)"

n=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE status = 'failed' AND result_code = 'tx_failed'")
[ "$n" -ge 1 ] || fail "no batch was included as failed and split"

# Expiry: every submission now fails with 503, so the envelope stays
# unknown; the network clock jumps past its max time; only then may its
# payments go into a new envelope (same sequence, new hash).
curl -sf -X DELETE "$RI_HORIZON/_admin/faults" >/dev/null
admin /_admin/faults '{"kind":"status","status":503,"count":100000}'
ri_issue 5 1 | ri_enqueue --attempts 10 --backoff 300 >/dev/null
for _ in $(seq 100); do
    n=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE status = 'submitted' AND submit_attempts >= 2")
    [ "$n" -ge 1 ] && break
    sleep 0.1
done
[ "$n" -ge 1 ] || fail "no envelope stuck in submission"
curl -sf -X DELETE "$RI_HORIZON/_admin/faults" >/dev/null
admin /_admin/clock '{"advance_seconds":60}'
admin /_admin/close-ledger '{}'
ri_wait_settled 60 || fail "expired envelope not replaced"
n=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE status = 'expired'")
[ "$n" -ge 1 ] || fail "no envelope was declared expired"
ri_check --expect-confirmed "$((COUNT + 5))" --expect-failed 0 || fail "exactly-once after expiry"
ri_finish_worker || fail "worker shutdown"
kill -TERM "$WORKER2"
rc=0
wait "$WORKER2" || rc=$?
[ "$rc" = 0 ] || fail "second worker exited $rc"
! grep -E 'Sanitizer|runtime error:' "$RI_TMP/worker2.log" || fail "sanitizer report (second worker)"
grep -q 'lease acquired' "$RI_TMP/worker2.log" || fail "the second worker never took the lane over"
echo "e2e_faults: ok"
