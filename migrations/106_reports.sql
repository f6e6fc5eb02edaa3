-- 106_reports: what the reports plugin reads that older Nova databases lack.
--
-- Nova's user report counts referrals (users.referred_by IS NOT NULL). The
-- column comes with Nova's referral migration; a database from before it
-- gets it here, empty (NULL: nobody referred), exactly as Nova defines it,
-- so the report runs and reports 0 referrals, which is the truth there.
-- Nothing else changes; a database that has the column keeps it as it is.
--
-- Runs inside one transaction (nova-worker migrate).

ALTER TABLE users ADD COLUMN IF NOT EXISTS referred_by INT REFERENCES users (id);
CREATE INDEX IF NOT EXISTS idx_users_referred_by ON users (referred_by);
