-- Rows for the reports e2e tests, in the schema `nova-worker migrate` makes:
-- names with commas, double quotes, newlines and non-ASCII; amounts with 7
-- decimals; timestamps with microseconds (node-pg keeps milliseconds,
-- truncated); JSONB metadata with nested objects, integer-like keys (which
-- JavaScript puts first) and numbers JSON.parse rewrites; rows over the last
-- 12 days, some yesterday (UTC) for the scheduled runs.
INSERT INTO merchants (id, name, wallet_address, business_category, api_key) VALUES
    (1, 'Café "Zürich", Ltd', 'GMERCHANT0000000000000000000000000000000000000000000001', 'food', 'k1'),
    (2, E'Line\nBreak Store', 'GMERCHANT0000000000000000000000000000000000000000000002', NULL, 'k2'),
    (3, 'Plain Merchant', 'GMERCHANT0000000000000000000000000000000000000000000003', 'retail', 'k3'),
    (4, '日本の店, 東京 🍣', 'GMERCHANT0000000000000000000000000000000000000000000004', 'food', 'k4');
SELECT setval('merchants_id_seq', 4);

INSERT INTO campaigns (id, merchant_id, name, reward_rate, start_date, end_date, is_active,
                       created_at, token_amount, reward_per_action) VALUES
    (1, 1, 'Summer, "hot" deals', 1.5, '2024-06-01', '2024-09-01', true,
     now() - interval '40 days 3 hours 0.123456 seconds', 100, 1),
    (2, 1, E'Multi\nline\r\ncampaign', 0.0000001, '2024-01-01', '2030-12-31', false,
     now() - interval '20 days 0.999999 seconds', 5.5, 2.25),
    (3, 2, 'Ünïcödé ✓', 123456789.1234567, '2023-12-31', '2024-01-01', NULL,
     now() - interval '5 days', 1, 1),
    (4, 3, 'Plain', 2, '2025-02-28', '2025-03-01', true, now() - interval '1 day', 10, 1),
    (5, 4, '東京, "quoted"', 3, '1999-01-01', '2000-01-01', true, now() - interval '3 hours', 7, 7);
SELECT setval('campaigns_id_seq', 5);

INSERT INTO users (id, wallet_address, created_at, referred_by, is_deleted, first_name)
SELECT g, 'GUSER' || lpad(g::text, 51, '0'),
       now() - (g * interval '37 hours') - (g * interval '0.000123 seconds'),
       CASE WHEN g > 3 AND g % 4 = 0 THEN g - 3 END, g % 9 = 0,
       CASE WHEN g % 5 = 0 THEN E'Zoë, "the"\nfirst' END
FROM generate_series(1, 40) g;
SELECT setval('users_id_seq', 40);

INSERT INTO transactions (tx_hash, tx_type, amount, from_wallet, to_wallet, merchant_id,
                          campaign_id, stellar_ledger, created_at, user_id, status,
                          reference_tx_hash, refund_reason, metadata, reconciled_at)
SELECT md5('tx' || g),
       (ARRAY['distribution', 'redemption', 'transfer', 'refund'])[1 + g % 4],
       round((g * 12.3456789)::numeric % 1000, 7) + CASE WHEN g % 7 = 0 THEN 1000000 ELSE 0.0000001 END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'GFROM' || lpad(g::text, 51, '0') END,
       'GTO' || lpad(g::text, 53, '0'),
       CASE WHEN g % 11 = 0 THEN NULL ELSE 1 + (g / 2) % 4 END,
       CASE WHEN g % 6 = 0 THEN NULL ELSE 1 + g % 5 END,
       CASE WHEN g % 2 = 0 THEN 1000000 + g END,
       now() - (g * interval '53 minutes') - (g * interval '0.000777 seconds'),
       1 + g % 40,
       (ARRAY['pending', 'completed', 'failed', 'refunded', 'reconciled'])[1 + g % 5],
       CASE WHEN g % 13 = 0 THEN md5('ref' || g) END,
       CASE WHEN g % 10 = 0 THEN E'wrong item, "damaged"\nsecond line ü' END,
       CASE g % 5
           WHEN 0 THEN '{}'::jsonb
           WHEN 1 THEN jsonb_build_object('note', E'a,b "q"\nline', 'n', g)
           WHEN 2 THEN '{"10": 1, "2": [1.50, 2e3, true, null, 0.1], "b": {"z": 1, "a": 2}, "é": "日本"}'::jsonb
           WHEN 3 THEN '{"big": 12345678901234567890, "small": 1e-7, "neg": -0.0, "x": 1.0e21}'::jsonb
           ELSE jsonb_build_object('tab', E'\t', 'ctl', E'\u0001', 'quote', '"')
       END,
       CASE WHEN g % 8 = 0 THEN now() - (g * interval '50 minutes') END
FROM generate_series(1, 320) g;
