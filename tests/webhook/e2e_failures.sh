#!/bin/bash
# End to end: receivers that answer 500, hang past the timeout, reset the
# connection, redirect, or sit at a refused address.
#   A. Each failed attempt is recorded in Nova's columns (attempt,
#      http_status, response_body as its first 1000 characters,
#      next_retry_at) and retried after retry_delays[attempt - 1] (every
#      delay used, none skipped), with a new x-nova-timestamp and the same
#      x-nova-delivery-id; after the max_attempts retries (here 3: attempts
#      1 to 4, each of the 3 delays used once) the row is failed for good
#      (next_retry_at NULL), with a metric and a log line. Redirects are not
#      followed; nothing is ever sent to a refused address (a private IP, a
#      name resolving to loopback, the metadata address). A flaky endpoint
#      gets its delivery at attempt 3.
#   B. An endpoint failing breaker_threshold times in a row is paused: no
#      request for breaker_cooldown, then one probe; a failed probe pauses
#      it again, a successful one closes the breaker and the backlog flows.
#      Other endpoints are not held up.
# Throughout: every delivery is received exactly as many times as the
# attempts recorded on its row.
set -euo pipefail
WH_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
WH_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$WH_SRC/tests/webhook/lib.sh"

fail() {
    echo "e2e_failures: FAIL: $*" >&2
    exit 1
}

wh_setup
wh_start_receiver a 127.0.0.2      # the endpoints
wh_start_receiver target 127.0.0.2 # where the redirect points
wh_start_receiver private 127.0.0.3
wh_start_receiver local 127.0.0.1
WH_METRICS_PORT=$(nova_free_port)
wh_config A "allow_networks = 127.0.0.2/32" "schedule = every 1s" "retry_delays = 1s, 2s, 3s" \
    "retry_jitter = 0" "max_attempts = 3" "breaker_threshold = 0" "timeout = 1s"
wh_migrate A
wh_seed

base="http://127.0.0.2:$WH_RPORT_a/hook"
declare -A hook
add() { # add NAME URL MODE
    local s
    s=$(wh_secret)
    wh_mode "$1" "$3"
    hook[$1]=$(wh_hook "$1" "$(wh_encrypt "$WH_KEY" "$s")" "$s" "$2" '{*}')
    wh_psql -c "INSERT INTO webhook_deliveries (webhook_id, event_type, payload) VALUES
                (${hook[$1]}, 'campaign.created', jsonb_build_object('event', 'campaign.created',
                 'timestamp', '2026-01-01T00:00:00.000Z', 'data', jsonb_build_object('hook', '$1')))"
}
add f500 "$base/f500" status-500
add hang "$base/hang" hang-3000
add reset "$base/reset" reset
add redirect "$base/redirect" "redirect-http://127.0.0.2:$WH_RPORT_target/hook/target"
add private "http://127.0.0.3:$WH_RPORT_private/hook/private" ok
add byname "http://localhost:$WH_RPORT_local/hook/byname" ok
add metadata "http://169.254.169.254/latest/meta-data/" ok
add flaky "$base/flaky" status-503

wh_start_worker A
# flaky answers again after its second attempt
for _ in $(seq 200); do
    [ "$(grep -c '"name":"flaky"' "$WH_TMP/receiver-a.log")" -ge 2 ] && break
    sleep 0.1
done
wh_mode flaky ok
wh_wait_sql 60 "SELECT count(*) = 0 FROM webhook_deliveries
                WHERE status = 'pending' OR (status = 'failed' AND next_retry_at IS NOT NULL)" ||
    fail "deliveries not final after 60 s: $(wh_psql -c "SELECT webhook_id, status, attempt, next_retry_at FROM webhook_deliveries")"
sleep 1.5

rows_json() {
    wh_psql -c "SELECT coalesce(json_agg(json_build_object('webhook', w.url, 'name',
                  d.payload->'data'->>'hook', 'delivery_id', d.delivery_id, 'status', d.status,
                  'attempt', d.attempt, 'http_status', d.http_status, 'response_body',
                  d.response_body, 'next_retry_at', d.next_retry_at, 'delivered',
                  d.delivered_at IS NOT NULL) ORDER BY d.id), '[]')
                FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
}
rows_json >"$WH_TMP/rows.json"
wh_received a >"$WH_TMP/a.json"
for r in target private local; do
    [ ! -s "$WH_TMP/receiver-$r.log" ] || fail "something was sent to the $r receiver: $(cat "$WH_TMP/receiver-$r.log")"
done
node - "$WH_TMP/rows.json" "$WH_TMP/a.json" <<'JS' || fail "phase A (above)"
const fs = require('fs');
const rows = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const rec = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const bad = [];
const ok = (c, m) => { if (!c) bad.push(m); };
const row = (n) => rows.find((r) => r.name === n);
const sent = (n) => rec.filter((q) => q.deliveryId === row(n).delivery_id);
const final = (n, status) => {
  const r = row(n);
  ok(r.status === 'failed' && r.attempt === 4 && r.next_retry_at === null && !r.delivered,
     `${n}: not failed for good after 4 attempts: ${JSON.stringify(r)}`);
  ok(status === undefined || r.http_status === status, `${n}: http_status ${r.http_status}, want ${status}`);
};
// 500: four attempts, 1 s, 2 s and 3 s apart (each delay used), new timestamps
final('f500', 500);
ok(row('f500').response_body === '€'.repeat(1000), `f500: response_body keeps ${row('f500').response_body.length} characters`);
const f = sent('f500');
ok(f.length === 4, `f500: received ${f.length} times, want 4`);
ok(f.every((q) => q.valid && q.name === 'f500'), 'f500: a signature did not verify');
const want = [1000, 2000, 3000];
for (let i = 1; i < f.length; i++) {
  const gap = f[i].t - f[i - 1].t;
  ok(gap >= want[i - 1] - 150 && gap <= want[i - 1] + 4000, `f500: gap ${i} is ${gap} ms, want ~${want[i - 1]}`);
  ok(Number(f[i].ts) > Number(f[i - 1].ts), 'f500: x-nova-timestamp not renewed');
}
final('hang', null);
ok(/timed out/.test(row('hang').response_body), `hang: ${row('hang').response_body}`);
ok(sent('hang').length === 4, `hang: received ${sent('hang').length} times`);
final('reset', null);
ok(/connection broken|reply|reset/i.test(row('reset').response_body), `reset: ${row('reset').response_body}`);
ok(sent('reset').length === 4, `reset: received ${sent('reset').length} times`);
final('redirect', 302);
ok(row('redirect').response_body === 'redirect not followed', `redirect: ${row('redirect').response_body}`);
ok(sent('redirect').length === 4, 'redirect: attempts');
for (const [n, re] of [['private', /outbound guard: address 127\.0\.0\.3 is loopback/],
                       ['byname', /outbound guard: address (127\.0\.0\.1|::1) is loopback/],
                       ['metadata', /outbound guard: address 169\.254\.169\.254 is link-local/]]) {
  final(n, null);
  ok(re.test(row(n).response_body), `${n}: ${row(n).response_body}`);
}
const fl = row('flaky');
ok(fl.status === 'success' && fl.attempt === 3 && fl.http_status === 200 && fl.delivered && fl.next_retry_at === null,
   `flaky: ${JSON.stringify(fl)}`);
ok(sent('flaky').length === 3, `flaky: received ${sent('flaky').length} times`);
// once per attempt, every row
for (const r of rows) {
  const n = rec.filter((q) => q.deliveryId === r.delivery_id).length;
  const reachable = !['private', 'byname', 'metadata'].includes(r.name);
  ok(n === (reachable ? r.attempt : 0), `${r.name}: received ${n} times for ${r.attempt} attempts`);
}
if (bad.length) { console.error(bad.join('\n')); process.exit(1); }
JS
grep -q 'failed for good after 4 attempts' "$WH_TMP/worker-A.log" || fail "no log line for the final failure"
[ "$(wh_metric 'nova_webhook_deliveries_total{result="failed"}')" = 7 ] ||
    fail "failed metric: $(wh_metric 'nova_webhook_deliveries_total{result="failed"}')"
[ "$(wh_metric 'nova_webhook_deliveries_total{result="success"}')" = 1 ] || fail "success metric"
wh_stop_worker A

# ---- B. the circuit breaker ---------------------------------------------------
wh_config B "allow_networks = 127.0.0.2/32" "schedule = every 1s" "retry_delays = 1s" \
    "retry_jitter = 0" "max_attempts = 20" "breaker_threshold = 3" "breaker_cooldown = 3s" \
    "timeout = 1s" "endpoint_concurrency = 1"
sb=$(wh_secret)
wh_mode sick status-503
sick=$(wh_hook sick "$(wh_encrypt "$WH_KEY" "$sb")" "$sb" "$base/sick" '{*}')
healthy=$(wh_hook healthy "$(wh_encrypt "$WH_KEY" "$sb")" "$sb" "$base/healthy" '{*}')
wh_psql -c "INSERT INTO webhook_deliveries (webhook_id, event_type, payload)
            SELECT h, 'campaign.created', jsonb_build_object('event', 'campaign.created',
                   'timestamp', '2026-01-01T00:00:00.000Z', 'data', jsonb_build_object('n', g))
            FROM generate_series(1, 5) g, (VALUES ($sick), ($healthy)) v(h)"
: >"$WH_TMP/receiver-a.log.before"
before=$(wc -l <"$WH_TMP/receiver-a.log")
wh_start_worker B
wh_wait_sql 20 "SELECT consecutive_failures >= 3 AND open_until > now()
                FROM nova_worker_webhook_breakers WHERE webhook_id = $sick" ||
    fail "the breaker did not open after 3 failures"
# the first probe, after the cooldown, fails: paused again
wh_wait_sql 20 "SELECT consecutive_failures >= 4 FROM nova_worker_webhook_breakers WHERE webhook_id = $sick" ||
    fail "no probe after the cooldown"
wh_mode sick ok
wh_wait_sql 30 "SELECT count(*) = 0 FROM webhook_deliveries WHERE webhook_id = $sick AND status <> 'success'" ||
    fail "the sick endpoint's backlog was not delivered after it recovered"
[ "$(wh_psql -c "SELECT consecutive_failures = 0 AND open_until IS NULL FROM nova_worker_webhook_breakers
                 WHERE webhook_id = $sick")" = t ] || fail "the breaker is not closed"
[ "$(wh_psql -c "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $healthy AND status = 'success'
                 AND attempt = 1")" = 5 ] || fail "the healthy endpoint was held up"
tail -n +"$((before + 1))" "$WH_TMP/receiver-a.log" >"$WH_TMP/receiver-b.log"
wh_received b >"$WH_TMP/b.json"
rows_json >"$WH_TMP/rows.json"
node - "$WH_TMP/rows.json" "$WH_TMP/b.json" <<'JS' || fail "phase B (above)"
const fs = require('fs');
const rows = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const rec = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const bad = [];
const ok = (c, m) => { if (!c) bad.push(m); };
const sick = rec.filter((q) => q.name === 'sick');
ok(sick.every((q) => q.valid), 'a signature did not verify');
// requests 1-3 fail (503), then the breaker is open for 3 s; request 4 is
// the lone probe, which fails; 3 s later request 5 is the next probe
ok(sick.length >= 5, `only ${sick.length} requests to the sick endpoint`);
if (sick.length >= 5) {
  ok(sick.slice(0, 4).every((q) => q.mode === 'status-503'), 'the first four requests were not 503s');
  const g3 = sick[3].t - sick[2].t, g4 = sick[4].t - sick[3].t;
  ok(g3 >= 2850, `the first probe came ${g3} ms after the breaker opened, before the 3 s cooldown`);
  ok(g4 >= 2850, `the second probe came ${g4} ms after the failed probe`);
}
for (const r of rows.filter((r) => /\/hook\/(sick|healthy)$/.test(r.webhook))) {
  const n = rec.filter((q) => q.deliveryId === r.delivery_id).length;
  ok(r.status === 'success' && n === r.attempt, `${r.webhook}: received ${n} times for ${r.attempt} attempts (${r.status})`);
}
if (bad.length) { console.error(bad.join('\n')); process.exit(1); }
JS
grep -q "webhook $sick: circuit breaker opened after 3 failures in a row" "$WH_TMP/worker-B.log" ||
    fail "no log line for the breaker opening"
grep -q "webhook $sick: circuit breaker stays open (probe failed)" "$WH_TMP/worker-B.log" ||
    fail "no log line for the failed probe"
grep -q "webhook $sick: circuit breaker closed" "$WH_TMP/worker-B.log" || fail "no log line for closing"
[ "$(wh_metric 'nova_webhook_breaker_transitions_total{state="open"}')" = 2 ] ||
    fail "breaker open metric: $(wh_metric 'nova_webhook_breaker_transitions_total{state="open"}')"
[ "$(wh_metric 'nova_webhook_breaker_transitions_total{state="closed"}')" = 1 ] || fail "breaker closed metric"
wh_stop_worker B
wh_no_sanitizer_report
echo "e2e_failures: PASS"
