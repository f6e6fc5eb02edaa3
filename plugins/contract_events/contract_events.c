/*
 * contract_events - indexes Soroban contract events from Stellar RPC
 * getEvents into Nova's contract_events table, exactly once, with the
 * cursor in contract_event_cursors. docs/plugins/contract_events.md has
 * the design; ce_logic.c the pure parts (types, ScVal values, rows).
 *
 * A run is one job "index" on the queue "contract-events" (a schedule,
 * `every 5s` by default). It reads the cursors of its contract set, then
 * pages getEvents from there; each page is written in one transaction
 * that takes a transaction-scoped advisory lock named after the contract
 * set, checks that the cursors are still the ones the page was fetched
 * from, inserts the events (ON CONFLICT (event_id) DO NOTHING) and moves
 * the cursors. A second indexer of the same set (a slow run overlapping
 * the next slot's job on another worker) loses the lock or finds the
 * cursor moved, and stops without writing. A run ends when it has caught
 * up with the RPC's latest ledger, after max_run, or on stop; then, every
 * retry_interval, a bounded batch of failed rows is decoded again
 * (FOR UPDATE SKIP LOCKED).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include <nova/pg.h>
#include <nova/plugin.h>
#include <nova/stellar.h>

#include "ce_logic.h"

#define JOB_NAME "index"
/* at most this many range checks (getEvents -32600) per run */
#define MAX_RANGE_CHECKS 3

struct ce_config {
    char *contract_ids;
    int64_t start_ledger;
    char *schedule;
    char *timezone;
    char *queue;
    int64_t page_size;
    int64_t max_run_ms;
    int64_t retry_interval_ms;
    int64_t retry_batch;
    int64_t max_retries;
};

static const struct nova_config_entry ce_config_table[] = {
    {.key = "contract_ids",
     .type = NOVA_CONFIG_STRING,
     .offset = offsetof(struct ce_config, contract_ids),
     .help = "C... contract ids, comma-separated (default: Nova's NOVA_TOKEN_CONTRACT_ID, "
             "REWARD_POOL_, VESTING_, REFERRAL_, DISTRIBUTION_, ADMIN_ROLES_, NOVA_REWARDS_, "
             "GOVERNANCE_CONTRACT_ID)"},
    {.key = "start_ledger",
     .type = NOVA_CONFIG_INT,
     .default_value = "0",
     .offset = offsetof(struct ce_config, start_ledger),
     .help = "first ledger of a contract without a cursor (0 = the RPC's latest ledger)",
     .min = 0,
     .max = 4294967295LL},
    {.key = "schedule",
     .type = NOVA_CONFIG_STRING,
     .default_value = "every 5s",
     .offset = offsetof(struct ce_config, schedule),
     .help = "when the indexer runs (every <duration>, or a cron line; empty = only jobs "
             "added by hand)"},
    {.key = "timezone",
     .type = NOVA_CONFIG_STRING,
     .default_value = "UTC",
     .offset = offsetof(struct ce_config, timezone),
     .help = "IANA time zone a cron schedule is read in"},
    {.key = "queue",
     .type = NOVA_CONFIG_STRING,
     .default_value = "contract-events",
     .offset = offsetof(struct ce_config, queue),
     .help = "BullMQ queue of the runs (one contract set per queue)"},
    {.key = "page_size",
     .type = NOVA_CONFIG_INT,
     .default_value = "1000",
     .offset = offsetof(struct ce_config, page_size),
     .help = "events per getEvents page (the RPC allows 10000)",
     .min = 1,
     .max = NOVA_STELLAR_MAX_EVENTS_LIMIT},
    {.key = "max_run",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "60s",
     .offset = offsetof(struct ce_config, max_run_ms),
     .help = "a run that has not caught up stops after this; the next one goes on",
     .min = 1000,
     .max = 3600000},
    {.key = "retry_interval",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "60s",
     .offset = offsetof(struct ce_config, retry_interval_ms),
     .help = "how often a run decodes failed events again (0 = every run)",
     .min = 0,
     .max = 86400000},
    {.key = "retry_batch",
     .type = NOVA_CONFIG_INT,
     .default_value = "100",
     .offset = offsetof(struct ce_config, retry_batch),
     .help = "failed events decoded again per pass",
     .min = 1,
     .max = 10000},
    {.key = "max_retries",
     .type = NOVA_CONFIG_INT,
     .default_value = "5",
     .offset = offsetof(struct ce_config, max_retries),
     .help = "decoding attempts after the first; then the event stays failed",
     .min = 0,
     .max = 1000},
    {.key = NULL},
};

static const char *const ce_columns[] = {
    "contract_events.event_id",
    "contract_events.contract_id",
    "contract_events.event_type",
    "contract_events.event_data",
    "contract_events.transaction_hash",
    "contract_events.ledger_sequence",
    "contract_events.status",
    "contract_events.error_message",
    "contract_events.processed_at",
    "contract_events.retry_count",
    "contract_event_cursors.contract_id",
    "contract_event_cursors.cursor",
    "contract_event_cursors.updated_at",
    NULL,
};

static const char SQL_CURSORS[] = "SELECT contract_id, cursor FROM contract_event_cursors "
                                  "WHERE contract_id = ANY($1::text[])";

static const char SQL_LOCK[] = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))";

/* $1 the rows (ce_row), $2 the set, $3 the new cursor. Returns what was
 * inserted, counted by contract, type and status. */
static const char SQL_WRITE[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(event_id text, contract_id "
    "text, event_type text, event_data jsonb, transaction_hash text, ledger_sequence int, status "
    "text, error_message text)), "
    "ev AS (INSERT INTO contract_events (event_id, contract_id, event_type, event_data, "
    "transaction_hash, ledger_sequence, status, error_message, processed_at, retry_count) "
    "SELECT event_id, contract_id, event_type, event_data, transaction_hash, ledger_sequence, "
    "status, error_message, CASE WHEN status = 'processed' THEN now() END, 0 FROM x "
    "ON CONFLICT (event_id) DO NOTHING RETURNING contract_id, event_type, status), "
    "cur AS (INSERT INTO contract_event_cursors (contract_id, cursor, updated_at) "
    "SELECT unnest($2::text[]), $3, now() ON CONFLICT (contract_id) DO UPDATE SET cursor = "
    "EXCLUDED.cursor, updated_at = EXCLUDED.updated_at RETURNING 1) "
    "SELECT contract_id, event_type, status, count(*) FROM ev GROUP BY 1, 2, 3";

/* $1 the set, $2 max_retries, $3 retry_batch */
static const char SQL_RETRY_PICK[] =
    "SELECT id, event_data::text FROM contract_events WHERE status = 'failed' AND event_id IS "
    "NOT NULL AND contract_id = ANY($1::text[]) AND coalesce(retry_count, 0) < $2::int "
    "ORDER BY id LIMIT $3::int FOR UPDATE SKIP LOCKED";

static const char SQL_RETRY_SET[] =
    "UPDATE contract_events c SET status = x.status, event_type = coalesce(x.event_type, "
    "c.event_type), event_data = coalesce(x.event_data, c.event_data), error_message = "
    "x.error_message, retry_count = coalesce(c.retry_count, 0) + 1, processed_at = CASE WHEN "
    "x.status = 'processed' THEN now() ELSE c.processed_at END FROM jsonb_to_recordset($1::jsonb) "
    "AS x(id int, status text, event_type text, event_data jsonb, error_message text) "
    "WHERE c.id = x.id";

struct ce {
    const struct nova_host *host;
    const struct ce_config *cfg;
    const struct nova_pg_api *pg;
    const struct nova_stellar_api *st;
    struct ce_contracts set;
    char ids_array[CE_MAX_CONTRACTS * (CE_ID_LEN + 1) + 3];
    char lock_name[CE_MAX_CONTRACTS * (CE_ID_LEN + 1) + 40];
    struct nova_stellar_event_filter filters[NOVA_STELLAR_MAX_EVENT_FILTERS];
    size_t filter_count;
    bool stopping;
    struct run *run;
    int64_t last_retry_ms;
    nova_metric *m_indexed, *m_lag, *m_gaps, *m_gap_ledgers, *m_failures, *m_redecoded;
};

/* inserted rows of a page, by contract, type and status */
struct count {
    char contract[CE_ID_LEN + 1];
    char type[CE_TYPE_MAX + 1];
    bool processed;
    int64_t n;
};

struct run {
    struct ce *ce;
    nova_job *job;
    int64_t deadline_ms;
    /* the cursors the database holds, as this run last saw them (NULL: none) */
    char *expected[CE_MAX_CONTRACTS];
    struct ce_pos pos;
    uint32_t latest;
    int range_checks;
    /* the page being written */
    char *rows;
    char next[CE_CURSOR_MAX];
    size_t page_events, page_failed;
    bool page_full;
    nova_pg_lease *lease;
    struct count *counts;
    size_t ncounts;
    /* what the run did, for its result */
    int pages;
    int64_t events, inserted, failed;
    bool gap;
    uint32_t gap_from, gap_to;
    int redecoded, redecoded_ok;
    char stopped[32];
    /* how a rollback ends the run: retry with this reason, or finish */
    bool end_retry;
    char end_reason[400];
};

#define LOG(ce, lvl, job, ...) (ce)->host->log((ce)->host, (lvl), (job), __VA_ARGS__)

static void run_free(struct run *r)
{
    if (r->ce->run == r)
        r->ce->run = NULL;
    for (size_t i = 0; i < CE_MAX_CONTRACTS; i++)
        free(r->expected[i]);
    free(r->rows);
    free(r->counts);
    free(r);
}

static void count_failure(struct ce *ce, const char *kind, double n)
{
    const char *lv[] = {kind, NULL};
    ce->host->metric_add(ce->m_failures, lv, n);
}

/* ---- the end of a run ------------------------------------------------------- */

static void run_retry(struct run *r, const char *reason, int64_t delay_ms)
{
    struct ce *ce = r->ce;
    LOG(ce, NOVA_LOG_WARN, r->job, "contract_events: %s", reason);
    ce->host->job_retry(r->job, reason, delay_ms);
    run_free(r);
}

/* The host is stopping us: the job goes back, nothing else runs. */
static void run_cancelled(struct run *r)
{
    r->ce->host->job_retry(r->job, "worker shutting down", -1);
    run_free(r);
}

static void run_done(struct run *r)
{
    struct ce *ce = r->ce;
    cJSON *res = cJSON_CreateObject();
    char *text = NULL;
    if (res != NULL) {
        cJSON_AddStringToObject(res, "stopped", r->stopped);
        cJSON_AddNumberToObject(res, "pages", r->pages);
        cJSON_AddNumberToObject(res, "events", (double)r->events);
        cJSON_AddNumberToObject(res, "inserted", (double)r->inserted);
        cJSON_AddNumberToObject(res, "failed", (double)r->failed);
        if (r->pos.cursor[0] != '\0')
            cJSON_AddStringToObject(res, "cursor", r->pos.cursor);
        cJSON_AddNumberToObject(res, "ledger", r->pos.ledger);
        cJSON_AddNumberToObject(res, "latest_ledger", r->latest);
        cJSON_AddNumberToObject(res, "lag", r->latest ? ce_lag(r->latest, &r->pos) : 0);
        if (r->gap) {
            cJSON *g = cJSON_AddObjectToObject(res, "gap");
            cJSON_AddNumberToObject(g, "from_ledger", r->gap_from);
            cJSON_AddNumberToObject(g, "to_ledger", r->gap_to);
        }
        cJSON_AddNumberToObject(res, "redecoded", r->redecoded);
        cJSON_AddNumberToObject(res, "redecoded_processed", r->redecoded_ok);
        text = cJSON_PrintUnformatted(res);
        cJSON_Delete(res);
    }
    /* a run that met another indexer does not know where the cursor is */
    if (r->latest > 0 && strcmp(r->stopped, "locked") != 0 &&
        strcmp(r->stopped, "cursor_moved") != 0)
        ce->host->metric_set(ce->m_lag, NULL, (double)ce_lag(r->latest, &r->pos));
    LOG(ce, r->events > 0 || r->gap || r->redecoded > 0 ? NOVA_LOG_INFO : NOVA_LOG_DEBUG, r->job,
        "contract_events: %s after %d page(s): %" PRId64 " event(s), %" PRId64 " new, %" PRId64
        " failed; at ledger %" PRIu32 " of %" PRIu32,
        r->stopped, r->pages, r->events, r->inserted, r->failed, r->pos.ledger, r->latest);
    ce->host->job_done(r->job, text);
    free(text);
    run_free(r);
}

static void retry_pass(struct run *r);

/* The indexing part is over (stopped says why): maybe a retry pass. */
static void run_finish(struct run *r, const char *stopped)
{
    struct ce *ce = r->ce;
    snprintf(r->stopped, sizeof r->stopped, "%s", stopped);
    int64_t now = ce->host->now_ms(ce->host);
    if (!ce->stopping &&
        (ce->last_retry_ms == 0 || now - ce->last_retry_ms >= ce->cfg->retry_interval_ms)) {
        ce->last_retry_ms = now;
        retry_pass(r);
        return;
    }
    run_done(r);
}

/* Hands the lease to COMMIT; false (the lease still ours) when that was
 * not sent. */
static bool commit_lease(struct run *r, nova_pg_cb cb)
{
    nova_pg_lease *l = r->lease;
    r->lease = NULL;
    if (r->ce->pg->commit(r->ce->host, l, cb, r) == 0)
        return true;
    r->lease = l;
    return false;
}

/* Gives the lease back (rollback), then cb; at once when there is no
 * lease or the rollback was not sent. */
static void rollback_then(struct run *r, nova_pg_cb cb)
{
    nova_pg_lease *l = r->lease;
    r->lease = NULL;
    if (l == NULL || r->ce->pg->rollback(r->ce->host, l, cb, r) != 0)
        cb(r, 0, NULL);
}

static void on_released(void *arg, int status, const nova_pg_result *res)
{
    (void)res;
    struct run *r = arg;
    if (status == -ECANCELED)
        return run_cancelled(r);
    if (r->end_retry)
        return run_retry(r, r->end_reason, -1);
    run_finish(r, r->end_reason);
}

static void end_finish(struct run *r, const char *stopped)
{
    r->end_retry = false;
    snprintf(r->end_reason, sizeof r->end_reason, "%s", stopped);
    rollback_then(r, on_released); /* then ends the run as set in r */
}

/* A database failure: the page is not written; the job is retried. */
static void db_fail(struct run *r, const char *what, int status, const nova_pg_result *res)
{
    struct ce *ce = r->ce;
    if (status == -ECANCELED)
        return run_cancelled(r); /* the pool rolls leases back on shutdown */
    count_failure(ce, "database", 1);
    r->end_retry = true;
    snprintf(r->end_reason, sizeof r->end_reason, "%s: %s", what,
             res != NULL ? ce->pg->error_message(res) : "failed");
    rollback_then(r, on_released);
}

/* A database failure with no transaction to give back: the job is retried. */
static void db_retry(struct run *r, const char *what, int status, const nova_pg_result *res)
{
    if (status == -ECANCELED)
        return run_cancelled(r);
    count_failure(r->ce, "database", 1);
    char why[500];
    snprintf(why, sizeof why, "%s: %s", what, r->ce->pg->error_message(res));
    run_retry(r, why, -1);
}

/* An RPC call failed: the job goes back (the host is stopping) or is
 * retried, after the RPC's retry-after when it gave one; the reason is
 * written to why. False when st is a success. */
static bool rpc_failed(struct run *r, const struct nova_stellar_status *st, const char *call,
                       char *why, size_t whylen)
{
    if (st->error == 0)
        return false;
    if (st->error == -ECANCELED) {
        run_cancelled(r);
        return true;
    }
    count_failure(r->ce, "rpc", 1);
    snprintf(why, whylen, "%s: %s", call, st->message);
    run_retry(r, why, st->error == -EAGAIN ? st->retry_after_ms : -1);
    return true;
}

/* ---- paging -------------------------------------------------------------------- */

static void fetch_page(struct run *r);

static void on_health(void *arg, const struct nova_stellar_status *st,
                      const struct nova_stellar_rpc_health *h)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    char why[700];
    if (rpc_failed(r, st, "getHealth", why, sizeof why))
        return;
    r->latest = h->latest_ledger;
    if (h->oldest_ledger > 0 && r->pos.ledger < h->oldest_ledger) {
        /* The RPC no longer has what follows the cursor: report the gap and
         * go on from the oldest ledger it keeps, never stall. */
        uint32_t from = r->pos.ledger, to = h->oldest_ledger - 1;
        if (!r->gap)
            r->gap_from = from;
        r->gap = true;
        r->gap_to = to;
        ce->host->metric_add(ce->m_gaps, NULL, 1);
        ce->host->metric_add(ce->m_gap_ledgers, NULL, (double)(to - from + 1));
        LOG(ce, NOVA_LOG_ERROR, r->job,
            "contract_events: GAP: %s at ledger %" PRIu32 " is older than the RPC's retention "
            "window (ledgers %" PRIu32 "-%" PRIu32 "): events of ledgers %" PRIu32 "-%" PRIu32
            " are lost (backfill them from another source); resuming at ledger %" PRIu32,
            r->pos.cursor[0] != '\0' ? "the cursor" : "start_ledger", r->pos.ledger,
            h->oldest_ledger, h->latest_ledger, from, to, h->oldest_ledger);
        ce_pos_ledger(&r->pos, h->oldest_ledger);
        return fetch_page(r);
    }
    if (r->pos.cursor[0] == '\0' && h->latest_ledger > 0 && r->pos.ledger > h->latest_ledger)
        return run_finish(r, "waiting_for_ledger"); /* start_ledger is in the future */
    count_failure(ce, "rpc", 1);
    snprintf(why, sizeof why,
             "getEvents refused ledger %" PRIu32 " although the RPC keeps %" PRIu32 "-%" PRIu32,
             r->pos.ledger, h->oldest_ledger, h->latest_ledger);
    run_retry(r, why, -1);
}

static void begin_write(struct run *r);

static void on_page(void *arg, const struct nova_stellar_status *st,
                    const struct nova_stellar_events_page *page)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    char why[800];
    if (st->error == -EREMOTEIO && st->rpc_code == -32600 && r->range_checks < MAX_RANGE_CHECKS) {
        /* "startLedger must be within the ledger range": where is it? */
        r->range_checks++;
        if (ce->st->rpc_health(ce->host, on_health, r) != 0)
            run_retry(r, "getHealth could not be sent", -1);
        return;
    }
    if (rpc_failed(r, st, "getEvents", why, sizeof why))
        return;
    r->latest = page->latest_ledger;
    const char *next = page->cursor;
    if (next == NULL && page->event_count > 0)
        next = page->events[page->event_count - 1].id; /* an RPC before top-level cursors */
    if (next == NULL || (page->event_count == 0 && strcmp(next, r->pos.cursor) == 0))
        return run_finish(r, "caught_up"); /* nothing new */
    if (!ce_cursor_valid(next)) {
        count_failure(ce, "rpc", 1);
        snprintf(why, sizeof why, "getEvents: the cursor \"%.60s\" is not an RPC cursor", next);
        return run_retry(r, why, -1);
    }
    cJSON *rows = cJSON_CreateArray();
    size_t failed = 0;
    for (size_t i = 0; rows != NULL && i < page->event_count; i++) {
        struct ce_raw raw;
        ce_raw_from_event(&page->events[i], &raw);
        cJSON *row = ce_row(&raw, ce->st->scval_decode);
        if (row == NULL) {
            cJSON_Delete(rows);
            rows = NULL;
            break;
        }
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(row, "status");
        if (strcmp(status->valuestring, "failed") == 0) {
            failed++;
            LOG(ce, NOVA_LOG_WARN, r->job, "contract_events: event %s stored as failed: %s",
                page->events[i].id,
                cJSON_GetObjectItemCaseSensitive(row, "error_message")->valuestring);
        }
        cJSON_AddItemToArray(rows, row);
    }
    free(r->rows);
    r->rows = rows != NULL ? cJSON_PrintUnformatted(rows) : NULL;
    cJSON_Delete(rows);
    if (r->rows == NULL)
        return run_retry(r, "out of memory building a page", -1);
    snprintf(r->next, sizeof r->next, "%s", next);
    r->page_events = page->event_count;
    r->page_failed = failed;
    r->page_full = page->event_count >= (size_t)ce->cfg->page_size;
    begin_write(r);
}

static void fetch_page(struct run *r)
{
    struct ce *ce = r->ce;
    struct nova_stellar_events_query q = {
        .struct_size = sizeof q,
        .filters = ce->filters,
        .filter_count = ce->filter_count,
        .limit = (uint32_t)ce->cfg->page_size,
        .flags = NOVA_STELLAR_EVENTS_KEEP_UNDECODABLE,
    };
    if (r->pos.cursor[0] != '\0')
        q.cursor = r->pos.cursor;
    else
        q.start_ledger = r->pos.ledger;
    if (ce->st->get_events(ce->host, &q, on_page, r) != 0)
        run_retry(r, "getEvents could not be sent", -1);
}

/* After a committed page: on, or done. */
static void next_page(struct run *r)
{
    struct ce *ce = r->ce;
    if (ce->stopping)
        return run_finish(r, "stopping");
    if (ce->host->job_cancelled(r->job))
        return run_finish(r, "cancelled");
    if (!r->page_full && r->pos.ledger >= r->latest)
        return run_finish(r, "caught_up");
    if (ce->host->now_ms(ce->host) >= r->deadline_ms)
        return run_finish(r, "max_run");
    fetch_page(r);
}

/* ---- writing a page ---------------------------------------------------------- */

static void on_committed(void *arg, int status, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    /* -ECONNRESET: unknown outcome; the next run reads the cursor back */
    if (status != 0)
        return db_retry(r, "committing a page", status, res);
    for (size_t i = 0; i < ce->set.n; i++) {
        char *c = strdup(r->next);
        if (c == NULL)
            return run_retry(r, "out of memory", -1);
        free(r->expected[i]);
        r->expected[i] = c;
    }
    for (size_t i = 0; i < r->ncounts; i++) {
        const struct count *k = &r->counts[i];
        if (k->processed) {
            const char *lv[] = {k->contract, k->type, NULL};
            ce->host->metric_add(ce->m_indexed, lv, (double)k->n);
        }
        r->inserted += k->n;
    }
    if (r->page_failed > 0)
        count_failure(ce, "decode", (double)r->page_failed);
    r->failed += (int64_t)r->page_failed;
    r->events += (int64_t)r->page_events;
    r->pages++;
    ce_pos_cursor(&r->pos, r->next);
    ce->host->metric_set(ce->m_lag, NULL, (double)ce_lag(r->latest, &r->pos));
    next_page(r);
}

static void on_written(void *arg, int status, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    const struct nova_pg_api *pg = ce->pg;
    if (status != 0)
        return db_fail(r, "writing a page", status, res);
    int n = pg->ntuples(res);
    free(r->counts);
    r->ncounts = 0;
    r->counts = n > 0 ? calloc((size_t)n, sizeof *r->counts) : NULL;
    for (int i = 0; i < n && r->counts != NULL; i++) {
        struct count *k = &r->counts[r->ncounts];
        const char *c = pg->get_text(res, i, 0), *t = pg->get_text(res, i, 1);
        const char *s = pg->get_text(res, i, 2);
        if (c == NULL || t == NULL || s == NULL || pg->get_int64(res, i, 3, &k->n) != 0)
            continue;
        snprintf(k->contract, sizeof k->contract, "%s", c);
        snprintf(k->type, sizeof k->type, "%s", t);
        k->processed = strcmp(s, "processed") == 0;
        r->ncounts++;
    }
    if (!commit_lease(r, on_committed))
        db_fail(r, "committing a page", -EIO, NULL);
}

/* The cursors must still be the ones the page was fetched from. */
static void on_checked(void *arg, int status, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    const struct nova_pg_api *pg = ce->pg;
    if (status != 0)
        return db_fail(r, "reading the cursors", status, res);
    bool seen[CE_MAX_CONTRACTS] = {false}, moved = false;
    for (int i = 0; i < pg->ntuples(res) && !moved; i++) {
        const char *id = pg->get_text(res, i, 0), *cur = pg->get_text(res, i, 1);
        for (size_t k = 0; id != NULL && k < ce->set.n; k++)
            if (strcmp(id, ce->set.ids[k]) == 0) {
                seen[k] = true;
                moved = r->expected[k] == NULL || cur == NULL || strcmp(cur, r->expected[k]) != 0;
            }
    }
    for (size_t k = 0; k < ce->set.n && !moved; k++)
        moved = seen[k] != (r->expected[k] != NULL);
    if (moved) {
        LOG(ce, NOVA_LOG_INFO, r->job,
            "contract_events: another indexer moved the cursor; this run stops");
        return end_finish(r, "cursor_moved");
    }
    const char *p[] = {r->rows, ce->ids_array, r->next};
    if (pg->lease_query(ce->host, r->lease, SQL_WRITE, 3, p, on_written, r) != 0)
        db_fail(r, "writing a page", -EIO, NULL);
}

static void on_locked(void *arg, int status, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    const struct nova_pg_api *pg = ce->pg;
    bool locked = false;
    if (status != 0)
        return db_fail(r, "taking the indexer lock", status, res);
    if (pg->get_bool(res, 0, 0, &locked) != 0 || !locked) {
        LOG(ce, NOVA_LOG_INFO, r->job,
            "contract_events: another indexer of this contract set is writing; this run stops");
        return end_finish(r, "locked");
    }
    const char *p[] = {ce->ids_array};
    if (pg->lease_query(ce->host, r->lease, SQL_CURSORS, 1, p, on_checked, r) != 0)
        db_fail(r, "reading the cursors", -EIO, NULL);
}

static void on_begun(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    if (status != 0)
        return db_fail(r, "starting a transaction", status, res);
    r->lease = lease;
    const char *p[] = {ce->lock_name};
    if (ce->pg->lease_query(ce->host, lease, SQL_LOCK, 1, p, on_locked, r) != 0)
        db_fail(r, "taking the indexer lock", -EIO, NULL);
}

static void begin_write(struct run *r)
{
    struct ce *ce = r->ce;
    if (ce->pg->begin(ce->host, on_begun, r) != 0)
        run_retry(r, "the database is not available", -1);
}

/* ---- the start of a run ------------------------------------------------------- */

static void on_latest(void *arg, const struct nova_stellar_status *st,
                      const struct nova_stellar_rpc_ledger *l)
{
    struct run *r = arg;
    char why[700];
    if (rpc_failed(r, st, "getLatestLedger", why, sizeof why))
        return;
    ce_pos_ledger(&r->pos, l->sequence);
    LOG(r->ce, NOVA_LOG_INFO, r->job,
        "contract_events: no cursor yet: starting at the RPC's latest ledger %" PRIu32,
        l->sequence);
    fetch_page(r);
}

static void on_cursors(void *arg, int status, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    const struct nova_pg_api *pg = ce->pg;
    if (status != 0)
        return db_retry(r, "reading the cursors", status, res);
    for (int i = 0; i < pg->ntuples(res); i++) {
        const char *id = pg->get_text(res, i, 0), *cur = pg->get_text(res, i, 1);
        for (size_t k = 0; id != NULL && cur != NULL && k < ce->set.n; k++)
            if (strcmp(id, ce->set.ids[k]) == 0)
                r->expected[k] = strdup(cur);
    }
    /* Start at the earliest point of any contract of the set: its cursor,
     * or start_ledger (0: the latest ledger, which is after any cursor).
     * Events already stored are skipped by their event_id. */
    bool have = false, need_latest = false;
    for (size_t k = 0; k < ce->set.n; k++) {
        struct ce_pos p;
        if (ce_cursor_valid(r->expected[k]))
            ce_pos_cursor(&p, r->expected[k]);
        else {
            if (r->expected[k] != NULL)
                LOG(ce, NOVA_LOG_WARN, r->job,
                    "contract_events: the cursor of %s (\"%.40s\") is not an RPC cursor (left by "
                    "Nova's Horizon indexer?): that contract starts %s",
                    ce->set.ids[k], r->expected[k],
                    ce->cfg->start_ledger > 0 ? "at start_ledger" : "at the latest ledger");
            if (ce->cfg->start_ledger <= 0) {
                need_latest = true;
                continue;
            }
            ce_pos_ledger(&p, (uint32_t)ce->cfg->start_ledger);
        }
        if (!have || ce_pos_cmp(&p, &r->pos) < 0)
            r->pos = p;
        have = true;
    }
    if (!have && need_latest) {
        if (ce->st->rpc_latest_ledger(ce->host, on_latest, r) != 0)
            run_retry(r, "getLatestLedger could not be sent", -1);
        return;
    }
    fetch_page(r);
}

static void on_job(void *arg, nova_job *job)
{
    struct ce *ce = arg;
    const struct nova_host *h = ce->host;
    if (ce->run != NULL) {
        /* concurrency is 1: never; but never two runs in one process */
        h->job_retry(job, "a run of this indexer is already going", 1000);
        return;
    }
    struct run *r = calloc(1, sizeof *r);
    if (r == NULL) {
        h->job_retry(job, "out of memory", -1);
        return;
    }
    r->ce = ce;
    r->job = job;
    r->deadline_ms = h->now_ms(h) + ce->cfg->max_run_ms;
    ce->run = r;
    const char *p[] = {ce->ids_array};
    if (ce->pg->query(h, SQL_CURSORS, 1, p, on_cursors, r) != 0)
        run_retry(r, "the database is not available", -1);
}

/* ---- the retry pass ------------------------------------------------------------- */

static void on_retry_done(void *arg, int status, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    if (status == -ECANCELED)
        return run_cancelled(r);
    if (status != 0) {
        count_failure(ce, "database", 1);
        LOG(ce, NOVA_LOG_WARN, r->job, "contract_events: committing a retry pass: %s",
            ce->pg->error_message(res));
        r->redecoded = r->redecoded_ok = 0;
    } else if (r->redecoded > 0) {
        const char *ok[] = {"processed", NULL}, *bad[] = {"failed", NULL};
        ce->host->metric_add(ce->m_redecoded, ok, r->redecoded_ok);
        ce->host->metric_add(ce->m_redecoded, bad, r->redecoded - r->redecoded_ok);
    }
    run_done(r);
}

static void on_retry_released(void *arg, int status, const nova_pg_result *res)
{
    (void)res;
    struct run *r = arg;
    if (status == -ECANCELED)
        return run_cancelled(r);
    r->redecoded = r->redecoded_ok = 0;
    run_done(r);
}

/* A failed retry pass does not fail the run: log, give the lease back. */
static void retry_abort(struct run *r, const char *what, int status, const nova_pg_result *res)
{
    struct ce *ce = r->ce;
    if (status == -ECANCELED)
        return run_cancelled(r);
    count_failure(ce, "database", 1);
    LOG(ce, NOVA_LOG_WARN, r->job, "contract_events: retry pass: %s: %s", what,
        res != NULL ? ce->pg->error_message(res) : "failed");
    rollback_then(r, on_retry_released);
}

static void retry_commit(struct run *r)
{
    if (!commit_lease(r, on_retry_done))
        retry_abort(r, "commit", -EIO, NULL);
}

static void on_retry_set(void *arg, int status, const nova_pg_result *res)
{
    struct run *r = arg;
    if (status != 0)
        return retry_abort(r, "updating failed events", status, res);
    retry_commit(r);
}

/* Decodes each picked row again: processed, or still failed. */
static void on_retry_picked(void *arg, int status, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    const struct nova_pg_api *pg = ce->pg;
    if (status != 0)
        return retry_abort(r, "picking failed events", status, res);
    int n = pg->ntuples(res);
    if (n == 0)
        return retry_commit(r);
    cJSON *updates = cJSON_CreateArray();
    for (int i = 0; i < n && updates != NULL; i++) {
        int64_t id;
        const char *text = pg->get_text(res, i, 1);
        if (pg->get_int64(res, i, 0, &id) != 0 || text == NULL)
            continue;
        cJSON *u = cJSON_CreateObject(), *data = cJSON_Parse(text), *row = NULL;
        const char *slots[NOVA_STELLAR_MAX_TOPIC_SEGMENTS * 4];
        struct ce_raw raw;
        if (u == NULL) {
            cJSON_Delete(data);
            break;
        }
        cJSON_AddNumberToObject(u, "id", (double)id);
        if (ce_raw_from_data(data, &raw, slots, sizeof slots / sizeof slots[0]) != 0) {
            cJSON_AddStringToObject(u, "status", "failed");
            cJSON_AddStringToObject(u, "error_message",
                                    "event_data has no raw XDR to decode again");
        } else if ((row = ce_row(&raw, ce->st->scval_decode)) != NULL) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(row, "status");
            bool ok = strcmp(st->valuestring, "processed") == 0;
            cJSON_AddStringToObject(u, "status", st->valuestring);
            cJSON_AddItemToObject(u, "error_message",
                                  cJSON_DetachItemFromObject(row, "error_message"));
            if (ok) {
                cJSON_AddItemToObject(u, "event_type",
                                      cJSON_DetachItemFromObject(row, "event_type"));
                cJSON_AddItemToObject(u, "event_data",
                                      cJSON_DetachItemFromObject(row, "event_data"));
                r->redecoded_ok++;
            }
        }
        cJSON_Delete(row);
        cJSON_Delete(data);
        if (cJSON_GetObjectItemCaseSensitive(u, "status") == NULL) {
            cJSON_Delete(u); /* out of memory: the row waits for the next pass */
            continue;
        }
        cJSON_AddItemToArray(updates, u);
        r->redecoded++;
    }
    char *text = updates != NULL ? cJSON_PrintUnformatted(updates) : NULL;
    cJSON_Delete(updates);
    if (text == NULL)
        return retry_abort(r, "out of memory", -ENOMEM, NULL);
    const char *p[] = {text};
    int rc = pg->lease_query(ce->host, r->lease, SQL_RETRY_SET, 1, p, on_retry_set, r);
    free(text);
    if (rc != 0)
        retry_abort(r, "updating failed events", -EIO, NULL);
}

static void on_retry_begun(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct run *r = arg;
    struct ce *ce = r->ce;
    if (status != 0)
        return retry_abort(r, "starting a transaction", status, res);
    r->lease = lease;
    char max[24], batch[24];
    snprintf(max, sizeof max, "%" PRId64, ce->cfg->max_retries);
    snprintf(batch, sizeof batch, "%" PRId64, ce->cfg->retry_batch);
    const char *p[] = {ce->ids_array, max, batch};
    if (ce->pg->lease_query(ce->host, lease, SQL_RETRY_PICK, 3, p, on_retry_picked, r) != 0)
        retry_abort(r, "picking failed events", -EIO, NULL);
}

static void retry_pass(struct run *r)
{
    struct ce *ce = r->ce;
    if (ce->cfg->max_retries <= 0 || ce->pg->begin(ce->host, on_retry_begun, r) != 0)
        run_done(r);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static int ce_schedules(const void *config, struct nova_schedule *out, size_t max, char *err,
                        size_t errlen)
{
    const struct ce_config *cfg = config;
    (void)err;
    (void)errlen;
    if (cfg->schedule == NULL || cfg->schedule[0] == '\0' || max < 1)
        return 0;
    out[0] = (struct nova_schedule){
        .id = "contract-events",
        .queue = cfg->queue,
        .job_name = JOB_NAME,
        .spec = cfg->schedule,
        .timezone = cfg->timezone,
        .data_json = "{}",
    };
    return 1;
}

static int validate_contract(void *ctx, const char *id, char *err, size_t errlen)
{
    const struct nova_stellar_api *st = ctx;
    return st->strkey_validate(id, NOVA_STRKEY_CONTRACT, err, errlen);
}

static int ce_init(const struct nova_host *host, const void *config, void **state)
{
    const struct ce_config *cfg = config;
    if (!NOVA_HOST_HAS(host, pg) || !NOVA_HOST_HAS(host, stellar) ||
        !NOVA_HOST_HAS(host, subscribe)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "contract_events needs PostgreSQL, Stellar and queues from the host");
        return -ENOTSUP;
    }
    const struct nova_stellar_api *st = host->stellar;
    if (!NOVA_STELLAR_HAS(st, get_events) || !NOVA_STELLAR_HAS(st, rpc_health) ||
        !NOVA_STELLAR_HAS(st, rpc_latest_ledger) || !NOVA_STELLAR_HAS(st, scval_decode) ||
        !NOVA_STELLAR_HAS(st, strkey_validate) || !NOVA_STELLAR_HAS(st, network)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "contract_events needs the host's Stellar RPC calls (nova/stellar.h)");
        return -ENOTSUP;
    }
    const struct nova_stellar_network *net = st->network(host);
    if (net == NULL || net->rpc_url == NULL) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "contract_events needs [stellar] soroban_rpc_url (or SOROBAN_RPC_URL)");
        return -EINVAL;
    }
    struct ce *ce = calloc(1, sizeof *ce);
    if (ce == NULL)
        return -ENOMEM;
    ce->host = host;
    ce->cfg = cfg;
    ce->pg = host->pg;
    ce->st = st;
    char err[400] = "";
    int rc = 0;
    if (cfg->contract_ids != NULL && cfg->contract_ids[0] != '\0')
        rc = ce_contracts_add(&ce->set, cfg->contract_ids, "contract_ids", validate_contract,
                              (void *)st, err, sizeof err);
    else
        for (size_t i = 0; rc == 0 && ce_contract_env[i] != NULL; i++)
            rc = ce_contracts_add(&ce->set, getenv(ce_contract_env[i]), ce_contract_env[i],
                                  validate_contract, (void *)st, err, sizeof err);
    if (rc == 0 && ce->set.n == 0) {
        snprintf(err, sizeof err,
                 "no contract to index: set contract_ids, or one of NOVA_TOKEN_CONTRACT_ID, "
                 "REWARD_POOL_CONTRACT_ID, VESTING_CONTRACT_ID, REFERRAL_CONTRACT_ID, "
                 "DISTRIBUTION_CONTRACT_ID, ADMIN_ROLES_CONTRACT_ID, NOVA_REWARDS_CONTRACT_ID, "
                 "GOVERNANCE_CONTRACT_ID");
        rc = -EINVAL;
    }
    if (rc != 0) {
        host->log(host, NOVA_LOG_ERROR, NULL, "contract_events: %s", err);
        free(ce);
        return -EINVAL;
    }
    ce_contracts_array(&ce->set, ce->ids_array, sizeof ce->ids_array);
    ce_lock_name(&ce->set, ce->lock_name, sizeof ce->lock_name);
    ce->filter_count = ce_filters(&ce->set, ce->filters);

    static const char *const l_contract_type[] = {"contract", "type", NULL};
    static const char *const l_kind[] = {"kind", NULL};
    static const char *const l_result[] = {"result", NULL};
    ce->m_indexed = host->metric_new(
        host, NOVA_METRIC_COUNTER, "nova_contract_events_indexed_total",
        "Contract events indexed, by contract and event type", l_contract_type, NULL, 0);
    ce->m_lag = host->metric_new(host, NOVA_METRIC_GAUGE, "nova_contract_events_lag_ledgers",
                                 "Ledgers between the indexer's cursor and the RPC's latest", NULL,
                                 NULL, 0);
    ce->m_gaps =
        host->metric_new(host, NOVA_METRIC_COUNTER, "nova_contract_events_gaps_total",
                         "Cursors found older than the RPC's retention window", NULL, NULL, 0);
    ce->m_gap_ledgers = host->metric_new(
        host, NOVA_METRIC_COUNTER, "nova_contract_events_gap_ledgers_total",
        "Ledgers whose events were lost to the RPC's retention window", NULL, NULL, 0);
    ce->m_failures = host->metric_new(
        host, NOVA_METRIC_COUNTER, "nova_contract_events_failures_total",
        "Indexer failures: decode (an event stored as failed), rpc, database", l_kind, NULL, 0);
    ce->m_redecoded =
        host->metric_new(host, NOVA_METRIC_COUNTER, "nova_contract_events_redecoded_total",
                         "Failed events decoded again, by outcome", l_result, NULL, 0);

    static const char *const names[] = {JOB_NAME, NULL};
    struct nova_subscription sub = {
        .struct_size = sizeof sub,
        .queue = cfg->queue,
        .job_names = names,
        .concurrency = 1,
        .handle = on_job,
        .arg = ce,
    };
    if ((rc = host->subscribe(host, &sub)) != 0) {
        free(ce);
        return rc;
    }
    host->log(host, NOVA_LOG_INFO, NULL,
              "contract_events: indexing %zu contract(s) %s from %s on queue %s (%s)", ce->set.n,
              ce->ids_array, net->rpc_url, cfg->queue,
              cfg->schedule != NULL && cfg->schedule[0] != '\0' ? cfg->schedule : "no schedule");
    *state = ce;
    return 0;
}

static void ce_stop(void *state)
{
    struct ce *ce = state;
    ce->stopping = true;
}

static void ce_shutdown(void *state)
{
    struct ce *ce = state;
    /* The host cancelled our calls (their callbacks freed the run) and
     * gave an unfinished job back. */
    if (ce->run != NULL)
        run_free(ce->run);
    free(ce);
}

static const struct nova_plugin ce_plugin = {
    NOVA_PLUGIN_ABI,
    .requires = NOVA_REQUIRES_REDIS | NOVA_REQUIRES_PG | NOVA_REQUIRES_STELLAR,
    .name = "contract_events",
    .version = "1.0.0",
    .description = "indexes Soroban contract events from Stellar RPC getEvents, exactly once",
    .config = ce_config_table,
    .config_size = sizeof(struct ce_config),
    .required_columns = ce_columns,
    .init = ce_init,
    .stop = ce_stop,
    .shutdown = ce_shutdown,
    .schedules = ce_schedules,
};

NOVA_PLUGIN_DEFINE(ce_plugin)
