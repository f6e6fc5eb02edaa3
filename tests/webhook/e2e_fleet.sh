#!/bin/bash
# End to end: two worker processes against one table of 500 due deliveries
# (20 endpoints), running their delivery runs at the same time. Every
# attempt is sent exactly once: the first attempts all fail (500), the
# rows become due again, the second attempts all succeed; each delivery id
# reaches the receiver exactly twice, every signature verifies, and the
# claims of both workers add up to exactly 1000 with none released.
set -euo pipefail
WH_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
WH_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$WH_SRC/tests/webhook/lib.sh"

fail() {
    echo "e2e_fleet: FAIL: $*" >&2
    exit 1
}

wh_setup
wh_start_receiver a 127.0.0.2
common=("allow_networks = 127.0.0.2/32" "schedule =" "retry_delays = 1h" "max_attempts = 3"
    "breaker_threshold = 0" "concurrency = 32" "endpoint_concurrency = 4" "batch_size = 50")
wh_config wa "${common[@]}"
wh_config wb "${common[@]}"
wh_migrate wa
wh_seed

base="http://127.0.0.2:$WH_RPORT_a/hook"
for i in $(seq 1 20); do
    s=$(wh_secret)
    wh_mode "e$i" status-500
    wh_hook "e$i" "$(wh_encrypt "$WH_KEY" "$s")" "$s" "$base/e$i" '{*}' >/dev/null
done
wh_psql -c "INSERT INTO webhook_deliveries (webhook_id, event_type, payload)
            SELECT w.id, 'reward.distributed', jsonb_build_object('event', 'reward.distributed',
                   'timestamp', '2026-01-01T00:00:00.000Z', 'data', jsonb_build_object('n', g))
            FROM webhooks w, generate_series(1, 25) g"
[ "$(wh_psql -c "SELECT count(*) FROM webhook_deliveries")" = 500 ] || fail "setup"

wh_start_worker wa
wh_start_worker wb

# rounds: both workers run at once until nothing is due
rounds() {
    local phase=$1 i
    for i in $(seq 1 30); do
        for w in wa wb; do
            "$WH_BUILD/nova-worker" queue -c "$WH_TMP/$w.conf" add webhook-dispatch deliver '{}' \
                --job-id "$phase-$i-$w" >/dev/null || fail "queue add"
        done
        for w in wa wb; do
            wh_wait_job webhook-dispatch "$phase-$i-$w" 60 >/dev/null
        done
        [ "$(wh_psql -c "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'
                         OR (status = 'failed' AND next_retry_at <= now())")" = 0 ] && return 0
    done
    fail "$phase: deliveries still due after 30 rounds"
}
rounds first
[ "$(wh_psql -c "SELECT count(*) FROM webhook_deliveries WHERE status = 'failed' AND attempt = 1
                 AND http_status = 500")" = 500 ] || fail "after the first attempts: $(wh_psql -c "
                 SELECT status, attempt, count(*) FROM webhook_deliveries GROUP BY 1, 2")"
# time passes: every row is due for its second attempt, and the endpoints are back
for i in $(seq 1 20); do wh_mode "e$i" slow-5; done
wh_psql -c "UPDATE webhook_deliveries SET next_retry_at = now()"
rounds second
[ "$(wh_psql -c "SELECT count(*) FROM webhook_deliveries WHERE status = 'success' AND attempt = 2
                 AND http_status = 200")" = 500 ] || fail "after the second attempts: $(wh_psql -c "
                 SELECT status, attempt, count(*) FROM webhook_deliveries GROUP BY 1, 2")"

wh_psql -c "SELECT json_agg(delivery_id) FROM webhook_deliveries" >"$WH_TMP/ids.json"
wh_received a >"$WH_TMP/received.json"
node - "$WH_TMP/ids.json" "$WH_TMP/received.json" "$WH_TMP/worker-wa.log" "$WH_TMP/worker-wb.log" <<'JS' || fail "(above)"
const fs = require('fs');
const ids = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const rec = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const bad = [];
const ok = (c, m) => { if (!c) bad.push(m); };
ok(rec.length === 1000, `${rec.length} requests, want 1000`);
ok(rec.every((q) => q.valid), `${rec.filter((q) => !q.valid).length} signatures did not verify`);
const seen = new Map();
for (const q of rec) seen.set(q.deliveryId, (seen.get(q.deliveryId) || []).concat([q]));
ok(seen.size === 500, `${seen.size} distinct deliveries received`);
for (const id of ids) {
  const got = seen.get(id) || [];
  ok(got.length === 2 && got[0].mode === 'status-500' && got[1].mode === 'slow-5',
     `${id}: received ${got.length} times (${got.map((q) => q.mode)})`);
}
const claimed = {};
for (const [i, f] of [[4, 'wa'], [5, 'wb']]) {
  claimed[f] = { claimed: 0, released: 0 };
  for (const line of fs.readFileSync(process.argv[i], 'utf8').split('\n')) {
    const m = /webhook run: (\{.*\})/.exec(line.includes('"msg"') ? JSON.parse(line).msg : '');
    if (!m) continue;
    const r = JSON.parse(m[1]);
    claimed[f].claimed += r.claimed;
    claimed[f].released += r.released;
  }
}
ok(claimed.wa.claimed > 0 && claimed.wb.claimed > 0, `a worker took no part: ${JSON.stringify(claimed)}`);
ok(claimed.wa.claimed + claimed.wb.claimed === 1000, `claims: ${JSON.stringify(claimed)}`);
ok(claimed.wa.released + claimed.wb.released === 0, `released: ${JSON.stringify(claimed)}`);
console.log(`claims per worker: ${JSON.stringify(claimed)}`);
if (bad.length) { console.error(bad.slice(0, 20).join('\n')); process.exit(1); }
JS
! grep -q 'claimed again meanwhile' "$WH_TMP"/worker-*.log || fail "a claim expired"
wh_stop_worker wa
wh_stop_worker wb
wh_no_sanitizer_report
echo "e2e_fleet: PASS"
