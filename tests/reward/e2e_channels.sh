#!/bin/bash
# Channel accounts: the distribution account and two channel accounts pay in
# parallel (one lane each, one transaction per source per ledger like
# stellar-core), the payments always leave the distribution account, every
# issuance is paid exactly once, and a worker killed mid-run loses nothing.
# Configured through the core [stellar] section (the host holds the
# distribution secret).
set -euo pipefail
RI_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
RI_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$RI_SRC/tests/reward/lib.sh"
COUNT=${RI_COUNT:-300}

fail() {
    echo "e2e_channels: FAIL: $*" >&2
    tail -20 "$RI_TMP/worker.log" >&2 || true
    exit 1
}

ri_setup 6 0 --ledger-close-ms 400 --one-tx-per-source
seeds=
for _ in 1 2; do
    s=$(curl -sf -X POST -H 'content-type: application/json' -d '{"balance":"100"}' \
        "$RI_HORIZON/_admin/accounts" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).secret)')
    seeds=${seeds:+$seeds,}$s
done
printf '%s\n' "$seeds" >"$RI_TMP/channels"
chmod 600 "$RI_TMP/channels"
# Stellar settings from the core [stellar] section: the host signs for the
# distribution account, the plugin adds each channel's signature.
RI_STELLAR_SECTION=1 ri_config "channel_secrets_file = $RI_TMP/channels" "batch_max = 20" "batch_wait = 200ms" \
    "lease = 1500ms" "poll = 50ms"
ri_migrate
ri_seed
ri_issue "$COUNT" 1 0.25 | ri_enqueue --attempts 10 --backoff 300 >/dev/null
ri_start_worker
sleep 2
ri_stop_worker KILL
ri_start_worker
ri_wait_settled 120 || fail "issuances did not settle"
ri_check --expect-confirmed "$COUNT" --expect-failed 0 || fail "exactly-once with channel accounts"

sources=$(ri_psql -c "SELECT count(DISTINCT source_account) FROM nova_worker_stellar_txs WHERE status = 'confirmed'")
[ "$sources" = 3 ] || fail "confirmed envelopes came from $sources source account(s), expected 3"
dist=$(node -e 'console.log(require(process.argv[1]).distribution.public)' "$RI_TMP/keys.json")
curl -s "$RI_HORIZON/_admin/payments" | node -e '
const p = JSON.parse(require("fs").readFileSync(0)).payments;
const bad = p.filter((x) => x.source !== process.argv[1]);
if (bad.length) { console.error(bad.length + " payments not from the distribution account"); process.exit(1); }' "$dist" ||
    fail "payment source"
ri_finish_worker || fail "worker shutdown"
echo "e2e_channels: ok"
