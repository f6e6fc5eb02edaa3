-- 105_webhook: the webhook plugin's own state, and the dispatch of
-- reward.distributed events into Nova's webhook_deliveries.
--
-- Nova's tables are used as they are: webhook_deliveries is the work list
-- (status, attempt, next_retry_at, http_status, response_body,
-- delivered_at, delivery_id) and webhooks the endpoints. Nothing is added
-- to them; the worker keeps its own state in two tables of its own:
--
--   nova_worker_webhook_breakers    one row per endpoint that failed: the
--                                   consecutive failures and, while the
--                                   circuit breaker is open, until when.
--   nova_worker_webhook_dispatches  one row per (webhook, event, source
--                                   reference) ever dispatched: the
--                                   idempotency key that makes a retried
--                                   confirmation create no second delivery.
--
-- docs/plugins/webhook.md describes the protocol.
-- Runs inside one transaction (nova-worker migrate).

CREATE TABLE IF NOT EXISTS nova_worker_webhook_breakers (
    webhook_id           INT PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    -- failed attempts in a row, reset by a success
    consecutive_failures INT NOT NULL DEFAULT 0,
    -- while in the future the endpoint gets no delivery (open, or one probe
    -- in flight); NULL or past with consecutive_failures >= the threshold:
    -- the next claim sends one probe
    open_until           TIMESTAMPTZ,
    opened_at            TIMESTAMPTZ,
    last_error           TEXT,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS nova_worker_webhook_dispatches (
    webhook_id  INT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type  VARCHAR(60) NOT NULL,
    -- what the event is about: 'issuance:<reward_issuances.id>' or
    -- 'payment:<nova_worker_payments.id>'
    reference   VARCHAR(255) NOT NULL,
    -- webhook_deliveries.delivery_id of the row created for it
    delivery_id UUID NOT NULL DEFAULT gen_random_uuid(),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (webhook_id, event_type, reference)
);

-- reward.distributed for a confirmed issuance: one pending delivery for
-- every active webhook of the campaign's merchant whose events hold
-- 'reward.distributed' or '*'. Returns how many deliveries it created;
-- called again for the same issuance (a retried confirmation) it creates
-- none for the webhooks that already have theirs. Call it in the
-- transaction (or statement) that marks the issuance confirmed, so the
-- event exists exactly when the confirmation does. The issuance's amount,
-- wallet and campaign are read from its row; the hash is passed in, as the
-- confirming statement's own update is not visible to it.
CREATE OR REPLACE FUNCTION nova_worker_webhook_reward_distributed(p_issuance_id int,
                                                                  p_tx_hash text)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
    v_created int;
BEGIN
    WITH ev AS (
        SELECT c.merchant_id,
               jsonb_build_object(
                   'event', 'reward.distributed',
                   'timestamp', to_char(now() AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'data', jsonb_build_object(
                       'source', 'issuance',
                       'issuanceId', ri.id,
                       'campaignId', ri.campaign_id,
                       'merchantId', c.merchant_id,
                       'userId', ri.user_id,
                       'walletAddress', ri.wallet_address,
                       'amount', ri.amount::text,
                       'txHash', p_tx_hash)) AS payload
        FROM reward_issuances ri
        JOIN campaigns c ON c.id = ri.campaign_id
        WHERE ri.id = p_issuance_id),
    marked AS (
        INSERT INTO nova_worker_webhook_dispatches (webhook_id, event_type, reference)
        SELECT w.id, 'reward.distributed', 'issuance:' || p_issuance_id
        FROM webhooks w
        JOIN ev ON w.merchant_id = ev.merchant_id
        WHERE w.is_active
          AND ('reward.distributed' = ANY (w.events) OR '*' = ANY (w.events))
        ORDER BY w.id
        ON CONFLICT DO NOTHING
        RETURNING webhook_id, delivery_id),
    created AS (
        INSERT INTO webhook_deliveries (webhook_id, event_type, payload, delivery_id)
        SELECT m.webhook_id, 'reward.distributed', ev.payload, m.delivery_id
        FROM marked m CROSS JOIN ev
        RETURNING 1)
    SELECT count(*) INTO v_created FROM created;
    RETURN v_created;
END
$fn$;

-- reward.distributed for one confirmed payment of a distribution
-- (nova_worker_payments row of kind 'distribution'): the same, with the
-- payment's campaign, recipient and amount. Idempotent per payment.
CREATE OR REPLACE FUNCTION nova_worker_webhook_distribution_paid(p_payment_id bigint,
                                                                 p_tx_hash text)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
    v_created int;
BEGIN
    WITH ev AS (
        SELECT c.merchant_id,
               jsonb_build_object(
                   'event', 'reward.distributed',
                   'timestamp', to_char(now() AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'data', jsonb_build_object(
                       'source', 'distribution',
                       'paymentId', p.id,
                       'distributionJobId', p.job_id,
                       'campaignId', p.campaign_id,
                       'merchantId', c.merchant_id,
                       'userId', (SELECT u.id FROM users u
                                  WHERE u.wallet_address = p.destination
                                  ORDER BY u.id LIMIT 1),
                       'walletAddress', p.destination,
                       'amount', p.amount::text,
                       'txHash', p_tx_hash)) AS payload
        FROM nova_worker_payments p
        JOIN campaigns c ON c.id = p.campaign_id
        WHERE p.id = p_payment_id AND p.kind = 'distribution'),
    marked AS (
        INSERT INTO nova_worker_webhook_dispatches (webhook_id, event_type, reference)
        SELECT w.id, 'reward.distributed', 'payment:' || p_payment_id
        FROM webhooks w
        JOIN ev ON w.merchant_id = ev.merchant_id
        WHERE w.is_active
          AND ('reward.distributed' = ANY (w.events) OR '*' = ANY (w.events))
        ORDER BY w.id
        ON CONFLICT DO NOTHING
        RETURNING webhook_id, delivery_id),
    created AS (
        INSERT INTO webhook_deliveries (webhook_id, event_type, payload, delivery_id)
        SELECT m.webhook_id, 'reward.distributed', ev.payload, m.delivery_id
        FROM marked m CROSS JOIN ev
        RETURNING 1)
    SELECT count(*) INTO v_created FROM created;
    RETURN v_created;
END
$fn$;
