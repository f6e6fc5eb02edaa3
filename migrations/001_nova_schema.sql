-- 001_nova_schema: the tables nova-worker shares with the Nova API
-- (reference: nova-rewards-system.md §5).
--
-- Nova's databases come in many shapes: its migration files conflict and
-- its two runners apply different subsets of them (§5.1). This file works
-- on an empty database and on a database at any of those levels:
--
--   * A missing table is created in Nova's intended final shape (§5.2),
--     with Nova's own index names, so the API finds what it expects and a
--     later Nova migration skips it (CREATE ... IF NOT EXISTS).
--   * A table that exists keeps its shape. It only gains the columns the
--     workers read or write that some Nova level lacks, each nullable or
--     with a default, so every existing row stays valid and keeps its
--     values. No index, constraint or trigger is added to an existing
--     table, except a unique index on a column added here
--     (webhook_deliveries.delivery_id). No existing column is altered or
--     dropped: one of another type stays (point_transactions.user_id in the
--     wallet-keyed shape of Nova's 006, webhooks.secret VARCHAR(64)).
--   * Nothing else of the API's is touched: not its schema_migrations
--     (nova-worker records itself in nova_worker_migrations), not its
--     other tables, functions or triggers, not a single row.
--
-- migrate: idempotent
-- Runs inside one transaction (nova-worker migrate); no BEGIN/COMMIT here.

-- ---- merchants (Nova 001) ---------------------------------------------------
CREATE TABLE IF NOT EXISTS merchants (
    id                SERIAL PRIMARY KEY,
    name              VARCHAR(255) NOT NULL,
    wallet_address    VARCHAR(56)  NOT NULL UNIQUE,
    business_category VARCHAR(100),
    api_key           VARCHAR(64)  NOT NULL UNIQUE,
    created_at        TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- ---- users (Nova 002, 006, 008, 009, 017, 019) ------------------------------
DO $do$
BEGIN
    IF to_regclass('users') IS NULL THEN
        CREATE TABLE users (
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
            notification_preferences JSONB NOT NULL DEFAULT '{"rewards":true,"redemptions":true,'
                '"campaigns":false,"referrals":true,"system":false}'
        );
        CREATE INDEX IF NOT EXISTS idx_users_referred_by ON users (referred_by);
        CREATE INDEX IF NOT EXISTS idx_users_is_deleted ON users (is_deleted);
        CREATE INDEX IF NOT EXISTS idx_users_role ON users (role);
    END IF;
END
$do$;
-- The daily login bonus selects on these (Nova adds them in 006 and 009).
-- Existing users read is_deleted = false, as Nova's 006 gives them.
ALTER TABLE users ADD COLUMN IF NOT EXISTS is_deleted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN IF NOT EXISTS last_login_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN IF NOT EXISTS daily_bonus_granted_at TIMESTAMPTZ;

-- ---- campaigns (Nova 003, 005, 018, 022) ------------------------------------
DO $do$
BEGIN
    IF to_regclass('campaigns') IS NULL THEN
        CREATE TABLE campaigns (
            id                   SERIAL PRIMARY KEY,
            merchant_id          INT NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
            name                 VARCHAR(255) NOT NULL,
            reward_rate          NUMERIC(18, 7) NOT NULL CHECK (reward_rate > 0),
            start_date           DATE NOT NULL,
            end_date             DATE NOT NULL CHECK (end_date > start_date),
            is_active            BOOLEAN DEFAULT true,
            created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at           TIMESTAMPTZ DEFAULT now(),
            contract_campaign_id VARCHAR(255),
            tx_hash              VARCHAR(255),
            on_chain_status      VARCHAR(50) NOT NULL DEFAULT 'pending',
            deleted_at           TIMESTAMPTZ,
            token_amount         NUMERIC(18, 7) NOT NULL CHECK (token_amount > 0),
            reward_per_action    NUMERIC(18, 7) NOT NULL CHECK (reward_per_action > 0)
        );
        CREATE INDEX IF NOT EXISTS idx_campaigns_merchant_id ON campaigns (merchant_id);
        CREATE INDEX IF NOT EXISTS idx_campaigns_on_chain_status ON campaigns (on_chain_status);
    END IF;
END
$do$;
-- Reward issuance skips deleted campaigns (the column comes with Nova's 018).
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS deleted_at TIMESTAMPTZ;

-- ---- reward_issuances (Nova 019) --------------------------------------------
DO $do$
BEGIN
    IF to_regclass('reward_issuances') IS NULL THEN
        CREATE TABLE reward_issuances (
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
        CREATE INDEX IF NOT EXISTS idx_reward_issuances_campaign ON reward_issuances (campaign_id);
        CREATE INDEX IF NOT EXISTS idx_reward_issuances_user ON reward_issuances (user_id);
        CREATE INDEX IF NOT EXISTS idx_reward_issuances_status ON reward_issuances (status);
    END IF;
END
$do$;

-- Dead-letter record of issuances (Nova's knex migration, which nothing runs).
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
CREATE INDEX IF NOT EXISTS idx_failures_pending
    ON reward_issuance_failures (created_at, reprocessed_at);

-- ---- point_transactions and user_balance (Nova 010, 011, 012, 019) ----------
-- user_balance comes with Nova's 012, together with the trigger that
-- copies each point transaction's balance_after into it.
CREATE TABLE IF NOT EXISTS user_balance (
    user_id    INT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    balance    INT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Three Nova files create point_transactions and the first to run wins
-- (§5.1): 006 keys it by wallet, 007 has NUMERIC points, 010 is the
-- intended one. Whichever exists is kept; the worker columns it lacks are
-- added below. The balance trigger is created only on a table created
-- here, never on the API's: on Nova's 006 shape it would break the API's
-- own inserts, and before Nova's 012 the API keeps no user_balance.
DO $do$
BEGIN
    IF to_regclass('point_transactions') IS NULL THEN
        CREATE TABLE point_transactions (
            id               SERIAL PRIMARY KEY,
            user_id          INT NOT NULL REFERENCES users (id),
            type             VARCHAR(50) NOT NULL CONSTRAINT point_transactions_type_check
                             CHECK (type IN ('earned', 'redeemed', 'expired', 'bonus', 'referral')),
            amount           INTEGER NOT NULL CONSTRAINT point_transactions_amount_nonzero
                             CHECK (amount <> 0),
            description      TEXT,
            referred_user_id INT REFERENCES users (id),
            campaign_id      INT REFERENCES campaigns (id),
            created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
            uuid             UUID NOT NULL DEFAULT gen_random_uuid(),
            balance_before   INT NOT NULL DEFAULT 0,
            balance_after    INT NOT NULL DEFAULT 0
                             CONSTRAINT point_transactions_balance_after_nonneg
                             CHECK (balance_after >= 0)
        );
        CREATE INDEX IF NOT EXISTS idx_point_transactions_user_id ON point_transactions (user_id);
        CREATE INDEX IF NOT EXISTS idx_point_transactions_type ON point_transactions (type);
        CREATE INDEX IF NOT EXISTS idx_point_transactions_created_at
            ON point_transactions (created_at);
        CREATE INDEX IF NOT EXISTS idx_point_transactions_referred_user
            ON point_transactions (referred_user_id);
        CREATE UNIQUE INDEX IF NOT EXISTS idx_point_transactions_uuid ON point_transactions (uuid);
        CREATE INDEX IF NOT EXISTS idx_pt_campaign_created
            ON point_transactions (campaign_id, created_at);
        CREATE INDEX IF NOT EXISTS idx_pt_campaign_earned
            ON point_transactions (campaign_id, created_at) WHERE type = 'earned';
        CREATE INDEX IF NOT EXISTS idx_pt_campaign_redeemed
            ON point_transactions (campaign_id, created_at) WHERE type = 'redeemed';

        -- Every inserted point transaction leaves user_balance at its
        -- balance_after. An API function of that name is kept as it is.
        IF to_regprocedure('sync_user_balance()') IS NULL THEN
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
        CREATE TRIGGER trg_sync_user_balance AFTER INSERT ON point_transactions
            FOR EACH ROW EXECUTE FUNCTION sync_user_balance();
    END IF;
END
$do$;
-- What the inbound-action credit, the daily bonus and the leaderboard
-- write and read, missing from the 006 and 007 shapes (and the balances
-- from 010's). They arrive without constraints; rows that predate them
-- read NULL, or 0 for the balances as Nova's 011 gives them.
ALTER TABLE point_transactions ADD COLUMN IF NOT EXISTS type VARCHAR(50);
ALTER TABLE point_transactions ADD COLUMN IF NOT EXISTS amount INTEGER;
ALTER TABLE point_transactions ADD COLUMN IF NOT EXISTS description TEXT;
ALTER TABLE point_transactions ADD COLUMN IF NOT EXISTS referred_user_id INT;
ALTER TABLE point_transactions ADD COLUMN IF NOT EXISTS campaign_id INT;
ALTER TABLE point_transactions ADD COLUMN IF NOT EXISTS balance_before INT NOT NULL DEFAULT 0;
ALTER TABLE point_transactions ADD COLUMN IF NOT EXISTS balance_after INT NOT NULL DEFAULT 0;

-- ---- transactions (Nova 004, 007, 015) --------------------------------------
-- No worker writes it (§5.2); created only so that an empty database gets
-- the whole shared schema. An existing one is left exactly as it is.
DO $do$
BEGIN
    IF to_regclass('transactions') IS NULL THEN
        CREATE TABLE transactions (
            id                SERIAL PRIMARY KEY,
            tx_hash           VARCHAR(64) NOT NULL UNIQUE,
            tx_type           VARCHAR(20) NOT NULL CONSTRAINT transactions_tx_type_check
                              CHECK (tx_type IN ('distribution', 'redemption', 'transfer',
                                                 'refund')),
            amount            NUMERIC(18, 7) NOT NULL,
            from_wallet       VARCHAR(56),
            to_wallet         VARCHAR(56),
            merchant_id       INT REFERENCES merchants (id),
            campaign_id       INT REFERENCES campaigns (id),
            stellar_ledger    INT,
            created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
            user_id           INT REFERENCES users (id),
            status            VARCHAR(20) NOT NULL DEFAULT 'completed'
                              CONSTRAINT transactions_status_check
                              CHECK (status IN ('pending', 'completed', 'failed', 'refunded',
                                                'reconciled')),
            reference_tx_hash VARCHAR(64),
            refund_reason     TEXT,
            metadata          JSONB NOT NULL DEFAULT '{}'::jsonb,
            reconciled_at     TIMESTAMPTZ,
            updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS idx_transactions_from_wallet ON transactions (from_wallet);
        CREATE INDEX IF NOT EXISTS idx_transactions_to_wallet ON transactions (to_wallet);
        CREATE INDEX IF NOT EXISTS idx_transactions_user_created
            ON transactions (user_id, created_at DESC);
        CREATE INDEX IF NOT EXISTS idx_transactions_type ON transactions (tx_type);
        CREATE INDEX IF NOT EXISTS idx_transactions_created_at ON transactions (created_at);
        CREATE INDEX IF NOT EXISTS idx_transactions_status ON transactions (status);
        CREATE INDEX IF NOT EXISTS idx_transactions_reference_tx_hash
            ON transactions (reference_tx_hash);
        CREATE INDEX IF NOT EXISTS idx_transactions_merchant_status_created
            ON transactions (merchant_id, status, created_at DESC);
        CREATE INDEX IF NOT EXISTS idx_transactions_user_status_created
            ON transactions (user_id, status, created_at DESC);
    END IF;
END
$do$;

-- ---- outbound webhooks (Nova 016, 017, 019) ---------------------------------
DO $do$
BEGIN
    IF to_regclass('webhooks') IS NULL THEN
        CREATE TABLE webhooks (
            id          SERIAL PRIMARY KEY,
            merchant_id INT NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
            url         TEXT NOT NULL,
            secret      TEXT NOT NULL,
            events      TEXT[] NOT NULL DEFAULT '{}',
            is_active   BOOLEAN NOT NULL DEFAULT true,
            created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS idx_webhooks_merchant ON webhooks (merchant_id);
        CREATE INDEX IF NOT EXISTS idx_webhooks_active ON webhooks (is_active)
            WHERE is_active = true;
    END IF;
END
$do$;

DO $do$
BEGIN
    IF to_regclass('webhook_deliveries') IS NULL THEN
        CREATE TABLE webhook_deliveries (
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
        CREATE INDEX IF NOT EXISTS idx_wd_webhook ON webhook_deliveries (webhook_id);
        CREATE INDEX IF NOT EXISTS idx_wd_status ON webhook_deliveries (status);
        CREATE INDEX IF NOT EXISTS idx_wd_retry ON webhook_deliveries (next_retry_at)
            WHERE status = 'failed' AND next_retry_at IS NOT NULL;
        CREATE UNIQUE INDEX IF NOT EXISTS idx_wd_delivery_id ON webhook_deliveries (delivery_id);
    END IF;
    -- The stable x-nova-delivery-id (Nova's 017): each existing delivery
    -- gets its own UUID, unique like Nova's index on it.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'webhook_deliveries'::regclass
                     AND attname = 'delivery_id' AND NOT attisdropped) THEN
        ALTER TABLE webhook_deliveries
            ADD COLUMN delivery_id UUID NOT NULL DEFAULT gen_random_uuid();
        CREATE UNIQUE INDEX IF NOT EXISTS idx_wd_delivery_id ON webhook_deliveries (delivery_id);
    END IF;
END
$do$;

-- ---- contract events (Nova 008, 020) ----------------------------------------
-- The event_type CHECK is the API's (legacy types only); relaxing it for
-- namespaced tag:name types is the API team's migration to make.
DO $do$
BEGIN
    IF to_regclass('contract_events') IS NULL THEN
        CREATE TABLE contract_events (
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
        CREATE INDEX IF NOT EXISTS idx_contract_events_contract_id ON contract_events (contract_id);
        CREATE INDEX IF NOT EXISTS idx_contract_events_type ON contract_events (event_type);
        CREATE INDEX IF NOT EXISTS idx_contract_events_status ON contract_events (status);
        CREATE INDEX IF NOT EXISTS idx_contract_events_created_at ON contract_events (created_at);
        CREATE INDEX IF NOT EXISTS idx_contract_events_processed_at
            ON contract_events (processed_at);
    END IF;
END
$do$;

CREATE TABLE IF NOT EXISTS contract_event_cursors (
    contract_id VARCHAR(64) PRIMARY KEY,
    cursor      TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- ---- audit_logs (Nova 015, 018) ---------------------------------------------
DO $do$
BEGIN
    IF to_regclass('audit_logs') IS NULL THEN
        CREATE TABLE audit_logs (
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
                         CONSTRAINT chk_audit_actor_type
                         CHECK (actor_type IN ('user', 'admin', 'merchant', 'system')),
            ip_address   INET,
            user_agent   TEXT,
            http_method  VARCHAR(10),
            endpoint     VARCHAR(500),
            status_code  SMALLINT,
            duration_ms  INT,
            merchant_id  INT REFERENCES merchants (id) ON DELETE SET NULL
        );
        CREATE INDEX IF NOT EXISTS idx_audit_logs_entity ON audit_logs (entity_type, entity_id);
        CREATE INDEX IF NOT EXISTS idx_audit_logs_performed_by ON audit_logs (performed_by);
        CREATE INDEX IF NOT EXISTS idx_audit_logs_created_at ON audit_logs (created_at);
    END IF;
END
$do$;
-- The inbound-action credit writes one row per credit (after_state and
-- actor_type come with Nova's 018; older rows read actor_type 'user', as
-- Nova's 018 gives them).
ALTER TABLE audit_logs ADD COLUMN IF NOT EXISTS after_state JSONB;
ALTER TABLE audit_logs ADD COLUMN IF NOT EXISTS actor_type VARCHAR(20) DEFAULT 'user';
