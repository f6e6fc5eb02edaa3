#!/bin/bash
# The dispatch of reward.distributed, in SQL (migrations/105_webhook.sql):
# nova_worker_webhook_reward_distributed(issuance, tx hash) and
# nova_worker_webhook_distribution_paid(payment, tx hash), called in the
# transaction that confirms the reward, create one pending delivery per
# active webhook of the campaign's merchant subscribed to the event or to
# '*', and none a second time (a retried confirmation), even from two
# transactions at once; a rolled-back confirmation leaves nothing. The
# migration and both functions work on every Nova database shape in
# tests/fixtures/nova_history/.
set -euo pipefail
WH_SRC=${NOVA_SRCDIR:?NOVA_SRCDIR not set}
WH_BUILD=${NOVA_BUILDDIR:?NOVA_BUILDDIR not set}
. "$WH_SRC/tests/webhook/lib.sh"

fail() {
    echo "e2e_dispatch: FAIL: $*" >&2
    exit 1
}
check() { # check SQL MESSAGE: SQL must answer t
    [ "$(wh_psql -c "$1")" = t ] || fail "$2"
}

wh_setup
wh_config d
wh_migrate d
wh_seed
hex=$(wh_secret)
wh_psql >/dev/null <<SQL
INSERT INTO webhooks (id, merchant_id, url, secret, events, is_active) VALUES
    (1, 1, 'https://m1.example/a', '$hex', '{reward.distributed}', true),
    (2, 1, 'https://m1.example/b', '$hex', '{*}', true),
    (3, 1, 'https://m1.example/c', '$hex', '{campaign.created,reward.distributed}', true),
    (4, 1, 'https://m1.example/d', '$hex', '{campaign.created}', true),
    (5, 1, 'https://m1.example/e', '$hex', '{reward.distributed}', false),
    (6, 2, 'https://m2.example/f', '$hex', '{*}', true);
INSERT INTO reward_issuances (id, idempotency_key, campaign_id, user_id, wallet_address, amount) VALUES
    (10, 'k10', 1, 1, 'GUSERONE', 2.5), (11, 'k11', 1, NULL, 'GUSERTWO', 1),
    (12, 'k12', 1, 2, 'GUSERTWO', 7), (13, 'k13', NULL, 1, 'GUSERONE', 1), (14, 'k14', 2, 3, 'GUSERTHREE', 4);
SQL

# In the confirming statement: webhooks 1, 2 and 3 (not the unsubscribed
# 4, the inactive 5, nor merchant 2's 6).
n=$(wh_psql -c "WITH c AS (UPDATE reward_issuances SET status = 'confirmed', tx_hash = 'h10'
                           WHERE id = 10 AND status = 'pending' RETURNING id, tx_hash)
                SELECT nova_worker_webhook_reward_distributed(c.id, c.tx_hash) FROM c")
[ "$n" = 3 ] || fail "dispatch of issuance 10 created $n deliveries, want 3"
check "SELECT array_agg(webhook_id ORDER BY webhook_id) = '{1,2,3}' FROM webhook_deliveries
       WHERE payload->'data'->>'issuanceId' = '10'" "the webhooks of issuance 10"
check "SELECT bool_and(d.status = 'pending' AND d.attempt = 1 AND d.next_retry_at IS NULL
              AND d.event_type = 'reward.distributed' AND d.delivery_id = k.delivery_id
              AND d.payload->>'event' = 'reward.distributed'
              AND d.payload->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$'
              AND d.payload->'data' = jsonb_build_object('source', 'issuance', 'issuanceId', 10,
                  'campaignId', 1, 'merchantId', 1, 'userId', 1, 'walletAddress', 'GUSERONE',
                  'amount', '2.5000000', 'txHash', 'h10'))
       FROM webhook_deliveries d JOIN nova_worker_webhook_dispatches k
         ON k.webhook_id = d.webhook_id AND k.reference = 'issuance:10'" \
    "the rows of issuance 10: $(wh_psql -c "SELECT webhook_id, status, payload FROM webhook_deliveries")"

# A retried confirmation (same call again, in a new transaction) adds nothing.
for _ in 1 2; do
    n=$(wh_psql -c "SELECT nova_worker_webhook_reward_distributed(10, 'h10')")
    [ "$n" = 0 ] || fail "a second dispatch of issuance 10 created $n"
done
check "SELECT count(*) = 3 FROM webhook_deliveries" "rows after the retries"

# A confirmation that rolls back leaves no event; the one that commits does.
wh_psql -c "BEGIN; SELECT nova_worker_webhook_reward_distributed(11, 'h11'); ROLLBACK;" >/dev/null
check "SELECT count(*) = 0 FROM webhook_deliveries WHERE payload->'data'->>'issuanceId' = '11'" \
    "a rolled-back dispatch left rows"
n=$(wh_psql -c "SELECT nova_worker_webhook_reward_distributed(11, 'h11')")
[ "$n" = 3 ] || fail "issuance 11 after the rollback: $n"
check "SELECT bool_and(payload->'data'->'userId' = 'null'::jsonb AND payload->'data'->>'amount' = '1.0000000')
       FROM webhook_deliveries WHERE payload->'data'->>'issuanceId' = '11'" "issuance 11's data"

# Two transactions dispatching the same issuance at once: one set of rows.
psql -X -q -A -t "$WH_DSN" -c "BEGIN" -c "SELECT nova_worker_webhook_reward_distributed(12, 'h12')" \
    -c "SELECT pg_sleep(1)" -c "COMMIT" >"$WH_TMP/first.out" &
first=$!
sleep 0.3
second=$(wh_psql -c "SELECT nova_worker_webhook_reward_distributed(12, 'h12')")
wait "$first"
[ "$(head -1 "$WH_TMP/first.out")" = 3 ] && [ "$second" = 0 ] ||
    fail "concurrent dispatches: $(head -1 "$WH_TMP/first.out") and $second, want 3 and 0"
check "SELECT count(*) = 3 FROM webhook_deliveries WHERE payload->'data'->>'issuanceId' = '12'" "issuance 12"

# No campaign, no merchant: no event. An unknown issuance: none either.
[ "$(wh_psql -c "SELECT nova_worker_webhook_reward_distributed(13, 'h13')")" = 0 ] || fail "issuance 13"
[ "$(wh_psql -c "SELECT nova_worker_webhook_reward_distributed(999, 'x')")" = 0 ] || fail "issuance 999"
# merchant 2's campaign goes to merchant 2's webhook only
[ "$(wh_psql -c "SELECT nova_worker_webhook_reward_distributed(14, 'h14')")" = 1 ] || fail "issuance 14"
check "SELECT webhook_id = 6 FROM webhook_deliveries WHERE payload->'data'->>'issuanceId' = '14'" "issuance 14's webhook"
# a webhook subscribed later gets the event when it is dispatched again; the others do not
wh_psql -c "UPDATE webhooks SET events = '{*}' WHERE id = 4" >/dev/null
[ "$(wh_psql -c "SELECT nova_worker_webhook_reward_distributed(10, 'h10')")" = 1 ] || fail "webhook 4 later"

# A distribution's payment.
wh_psql -c "INSERT INTO nova_worker_payments (id, reference, kind, campaign_id, queue, job_id,
              destination, asset_code, asset_issuer, amount, status)
            VALUES (50, 'distribution:77:0', 'distribution', 1, 'reward-distribution', '77',
                    'GUSERTWO', 'NOVA', 'GISSUER', 3.25, 'confirmed')" >/dev/null
n=$(wh_psql -c "SELECT nova_worker_webhook_distribution_paid(50, 'h50')")
[ "$n" = 4 ] || fail "distribution payment 50 created $n, want 4"
[ "$(wh_psql -c "SELECT nova_worker_webhook_distribution_paid(50, 'h50')")" = 0 ] || fail "payment 50 twice"
check "SELECT bool_and(payload->'data' = jsonb_build_object('source', 'distribution', 'paymentId', 50,
              'distributionJobId', '77', 'campaignId', 1, 'merchantId', 1, 'userId', 2,
              'walletAddress', 'GUSERTWO', 'amount', '3.2500000', 'txHash', 'h50'))
       FROM webhook_deliveries WHERE payload->'data'->>'paymentId' = '50'" "payment 50's data"

# ---- every Nova shape -------------------------------------------------------------
i=0
for f in "$WH_SRC"/tests/fixtures/nova_history/*.sql "$WH_SRC/tests/fixtures/nova_api_schema.sql"; do
    i=$((i + 1))
    db=shape$i
    psql -X -q "${WH_DSN%/nova}/postgres" -c "CREATE DATABASE $db" >/dev/null
    dsn=${WH_DSN%/nova}/$db
    psql -X -q -v ON_ERROR_STOP=1 "$dsn" -f "$f" >/dev/null 2>"$WH_TMP/$db.err" ||
        fail "$(basename "$f") does not load: $(head -3 "$WH_TMP/$db.err")"
    printf '[postgres]\ndsn = %s\n' "$dsn" >"$WH_TMP/$db.conf"
    "$WH_BUILD/nova-worker" migrate -c "$WH_TMP/$db.conf" --dir "$WH_SRC/migrations" >"$WH_TMP/$db.log" 2>&1 ||
        fail "migrate on $(basename "$f"): $(cat "$WH_TMP/$db.log")"
    out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 "$dsn" 2>&1 <<SQL
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM campaigns) THEN
        INSERT INTO campaigns (merchant_id, name, reward_rate, start_date, end_date,
                               token_amount, reward_per_action)
        SELECT min(id), 'shape test', 1, CURRENT_DATE - 1, CURRENT_DATE + 1, 10, 1 FROM merchants;
    END IF;
END \$\$;
INSERT INTO webhooks (merchant_id, url, secret, events)
    SELECT merchant_id, 'https://shape.example/hook', '$hex', '{reward.distributed}'
    FROM campaigns ORDER BY id LIMIT 1;
INSERT INTO reward_issuances (idempotency_key, campaign_id, wallet_address, amount)
    SELECT 'shape-key', id, 'GSHAPEWALLET', 5 FROM campaigns ORDER BY id LIMIT 1;
SELECT count(*) FROM webhooks w JOIN (SELECT merchant_id FROM campaigns ORDER BY id LIMIT 1) c
    USING (merchant_id) WHERE w.is_active AND ('reward.distributed' = ANY (w.events) OR '*' = ANY (w.events));
SELECT nova_worker_webhook_reward_distributed(id, 'hs') FROM reward_issuances WHERE idempotency_key = 'shape-key';
SELECT nova_worker_webhook_reward_distributed(id, 'hs') FROM reward_issuances WHERE idempotency_key = 'shape-key';
INSERT INTO nova_worker_payments (reference, kind, campaign_id, destination, asset_code, asset_issuer, amount)
    SELECT 'distribution:shape:0', 'distribution', id, 'GSHAPEWALLET', 'NOVA', 'GISSUER', 1
    FROM campaigns ORDER BY id LIMIT 1;
SELECT nova_worker_webhook_distribution_paid(id, 'hp') FROM nova_worker_payments WHERE reference = 'distribution:shape:0';
SELECT nova_worker_webhook_distribution_paid(id, 'hp') FROM nova_worker_payments WHERE reference = 'distribution:shape:0';
SELECT count(*) FROM webhook_deliveries d JOIN nova_worker_webhook_dispatches k USING (delivery_id)
    WHERE d.status = 'pending' AND d.attempt = 1;
SQL
    ) || fail "$(basename "$f"): $out"
    set -- $out
    [ "$#" = 6 ] && [ "$1" -ge 1 ] && [ "$2" = "$1" ] && [ "$3" = 0 ] && [ "$4" = "$1" ] &&
        [ "$5" = 0 ] && [ "$6" = $(($1 * 2)) ] ||
        fail "$(basename "$f"): the dispatch answered $(echo "$out" | tr '\n' ' ')"
    echo "$(basename "$f"): $1 webhook(s) subscribed, each dispatched once"
done
[ "$i" -ge 9 ] || fail "only $i Nova shapes"
echo "e2e_dispatch: PASS ($i Nova shapes)"
