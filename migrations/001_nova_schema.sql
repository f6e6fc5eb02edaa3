-- 001_nova_schema: the tables nova-worker shares with the Nova API, in the
-- shape the API's repositories use (reference: nova-rewards-system.md §5).
--
-- Safe on an empty database and on one the API's own migrations built:
-- tables are created only when absent, columns the workers rely on are
-- added only when absent (nullable or defaulted, so existing rows are
-- fine), and an index is created only when no index with its name or its
-- exact key already exists. Nothing the API created is altered or dropped.
-- Runs inside one transaction (nova-worker migrate); no BEGIN/COMMIT here.

-- Creates idx on tbl(cols) [WHERE pred] unless an index of that name, or a
-- non-partial index with the same key, is already there.
CREATE FUNCTION pg_temp.nova_ensure_index(tbl regclass, idx text, cols text,
                                          pred text DEFAULT NULL, is_unique boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    IF to_regclass(quote_ident(idx)) IS NOT NULL THEN
        RETURN;
    END IF;
    IF pred IS NULL AND EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = tbl AND i.indpred IS NULL
          AND substring(pg_get_indexdef(i.indexrelid) FROM ' USING (.*)$') = 'btree (' || cols || ')'
    ) THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE %sINDEX %I ON %s (%s)%s',
                   CASE WHEN is_unique THEN 'UNIQUE ' ELSE '' END, idx, tbl, cols,
                   CASE WHEN pred IS NULL THEN '' ELSE ' WHERE ' || pred END);
END
$fn$;

-- ---- merchants -------------------------------------------------------------
CREATE TABLE IF NOT EXISTS merchants (
    id                SERIAL PRIMARY KEY,
    name              VARCHAR(255) NOT NULL,
    wallet_address    VARCHAR(56)  NOT NULL UNIQUE,
    business_category VARCHAR(100),
    api_key           VARCHAR(64)  NOT NULL UNIQUE,
    created_at        TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- ---- users -----------------------------------------------------------------
CREATE TABLE IF NOT EXISTS users (
    id                       SERIAL PRIMARY KEY,
    wallet_address           VARCHAR(56) NOT NULL UNIQUE,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    referred_by              INT REFERENCES users (id),
    referral_bonus_claimed   BOOLEAN DEFAULT false,
    referred_at              TIMESTAMPTZ,
    first_name               VARCHAR(100),
    last_name                VARCHAR(100),
    bio                      TEXT,
    stellar_public_key       VARCHAR(56),
    is_deleted               BOOLEAN NOT NULL DEFAULT false,
    deleted_at               TIMESTAMPTZ,
    role                     VARCHAR(20) NOT NULL DEFAULT 'user',
    email                    TEXT,
    last_login_at            TIMESTAMPTZ,
    daily_bonus_granted_at   TIMESTAMPTZ,
    notification_preferences JSONB NOT NULL DEFAULT '{}'::jsonb
);
-- Columns the daily bonus and leaderboard jobs read, on databases where
-- the later API migrations did not run.
ALTER TABLE users ADD COLUMN IF NOT EXISTS referred_by INT REFERENCES users (id);
ALTER TABLE users ADD COLUMN IF NOT EXISTS is_deleted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN IF NOT EXISTS deleted_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN IF NOT EXISTS last_login_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN IF NOT EXISTS daily_bonus_granted_at TIMESTAMPTZ;
SELECT pg_temp.nova_ensure_index('users', 'idx_users_referred_by', 'referred_by');
SELECT pg_temp.nova_ensure_index('users', 'idx_users_is_deleted', 'is_deleted');
SELECT pg_temp.nova_ensure_index('users', 'idx_users_role', 'role');

-- ---- campaigns -------------------------------------------------------------
CREATE TABLE IF NOT EXISTS campaigns (
    id                   SERIAL PRIMARY KEY,
    merchant_id          INT NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    name                 VARCHAR(255) NOT NULL,
    reward_rate          NUMERIC(18, 7) NOT NULL CHECK (reward_rate > 0),
    start_date           DATE NOT NULL,
    end_date             DATE NOT NULL CHECK (end_date > start_date),
    is_active            BOOLEAN DEFAULT true,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    contract_campaign_id VARCHAR(255),
    tx_hash              VARCHAR(255),
    on_chain_status      VARCHAR(50) NOT NULL DEFAULT 'pending',
    deleted_at           TIMESTAMPTZ,
    token_amount         NUMERIC(18, 7) NOT NULL CHECK (token_amount > 0),
    reward_per_action    NUMERIC(18, 7) NOT NULL CHECK (reward_per_action > 0)
);
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS deleted_at TIMESTAMPTZ;
SELECT pg_temp.nova_ensure_index('campaigns', 'idx_campaigns_merchant_id', 'merchant_id');
SELECT pg_temp.nova_ensure_index('campaigns', 'idx_campaigns_on_chain_status', 'on_chain_status');

-- ---- reward_issuances ------------------------------------------------------
CREATE TABLE IF NOT EXISTS reward_issuances (
    id              SERIAL PRIMARY KEY,
    idempotency_key VARCHAR(255) NOT NULL,
    campaign_id     INT REFERENCES campaigns (id) ON DELETE SET NULL,
    user_id         INT REFERENCES users (id) ON DELETE SET NULL,
    wallet_address  VARCHAR(56) NOT NULL,
    amount          NUMERIC(20, 7) NOT NULL,
    status          VARCHAR(20) NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'confirmed', 'failed')),
    tx_hash         VARCHAR(255),
    error_message   TEXT,
    attempts        INT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_reward_issuances_idempotency_key UNIQUE (idempotency_key)
);
SELECT pg_temp.nova_ensure_index('reward_issuances', 'idx_reward_issuances_campaign_id', 'campaign_id');
SELECT pg_temp.nova_ensure_index('reward_issuances', 'idx_reward_issuances_user_id', 'user_id');
SELECT pg_temp.nova_ensure_index('reward_issuances', 'idx_reward_issuances_status', 'status');

-- Dead-letter record of issuances (the API's knex migration, rarely run).
CREATE TABLE IF NOT EXISTS reward_issuance_failures (
    id               SERIAL PRIMARY KEY,
    job_id           VARCHAR(64) NOT NULL UNIQUE,
    payload          JSONB NOT NULL,
    error            TEXT,
    attempts         INT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    reprocessed_at   TIMESTAMPTZ,
    reprocess_job_id VARCHAR(64)
);
SELECT pg_temp.nova_ensure_index('reward_issuance_failures', 'idx_failures_pending',
                                 'created_at, reprocessed_at');

-- ---- point_transactions and user_balance -----------------------------------
CREATE TABLE IF NOT EXISTS point_transactions (
    id               SERIAL PRIMARY KEY,
    user_id          INT NOT NULL REFERENCES users (id),
    type             VARCHAR(50) NOT NULL
                     CHECK (type IN ('earned', 'redeemed', 'expired', 'bonus', 'referral')),
    amount           INTEGER NOT NULL CHECK (amount <> 0),
    description      TEXT,
    referred_user_id INT REFERENCES users (id),
    campaign_id      INT REFERENCES campaigns (id),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    uuid             UUID NOT NULL DEFAULT gen_random_uuid(),
    balance_before   INT NOT NULL DEFAULT 0,
    balance_after    INT NOT NULL DEFAULT 0 CHECK (balance_after >= 0)
);
SELECT pg_temp.nova_ensure_index('point_transactions', 'idx_point_transactions_user_id', 'user_id');
SELECT pg_temp.nova_ensure_index('point_transactions', 'idx_point_transactions_type', 'type');
SELECT pg_temp.nova_ensure_index('point_transactions', 'idx_point_transactions_created_at', 'created_at');
SELECT pg_temp.nova_ensure_index('point_transactions', 'idx_point_transactions_referred_user_id',
                                 'referred_user_id');
SELECT pg_temp.nova_ensure_index('point_transactions', 'idx_point_transactions_uuid', 'uuid',
                                 NULL, true);
SELECT pg_temp.nova_ensure_index('point_transactions', 'idx_pt_campaign_created',
                                 'campaign_id, created_at');
SELECT pg_temp.nova_ensure_index('point_transactions', 'idx_pt_earned_user_created',
                                 'user_id, created_at', $$type = 'earned'$$);
SELECT pg_temp.nova_ensure_index('point_transactions', 'idx_pt_redeemed_user_created',
                                 'user_id, created_at', $$type = 'redeemed'$$);

CREATE TABLE IF NOT EXISTS user_balance (
    user_id    INT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    balance    INT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every inserted point transaction leaves user_balance at its balance_after.
-- The API may already have the function and trigger: keep theirs then.
DO $do$
BEGIN
    IF to_regproc('sync_user_balance') IS NULL THEN
        CREATE FUNCTION sync_user_balance() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            INSERT INTO user_balance (user_id, balance, updated_at)
            VALUES (NEW.user_id, NEW.balance_after, now())
            ON CONFLICT (user_id)
            DO UPDATE SET balance = EXCLUDED.balance, updated_at = EXCLUDED.updated_at;
            RETURN NEW;
        END
        $fn$;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'point_transactions'::regclass
                     AND tgname = 'trg_sync_user_balance') THEN
        CREATE TRIGGER trg_sync_user_balance AFTER INSERT ON point_transactions
            FOR EACH ROW EXECUTE FUNCTION sync_user_balance();
    END IF;
END
$do$;

-- ---- transactions ----------------------------------------------------------
CREATE TABLE IF NOT EXISTS transactions (
    id                SERIAL PRIMARY KEY,
    tx_hash           VARCHAR(64) NOT NULL UNIQUE,
    tx_type           VARCHAR(20) NOT NULL
                      CHECK (tx_type IN ('distribution', 'redemption', 'transfer', 'refund')),
    amount            NUMERIC(18, 7) NOT NULL,
    from_wallet       VARCHAR(56),
    to_wallet         VARCHAR(56),
    merchant_id       INT REFERENCES merchants (id),
    campaign_id       INT REFERENCES campaigns (id),
    stellar_ledger    INT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    user_id           INT REFERENCES users (id),
    status            VARCHAR(20) NOT NULL DEFAULT 'completed'
                      CHECK (status IN ('pending', 'completed', 'failed', 'refunded', 'reconciled')),
    reference_tx_hash VARCHAR(64),
    refund_reason     TEXT,
    metadata          JSONB NOT NULL DEFAULT '{}'::jsonb,
    reconciled_at     TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_from_wallet', 'from_wallet');
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_to_wallet', 'to_wallet');
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_user_created',
                                 'user_id, created_at DESC');
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_tx_type', 'tx_type');
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_created_at', 'created_at');
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_status', 'status');
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_reference_tx_hash',
                                 'reference_tx_hash');
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_merchant_status_created',
                                 'merchant_id, status, created_at DESC');
SELECT pg_temp.nova_ensure_index('transactions', 'idx_transactions_user_status_created',
                                 'user_id, status, created_at DESC');

-- ---- outbound webhooks -----------------------------------------------------
CREATE TABLE IF NOT EXISTS webhooks (
    id          SERIAL PRIMARY KEY,
    merchant_id INT NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT[] NOT NULL DEFAULT '{}',
    is_active   BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
SELECT pg_temp.nova_ensure_index('webhooks', 'idx_webhooks_merchant', 'merchant_id');
SELECT pg_temp.nova_ensure_index('webhooks', 'idx_webhooks_active', 'is_active', 'is_active');

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id            SERIAL PRIMARY KEY,
    webhook_id    INT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type    VARCHAR(60) NOT NULL,
    payload       JSONB NOT NULL,
    status        VARCHAR(20) NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'success', 'failed')),
    http_status   INT,
    response_body TEXT,
    attempt       SMALLINT NOT NULL DEFAULT 1,
    next_retry_at TIMESTAMPTZ,
    delivered_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivery_id   UUID NOT NULL DEFAULT gen_random_uuid()
);
ALTER TABLE webhook_deliveries
    ADD COLUMN IF NOT EXISTS delivery_id UUID NOT NULL DEFAULT gen_random_uuid();
SELECT pg_temp.nova_ensure_index('webhook_deliveries', 'idx_wd_delivery_id', 'delivery_id',
                                 NULL, true);
SELECT pg_temp.nova_ensure_index('webhook_deliveries', 'idx_wd_webhook', 'webhook_id');
SELECT pg_temp.nova_ensure_index('webhook_deliveries', 'idx_wd_status', 'status');
SELECT pg_temp.nova_ensure_index('webhook_deliveries', 'idx_wd_retry', 'next_retry_at',
                                 $$status = 'failed' AND next_retry_at IS NOT NULL$$);

-- ---- contract events -------------------------------------------------------
-- The event_type CHECK is the API's (legacy types only); relaxing it for
-- namespaced tag:name types is the API team's migration to make.
CREATE TABLE IF NOT EXISTS contract_events (
    id               SERIAL PRIMARY KEY,
    contract_id      VARCHAR(64) NOT NULL,
    event_type       VARCHAR(50) NOT NULL
                     CHECK (event_type IN ('mint', 'claim', 'stake', 'unstake')),
    event_data       JSONB NOT NULL,
    transaction_hash VARCHAR(64),
    ledger_sequence  INT,
    processed_at     TIMESTAMPTZ,
    retry_count      INT DEFAULT 0,
    status           VARCHAR(20) DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processed', 'failed')),
    error_message    TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
SELECT pg_temp.nova_ensure_index('contract_events', 'idx_contract_events_contract_id', 'contract_id');
SELECT pg_temp.nova_ensure_index('contract_events', 'idx_contract_events_event_type', 'event_type');
SELECT pg_temp.nova_ensure_index('contract_events', 'idx_contract_events_status', 'status');
SELECT pg_temp.nova_ensure_index('contract_events', 'idx_contract_events_created_at', 'created_at');
SELECT pg_temp.nova_ensure_index('contract_events', 'idx_contract_events_processed_at',
                                 'processed_at');

CREATE TABLE IF NOT EXISTS contract_event_cursors (
    contract_id VARCHAR(64) PRIMARY KEY,
    cursor      TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- ---- audit_logs ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS audit_logs (
    id           SERIAL PRIMARY KEY,
    entity_type  VARCHAR(50) NOT NULL,
    entity_id    INT,
    action       VARCHAR(100) NOT NULL,
    performed_by INT REFERENCES users (id),
    details      JSONB,
    source       VARCHAR(255),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    before_state JSONB,
    after_state  JSONB,
    actor_type   VARCHAR(20) DEFAULT 'user'
                 CHECK (actor_type IN ('user', 'admin', 'merchant', 'system')),
    ip_address   INET,
    user_agent   TEXT,
    http_method  VARCHAR(10),
    endpoint     TEXT,
    status_code  SMALLINT,
    duration_ms  INT,
    merchant_id  INT REFERENCES merchants (id)
);
-- The webhook job writes these three; older API databases lack them.
ALTER TABLE audit_logs ADD COLUMN IF NOT EXISTS before_state JSONB;
ALTER TABLE audit_logs ADD COLUMN IF NOT EXISTS after_state JSONB;
ALTER TABLE audit_logs ADD COLUMN IF NOT EXISTS actor_type VARCHAR(20) DEFAULT 'user';
SELECT pg_temp.nova_ensure_index('audit_logs', 'idx_audit_logs_entity', 'entity_type, entity_id');
SELECT pg_temp.nova_ensure_index('audit_logs', 'idx_audit_logs_created_at', 'created_at');

DROP FUNCTION pg_temp.nova_ensure_index(regclass, text, text, text, boolean);
