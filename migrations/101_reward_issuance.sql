-- 101_reward_issuance: the reward_issuance plugin's own state.
--
-- Builds on 002_worker_payments (nova_worker_payments: one row per
-- recipient payment; nova_worker_stellar_txs: one row per signed
-- envelope). This adds the source-account lanes: one row per hot account
-- that pays, holding the lease that makes one worker of the fleet its
-- only submitter, and the sequence number that worker tracks.
-- Runs inside one transaction (nova-worker migrate).

CREATE TABLE IF NOT EXISTS nova_worker_lanes (
    source_account VARCHAR(56) PRIMARY KEY,
    -- Who submits for this account: "<worker name>/<pid>/<random>". Valid
    -- while lease_until is in the future; renewed by its owner, taken over
    -- by another worker only after it lapsed.
    owner          TEXT,
    lease_until    TIMESTAMPTZ,
    -- The sequence number the next new envelope uses (account sequence + 1),
    -- NULL until loaded from Horizon. Advanced only when an envelope is
    -- known to be in a ledger (successful or failed).
    next_seq       BIGINT,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The lane reads its open envelopes by source account and status.
CREATE INDEX IF NOT EXISTS idx_nova_worker_stellar_txs_source_open
    ON nova_worker_stellar_txs (source_account, id) WHERE status IN ('prepared', 'submitted');

-- Batches are claimed oldest first among pending payments.
CREATE INDEX IF NOT EXISTS idx_nova_worker_payments_pending
    ON nova_worker_payments (id) WHERE status = 'pending';
