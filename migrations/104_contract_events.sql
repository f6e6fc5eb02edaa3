-- 104_contract_events: what the contract_events plugin needs of Nova's
-- contract_events table (docs/plugins/contract_events.md).
--
-- * event_id TEXT: the RPC's event id ("%019d-%010d", unique on a
--   network), with a unique index, so a page written twice (replayed after
--   a crash, or by a second indexer) inserts nothing the second time. A new
--   nullable column: the API's rows keep NULL, which a unique index allows
--   any number of times.
-- * event_type: Nova's CHECK allowed only mint, claim, stake and unstake,
--   so the "tag:name" types its own contracts emit (nova_rwd:staked) failed
--   with 23514. That CHECK is dropped and contract_events_event_type_format
--   added: one or two lower-case parts of [a-z0-9_]{1,32} joined by ':'.
--   The four legacy types match it, so every row the old CHECK let in
--   satisfies the new one (it is validated when added; on a table that had
--   no such CHECK and holds other types it is added NOT VALID, checking new
--   rows only). The column keeps its type, VARCHAR(50).
--
-- The API reads the table with SELECT * by id and paginated: it sees one
-- more column and every row as before. Nothing else changes: no other
-- column, index, trigger or row.
-- Runs inside one transaction (nova-worker migrate).

ALTER TABLE contract_events ADD COLUMN IF NOT EXISTS event_id TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS idx_contract_events_event_id ON contract_events (event_id);

DO $do$
DECLARE
    c record;
BEGIN
    -- Nova's CHECK (event_type IN ('mint', 'claim', 'stake', 'unstake')),
    -- whatever its name: a CHECK on event_type alone that lists the types.
    FOR c IN
        SELECT k.conname FROM pg_constraint k
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        WHERE k.conrelid = 'contract_events'::regclass AND k.contype = 'c'
          AND cardinality(k.conkey) = 1 AND a.attname = 'event_type'
          AND k.conname <> 'contract_events_event_type_format'
          AND pg_get_constraintdef(k.oid) LIKE '%''mint''%'
          AND pg_get_constraintdef(k.oid) LIKE '%''unstake''%'
    LOOP
        EXECUTE format('ALTER TABLE contract_events DROP CONSTRAINT %I', c.conname);
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'contract_events'::regclass
                   AND conname = 'contract_events_event_type_format') THEN
        IF EXISTS (SELECT 1 FROM contract_events
                   WHERE event_type !~ '^[a-z0-9_]{1,32}(:[a-z0-9_]{1,32})?$') THEN
            ALTER TABLE contract_events ADD CONSTRAINT contract_events_event_type_format
                CHECK (event_type ~ '^[a-z0-9_]{1,32}(:[a-z0-9_]{1,32})?$') NOT VALID;
        ELSE
            ALTER TABLE contract_events ADD CONSTRAINT contract_events_event_type_format
                CHECK (event_type ~ '^[a-z0-9_]{1,32}(:[a-z0-9_]{1,32})?$');
        END IF;
    END IF;
END
$do$;
