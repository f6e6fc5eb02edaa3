#!/bin/bash
# Runs Nova's main job end to end on local defaults: installs what is
# missing (scripts/deps.sh), builds nova-worker, starts its own redis-server,
# PostgreSQL 15 and the Stellar test network on free 127.0.0.1 ports in a
# temp dir, seeds them like Nova's API (a merchant, campaigns, users,
# reward_issuances rows), starts `nova-worker run` with reward_issuance,
# enqueues issuances through the real bullmq exactly as the API does (job id
# = idempotency key), shows progress, prints what was paid and what failed
# and why, and tears everything down.
#
# usage: scripts/demo.sh [--count N] [--no-deps] [--keep]
#   --count N   issuances to enqueue (default 300)
#   --no-deps   skip scripts/deps.sh
#   --keep      keep the temp dir (logs, config, keys) for a look afterwards
# Environment: NOVA_DEMO_BUILD (build dir, default build/ in this tree, shared
# with scripts/test.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=300
DEPS=1
while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=$2; shift 2 ;;
    --no-deps) DEPS=0; shift ;;
    --keep) export RI_KEEP=1; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $1" >&2; exit 2 ;;
    esac
done
step() { printf '\n== %s\n' "$*"; }

if [ "$DEPS" = 1 ]; then
    step "dependencies (scripts/deps.sh)"
    "$ROOT/scripts/deps.sh" --demo
fi

step "build"
BUILD=${NOVA_DEMO_BUILD:-$ROOT/build}
[ -x "$ROOT/configure" ] || (cd "$ROOT" && ./autogen.sh >/dev/null)
mkdir -p "$BUILD"
[ -f "$BUILD/Makefile" ] || (cd "$BUILD" && "$ROOT/configure" --prefix="$BUILD/inst" >/dev/null)
make -C "$BUILD" -j2 >/dev/null
echo "built $BUILD/nova-worker and $BUILD/plugins/reward_issuance/.libs/reward_issuance.so"
# The build tree's service modules (PostgreSQL, HTTP, /metrics; runtime/common/svc.h).
export NOVA_MODULE_DIR="$BUILD/runtime/.libs"

RI_SRC=$ROOT
RI_BUILD=$BUILD
. "$ROOT/tests/reward/lib.sh"

step "redis-server, PostgreSQL 15 and the Stellar test network (temp dir, free ports)"
# 8 recipients; the last has no NOVA trustline, so its rewards fail and are dead-lettered
ri_setup 8 1 --ledger-close-ms 1000
echo "temp dir      $RI_TMP"
echo "redis         $RI_REDIS_URL"
echo "postgres      $RI_DSN"
echo "horizon       $RI_HORIZON"
node -e 'const k = require(process.argv[1]); console.log("distribution  " + k.distribution.public + "\nasset         NOVA:" + k.asset.issuer)' "$RI_TMP/keys.json"

step "schema (nova-worker migrate) and Nova's data"
RI_METRICS_PORT=$(nova_free_port)
# the recommended setup: Stellar settings in the core [stellar] section, whose
# distribution secret stays in the host (it signs for the plugin)
RI_STELLAR_SECTION=1 ri_config "batch_max = 100" "batch_wait = 1s"
ri_migrate
sed 's/^/  /' "$RI_TMP/migrate.log"
ri_seed
echo "  merchant 1, campaign 1 (active), campaign 2 (ended), 8 users"

step "nova-worker run"
ri_start_worker
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$RI_METRICS_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "worker pid $RI_WORKER_PID, metrics on http://127.0.0.1:$RI_METRICS_PORT/metrics"

step "enqueue $COUNT issuances through bullmq, as POST /api/rewards/issue does"
ended=$((COUNT / 50 + 1))
ri_issue "$((COUNT - ended))" 1 2.5 >"$RI_TMP/issuances.json"
ri_issue "$ended" 2 1 >>"$RI_TMP/issuances.json"
n=$(ri_enqueue --attempts 3 --backoff 1000 <"$RI_TMP/issuances.json")
echo "enqueued $n jobs on reward-issuance (job id = idempotency key)"
echo '{"issuanceId":424242,"idempotencyKey":"demo-bad-address","campaignId":1,"walletAddress":"GNOTAWALLET","amount":"1"}' |
    ri_enqueue >/dev/null
echo "enqueued 1 job with an invalid wallet address"

step "progress"
RI_PROGRESS=1 RI_POLL=1 ri_wait_settled 600 || echo "demo: not everything settled in time"

step "summary"
ri_check || true
echo
echo "PostgreSQL, reward_issuances by status:"
ri_psql -F ' | ' -c "SELECT '  ' || status, count(*), coalesce(sum(amount), 0)::text || ' NOVA'
                     FROM reward_issuances GROUP BY status ORDER BY status"
echo "failures and why:"
ri_psql -F ' | ' -c "SELECT '  ' || count(*), error_message FROM reward_issuances
                     WHERE status = 'failed' GROUP BY error_message ORDER BY 1 DESC"
echo "Stellar transactions (nova_worker_stellar_txs):"
ri_psql -F ' | ' -c "SELECT '  ' || t.status, count(DISTINCT t.id) AS envelopes, count(p.id) AS payments,
                     coalesce(max(x.n), 0) AS largest_batch
                     FROM nova_worker_stellar_txs t LEFT JOIN nova_worker_payments p ON p.stellar_tx_id = t.id
                     LEFT JOIN (SELECT stellar_tx_id, count(*) n FROM nova_worker_payments GROUP BY 1) x
                       ON x.stellar_tx_id = t.id GROUP BY t.status"
echo "test network (/_admin/payments):"
curl -s "$RI_HORIZON/_admin/payments" | node -e '
const p = JSON.parse(require("fs").readFileSync(0)).payments;
let stroops = 0n;
for (const x of p) stroops += BigInt(x.amount_stroops);
const memos = new Set(p.map((x) => x.memo));
console.log(`  ${p.length} payments, ${stroops / 10000000n}.${String(stroops % 10000000n).padStart(7, "0")} NOVA, ${new Set(p.map((x) => x.tx_hash)).size} transactions, memos e.g. ${[...memos].slice(0, 3).join(", ")}`);'
echo "dead-letter queue reward-issuance-dlq: $(redis-cli -p "$RI_REDIS_PORT" llen bull:reward-issuance-dlq:wait) job(s)"
echo "metrics:"
curl -s "http://127.0.0.1:$RI_METRICS_PORT/metrics" |
    grep -E '^(reward_issuances_total|reward_queue_depth|nova_reward_dlq_total|nova_reward_submissions_total|nova_reward_batch_size_(sum|count))' |
    sed 's/^/  /' || true

step "teardown"
ri_stop_worker TERM
echo "done"
