#!/bin/bash
# Throughput of reward_issuance (not part of make check): N issuances
# enqueued through bullmq, paid on the test network with ledgers closing
# every L ms, with C channel accounts and at most B payments per transaction
# (B=1: one payment per transaction, the Node worker's way); prints
# issuances per second from the first enqueue to the last confirmation.
# usage: NOVA_SRCDIR=... NOVA_BUILDDIR=... tests/reward/bench.sh [N] [L] [C] [B]
set -euo pipefail
RI_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
RI_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$RI_SRC/tests/reward/lib.sh"
N=${1:-2000}
L=${2:-1000}
C=${3:-0}
B=${4:-100}
RI_LOG_LEVEL=warn
ri_setup 20 0 --ledger-close-ms "$L" --one-tx-per-source
seeds=
for _ in $(seq "$C"); do
    s=$(curl -sf -X POST -H 'content-type: application/json' -d '{"balance":"1000"}' \
        "$RI_HORIZON/_admin/accounts" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).secret)')
    seeds=${seeds:+$seeds,}$s
done
printf '%s\n' "$seeds" >"$RI_TMP/channels"
extra=()
[ "$C" -gt 0 ] && extra+=("channel_secrets_file = $RI_TMP/channels")
ri_config "batch_max = $B" "batch_wait = 500ms" "concurrency = 1000" "${extra[@]}"
ri_migrate
ri_seed
ri_issue "$N" 1 0.5 >"$RI_TMP/issuances.json"
ri_start_worker
sleep 1
t0=$(date +%s.%N)
ri_enqueue <"$RI_TMP/issuances.json" >/dev/null
RI_POLL=0.2 ri_wait_settled 900
t1=$(date +%s.%N)
ri_check --quiet --expect-confirmed "$N"
txs=$(ri_psql -c "SELECT count(*) FROM nova_worker_stellar_txs WHERE status = 'confirmed'")
python3 -c "import sys; n,l,c,bm,a,b,t=sys.argv[1:]; d=float(b)-float(a); print(f'bench: {n} issuances, ledger {l} ms, {c} channel(s), batch_max {bm}: {d:.1f} s, {int(n)/d:.2f} issuances/s, {t} transactions ({int(n)/int(t):.0f} payments each)')" "$N" "$L" "$C" "$B" "$t0" "$t1" "$txs"
ri_finish_worker
