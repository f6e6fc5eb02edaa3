#!/bin/bash
# End to end, real PostgreSQL, Redis and a Node receiver that verifies every
# signature as Nova's verifier does: reward.distributed deliveries created
# by the dispatch function in the confirming transaction, and Nova's own
# rows, are delivered by the scheduled run, once each, byte-compatible
# (headers, body = JSON.stringify of the stored payload, signature over the
# exact bytes). Secrets encrypted by Node's crypto under the current key
# and the previous key decrypt; legacy plaintext works; a wrong key fails
# the delivery with a clear reason and no secret in the log; inactive
# webhooks are not sent to.
set -euo pipefail
WH_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
WH_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$WH_SRC/tests/webhook/lib.sh"

fail() {
    echo "e2e_deliver: FAIL: $*" >&2
    exit 1
}

wh_setup
wh_start_receiver a 127.0.0.2
WH_METRICS_PORT=$(nova_free_port)
wh_config w1 "allow_networks = 127.0.0.2/32" "schedule = every 1s"
wh_migrate w1
wh_seed

base="http://127.0.0.2:$WH_RPORT_a/hook"
s1=$(wh_secret)
s2=$(wh_secret)
s3=$(wh_secret)
s4=$(wh_secret)
s5=$(wh_secret)
s6=$(wh_secret)
nobody=$(wh_secret) # a key no worker knows
h1=$(wh_hook one "$(wh_encrypt "$WH_KEY" "$s1")" "$s1" "$base/one" '{reward.distributed}')
h2=$(wh_hook two "$(wh_encrypt "$WH_KEY_PREV" "$s2")" "$s2" "$base/two" '{*}')
h3=$(wh_hook three "$s3" "$s3" "$base/three" '{campaign.created,reward.distributed}')
h4=$(wh_hook four "$(wh_encrypt "$nobody" "$s4")" "$s4" "$base/four" '{*}')
h5=$(wh_hook five "$(wh_encrypt "$WH_KEY" "$s5")" "$s5" "$base/five" '{*}' false)
wh_hook six "$(wh_encrypt "$WH_KEY" "$s6")" "$s6" "$base/six" '{*}' true 2 >/dev/null
wh_hook seven "$(wh_encrypt "$WH_KEY" "$s6")" "$s6" "$base/seven" '{campaign.created}' >/dev/null

# A reward confirmed the way the reward plugin will do it: the dispatch in
# the confirming transaction.
n=$(wh_psql -c "
  INSERT INTO reward_issuances (id, idempotency_key, campaign_id, user_id, wallet_address, amount)
  VALUES (1, 'key-1', 1, 1, 'GUSERONE', 12.5), (2, 'key-2', 1, NULL, 'GUSERTWO', 3);
  WITH c AS (UPDATE reward_issuances SET status = 'confirmed', tx_hash = 'aa11' WHERE id = 1
             RETURNING id, tx_hash)
  SELECT nova_worker_webhook_reward_distributed(c.id, c.tx_hash) FROM c")
[ "$n" = 4 ] || fail "dispatch created $n deliveries, want 4 (webhooks 1-4)"
# Nova's own rows: its test event (older than a minute, as one whose inline
# send was lost), a payload with text that needs escaping, and a row of an
# inactive webhook.
wh_psql -c "
  INSERT INTO webhook_deliveries (webhook_id, event_type, payload, created_at) VALUES
  ($h1, 'test', jsonb_build_object('event', 'test', 'timestamp', '2026-01-01T00:00:00.000Z',
       'data', jsonb_build_object('message', 'This is a test webhook from Nova Rewards',
                                  'webhookId', $h1)), now() - interval '2 minutes'),
  ($h2, 'campaign.created', '{\"event\": \"campaign.created\", \"timestamp\": \"2026-01-01T00:00:00.000Z\",
       \"data\": {\"name\": \"Café ☕ \\\"Grand\\\" opening\", \"rate\": 1.5, \"tags\": [\"a\", \"b c\"],
       \"nested\": {\"deep\": null, \"ok\": true}}}', now()),
  ($h5, 'campaign.created', '{\"event\": \"campaign.created\", \"timestamp\": \"2026-01-01T00:00:00.000Z\", \"data\": {}}', now())"

wh_start_worker w1
wh_wait_sql 30 "SELECT count(*) = 0 FROM webhook_deliveries WHERE webhook_id <> $h5
                AND (status = 'pending' OR (status = 'failed' AND attempt < 1))" ||
    fail "deliveries still pending after 30 s"
sleep 1.5 # one more scheduled run: nothing may be sent twice

# The dispatch again (a retried confirmation) creates nothing.
n=$(wh_psql -c "SELECT nova_worker_webhook_reward_distributed(1, 'aa11')")
[ "$n" = 0 ] || fail "a second dispatch created $n deliveries"

wh_psql -c "SELECT coalesce(json_agg(json_build_object('id', d.id, 'webhook', d.webhook_id,
              'delivery_id', d.delivery_id, 'event', d.event_type, 'payload', d.payload,
              'status', d.status, 'attempt', d.attempt, 'http_status', d.http_status,
              'response_body', d.response_body, 'delivered', d.delivered_at IS NOT NULL,
              'retry_in_s', extract(epoch FROM d.next_retry_at - now()))), '[]')
            FROM webhook_deliveries d" >"$WH_TMP/rows.json"
wh_received a >"$WH_TMP/received.json"
node - "$WH_TMP/rows.json" "$WH_TMP/received.json" "$h1" "$h2" "$h3" "$h4" "$h5" <<'JS' || fail "deliveries differ (above)"
const fs = require('fs');
const [rowsF, recF, h1, h2, h3, h4, h5] = process.argv.slice(2);
const rows = JSON.parse(fs.readFileSync(rowsF, 'utf8'));
const rec = JSON.parse(fs.readFileSync(recF, 'utf8'));
const bad = [];
const ok = (c, m) => { if (!c) bad.push(m); };
const byHook = (h) => rows.filter((r) => r.webhook === Number(h));
ok(rows.length === 7, `${rows.length} rows, want 7`);
for (const h of [h1, h2, h3]) {
  for (const r of byHook(h)) {
    const got = rec.filter((q) => q.deliveryId === r.delivery_id);
    ok(got.length === 1, `${r.delivery_id}: received ${got.length} times`);
    if (got.length !== 1) continue;
    const q = got[0];
    ok(q.valid, `${r.delivery_id}: signature rejected: ${q.reason}`);
    ok(q.method === 'POST', `${r.delivery_id}: method ${q.method}`);
    ok(q.ua === 'NovaRewards-Webhook/1.0', `${r.delivery_id}: user agent ${q.ua}`);
    ok(q.ctype === 'application/json', `${r.delivery_id}: content type ${q.ctype}`);
    ok(Number(q.clen) === q.bodyLen, `${r.delivery_id}: content-length ${q.clen} of ${q.bodyLen}`);
    ok(q.body === JSON.stringify(r.payload), `${r.delivery_id}: body ${q.body} is not ${JSON.stringify(r.payload)}`);
    ok(Math.abs(Number(q.ts) - q.t) < 5000, `${r.delivery_id}: timestamp ${q.ts} far from ${q.t}`);
    ok(r.status === 'success' && r.attempt === 1 && r.http_status === 200 && r.delivered &&
       r.response_body === 'ok' && r.retry_in_s === null, `${r.delivery_id}: row ${JSON.stringify(r)}`);
  }
}
ok(byHook(h1).length === 2 && byHook(h2).length === 2 && byHook(h3).length === 1, 'rows per webhook');
const rd = rows.find((r) => r.event === 'reward.distributed' && r.webhook === Number(h1));
ok(rd && rd.payload.event === 'reward.distributed' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(rd.payload.timestamp),
   `reward.distributed envelope ${JSON.stringify(rd && rd.payload)}`);
const d = rd ? rd.payload.data : {};
ok(d.source === 'issuance' && d.issuanceId === 1 && d.campaignId === 1 && d.merchantId === 1 &&
   d.userId === 1 && d.walletAddress === 'GUSERONE' && d.amount === '12.5000000' && d.txHash === 'aa11',
   `reward.distributed data ${JSON.stringify(d)}`);
// the wrong key: failed attempt 1 with the reason, a retry in ~1m, nothing sent
const four = byHook(h4);
ok(four.length === 1 && four[0].status === 'failed' && four[0].attempt === 1 && four[0].http_status === null &&
   /cannot be decrypted with FIELD_ENCRYPTION_KEY nor FIELD_ENCRYPTION_KEY_PREVIOUS/.test(four[0].response_body) &&
   four[0].retry_in_s > 40 && four[0].retry_in_s < 70, `wrong key row ${JSON.stringify(four)}`);
ok(rec.every((q) => q.name !== 'four'), 'something was sent to webhook four');
// the inactive webhook's row is untouched
const five = byHook(h5);
ok(five.length === 1 && five[0].status === 'pending' && five[0].attempt === 1 && five[0].retry_in_s === null,
   `inactive webhook row ${JSON.stringify(five)}`);
ok(rec.every((q) => q.name !== 'five' && q.name !== 'six' && q.name !== 'seven'), 'sent to five, six or seven');
ok(rec.length === 5, `${rec.length} requests, want 5`);
if (bad.length) { console.error(bad.join('\n')); process.exit(1); }
JS

# No secret, plaintext or key, ever reaches the log; the reason does.
for s in "$s1" "$s2" "$s3" "$s4" "$s5" "$s6" "$WH_KEY" "$WH_KEY_PREV" "$nobody"; do
    ! grep -qF "$s" "$WH_TMP/worker-w1.log" || fail "a secret is in the worker log"
done
grep -q "webhook $h4 (delivery .*): the webhook secret cannot be decrypted" "$WH_TMP/worker-w1.log" ||
    fail "the wrong key is not logged with its reason"

# Later confirmations are picked up by the next scheduled runs alone.
n=$(wh_psql -c "
  BEGIN;
  WITH c AS (UPDATE reward_issuances SET status = 'confirmed', tx_hash = 'bb22' WHERE id = 2
             RETURNING id, tx_hash)
  SELECT nova_worker_webhook_reward_distributed(c.id, c.tx_hash) FROM c;
  COMMIT;")
[ "$n" = 4 ] || fail "second dispatch created $n, want 4"
wh_wait_sql 15 "SELECT count(*) = 3 FROM webhook_deliveries d JOIN nova_worker_webhook_dispatches k
                ON k.delivery_id = d.delivery_id WHERE k.reference = 'issuance:2' AND d.status = 'success'" ||
    fail "the second issuance's deliveries were not delivered by the schedule"
[ "$(wh_psql -c "SELECT payload->'data'->>'userId' IS NULL AND payload->'data'->>'amount' = '3.0000000'
                 FROM webhook_deliveries WHERE payload->'data'->>'issuanceId' = '2' LIMIT 1")" = t ] ||
    fail "issuance 2's data"

# metrics: 8 successes, and the wrong key's attempt scheduled again
[ "$(wh_metric 'nova_webhook_deliveries_total{result="success"}')" = 8 ] ||
    fail "success metric $(wh_metric 'nova_webhook_deliveries_total{result="success"}')"
[ "$(wh_metric 'nova_webhook_deliveries_total{result="retry"}')" = 2 ] ||
    fail "retry metric $(wh_metric 'nova_webhook_deliveries_total{result="retry"}')"

# The schedule is a BullMQ job scheduler on webhook-dispatch.
redis-cli -p "$WH_REDIS_PORT" zscore bull:webhook-dispatch:repeat webhook-deliver | grep -q . ||
    fail "no job scheduler webhook-deliver on webhook-dispatch"

wh_stop_worker w1
wh_no_sanitizer_report
echo "e2e_deliver: PASS"
