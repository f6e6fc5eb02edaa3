-- 103_leaderboard: the index behind the leaderboard plugin's two queries.
--
-- Each refresh sums the 'earned' point_transactions per user: the weekly
-- list those of the last 7 days (created_at >= now() - 7 days), the
-- all-time list all of them. This partial index holds exactly those rows,
-- keyed by created_at and carrying user_id and amount, so the weekly query
-- is an index-only range scan and the all-time one an index-only scan of
-- the earned rows instead of the whole table.
--
-- point_transactions is the API's table. The index is a worker index
-- (idx_nova_worker_*): plain, never unique, so it changes no behaviour of
-- the API's statements. It is made only when the table has the four
-- columns it covers (Nova's wallet-keyed 006 shape gets type and amount
-- from 001; a shape that still lacks one gets no index, and the plugin's
-- required_columns check refuses to start instead).
--
-- Runs inside one transaction (nova-worker migrate), so the index is built
-- with a plain CREATE INDEX, which blocks writes to point_transactions while
-- it is built. On a large table, build it beforehand without blocking, under
-- the same name, and this file then leaves it as it is:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_nova_worker_pt_earned
--       ON point_transactions (created_at) INCLUDE (user_id, amount)
--       WHERE type = 'earned';

DO $do$
BEGIN
    IF to_regclass('point_transactions') IS NOT NULL
       AND (SELECT count(*) FROM information_schema.columns
            WHERE table_schema = current_schema()
              AND table_name = 'point_transactions'
              AND column_name IN ('type', 'created_at', 'user_id', 'amount')) = 4 THEN
        CREATE INDEX IF NOT EXISTS idx_nova_worker_pt_earned
            ON point_transactions (created_at) INCLUDE (user_id, amount)
            WHERE type = 'earned';
    END IF;
END
$do$;
