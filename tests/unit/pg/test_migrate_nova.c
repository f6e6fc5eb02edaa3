/*
 * test_migrate_nova - `nova-worker migrate` on databases the Nova API built
 * at each of its historic schema levels, against a real PostgreSQL 15.
 *
 * Each file in tests/fixtures/nova_history/ reproduces one level of Nova's
 * migrations 001..024 as its runners left them (the comment at its top
 * names the Nova files), with sample rows and, but for docker-compose's
 * init, Nova's schema_migrations. For each level: load it into a fresh
 * database, take a snapshot, run the code `nova-worker migrate` runs, then
 * check that
 *   - it succeeded and recorded every shipped migration;
 *   - every table that was there still has its columns (type, NOT NULL,
 *     default), its rows with their values, its constraints, triggers and
 *     indexes; a new index or constraint on it may only cover columns that
 *     migrate added, except a worker index (idx_nova_worker_*: plain, on
 *     columns that exist); schema_migrations included, and a missing one
 *     stays missing; no function that was there changed. One constraint
 *     may change (relaxed, below): Nova's CHECK on contract_events.event_type
 *     gives way to a wider one that every row satisfies;
 *   - the columns the workers use exist: the required_columns of the
 *     reward_issuance, leaderboard, daily_bonus and contract_events plugins,
 *     read from the built plugins, and those the other jobs use (nova-rewards-system.md
 *     §5.2);
 *   - the statements the jobs issue run (changes rolled back);
 *   - a second run applies nothing and changes nothing.
 */
#include "config.h"

#include <check.h>

#include "unit/testutil.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "common/conf.h"
#include "core/loader.h"
#include "pg/cmd_migrate.h"
#include "lib/pg_server.h"

/* The levels, oldest first; the last is the API's final shape with its own
 * index names (also used by test_migrate). */
static const char *const levels[] = {
    "tests/fixtures/nova_history/01_create_001_004.sql",
    "tests/fixtures/nova_history/02_migrate_js_001_005.sql",
    "tests/fixtures/nova_history/03_docker_init_005.sql",
    "tests/fixtures/nova_history/04_wallet_point_transactions_006.sql",
    "tests/fixtures/nova_history/05_rewards_contract_events_008.sql",
    "tests/fixtures/nova_history/06_webhooks_016.sql",
    "tests/fixtures/nova_history/07_reward_issuances_019.sql",
    "tests/fixtures/nova_history/08_final_024.sql",
    "tests/fixtures/nova_api_schema.sql",
};
#define NLEVELS ((int)(sizeof levels / sizeof levels[0]))

/* Columns the jobs other than reward issuance read or write (§2.4, §3.1,
 * §3.2, §4, §7 of nova-rewards-system.md, tables as in §5.2). */
static const char *const job_columns[] = {
    "users.id",
    "users.wallet_address",
    "users.is_deleted",
    "users.last_login_at",
    "users.daily_bonus_granted_at",
    "campaigns.id",
    "point_transactions.id",
    "point_transactions.user_id",
    "point_transactions.type",
    "point_transactions.amount",
    "point_transactions.description",
    "point_transactions.referred_user_id",
    "point_transactions.campaign_id",
    "point_transactions.created_at",
    "point_transactions.balance_before",
    "point_transactions.balance_after",
    "user_balance.user_id",
    "user_balance.balance",
    "audit_logs.entity_type",
    "audit_logs.entity_id",
    "audit_logs.action",
    "audit_logs.actor_type",
    "audit_logs.source",
    "audit_logs.after_state",
    "audit_logs.details",
    "webhooks.id",
    "webhooks.url",
    "webhooks.secret",
    "webhooks.events",
    "webhooks.is_active",
    "webhook_deliveries.id",
    "webhook_deliveries.webhook_id",
    "webhook_deliveries.event_type",
    "webhook_deliveries.payload",
    "webhook_deliveries.status",
    "webhook_deliveries.http_status",
    "webhook_deliveries.response_body",
    "webhook_deliveries.attempt",
    "webhook_deliveries.next_retry_at",
    "webhook_deliveries.delivered_at",
    "webhook_deliveries.delivery_id",
    "contract_events.contract_id",
    "contract_events.event_type",
    "contract_events.event_data",
    "contract_events.transaction_hash",
    "contract_events.ledger_sequence",
    "contract_events.processed_at",
    "contract_events.retry_count",
    "contract_events.status",
    "contract_events.error_message",
    "contract_events.created_at",
    "contract_event_cursors.contract_id",
    "contract_event_cursors.cursor",
    "contract_event_cursors.updated_at",
    "reward_issuance_failures.job_id",
    "reward_issuance_failures.payload",
    "reward_issuance_failures.error",
    "reward_issuance_failures.attempts",
    "reward_issuance_failures.reprocessed_at",
    "reward_issuance_failures.reprocess_job_id",
    NULL,
};

/* Statements as the jobs issue them; each must run on every level. Writes
 * are rolled back, so the snapshot comparisons stay exact. */
static const char *const job_statements[] = {
    /* reward issuance: count the attempt, read issuance, campaign, payment */
    "BEGIN; WITH u AS (UPDATE reward_issuances SET attempts = attempts + 1, updated_at = now() "
    "WHERE id = 1 RETURNING id, status, wallet_address, amount, tx_hash, user_id) "
    "SELECT u.status, u.wallet_address, (u.amount * 10000000)::bigint, u.tx_hash, u.user_id, "
    "c.merchant_id, (c.id IS NOT NULL AND c.is_active IS TRUE AND c.end_date >= CURRENT_DATE "
    "AND c.deleted_at IS NULL), p.id, p.status, (SELECT us.id FROM users us WHERE "
    "us.wallet_address = u.wallet_address LIMIT 1) FROM u LEFT JOIN campaigns c ON c.id = 1 "
    "LEFT JOIN nova_worker_payments p ON p.reference = 'issuance:' || u.id; "
    "UPDATE reward_issuances SET status = 'failed', error_message = 'Campaign is inactive or "
    "expired', updated_at = now() WHERE id = 1 AND status <> 'confirmed'; ROLLBACK",
    "BEGIN; INSERT INTO reward_issuance_failures (job_id, payload, error, attempts) "
    "VALUES ('job-1', '{\"issuanceId\": 1}', 'boom', 3); ROLLBACK",
    /* daily login bonus: the cohort, then the mark */
    "BEGIN; SELECT id FROM users WHERE is_deleted = FALSE AND last_login_at >= now() - "
    "interval '1 day' AND last_login_at < now() AND (daily_bonus_granted_at IS NULL OR "
    "daily_bonus_granted_at < now()); UPDATE users SET daily_bonus_granted_at = now() "
    "WHERE id = 1; ROLLBACK",
    /* leaderboard */
    "SELECT user_id, SUM(amount) AS total_points, RANK() OVER (ORDER BY SUM(amount) DESC) "
    "AS rank FROM point_transactions WHERE type = 'earned' AND created_at >= NOW() - "
    "INTERVAL '7 days' GROUP BY user_id ORDER BY rank LIMIT 50",
    /* the leaderboard plugin's query */
    "SELECT user_id, total_points, rank FROM (SELECT user_id, SUM(amount) AS total_points, "
    "RANK() OVER (ORDER BY SUM(amount) DESC) AS rank FROM point_transactions WHERE type = "
    "'earned' AND created_at >= NOW() - INTERVAL '7 days' GROUP BY user_id) ranked ORDER BY "
    "rank, user_id LIMIT 50",
    /* the daily_bonus plugin: claim a batch, mark it, its balance rows */
    "BEGIN; SELECT id FROM users WHERE is_deleted = FALSE AND last_login_at >= "
    "(('2026-03-27'::date - 1)::timestamp AT TIME ZONE 'UTC') AND last_login_at < "
    "('2026-03-27'::date::timestamp AT TIME ZONE 'UTC') AND (daily_bonus_granted_at IS NULL OR "
    "daily_bonus_granted_at < ('2026-03-27'::date::timestamp AT TIME ZONE 'UTC')) AND id > "
    "0::bigint AND NOT (id = ANY ('{}'::bigint[])) ORDER BY id LIMIT 500 FOR NO KEY UPDATE "
    "SKIP LOCKED; UPDATE users SET daily_bonus_granted_at = GREATEST(now(), "
    "('2026-03-27'::date::timestamp AT TIME ZONE 'UTC')) WHERE id = ANY ('{1,2}'::bigint[]) "
    "AND is_deleted = FALSE RETURNING id; INSERT INTO user_balance (user_id, balance) SELECT u, "
    "0 FROM unnest(ARRAY(SELECT id::bigint FROM users ORDER BY id LIMIT 2)) AS u ORDER BY u ON "
    "CONFLICT (user_id) DO NOTHING; SELECT user_id FROM user_balance WHERE user_id = ANY "
    "('{1,2}'::bigint[]) ORDER BY user_id FOR UPDATE; ROLLBACK",
    /* inbound action credit: balance row, its lock, the audit row */
    "BEGIN; INSERT INTO user_balance (user_id, balance) SELECT id, 0 FROM users ORDER BY id "
    "LIMIT 1 ON CONFLICT DO NOTHING; SELECT balance FROM user_balance ORDER BY user_id LIMIT 1 "
    "FOR UPDATE; INSERT INTO audit_logs (entity_type, entity_id, action, actor_type, source, "
    "after_state, details) VALUES ('point_transaction', 1, 'WEBHOOK_REWARD_ISSUANCE', 'system', "
    "'webhook_handler', '{\"id\": 1}', '{\"externalAction\": \"purchase\"}'); ROLLBACK",
    /* outbound webhooks: dispatch, retry poll, recording an attempt */
    "SELECT id, url, secret FROM webhooks WHERE is_active AND ('reward.distributed' = "
    "ANY (events) OR '*' = ANY (events))",
    "SELECT d.id, d.delivery_id, d.event_type, d.payload, d.attempt, w.url, w.secret FROM "
    "webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'failed' "
    "AND d.attempt < 5 AND d.next_retry_at <= NOW() AND w.is_active",
    "BEGIN; UPDATE webhook_deliveries SET status = 'failed', http_status = COALESCE(503, "
    "http_status), response_body = COALESCE('x', response_body), next_retry_at = now(), "
    "delivered_at = NULL, attempt = attempt + 1; ROLLBACK",
    /* contract events (contract_events plugin): a page with a tag:name type
     * and a legacy one, replayed, under the set's lock; the bounded retry
     * pass */
    "BEGIN; SELECT pg_try_advisory_xact_lock(hashtextextended('nova-worker contract_events "
    "CCONTRACT1', 0)); INSERT INTO contract_events (event_id, contract_id, event_type, "
    "event_data, transaction_hash, ledger_sequence, status, error_message, processed_at, "
    "retry_count) VALUES ('0000004294967300096-0000000000', 'CCONTRACT1', 'nova_rwd:staked', "
    "'{\"value\": [1, \"5\"]}', 'ab12', 1000, 'processed', NULL, now(), 0), "
    "('0000004294967300096-0000000001', 'CCONTRACT1', 'mint', '{}', NULL, 1000, 'failed', "
    "'value: truncated', NULL, 0) ON CONFLICT (event_id) DO NOTHING; INSERT INTO "
    "contract_events (event_id, contract_id, event_type, event_data, status) VALUES "
    "('0000004294967300096-0000000000', 'CCONTRACT1', 'nova_rwd:staked', '{}', 'processed') ON "
    "CONFLICT (event_id) DO NOTHING; SELECT id, event_data::text FROM contract_events WHERE "
    "status = 'failed' AND event_id IS NOT NULL AND contract_id = ANY ('{CCONTRACT1}'::text[]) "
    "AND coalesce(retry_count, 0) < 5 ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED; ROLLBACK",
    /* contract events (Nova's): the retry scan and the cursor upsert */
    "SELECT id, contract_id, event_type, event_data FROM contract_events WHERE status = "
    "'pending' OR (status = 'failed' AND retry_count < 5) ORDER BY created_at",
    "BEGIN; INSERT INTO contract_event_cursors (contract_id, cursor, updated_at) VALUES "
    "('CCONTRACT1', 'now', now()) ON CONFLICT (contract_id) DO UPDATE SET cursor = "
    "EXCLUDED.cursor, updated_at = now(); ROLLBACK",
    NULL,
};

static struct pg_server server;
static char srcdir[1024];
static char migrations_dir[1100];

static void server_up(void)
{
    const char *src = getenv("NOVA_SRCDIR");
    snprintf(srcdir, sizeof srcdir, "%s", src != NULL ? src : NOVA_TEST_SRCDIR);
    snprintf(migrations_dir, sizeof migrations_dir, "%s/migrations", srcdir);
    ck_assert_msg(pg_server_start(&server) == 0, "PostgreSQL 15 did not start");
}

static void server_down(void)
{
    pg_server_destroy(&server);
}

/* ---- libpq helpers --------------------------------------------------------- */

static PGconn *db_connect(const char *db)
{
    char dsn[512];
    pg_server_dsn(&server, db, NULL, dsn, sizeof dsn);
    PGconn *c = PQconnectdb(dsn);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect %s: %s", db, PQerrorMessage(c));
    return c;
}

/* Runs sql and returns its one row. A query with parameters takes exactly
 * $1..$3, text, NULL for SQL NULL (one it does not need is tested IS NULL,
 * which gives it a type). The result stays valid until the next call with
 * the same slot. */
static PGresult *slots[4];
static PGresult *row(PGconn *c, int slot, const char *sql, const char *p1, const char *p2,
                     const char *p3)
{
    const char *params[3] = {p1, p2, p3};
    PQclear(slots[slot]);
    slots[slot] =
        PQexecParams(c, sql, strstr(sql, "$1") != NULL ? 3 : 0, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(slots[slot]) == PGRES_TUPLES_OK && PQntuples(slots[slot]) == 1,
                  "%s: %s", sql, PQresultErrorMessage(slots[slot]));
    return slots[slot];
}

static char *dup_value(const PGresult *r, int col)
{
    char *s = strdup(PQgetvalue(r, 0, col));
    ck_assert_ptr_nonnull(s);
    return s;
}

/* ---- snapshots -------------------------------------------------------------- */

/* $1: table; $2: column names to keep (text[]) or NULL for all. Returns
 * the names, the names quoted for a select list, and the definitions. */
static const char SQL_COLUMNS[] =
    "SELECT coalesce(array_agg(a.attname ORDER BY a.attnum)::text, '{}'), "
    "coalesce(string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), ''), "
    "coalesce(string_agg(format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod), "
    "CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END, "
    "coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')), ', ' ORDER BY a.attnum), '') "
    "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE a.attrelid = to_regclass(format('public.%I', $1::text)) AND a.attnum > 0 "
    "AND NOT a.attisdropped AND ($2::text[] IS NULL OR a.attname = ANY ($2::text[])) "
    "AND $3::text IS NULL";

/* $1: table; $2: constraint names to keep or NULL; $3: the table's old
 * columns or NULL. Returns the constraints kept, their names, and the
 * names of the others that cover an old column. */
static const char SQL_CONSTRAINTS[] =
    "SELECT coalesce(string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), '; ' "
    "ORDER BY k.conname) FILTER (WHERE $2::text[] IS NULL OR k.conname = ANY ($2::text[])), ''), "
    "coalesce(array_agg(k.conname ORDER BY k.conname)::text, '{}'), "
    "coalesce(string_agg(k.conname, ', ') FILTER (WHERE $2::text[] IS NOT NULL AND "
    "NOT k.conname = ANY ($2::text[]) AND EXISTS (SELECT 1 FROM pg_attribute a WHERE "
    "a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) AND a.attname = ANY ($3::text[]))), "
    "'') FROM pg_constraint k WHERE k.conrelid = to_regclass(format('public.%I', $1::text))";

/* The same for indexes. A worker index may cover the table's own columns:
 * named idx_nova_worker_*, plain (not unique, so no API statement can
 * fail on it) and on columns only (no expression), all of which exist. */
static const char SQL_INDEXES[] =
    "SELECT coalesce(string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY "
    "i.indexrelid::regclass::text) FILTER (WHERE $2::text[] IS NULL OR "
    "i.indexrelid::regclass::text = ANY ($2::text[])), ''), "
    "coalesce(array_agg(i.indexrelid::regclass::text ORDER BY i.indexrelid::regclass::text)::text,"
    " '{}'), "
    "coalesce(string_agg(i.indexrelid::regclass::text, ', ') FILTER (WHERE $2::text[] IS NOT NULL "
    "AND NOT i.indexrelid::regclass::text = ANY ($2::text[]) AND EXISTS (SELECT 1 FROM "
    "pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]) AND "
    "a.attname = ANY ($3::text[])) AND NOT (c.relname LIKE 'idx\\_nova\\_worker\\_%' AND "
    "NOT i.indisunique AND NOT i.indisexclusion AND i.indexprs IS NULL AND NOT EXISTS (SELECT 1 "
    "FROM unnest(i.indkey::int2[]) AS k(attnum) WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a "
    "WHERE a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0 AND NOT "
    "a.attisdropped)))), '') "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = to_regclass(format('public.%I', $1::text))";

static const char SQL_TRIGGERS[] =
    "SELECT coalesce(string_agg(pg_get_triggerdef(t.oid), '; ' ORDER BY t.tgname), '') "
    "FROM pg_trigger t WHERE t.tgrelid = to_regclass(format('public.%I', $1::text)) "
    "AND NOT t.tgisinternal AND $2::text IS NULL AND $3::text IS NULL";

static const char SQL_EXISTS[] =
    "SELECT to_regclass(format('public.%I', $1::text)) IS NOT NULL AND $2::text IS NULL "
    "AND $3::text IS NULL";

/* $1: function signatures to keep or NULL. */
static const char SQL_FUNCTIONS[] =
    "SELECT coalesce(string_agg(p.oid::regprocedure::text || ' ' || "
    "md5(pg_get_functiondef(p.oid)), '; ' ORDER BY p.oid::regprocedure::text) FILTER (WHERE "
    "$1::text[] IS NULL OR p.oid::regprocedure::text = ANY ($1::text[])), ''), "
    "coalesce(array_agg(p.oid::regprocedure::text)::text, '{}') FROM pg_proc p JOIN pg_namespace "
    "n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p') "
    "AND $2::text IS NULL AND $3::text IS NULL";

struct table_snap {
    char *name;
    char *cols;   /* text[] literal, attnum order */
    char *idents; /* the same, quoted, comma-separated */
    char *coldefs;
    char *rows; /* count, then each row as text, sorted */
    char *constraints, *con_names;
    char *indexes, *idx_names;
    char *triggers;
};

struct snap {
    struct table_snap *t;
    size_t n;
    char *functions, *fn_names;
};

static char *rows_of(PGconn *c, const char *table, const char *idents)
{
    char *qt = PQescapeIdentifier(c, table, strlen(table));
    size_t len = strlen(idents) + strlen(qt) + 256;
    char *sql = malloc(len);
    ck_assert_ptr_nonnull(sql);
    snprintf(sql, len,
             "SELECT count(*) || E'\\n' || coalesce(string_agg(r::text, E'\\n' ORDER BY "
             "r::text), '') FROM (SELECT %s FROM public.%s) r",
             idents, qt);
    PQfreemem(qt);
    char *s = dup_value(row(c, 3, sql, NULL, NULL, NULL), 0);
    free(sql);
    return s;
}

static void snapshot(const char *db, struct snap *s)
{
    memset(s, 0, sizeof *s);
    PGconn *c = db_connect(db);
    PGresult *r = PQexec(c, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON "
                            "n.oid = c.relnamespace WHERE n.nspname = 'public' AND "
                            "c.relkind IN ('r', 'p') ORDER BY 1");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    s->n = (size_t)PQntuples(r);
    s->t = calloc(s->n + 1, sizeof *s->t);
    ck_assert_ptr_nonnull(s->t);
    for (size_t i = 0; i < s->n; i++) {
        struct table_snap *t = &s->t[i];
        t->name = strdup(PQgetvalue(r, (int)i, 0));
        const PGresult *v = row(c, 0, SQL_COLUMNS, t->name, NULL, NULL);
        t->cols = dup_value(v, 0);
        t->idents = dup_value(v, 1);
        t->coldefs = dup_value(v, 2);
        t->rows = rows_of(c, t->name, t->idents);
        v = row(c, 0, SQL_CONSTRAINTS, t->name, NULL, NULL);
        t->constraints = dup_value(v, 0);
        t->con_names = dup_value(v, 1);
        v = row(c, 0, SQL_INDEXES, t->name, NULL, NULL);
        t->indexes = dup_value(v, 0);
        t->idx_names = dup_value(v, 1);
        t->triggers = dup_value(row(c, 0, SQL_TRIGGERS, t->name, NULL, NULL), 0);
    }
    PQclear(r);
    const PGresult *v = row(c, 0, SQL_FUNCTIONS, NULL, NULL, NULL);
    s->functions = dup_value(v, 0);
    s->fn_names = dup_value(v, 1);
    for (int i = 0; i < 4; i++) {
        PQclear(slots[i]);
        slots[i] = NULL;
    }
    PQfinish(c);
}

static void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct table_snap *t = &s->t[i];
        free(t->name);
        free(t->cols);
        free(t->idents);
        free(t->coldefs);
        free(t->rows);
        free(t->constraints);
        free(t->con_names);
        free(t->indexes);
        free(t->idx_names);
        free(t->triggers);
    }
    free(s->t);
    free(s->functions);
    free(s->fn_names);
    memset(s, 0, sizeof *s);
}

/* Fails naming what changed, with both texts from shortly before the first
 * difference (Check refuses very long messages). */
static void expect_same(const char *level, const char *table, const char *what, const char *before,
                        const char *after)
{
    size_t i = 0;
    while (before[i] != '\0' && before[i] == after[i])
        i++;
    if (before[i] == '\0' && after[i] == '\0')
        return;
    size_t from = i > 80 ? i - 80 : 0;
    ck_assert_msg(false, "%s: %s: %s changed at offset %zu\nbefore: ...%.300s\nafter:  ...%.300s",
                  level, table, what, i, before + from, after + from);
}

/* The one change to an API table's constraints that migrate may make:
 * migrations/104_contract_events.sql drops Nova's CHECK on
 * contract_events.event_type (mint, claim, stake, unstake only) and adds
 * a wider one, so that the "tag:name" types of Nova's contracts fit. The
 * old CHECK may go only when it listed those types, and the new one must
 * be validated: every row satisfies it. */
#define RELAXED_TABLE   "contract_events"
#define RELAXED_DROPPED "contract_events_event_type_check"
#define RELAXED_ADDED   "contract_events_event_type_format"

/* names: a text[] literal "{a,b}"; a copy without RELAXED_DROPPED */
static char *without_dropped_name(const char *names)
{
    char *out = calloc(1, strlen(names) + 3);
    ck_assert_ptr_nonnull(out);
    const char *p = names + 1; /* after '{' */
    strcat(out, "{");
    while (*p != '\0' && *p != '}') {
        size_t n = strcspn(p, ",}");
        if (!(n == strlen(RELAXED_DROPPED) && strncmp(p, RELAXED_DROPPED, n) == 0)) {
            if (out[1] != '\0')
                strcat(out, ",");
            strncat(out, p, n);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    strcat(out, "}");
    return out;
}

/* defs: "name def; name def"; a copy without RELAXED_DROPPED's, whose
 * definition goes to *dropped (NULL when there is none) */
static char *without_dropped_def(const char *defs, char **dropped)
{
    char *out = calloc(1, strlen(defs) + 1);
    ck_assert_ptr_nonnull(out);
    *dropped = NULL;
    const char *p = defs;
    while (*p != '\0') {
        const char *end = strstr(p, "; ");
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, RELAXED_DROPPED " ", strlen(RELAXED_DROPPED) + 1) == 0) {
            *dropped = strndup(p, n);
        } else {
            if (out[0] != '\0')
                strcat(out, "; ");
            strncat(out, p, n);
        }
        p += n;
        if (*p != '\0')
            p += 2;
    }
    return out;
}

/* Everything in s (taken before) is still in db, unchanged. */
static void check_kept(const char *level, const char *db, const struct snap *s)
{
    PGconn *c = db_connect(db);
    for (size_t i = 0; i < s->n; i++) {
        const struct table_snap *t = &s->t[i];
        const PGresult *v = row(c, 0, SQL_EXISTS, t->name, NULL, NULL);
        ck_assert_msg(strcmp(PQgetvalue(v, 0, 0), "t") == 0, "%s: table %s is gone", level,
                      t->name);
        v = row(c, 0, SQL_COLUMNS, t->name, t->cols, NULL);
        expect_same(level, t->name, "columns", t->coldefs, PQgetvalue(v, 0, 2));
        char *rows = rows_of(c, t->name, t->idents);
        expect_same(level, t->name, "rows", t->rows, rows);
        free(rows);
        bool relaxed = strcmp(t->name, RELAXED_TABLE) == 0;
        char *dropped = NULL;
        char *names = relaxed ? without_dropped_name(t->con_names) : strdup(t->con_names);
        char *defs =
            relaxed ? without_dropped_def(t->constraints, &dropped) : strdup(t->constraints);
        v = row(c, 0, SQL_CONSTRAINTS, t->name, names, t->cols);
        expect_same(level, t->name, "constraints", defs, PQgetvalue(v, 0, 0));
        const char *added = PQgetvalue(v, 0, 2);
        ck_assert_msg(added[0] == '\0' || (relaxed && strcmp(added, RELAXED_ADDED) == 0),
                      "%s: %s: new constraints on its own columns: %s", level, t->name, added);
        if (relaxed && dropped != NULL) {
            ck_assert_msg(strstr(dropped, "'mint'") != NULL && strstr(dropped, "'unstake'") != NULL,
                          "%s: %s: a CHECK other than Nova's legacy types went: %s", level, t->name,
                          dropped);
            v = row(c, 0,
                    "SELECT count(*) FILTER (WHERE convalidated) || '/' || count(*) FROM "
                    "pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2 AND "
                    "$3::text IS NULL",
                    "public." RELAXED_TABLE, RELAXED_ADDED, NULL);
            ck_assert_msg(strcmp(PQgetvalue(v, 0, 0), "1/1") == 0,
                          "%s: %s: %s replaced %s but is not there, validated (%s)", level, t->name,
                          RELAXED_ADDED, RELAXED_DROPPED, PQgetvalue(v, 0, 0));
        }
        free(dropped);
        free(names);
        free(defs);
        v = row(c, 0, SQL_INDEXES, t->name, t->idx_names, t->cols);
        expect_same(level, t->name, "indexes", t->indexes, PQgetvalue(v, 0, 0));
        ck_assert_msg(PQgetvalue(v, 0, 2)[0] == '\0', "%s: %s: new indexes on its own columns: %s",
                      level, t->name, PQgetvalue(v, 0, 2));
        v = row(c, 0, SQL_TRIGGERS, t->name, NULL, NULL);
        expect_same(level, t->name, "triggers", t->triggers, PQgetvalue(v, 0, 0));
    }
    const PGresult *v = row(c, 0, SQL_FUNCTIONS, s->fn_names, NULL, NULL);
    expect_same(level, "public", "functions", s->functions, PQgetvalue(v, 0, 0));
    for (int i = 0; i < 4; i++) {
        PQclear(slots[i]);
        slots[i] = NULL;
    }
    PQfinish(c);
}

static bool has_table(const struct snap *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0)
            return true;
    return false;
}

/* ---- running migrate ------------------------------------------------------- */

/* The CLI entry point, stdout/stderr captured into out. */
static int migrate(const char *db, char *out, size_t outlen)
{
    char dsn[512];
    struct nova__config cfg;
    memset(&cfg, 0, sizeof cfg);
    pg_server_dsn(&server, db, NULL, dsn, sizeof dsn);
    cfg.postgres.dsn = dsn;
    const char *argv[] = {"migrate", "--dir", migrations_dir, NULL};
    FILE *cap = tmpfile();
    ck_assert_ptr_nonnull(cap);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(cap), 1);
    dup2(fileno(cap), 2);
    int rc = nova__cmd_migrate(&cfg, 3, (char **)argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    rewind(cap);
    size_t n = fread(out, 1, outlen - 1, cap);
    out[n] = '\0';
    fclose(cap);
    return rc;
}

static int shipped_count(void)
{
    char cmd[1200], out[32];
    snprintf(cmd, sizeof cmd, "ls %s/*.sql | wc -l", migrations_dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(out, sizeof out, p));
    pclose(p);
    return atoi(out);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static const char *value(const char *db, const char *sql)
{
    static char buf[256];
    ck_assert_msg(pg_server_query_value(&server, db, sql, buf, sizeof buf) == 0, "query: %s", sql);
    return buf;
}

/* "table.column" exists in public. */
static void expect_column(const char *level, const char *db, const char *tc)
{
    const char *dot = strchr(tc, '.');
    ck_assert_ptr_nonnull(dot);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
             "AND table_name = '%.*s' AND column_name = '%s'",
             (int)(dot - tc), tc, dot + 1);
    ck_assert_msg(strcmp(value(db, sql), "1") == 0, "%s: column %s missing after migrate", level,
                  tc);
}

/* ---- the test ---------------------------------------------------------------- */

START_TEST(test_nova_level)
{
    const char *level = strrchr(levels[_i], '/') + 1;
    char db[16], path[1300], out[8192];
    snprintf(db, sizeof db, "nova_h%02d", _i + 1);
    snprintf(path, sizeof path, "%s/%s", srcdir, levels[_i]);
    char *sql = read_all(path);
    ck_assert_int_eq(pg_server_create_db(&server, db), 0);
    ck_assert_msg(pg_server_exec(&server, db, sql) == 0, "%s did not load", level);
    free(sql);

    struct snap before, after, again;
    snapshot(db, &before);
    ck_assert_msg(before.n >= 4, "%s: only %zu tables", level, before.n);
    bool had_schema_migrations = has_table(&before, "schema_migrations");

    int rc = migrate(db, out, sizeof out);
    ck_assert_msg(rc == 0, "%s: migrate failed: %s", level, out);
    ck_assert_msg(strstr(out, "applied 001_nova_schema.sql") != NULL, "%s: %s", level, out);
    char n[16];
    snprintf(n, sizeof n, "%d", shipped_count());
    ck_assert_str_eq(value(db, "SELECT count(*) FROM nova_worker_migrations"), n);

    /* nothing of the API's changed, rows and schema_migrations included */
    check_kept(level, db, &before);
    ck_assert_str_eq(value(db, "SELECT to_regclass('public.schema_migrations') IS NOT NULL"),
                     had_schema_migrations ? "t" : "f");

    /* what the workers need is there, and their statements run */
    static const struct {
        const char *name;
        size_t min_columns;
    } plugins[] = {{"reward_issuance", 10}, {"leaderboard", 4}, {"daily_bonus", 10},
                   {"contract_events", 10}, {"webhook", 10},    {"reports", 15}};
    for (size_t i = 0; i < sizeof plugins / sizeof plugins[0]; i++) {
        char plugin_dir[1200], err[512];
        const char *build = getenv("NOVA_BUILDDIR");
        snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins/%s/.libs",
                 build != NULL ? build : NOVA_TEST_BUILDDIR, plugins[i].name);
        struct nova__plugin *p = NULL;
        ck_assert_msg(nova__plugin_open(plugin_dir, plugins[i].name, &p, err, sizeof err) == 0,
                      "%s", err);
        ck_assert_ptr_nonnull(p->desc.required_columns);
        size_t k = 0;
        for (; p->desc.required_columns[k] != NULL; k++)
            expect_column(level, db, p->desc.required_columns[k]);
        ck_assert_uint_ge(k, plugins[i].min_columns);
        nova__plugin_close(p);
    }
    for (size_t i = 0; job_columns[i] != NULL; i++)
        expect_column(level, db, job_columns[i]);
    for (size_t i = 0; job_statements[i] != NULL; i++)
        ck_assert_msg(pg_server_exec(&server, db, job_statements[i]) == 0, "%s: failed: %s", level,
                      job_statements[i]);

    /* a second run applies nothing and changes nothing */
    snapshot(db, &after);
    rc = migrate(db, out, sizeof out);
    ck_assert_msg(rc == 0 && strstr(out, "nothing to apply") != NULL, "%s: second run: %s", level,
                  out);
    check_kept(level, db, &after);
    snapshot(db, &again);
    ck_assert_uint_eq(again.n, after.n);
    snap_free(&before);
    snap_free(&after);
    snap_free(&again);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("migrate_nova");
    TCase *tc = tcase_create("history");
    tcase_add_unchecked_fixture(tc, server_up, server_down);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_nova_level, 0, NLEVELS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
