\set aid random(1, :rows)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
