-- 002_worker_payments: nova-worker's own bookkeeping for exactly-once work.
--
-- A Stellar payment is made durable before it is submitted: the signed
-- envelope, its hash, source account, sequence number and max time are
-- committed in nova_worker_stellar_txs first. After a timeout, a 5xx or a
-- crash the same envelope is resubmitted and its hash looked up; a new
-- envelope (a new row) is built only once the old one is past max_time
-- and provably not in the ledger. One transaction may carry up to 100
-- payment operations (nova_worker_payments rows, one per recipient).
-- Runs inside one transaction (nova-worker migrate).

CREATE TABLE IF NOT EXISTS nova_worker_stellar_txs (
    id              BIGSERIAL PRIMARY KEY,
    source_account  VARCHAR(56) NOT NULL,
    sequence        BIGINT NOT NULL,
    tx_hash         CHAR(64) NOT NULL UNIQUE,      -- lowercase hex
    envelope_xdr    TEXT NOT NULL,                 -- signed, base64
    max_time        TIMESTAMPTZ NOT NULL,          -- time bound: after it, never valid
    fee_stroops     BIGINT NOT NULL,
    memo            TEXT,
    status          VARCHAR(20) NOT NULL DEFAULT 'prepared'
                    CHECK (status IN ('prepared', 'submitted', 'confirmed', 'failed', 'expired')),
    result_code     VARCHAR(64),                   -- e.g. tx_bad_seq, op_no_trust
    ledger          INT,
    submit_attempts INT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    submitted_at    TIMESTAMPTZ,
    resolved_at     TIMESTAMPTZ
);
-- The resolver scans only unresolved envelopes, oldest first.
CREATE INDEX IF NOT EXISTS idx_nova_worker_stellar_txs_open
    ON nova_worker_stellar_txs (created_at) WHERE status IN ('prepared', 'submitted');
CREATE INDEX IF NOT EXISTS idx_nova_worker_stellar_txs_source_seq
    ON nova_worker_stellar_txs (source_account, sequence);

CREATE TABLE IF NOT EXISTS nova_worker_payments (
    id             BIGSERIAL PRIMARY KEY,
    -- What this payment settles, unique so a retried job finds its row:
    -- 'issuance:<reward_issuances.id>' or 'distribution:<job id>:<index>'.
    reference      VARCHAR(255) NOT NULL UNIQUE,
    kind           VARCHAR(20) NOT NULL CHECK (kind IN ('issuance', 'distribution')),
    issuance_id    INT REFERENCES reward_issuances (id) ON DELETE SET NULL,
    campaign_id    INT,
    queue          VARCHAR(255),
    job_id         VARCHAR(255),
    destination    VARCHAR(56) NOT NULL,
    asset_code     VARCHAR(12) NOT NULL,
    asset_issuer   VARCHAR(56) NOT NULL,
    amount         NUMERIC(20, 7) NOT NULL CHECK (amount > 0),
    stellar_tx_id  BIGINT REFERENCES nova_worker_stellar_txs (id),
    op_index       SMALLINT,                       -- position in the transaction
    status         VARCHAR(20) NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'prepared', 'submitted', 'confirmed', 'failed')),
    error_message  TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at   TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_nova_worker_payments_tx ON nova_worker_payments (stellar_tx_id);
CREATE INDEX IF NOT EXISTS idx_nova_worker_payments_issuance ON nova_worker_payments (issuance_id);
CREATE INDEX IF NOT EXISTS idx_nova_worker_payments_open
    ON nova_worker_payments (created_at) WHERE status IN ('pending', 'prepared', 'submitted');

-- Jobs whose database effect was applied, keyed by BullMQ queue and job
-- id, written in the same transaction as the effect (points credits):
-- a retried job finds its row and returns the stored result instead.
CREATE TABLE IF NOT EXISTS nova_worker_processed_jobs (
    queue      VARCHAR(255) NOT NULL,
    job_id     VARCHAR(255) NOT NULL,
    result     JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, job_id)
);
CREATE INDEX IF NOT EXISTS idx_nova_worker_processed_jobs_created
    ON nova_worker_processed_jobs (created_at);
