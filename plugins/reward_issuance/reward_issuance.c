/*
 * reward_issuance - Nova's reward-issuance (issue-reward) and
 * reward-distribution (distribute) jobs, paid exactly once from the
 * distribution account, in batches. docs/plugins/reward_issuance.md has
 * the protocol; this file holds the jobs, ri_lane.c the submitter.
 *
 * A job never pays by itself: it validates, checks the campaign and the
 * recipient's trustline, queues a row in nova_worker_payments (unique per
 * issuance) and waits until the lane of the fleet has confirmed or failed
 * that row. The issuance is marked confirmed by the lane, in the same
 * statement that records the Stellar transaction as included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include <nova/pg.h>
#include <nova/plugin.h>
#include <nova/redis.h>
#include <nova/stellar.h>

#include "ri.h"
#include "ri_lane.h"
#include "ri_logic.h"

#define ISSUE_QUEUE    "reward-issuance"
#define DIST_QUEUE     "reward-distribution"
#define DLQ_QUEUE      "reward-issuance-dlq"
#define MAX_RECIPIENTS 1000

static const struct nova_config_entry ri_config_table[] = {
    {
        .key = "horizon_url",
        .type = NOVA_CONFIG_STRING,
        .offset = offsetof(struct ri_config, horizon_url),
        .help = "optional; must equal [stellar] horizon_url (Horizon is reached through it)",
        .env = "HORIZON_URL",
    },
    {.key = "network",
     .type = NOVA_CONFIG_STRING,
     .default_value = NULL,
     .offset = offsetof(struct ri_config, network),
     .help = "optional; must name the [stellar] network (testnet, public or a passphrase)",
     .env = "STELLAR_NETWORK"},
    {.key = "asset_code",
     .type = NOVA_CONFIG_STRING,
     .default_value = NULL,
     .offset = offsetof(struct ri_config, asset_code),
     .help = "asset paid (default: [stellar] asset_code, else NOVA)"},
    {
        .key = "asset_issuer",
        .type = NOVA_CONFIG_STRING,
        .offset = offsetof(struct ri_config, asset_issuer),
        .help = "issuer G... of the asset (default: [stellar] asset_issuer)",
        .env = "ISSUER_PUBLIC",
    },
    {
        .key = "distribution_secret",
        .type = NOVA_CONFIG_SECRET,
        .offset = offsetof(struct ri_config, distribution_secret),
        .help = "seed S... of the paying account (default: the host signs with [stellar]'s)",
        .env = "DISTRIBUTION_SECRET",
    },
    {.key = "channel_secrets",
     .type = NOVA_CONFIG_SECRET,
     .offset = offsetof(struct ri_config, channel_secrets),
     .help = "optional channel account seeds (comma-separated): one more lane each",
     .env = "NOVA_CHANNEL_SECRETS"},
    {.key = "base_fee",
     .type = NOVA_CONFIG_INT,
     .default_value = "100",
     .offset = offsetof(struct ri_config, base_fee),
     .help = "fee per operation, stroops",
     .min = 100,
     .max = 10000000},
    {.key = "tx_timeout",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "60s",
     .offset = offsetof(struct ri_config, tx_timeout_ms),
     .help = "validity of each envelope (its max time is now + this)",
     .min = 5000,
     .max = 3600000},
    {.key = "batch_max",
     .type = NOVA_CONFIG_INT,
     .default_value = "100",
     .offset = offsetof(struct ri_config, batch_max),
     .help = "payments per transaction",
     .min = 1,
     .max = NOVA_STELLAR_MAX_OPS},
    {.key = "batch_wait",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "1s",
     .offset = offsetof(struct ri_config, batch_wait_ms),
     .help = "longest wait for a batch to fill",
     .min = 0,
     .max = 60000},
    {.key = "submit_timeout",
     .type = NOVA_CONFIG_DURATION,
     .default_value = NULL,
     .offset = offsetof(struct ri_config, submit_timeout_ms),
     .help = "deprecated, ignored: submissions use the [stellar] client's timeout",
     .min = 100,
     .max = 600000},
    {.key = "lease",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "15s",
     .offset = offsetof(struct ri_config, lease_ms),
     .help = "submitter lease length",
     .min = 300,
     .max = 600000},
    {.key = "concurrency",
     .type = NOVA_CONFIG_INT,
     .default_value = "200",
     .offset = offsetof(struct ri_config, concurrency),
     .help = "issue-reward jobs per worker",
     .min = 1,
     .max = 10000},
    {.key = "distribution_concurrency",
     .type = NOVA_CONFIG_INT,
     .default_value = "2",
     .offset = offsetof(struct ri_config, distribution_concurrency),
     .help = "distribute jobs per worker",
     .min = 1,
     .max = 100},
    {.key = "job_timeout",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "10m",
     .offset = offsetof(struct ri_config, job_timeout_ms),
     .help = "how long a job waits for its queued payment before retrying",
     .min = 1000,
     .max = 86400000},
    {.key = "poll",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "200ms",
     .offset = offsetof(struct ri_config, poll_ms),
     .help = "how often waiting jobs look at their payments",
     .min = 10,
     .max = 60000},
    {.key = "queue_prefix",
     .type = NOVA_CONFIG_STRING,
     .default_value = "bull",
     .offset = offsetof(struct ri_config, queue_prefix),
     .help = "BullMQ key prefix, for reward_queue_depth"},
    {.key = NULL},
};

static const char *const ri_columns[] = {
    "reward_issuances.id",
    "reward_issuances.status",
    "reward_issuances.attempts",
    "reward_issuances.tx_hash",
    "reward_issuances.error_message",
    "reward_issuances.wallet_address",
    "reward_issuances.amount",
    "reward_issuances.user_id",
    "campaigns.is_active",
    "campaigns.end_date",
    "campaigns.deleted_at",
    "campaigns.merchant_id",
    "users.wallet_address",
    "nova_worker_payments.reference",
    "nova_worker_stellar_txs.envelope_xdr",
    "nova_worker_lanes.next_seq",
    /* migration 105: confirmations queue reward.distributed webhooks */
    "nova_worker_webhook_dispatches.reference",
    NULL,
};

/* ---- waiters: jobs of this process waiting for payment rows --------------- */

struct ri_waiter {
    struct ri_waiter *next, *prev;
    struct ri *ri;
    nova_job *job;
    int64_t payment_id;
    int64_t deadline_ms;
    bool linked;
    /* status: "confirmed", "failed", "timeout" (not final at the
     * deadline: queued or in a transaction) or "cancelled" (the job was
     * cancelled) */
    void (*cb)(struct ri_waiter *w, const char *status, const char *error, const char *hash);
};

static void waiter_unlink(struct ri_waiter *w)
{
    if (!w->linked)
        return;
    struct ri *ri = w->ri;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        ri->waiters = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
    w->linked = false;
    ri->waiter_count--;
}

static void poll_now(struct ri *ri);

static void waiter_add(struct ri_waiter *w)
{
    struct ri *ri = w->ri;
    w->prev = NULL;
    w->next = ri->waiters;
    if (ri->waiters != NULL)
        ri->waiters->prev = w;
    ri->waiters = w;
    w->linked = true;
    ri->waiter_count++;
}

static const char SQL_POLL[] =
    "SELECT p.id, p.status, p.error_message, t.tx_hash FROM nova_worker_payments p "
    "LEFT JOIN nova_worker_stellar_txs t ON t.id = p.stellar_tx_id "
    "WHERE p.id = ANY($1::bigint[])";

static void on_poll(void *arg, int status, const nova_pg_result *res)
{
    struct ri *ri = arg;
    ri->poll_busy = false;
    if (status == -ECANCELED)
        return;
    const struct nova_pg_api *pg = ri->pg;
    int64_t now = ri->host->now_ms(ri->host);
    int rows = status == 0 ? pg->ntuples(res) : 0;
    /* Collect the finished ones first: a callback may add or remove
     * waiters (a retry re-waits). */
    struct done_rec {
        struct ri_waiter *w;
        char status[16];
        char error[RI_REASON_MAX];
        char hash[65];
    } *recs = NULL;
    size_t nrec = 0;
    if (ri->waiter_count > 0)
        recs = calloc(ri->waiter_count, sizeof *recs);
    for (struct ri_waiter *w = ri->waiters; w != NULL && recs != NULL; w = w->next) {
        const char *st = NULL, *err = NULL, *hash = NULL;
        for (int r = 0; r < rows; r++) {
            int64_t id = 0;
            if (pg->get_int64(res, r, 0, &id) == 0 && id == w->payment_id) {
                st = pg->get_text(res, r, 1);
                err = pg->get_text(res, r, 2);
                hash = pg->get_text(res, r, 3);
                break;
            }
        }
        const char *outcome = NULL;
        if (st != NULL && (strcmp(st, "confirmed") == 0 || strcmp(st, "failed") == 0))
            outcome = st;
        else if (ri->host->job_cancelled(w->job))
            outcome = "cancelled";
        else if (st != NULL && now >= w->deadline_ms)
            outcome = "timeout"; /* queued or in a transaction: the job decides */
        if (outcome == NULL)
            continue;
        struct done_rec *d = &recs[nrec++];
        d->w = w;
        snprintf(d->status, sizeof d->status, "%s", outcome);
        snprintf(d->error, sizeof d->error, "%s", err ? err : "");
        snprintf(d->hash, sizeof d->hash, "%s", hash ? hash : "");
    }
    for (size_t i = 0; i < nrec; i++)
        waiter_unlink(recs[i].w);
    for (size_t i = 0; i < nrec; i++)
        recs[i].w->cb(recs[i].w, recs[i].status, recs[i].error, recs[i].hash);
    free(recs);
    if (status != 0)
        ri->host->log(ri->host, NOVA_LOG_WARN, NULL, "polling payments failed: %s",
                      pg->error_message(res));
}

static void poll_now(struct ri *ri)
{
    if (ri->poll_busy || ri->waiter_count == 0)
        return;
    size_t cap = ri->waiter_count * 21 + 3;
    char *arr = malloc(cap);
    if (arr == NULL)
        return;
    size_t off = 0;
    arr[off++] = '{';
    for (struct ri_waiter *w = ri->waiters; w != NULL; w = w->next)
        off +=
            (size_t)snprintf(arr + off, cap - off, "%s%" PRId64, off > 1 ? "," : "", w->payment_id);
    snprintf(arr + off, cap - off, "}");
    const char *p[] = {arr};
    if (ri->pg->query(ri->host, SQL_POLL, 1, p, on_poll, ri) == 0)
        ri->poll_busy = true;
    free(arr);
}

static void on_poll_timer(void *arg)
{
    poll_now(arg);
}

/* New pending payments: wake every idle lane. */
static void poke_lanes(struct ri *ri)
{
    for (size_t i = 0; i < ri->lane_count; i++)
        nova__ri_lane_poke(ri->lanes[i]);
}

/* A lane changed payment rows (nova__ri_lane_start()'s rows_changed). */
static void on_rows_changed(void *arg)
{
    poll_now(arg);
}

/* ---- shared job helpers ---------------------------------------------------- */

/* By status only: a merchant label would grow with every merchant Nova
 * signs up (unbounded series); per-merchant figures come from the
 * reward_issuances table. */
static void count_issuance(struct ri *ri, const char *status, int64_t started_ms)
{
    const char *lv[] = {status, NULL};
    ri->host->metric_add(ri->m_issuances, lv, 1);
    double secs = (double)(ri->host->now_ms(ri->host) - started_ms) / 1000.0;
    ri->host->metric_observe(ri->m_duration, lv, secs < 0 ? 0 : secs);
}

static void on_cache_del(void *arg, int status, const struct nova_redis_reply *reply)
{
    /* Best effort: a stale balance cache is not worth failing a paid job. */
    (void)arg;
    (void)status;
    (void)reply;
}

static void invalidate_cache(struct ri *ri, const char *wallet, bool has_user, int64_t user_id)
{
    if (!NOVA_HOST_HAS(ri->host, redis))
        return;
    char k1[96], k2[96], k3[48], k4[48];
    snprintf(k1, sizeof k1, "wallet:balance:%s", wallet);
    snprintf(k2, sizeof k2, "wallet:tokenBalance:%s", wallet);
    snprintf(k3, sizeof k3, "balance:%" PRId64, user_id);
    snprintf(k4, sizeof k4, "tokenBalance:%" PRId64, user_id);
    const char *argv[] = {"DEL", k1, k2, k3, k4};
    (void)ri->host->redis->command(ri->host, has_user ? 5 : 3, argv, NULL, on_cache_del, NULL);
}

/* ---- issue-reward --------------------------------------------------------- */

struct issue_job {
    struct ri *ri;
    nova_job *job;
    struct ri_issue_req req;
    int64_t started_ms;
    bool has_user;
    int64_t user_id;
    int64_t payment_id;
    char reason_label[32];
    char reason[RI_REASON_MAX];
    bool permanent;
    bool attempt_counted;   /* SQL_LOAD counted this attempt on the row */
    int mark_tries;         /* SQL_MARK_FAILED attempts on the final attempt */
    int preflight_tries;    /* negative pre-flight answers from lagging replicas */
    nova_timer *mark_timer; /* the one pending retry of this job, if any */
    struct ri_waiter w;
};

static void issue_free(struct issue_job *j)
{
    waiter_unlink(&j->w);
    if (j->mark_timer != NULL)
        j->ri->host->timer_stop(j->ri->host, j->mark_timer);
    free(j);
}

static void issue_done_json(struct issue_job *j, const char *json)
{
    j->ri->host->job_done(j->job, json);
    issue_free(j);
}

static void on_dlq(void *arg, int status, const char *job_id)
{
    struct issue_job *j = arg;
    struct ri *ri = j->ri;
    (void)job_id;
    if (status != 0)
        ri->host->log(ri->host, NOVA_LOG_ERROR, j->job, "dead-letter enqueue failed (%d)", status);
    ri->host->job_fail(j->job, j->reason);
    issue_free(j);
}

static void dead_letter(struct issue_job *j)
{
    struct ri *ri = j->ri;
    const char *lv[] = {j->reason_label, NULL};
    ri->host->metric_add(ri->m_dlq, lv, 1);
    count_issuance(ri, "failed", j->started_ms);
    cJSON *data = cJSON_Duplicate((cJSON *)ri->host->job_data(j->job), true);
    if (!cJSON_IsObject(data)) {
        cJSON_Delete(data);
        data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "raw", ri->host->job_data_json(j->job));
    }
    cJSON_DeleteItemFromObjectCaseSensitive(data, "failedReason");
    cJSON_AddStringToObject(data, "failedReason", j->reason);
    char *json = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    int rc = json != NULL
                 ? ri->host->enqueue(ri->host, DLQ_QUEUE, "dead-letter", json, NULL, on_dlq, j)
                 : -ENOMEM;
    free(json);
    if (rc != 0)
        on_dlq(j, rc, NULL);
}

/* $3: 1 when this attempt was not counted on the row yet (the payload was
 * refused before the row was read). Never a row that is paid or has a
 * payment under way. */
static const char SQL_MARK_FAILED[] =
    "UPDATE reward_issuances SET status = 'failed', error_message = $2, attempts = attempts + "
    "$3::int, updated_at = now() WHERE id = $1 AND status <> 'confirmed' AND NOT EXISTS (SELECT "
    "1 FROM nova_worker_payments WHERE issuance_id = $1 AND status IN ('pending', 'prepared', "
    "'submitted', 'confirmed'))";

#define MARK_TRIES 5

static void mark_failed(struct issue_job *j);

static void on_mark_timer(void *arg)
{
    struct issue_job *j = arg;
    j->mark_timer = NULL;
    mark_failed(j);
}

static void on_marked_failed(void *arg, int status, const nova_pg_result *res)
{
    struct issue_job *j = arg;
    struct ri *ri = j->ri;
    if (status == -ECANCELED) {
        ri->host->job_retry(j->job, "worker shutting down", -1);
        return issue_free(j);
    }
    if (status != 0) {
        /* This is the last attempt: the row must not stay pending with no
         * dead letter. Retry the bookkeeping, then dead-letter anyway with
         * what happened (a replay finds the row and pays at most once). */
        const char *e = ri->pg->error_message(res);
        if (++j->mark_tries < MARK_TRIES) {
            ri->host->log(ri->host, NOVA_LOG_WARN, j->job,
                          "issuance %" PRId64 ": marking it failed: %s (try %d of %d)",
                          j->req.issuance_id, e, j->mark_tries, MARK_TRIES);
            j->mark_timer =
                ri->host->timer_start(ri->host, 250ULL << j->mark_tries, 0, on_mark_timer, j);
            if (j->mark_timer != NULL)
                return;
        }
        size_t n = strlen(j->reason);
        snprintf(j->reason + n, sizeof j->reason - n,
                 " (issuance %" PRId64 " could not be marked failed: %s)", j->req.issuance_id, e);
        ri->host->log(ri->host, NOVA_LOG_ERROR, j->job, "%s", j->reason);
    }
    dead_letter(j);
}

static void mark_failed(struct issue_job *j)
{
    struct ri *ri = j->ri;
    char id[32];
    snprintf(id, sizeof id, "%" PRId64, j->req.issuance_id);
    const char *p[] = {id, j->reason, j->attempt_counted ? "0" : "1"};
    if (ri->pg->query(ri->host, SQL_MARK_FAILED, 3, p, on_marked_failed, j) != 0)
        dead_letter(j);
}

/* Ends the job with a failure: a retry while attempts remain, else the
 * issuance is marked failed with the reason and the job dead-lettered. */
static void issue_fail(struct issue_job *j, bool permanent, const char *label, const char *fmt, ...)
    NOVA_PRINTF(4, 5);

static void issue_fail(struct issue_job *j, bool permanent, const char *label, const char *fmt, ...)
{
    struct ri *ri = j->ri;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->reason, sizeof j->reason, fmt, ap);
    va_end(ap);
    snprintf(j->reason_label, sizeof j->reason_label, "%s", label);
    int made = ri->host->job_attempts_made(j->job);
    int max = ri->host->job_attempts_max(j->job);
    bool final = permanent || made + 1 >= max;
    ri->host->log(ri->host, final ? NOVA_LOG_WARN : NOVA_LOG_INFO, j->job,
                  "issuance %" PRId64 ": %s (attempt %d of %d)", j->req.issuance_id, j->reason,
                  made + 1, max);
    if (!final) {
        ri->host->job_retry(j->job, j->reason, -1);
        return issue_free(j);
    }
    if (j->req.issuance_id <= 0)
        return dead_letter(j);
    mark_failed(j);
}

static void issue_confirmed(struct issue_job *j, const char *hash)
{
    struct ri *ri = j->ri;
    invalidate_cache(ri, j->req.wallet, j->has_user, j->user_id);
    count_issuance(ri, "confirmed", j->started_ms);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "confirmed", true);
    cJSON_AddStringToObject(r, "txHash", hash);
    char *json = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    ri->host->log(ri->host, NOVA_LOG_INFO, j->job, "issuance %" PRId64 " confirmed: %s",
                  j->req.issuance_id, hash);
    issue_done_json(j, json);
    free(json);
}

static const char SQL_CANCEL[] =
    "UPDATE nova_worker_payments SET status = 'failed', error_message = 'queue_timeout', "
    "updated_at = now() WHERE id = $1 AND status = 'pending'";

static void issue_wait(struct issue_job *j);

static void on_cancelled(void *arg, int status, const nova_pg_result *res)
{
    struct issue_job *j = arg;
    if (status == 0 && j->ri->pg->affected_rows(res) == 1)
        return issue_fail(j, false, "timeout", "payment not sent within job_timeout");
    if (status == -ECANCELED) {
        j->ri->host->job_retry(j->job, "worker shutting down", -1);
        return issue_free(j);
    }
    /* already in an envelope: its outcome is near */
    j->w.deadline_ms = j->ri->host->now_ms(j->ri->host) + j->ri->cfg->tx_timeout_ms;
    waiter_add(&j->w);
}

static void on_issue_payment(struct ri_waiter *w, const char *status, const char *error,
                             const char *hash)
{
    struct issue_job *j = (struct issue_job *)((char *)w - offsetof(struct issue_job, w));
    struct ri *ri = j->ri;
    if (strcmp(status, "confirmed") == 0)
        return issue_confirmed(j, hash);
    if (strcmp(status, "failed") == 0)
        return issue_fail(j, false, nova__ri_reason_label(error), "payment failed: %s",
                          error[0] ? error : "unknown");
    if (strcmp(status, "cancelled") == 0) {
        /* The payment stays queued or in flight; the retry finds it. */
        ri->host->job_retry(j->job, "job cancelled while its payment was pending", -1);
        return issue_free(j);
    }
    char id[32];
    snprintf(id, sizeof id, "%" PRId64, j->payment_id);
    const char *p[] = {id};
    if (ri->pg->query(ri->host, SQL_CANCEL, 1, p, on_cancelled, j) != 0)
        issue_wait(j);
}

static void issue_wait(struct issue_job *j)
{
    struct ri *ri = j->ri;
    j->w.ri = ri;
    j->w.job = j->job;
    j->w.payment_id = j->payment_id;
    j->w.deadline_ms = ri->host->now_ms(ri->host) + ri->cfg->job_timeout_ms;
    j->w.cb = on_issue_payment;
    waiter_add(&j->w);
}

static const char SQL_ENSURE[] =
    "WITH ins AS (INSERT INTO nova_worker_payments (reference, kind, issuance_id, campaign_id, "
    "queue, job_id, destination, asset_code, asset_issuer, amount) VALUES ($1, 'issuance', $2, "
    "$3, $4, $5, $6, $7, $8, $9::numeric / 10000000) ON CONFLICT (reference) DO UPDATE SET "
    "status = 'pending', error_message = NULL, stellar_tx_id = NULL, op_index = NULL, job_id = "
    "EXCLUDED.job_id, created_at = now(), updated_at = now() WHERE nova_worker_payments.status "
    "= 'failed' RETURNING id, status), "
    "reopen AS (UPDATE reward_issuances SET status = 'pending', error_message = NULL, updated_at "
    "= now() WHERE id = $2 AND status = 'failed' AND EXISTS (SELECT 1 FROM ins) RETURNING id) "
    "SELECT id, status FROM ins UNION ALL SELECT id, status FROM nova_worker_payments "
    "WHERE reference = $1 AND NOT EXISTS (SELECT 1 FROM ins)";

static void on_ensured(void *arg, int status, const nova_pg_result *res)
{
    struct issue_job *j = arg;
    struct ri *ri = j->ri;
    if (status != 0) {
        if (status == -ECANCELED) {
            ri->host->job_retry(j->job, "worker shutting down", -1);
            return issue_free(j);
        }
        return issue_fail(j, false, "database", "queueing the payment: %s",
                          ri->pg->error_message(res));
    }
    if (ri->pg->ntuples(res) != 1 || ri->pg->get_int64(res, 0, 0, &j->payment_id) != 0)
        return issue_fail(j, false, "database", "queueing the payment: no row");
    poke_lanes(ri);
    issue_wait(j);
}

static void issue_enqueue_payment(struct issue_job *j)
{
    struct ri *ri = j->ri;
    char ref[48], id[32], camp[32], amount[32];
    snprintf(ref, sizeof ref, "issuance:%" PRId64, j->req.issuance_id);
    snprintf(id, sizeof id, "%" PRId64, j->req.issuance_id);
    snprintf(camp, sizeof camp, "%" PRId64, j->req.campaign_id);
    snprintf(amount, sizeof amount, "%" PRId64, j->req.amount);
    const char *p[] = {ref,
                       id,
                       camp,
                       ISSUE_QUEUE,
                       ri->host->job_id(j->job),
                       j->req.wallet,
                       ri->asset_code,
                       ri->asset_issuer,
                       amount};
    if (ri->pg->query(ri->host, SQL_ENSURE, 9, p, on_ensured, j) != 0)
        issue_fail(j, false, "database", "queueing the payment: cannot start the query");
}

static void on_recipient(void *arg, const struct nova_stellar_status *st,
                         const struct nova_stellar_account *account);

static void on_recheck_timer(void *arg)
{
    struct issue_job *j = arg;
    j->mark_timer = NULL;
    if (j->ri->st->load_account(j->ri->host, j->req.wallet, on_recipient, j) != 0)
        issue_fail(j, false, "horizon", "cannot start the trustline check");
}

static void on_clock(void *arg, const struct nova_stellar_status *st,
                     const struct nova_stellar_ledger *ledger)
{
    struct ri *ri = arg;
    ri->clock_asking = false;
    if (st->error == 0 && ledger != NULL) {
        (void)ri_fresh_answer(ri, st->latest_ledger);
        ri_note_close(ri, ledger->sequence, ledger->closed_at);
    }
}

/* Asks Horizon for a newer ledger close time (one question at a time): the
 * proof an unproven negative pre-flight answer waits for. */
static void ri_ask_clock(struct ri *ri)
{
    if (ri->clock_asking)
        return;
    ri->clock_asking = ri->st->latest_ledger(ri->host, on_clock, ri) == 0;
}

/* A negative pre-flight answer not proven current (ri_negative_proven) may
 * be stale (an account or trustline made since): ask again, and after a
 * few tries let the network decide (the payment then fails there, if it
 * must). */
static bool preflight_stale(struct issue_job *j, const struct nova_stellar_status *st)
{
    struct ri *ri = j->ri;
    if (ri_negative_proven(ri, st->latest_ledger, ri->host->job_timestamp_ms(j->job)))
        return false;
    ri_ask_clock(ri);
    if (++j->preflight_tries < RI_PREFLIGHT_TRIES) {
        j->mark_timer = ri->host->timer_start(ri->host, ri_preflight_wait_ms(j->preflight_tries), 0,
                                              on_recheck_timer, j);
        if (j->mark_timer != NULL)
            return true;
    }
    ri->host->log(ri->host, NOVA_LOG_INFO, j->job,
                  "issuance %" PRId64 ": the pre-flight check found no current proof (answered "
                  "at ledger %" PRIu32 ", newest heard %" PRIu32 "): the payment is queued and "
                  "the network decides",
                  j->req.issuance_id, st->latest_ledger, ri->horizon_ledger);
    issue_enqueue_payment(j);
    return true;
}

static void on_recipient(void *arg, const struct nova_stellar_status *st,
                         const struct nova_stellar_account *account)
{
    struct issue_job *j = arg;
    struct ri *ri = j->ri;
    if (st->error == -ECANCELED) {
        ri->host->job_retry(j->job, "worker shutting down", -1);
        return issue_free(j);
    }
    if (st->error == -ENOENT) {
        if (preflight_stale(j, st))
            return;
        return issue_fail(j, false, "no_destination", "recipient account %s does not exist",
                          j->req.wallet);
    }
    if (st->error != 0 || account == NULL)
        return issue_fail(j, false, "horizon", "Horizon unavailable for the trustline check: %s",
                          st->message);
    char reason[64] = "";
    if (nova__ri_check_trustline(account, j->req.wallet, ri->asset_code, ri->asset_issuer,
                                 j->req.amount, reason, sizeof reason) != 0) {
        if (preflight_stale(j, st))
            return;
        return issue_fail(j, false, reason, "%s: recipient %s cannot receive %s", reason,
                          j->req.wallet, ri->asset_code);
    }
    (void)ri_fresh_answer(ri, st->latest_ledger);
    issue_enqueue_payment(j);
}

/* Never while a payment of the issuance is open or done: then the job waits
 * for that payment instead (on_skipped). */
static const char SQL_SKIP[] =
    "UPDATE reward_issuances SET status = 'failed', error_message = 'Campaign is inactive or "
    "expired', updated_at = now() WHERE id = $1 AND status <> 'confirmed' AND NOT EXISTS "
    "(SELECT 1 FROM nova_worker_payments WHERE issuance_id = $1 AND status IN ('pending', "
    "'prepared', 'submitted', 'confirmed'))";

static void on_skipped(void *arg, int status, const nova_pg_result *res)
{
    struct issue_job *j = arg;
    struct ri *ri = j->ri;
    if (status != 0) {
        if (status == -ECANCELED) {
            ri->host->job_retry(j->job, "worker shutting down", -1);
            return issue_free(j);
        }
        return issue_fail(j, false, "database", "marking the issuance skipped: %s",
                          ri->pg->error_message(res));
    }
    if (ri->pg->affected_rows(res) != 1) {
        /* A payment of it appeared meanwhile (another job), or it was
         * paid: the next attempt waits for that payment. */
        ri->host->job_retry(j->job, "issuance changed while checking its campaign", 1000);
        return issue_free(j);
    }
    count_issuance(ri, "skipped", j->started_ms);
    issue_done_json(j, "{\"skipped\":true,\"reason\":\"campaign_inactive\"}");
}

/* Counts the attempt and reads the issuance, its campaign and its payment. */
/* The campaign checked is the issuance row's own; the payload's must name
 * the same one. */
static const char SQL_LOAD[] =
    "WITH u AS (UPDATE reward_issuances SET attempts = attempts + 1, updated_at = now() "
    "WHERE id = $1 RETURNING id, status, wallet_address, amount, tx_hash, user_id, campaign_id) "
    "SELECT u.status, u.wallet_address, (u.amount * 10000000)::bigint, u.tx_hash, u.user_id, "
    "c.merchant_id, (c.id IS NOT NULL AND c.is_active IS TRUE AND c.end_date >= CURRENT_DATE "
    "AND c.deleted_at IS NULL), p.id, p.status, "
    "(SELECT us.id FROM users us WHERE us.wallet_address = u.wallet_address LIMIT 1), "
    "u.campaign_id FROM u LEFT JOIN campaigns c ON c.id = u.campaign_id "
    "LEFT JOIN nova_worker_payments p ON p.reference = 'issuance:' || u.id";

static void on_loaded(void *arg, int status, const nova_pg_result *res)
{
    struct issue_job *j = arg;
    struct ri *ri = j->ri;
    const struct nova_pg_api *pg = ri->pg;
    if (status != 0) {
        if (status == -ECANCELED) {
            ri->host->job_retry(j->job, "worker shutting down", -1);
            return issue_free(j);
        }
        return issue_fail(j, false, "database", "reading the issuance: %s", pg->error_message(res));
    }
    if (pg->ntuples(res) != 1) {
        int64_t id = j->req.issuance_id;
        j->req.issuance_id = 0; /* nothing to mark */
        return issue_fail(j, true, "unknown_issuance", "issuance %" PRId64 " does not exist", id);
    }
    j->attempt_counted = true;
    const char *st = pg->get_text(res, 0, 0);
    const char *wallet = pg->get_text(res, 0, 1);
    int64_t amount = 0, uid = 0;
    (void)pg->get_int64(res, 0, 2, &amount);
    /* Column 5 (c.merchant_id) is not read: see count_issuance(). */
    if (j->req.has_user) {
        j->has_user = true;
        j->user_id = j->req.user_id;
    } else if (pg->get_int64(res, 0, 4, &uid) == 0 || pg->get_int64(res, 0, 9, &uid) == 0) {
        j->has_user = true;
        j->user_id = uid;
    }
    if (st != NULL && strcmp(st, "confirmed") == 0) {
        /* Paid already: a retry, a stalled job, a duplicate or a DLQ
         * replay. Never pay again; report what was paid. */
        const char *hash = pg->get_text(res, 0, 3);
        ri->host->log(ri->host, NOVA_LOG_INFO, j->job,
                      "issuance %" PRId64 " already confirmed: nothing to pay", j->req.issuance_id);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "confirmed", true);
        cJSON_AddStringToObject(r, "txHash", hash ? hash : "");
        char *json = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        issue_done_json(j, json);
        free(json);
        return;
    }
    if (wallet == NULL || strcmp(wallet, j->req.wallet) != 0 || amount != j->req.amount)
        return issue_fail(j, true, "payload_mismatch",
                          "job data does not match issuance %" PRId64 " (wallet or amount differ)",
                          j->req.issuance_id);
    int64_t row_campaign = 0;
    if (pg->get_int64(res, 0, 10, &row_campaign) != 0 || row_campaign != j->req.campaign_id)
        return issue_fail(j, true, "payload_mismatch",
                          "job data does not match issuance %" PRId64 " (campaignId %" PRId64
                          ", the issuance's is %s)",
                          j->req.issuance_id, j->req.campaign_id,
                          pg->is_null(res, 0, 10) ? "none" : pg->get_text(res, 0, 10));
    const char *pst = pg->get_text(res, 0, 8);
    if (pst != NULL && (strcmp(pst, "prepared") == 0 || strcmp(pst, "submitted") == 0 ||
                        strcmp(pst, "confirmed") == 0 || strcmp(pst, "pending") == 0)) {
        /* An earlier attempt queued it: wait for that one, never a second. */
        (void)pg->get_int64(res, 0, 7, &j->payment_id);
        return issue_wait(j);
    }
    bool active = false;
    (void)pg->get_bool(res, 0, 6, &active);
    if (!active) {
        char id[32];
        snprintf(id, sizeof id, "%" PRId64, j->req.issuance_id);
        const char *p[] = {id};
        if (pg->query(ri->host, SQL_SKIP, 1, p, on_skipped, j) != 0)
            issue_fail(j, false, "database", "marking the issuance skipped");
        return;
    }
    if (ri->st->load_account(ri->host, j->req.wallet, on_recipient, j) != 0)
        issue_fail(j, false, "horizon", "cannot start the trustline check");
}

static void on_issue_job(void *arg, nova_job *job)
{
    struct ri *ri = arg;
    struct issue_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        ri->host->job_retry(job, "out of memory", -1);
        return;
    }
    j->ri = ri;
    j->job = job;
    j->started_ms = ri->host->now_ms(ri->host);
    char err[RI_REASON_MAX] = "";
    if (nova__ri_parse_issue(ri->st, ri->host->job_data(job), &j->req, err, sizeof err) != 0) {
        /* A payload that still names its issuance (a valid issuanceId, a
         * bad address or amount) fails that row, with the attempt counted,
         * so it does not stay pending forever. */
        if (j->req.issuance_id < 0)
            j->req.issuance_id = 0;
        return issue_fail(j, true, "invalid_payload", "invalid payload: %s", err);
    }
    char id[32];
    snprintf(id, sizeof id, "%" PRId64, j->req.issuance_id);
    const char *p[] = {id};
    if (ri->pg->query(ri->host, SQL_LOAD, 1, p, on_loaded, j) != 0)
        issue_fail(j, false, "database", "cannot start the query");
}

/* ---- distribute ------------------------------------------------------------- */

/* The job id as it may appear inside a double-quoted element of a
 * PostgreSQL array literal: '"' and '\\' escaped. Caller frees. */
static char *array_escape(const char *s)
{
    char *out = malloc(strlen(s) * 2 + 1);
    if (out == NULL)
        return NULL;
    char *o = out;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

static size_t dist_index(const char *ref)
{
    const char *colon = ref != NULL ? strrchr(ref, ':') : NULL;
    return colon != NULL ? (size_t)strtoull(colon + 1, NULL, 10) : SIZE_MAX;
}

struct dist_job;
struct dist_item {
    struct dist_job *d;
    size_t index;
    int64_t payment_id;
    bool has_row;   /* an earlier run of this job queued it: no new check */
    char state[16]; /* "", "confirmed", "failed" */
    char error[RI_REASON_MAX];
    char hash[65];
    struct ri_waiter w;
};

struct dist_job {
    struct ri *ri;
    nova_job *job;
    struct ri_dist_req req;
    struct dist_item *items;
    size_t next_check; /* trustline checks started */
    size_t checks_running;
    size_t waiting;
    bool inserting;
};

static void dist_free(struct dist_job *d)
{
    for (size_t i = 0; d->items != NULL && i < d->req.count; i++)
        waiter_unlink(&d->items[i].w);
    free(d->items);
    nova__ri_dist_free(&d->req);
    free(d);
}

static void dist_finish(struct dist_job *d)
{
    struct ri *ri = d->ri;
    cJSON *r = cJSON_CreateObject();
    cJSON *ok = cJSON_AddArrayToObject(r, "succeeded");
    cJSON *bad = cJSON_AddArrayToObject(r, "failed");
    cJSON *pending = NULL; /* only when some outcome is not known yet */
    for (size_t i = 0; i < d->req.count; i++) {
        struct dist_item *it = &d->items[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "walletAddress", d->req.recipients[i].wallet);
        if (strcmp(it->state, "confirmed") == 0) {
            cJSON_AddStringToObject(e, "txHash", it->hash);
            cJSON_AddItemToArray(ok, e);
            invalidate_cache(ri, d->req.recipients[i].wallet, false, 0);
        } else if (strcmp(it->state, "pending") == 0) {
            if (pending == NULL)
                pending = cJSON_AddArrayToObject(r, "pending");
            cJSON_AddStringToObject(e, "reason", it->error);
            cJSON_AddItemToArray(pending, e);
        } else {
            cJSON_AddStringToObject(e, "error", it->error[0] ? it->error : "failed");
            cJSON_AddItemToArray(bad, e);
        }
    }
    char *json = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    ri->host->job_done(d->job, json);
    free(json);
    dist_free(d);
}

/* Fails the payment if it is still queued (then it is never paid), and
 * reads what it is now (the statement sees the row as it was before). */
static const char SQL_DIST_TAKE_BACK[] =
    "WITH c AS (UPDATE nova_worker_payments SET status = 'failed', error_message = "
    "'queue_timeout', updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING id) "
    "SELECT p.status, p.error_message, t.tx_hash, EXISTS (SELECT 1 FROM c) FROM "
    "nova_worker_payments p LEFT JOIN nova_worker_stellar_txs t ON t.id = p.stellar_tx_id "
    "WHERE p.id = $1";

static void on_dist_taken_back(void *arg, int status, const nova_pg_result *res)
{
    struct dist_item *it = arg;
    struct dist_job *d = it->d;
    const struct nova_pg_api *pg = d->ri->pg;
    bool taken = false;
    const char *st = NULL;
    if (status == 0 && pg->ntuples(res) == 1) {
        st = pg->get_text(res, 0, 0);
        (void)pg->get_bool(res, 0, 3, &taken);
    }
    if (taken) {
        snprintf(it->state, sizeof it->state, "failed");
        snprintf(it->error, sizeof it->error, "queue_timeout: not sent in time, will not be paid");
    } else if (st != NULL && strcmp(st, "confirmed") == 0) {
        snprintf(it->state, sizeof it->state, "confirmed");
        snprintf(it->hash, sizeof it->hash, "%s",
                 pg->get_text(res, 0, 2) ? pg->get_text(res, 0, 2) : "");
    } else if (st != NULL && strcmp(st, "failed") == 0) {
        const char *e = pg->get_text(res, 0, 1);
        snprintf(it->state, sizeof it->state, "failed");
        snprintf(it->error, sizeof it->error, "%s", e != NULL && e[0] ? e : "failed");
    } else {
        snprintf(it->state, sizeof it->state, "pending");
        snprintf(it->error, sizeof it->error, "%s",
                 status == 0 ? "in a transaction whose outcome is not known yet"
                             : "outcome unknown: cannot reach the database");
    }
    if (--d->waiting == 0)
        dist_finish(d);
}

static void on_dist_payment(struct ri_waiter *w, const char *status, const char *error,
                            const char *hash)
{
    struct dist_item *it = (struct dist_item *)((char *)w - offsetof(struct dist_item, w));
    struct dist_job *d = it->d;
    if (strcmp(status, "confirmed") == 0) {
        snprintf(it->state, sizeof it->state, "confirmed");
        snprintf(it->hash, sizeof it->hash, "%s", hash);
    } else if (strcmp(status, "failed") == 0) {
        snprintf(it->state, sizeof it->state, "failed");
        snprintf(it->error, sizeof it->error, "%s", error[0] ? error : "failed");
    } else {
        /* Timeout or cancelled job: what is still queued is taken back, so
         * "failed" stays true; what is already in a transaction is reported
         * pending (it may yet be paid, exactly once). */
        char id[32];
        snprintf(id, sizeof id, "%" PRId64, it->payment_id);
        const char *p[] = {id};
        if (d->ri->pg->query(d->ri->host, SQL_DIST_TAKE_BACK, 1, p, on_dist_taken_back, it) == 0)
            return;
        snprintf(it->state, sizeof it->state, "pending");
        snprintf(it->error, sizeof it->error, "outcome unknown: cannot reach the database");
    }
    if (--d->waiting == 0)
        dist_finish(d);
}

/*
 * A distribution payment is keyed by job id and recipient index
 * ('distribution:<job id>:<index>', $1), so a re-run of the job (stalled,
 * retried, or re-added under the same custom id) finds what it queued and
 * pays nobody twice. BullMQ's numeric ids come from a Redis counter, and a
 * Redis that lost it hands the same ids out again: a row under the key
 * then counts only when it pays the same recipient the same amount in the
 * same campaign. Otherwise the payment gets a key of its own that adds the
 * time the job was added ('distribution:<job id>@<ms>:<index>', $9), and
 * the old row is neither reported nor touched.
 */
static const char SQL_DIST_ENSURE[] =
    "WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $9::text[]) "
    "AS v(ref, dest, amt, alt)), "
    "k AS (SELECT v.ref, v.dest, v.amt, CASE WHEN p.id IS NOT NULL AND (p.destination <> v.dest "
    "OR p.amount <> v.amt::numeric / 10000000 OR p.campaign_id IS DISTINCT FROM $4::int) THEN "
    "v.alt ELSE v.ref END AS key FROM v LEFT JOIN nova_worker_payments p ON p.reference = v.ref), "
    "ins AS (INSERT INTO nova_worker_payments (reference, kind, campaign_id, queue, job_id, "
    "destination, asset_code, asset_issuer, amount) SELECT k.key, 'distribution', $4, $5, $6, "
    "k.dest, $7, $8, k.amt::numeric / 10000000 FROM k ON CONFLICT (reference) DO NOTHING "
    "RETURNING reference, id) "
    "SELECT k.ref, COALESCE(ins.id, p.id), COALESCE(p.status, 'pending'), ins.id IS NOT NULL OR "
    "(p.destination = k.dest AND p.amount = k.amt::numeric / 10000000 AND p.campaign_id IS NOT "
    "DISTINCT FROM $4::int) FROM k LEFT JOIN ins ON ins.reference = k.key "
    "LEFT JOIN nova_worker_payments p ON p.reference = k.key";

static void on_dist_ensured(void *arg, int status, const nova_pg_result *res)
{
    struct dist_job *d = arg;
    struct ri *ri = d->ri;
    const struct nova_pg_api *pg = ri->pg;
    if (status != 0) {
        if (status == -ECANCELED)
            ri->host->job_retry(d->job, "worker shutting down", -1);
        else
            ri->host->job_retry(d->job, pg->error_message(res), -1);
        return dist_free(d);
    }
    int rows = pg->ntuples(res);
    for (int r = 0; r < rows; r++) {
        size_t idx = dist_index(pg->get_text(res, r, 0));
        if (idx >= d->req.count)
            continue;
        struct dist_item *it = &d->items[idx];
        bool same = false;
        if (pg->get_bool(res, r, 3, &same) != 0 || !same) {
            /* A row under this key pays someone else: never ours to report
             * as paid, and never touched. */
            ri->host->log(ri->host, NOVA_LOG_ERROR, d->job,
                          "distribution: payment key %s already pays another recipient or "
                          "amount; recipient %zu not paid",
                          pg->get_text(res, r, 0), idx);
            snprintf(it->state, sizeof it->state, "failed");
            snprintf(it->error, sizeof it->error, "payment_key_conflict");
            continue;
        }
        (void)pg->get_int64(res, r, 1, &it->payment_id);
        it->w.ri = ri;
        it->w.job = d->job;
        it->w.payment_id = it->payment_id;
        it->w.deadline_ms = ri->host->now_ms(ri->host) + ri->cfg->job_timeout_ms;
        it->w.cb = on_dist_payment;
        d->waiting++;
    }
    if (d->waiting == 0)
        return dist_finish(d);
    for (size_t i = 0; i < d->req.count; i++)
        if (d->items[i].w.cb != NULL)
            waiter_add(&d->items[i].w);
    poke_lanes(ri);
}

/* The PostgreSQL array literals of a distribution's payment keys (by job
 * id, and the alternative with the job's timestamp), recipients and
 * amounts, for the items still to pay. */
struct dist_arrays {
    char *refs, *alts, *dests, *amts;
    size_t n;
};

static void dist_arrays_free(struct dist_arrays *a)
{
    free(a->refs);
    free(a->alts);
    free(a->dests);
    free(a->amts);
}

static int dist_arrays_build(struct dist_job *d, struct dist_arrays *a)
{
    struct ri *ri = d->ri;
    const char *jid = ri->host->job_id(d->job);
    char *ejid = array_escape(jid);
    size_t cap = d->req.count * (2 * strlen(jid) + 96) + 16;
    memset(a, 0, sizeof *a);
    a->refs = malloc(cap);
    a->alts = malloc(cap);
    a->dests = malloc(cap);
    a->amts = malloc(cap);
    if (ejid == NULL || a->refs == NULL || a->alts == NULL || a->dests == NULL || a->amts == NULL) {
        free(ejid);
        dist_arrays_free(a);
        return -ENOMEM;
    }
    int64_t ts = ri->host->job_timestamp_ms(d->job);
    size_t o1 = 0, o2 = 0, o3 = 0, o4 = 0;
    a->refs[o1++] = a->alts[o2++] = a->dests[o3++] = a->amts[o4++] = '{';
    for (size_t i = 0; i < d->req.count; i++) {
        if (d->items[i].state[0] != '\0')
            continue; /* already failed (address, amount, trustline) */
        const char *sep = a->n++ ? "," : "";
        o1 += (size_t)snprintf(a->refs + o1, cap - o1, "%s\"distribution:%s:%zu\"", sep, ejid, i);
        o2 += (size_t)snprintf(a->alts + o2, cap - o2, "%s\"distribution:%s@%" PRId64 ":%zu\"", sep,
                               ejid, ts, i);
        o3 += (size_t)snprintf(a->dests + o3, cap - o3, "%s%s", sep, d->req.recipients[i].wallet);
        o4 += (size_t)snprintf(a->amts + o4, cap - o4, "%s%" PRId64, sep,
                               d->req.recipients[i].amount);
    }
    snprintf(a->refs + o1, cap - o1, "}");
    snprintf(a->alts + o2, cap - o2, "}");
    snprintf(a->dests + o3, cap - o3, "}");
    snprintf(a->amts + o4, cap - o4, "}");
    free(ejid);
    return 0;
}

static void dist_insert(struct dist_job *d)
{
    struct ri *ri = d->ri;
    struct dist_arrays a;
    if (dist_arrays_build(d, &a) != 0) {
        ri->host->job_retry(d->job, "out of memory", -1);
        return dist_free(d);
    }
    if (a.n == 0) {
        dist_arrays_free(&a);
        return dist_finish(d);
    }
    char camp[32];
    snprintf(camp, sizeof camp, "%" PRId64, d->req.campaign_id);
    const char *p[] = {a.refs,         a.dests,          a.amts,
                       camp,           DIST_QUEUE,       ri->host->job_id(d->job),
                       ri->asset_code, ri->asset_issuer, a.alts};
    int rc = ri->pg->query(ri->host, SQL_DIST_ENSURE, 9, p, on_dist_ensured, d);
    dist_arrays_free(&a);
    if (rc != 0) {
        ri->host->job_retry(d->job, "cannot start the query", -1);
        dist_free(d);
    }
}

static void dist_check_next(struct dist_job *d);

struct dist_check {
    struct dist_job *d;
    size_t index;
    int tries; /* negative answers from lagging replicas so far */
};

static void on_dist_recipient(void *arg, const struct nova_stellar_status *st,
                              const struct nova_stellar_account *account);

static void on_dist_recheck(void *arg)
{
    struct dist_check *c = arg;
    struct dist_job *d = c->d;
    if (d->ri->st->load_account(d->ri->host, d->req.recipients[c->index].wallet, on_dist_recipient,
                                c) != 0) {
        /* cannot ask: the payment itself decides */
        free(c);
        d->checks_running--;
        dist_check_next(d);
    }
}

static void on_dist_recipient(void *arg, const struct nova_stellar_status *st,
                              const struct nova_stellar_account *account)
{
    int status = st->error;
    struct dist_check *c = arg;
    struct dist_job *d = c->d;
    size_t idx = c->index;
    struct dist_item *it = &d->items[idx];
    struct ri *ri = d->ri;
    char reason[64] = "";
    const char *negative = NULL;
    if (status == -ENOENT)
        negative = "no_destination";
    else if (status == 0 && account != NULL &&
             nova__ri_check_trustline(account, d->req.recipients[idx].wallet, ri->asset_code,
                                      ri->asset_issuer, d->req.recipients[idx].amount, reason,
                                      sizeof reason) != 0)
        negative = reason;
    bool proven = negative != NULL &&
                  ri_negative_proven(ri, st->latest_ledger, ri->host->job_timestamp_ms(d->job));
    if (negative != NULL && !proven && status != -ECANCELED) {
        ri_ask_clock(ri);
        if (++c->tries < RI_PREFLIGHT_TRIES &&
            ri->host->timer_start(ri->host, ri_preflight_wait_ms(c->tries), 0, on_dist_recheck,
                                  c) != NULL)
            return; /* not proven current: ask again */
    }
    free(c);
    d->checks_running--;
    if (proven) {
        snprintf(it->state, sizeof it->state, "failed");
        snprintf(it->error, sizeof it->error, "%s", negative);
    }
    /* any other status (Horizon trouble): let the payment itself decide */
    dist_check_next(d);
}

static void dist_check_next(struct dist_job *d)
{
    while (d->checks_running < 8 && d->next_check < d->req.count) {
        size_t i = d->next_check++;
        if (d->items[i].state[0] != '\0' || d->items[i].has_row)
            continue;
        struct dist_check *c = malloc(sizeof *c);
        if (c == NULL)
            break;
        *c = (struct dist_check){.d = d, .index = i};
        if (d->ri->st->load_account(d->ri->host, d->req.recipients[i].wallet, on_dist_recipient,
                                    c) != 0) {
            free(c);
            continue;
        }
        d->checks_running++;
    }
    if (d->checks_running == 0 && d->next_check >= d->req.count && !d->inserting) {
        d->inserting = true;
        dist_insert(d);
    }
}

/* A re-run of the job (stalled, or retried) finds the rows its first run
 * queued, keyed as in SQL_DIST_ENSURE: those are waited on as they are,
 * whatever a trustline check would say now. */
static const char SQL_DIST_EXISTING[] =
    "SELECT v.ref FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) "
    "AS v(ref, alt, dest, amt) WHERE EXISTS (SELECT 1 FROM nova_worker_payments p WHERE "
    "p.reference = v.alt OR (p.reference = v.ref AND p.destination = v.dest AND p.amount = "
    "v.amt::numeric / 10000000 AND p.campaign_id IS NOT DISTINCT FROM $5::int))";

static void on_dist_existing(void *arg, int status, const nova_pg_result *res)
{
    struct dist_job *d = arg;
    struct ri *ri = d->ri;
    if (status != 0) {
        if (status == -ECANCELED)
            ri->host->job_retry(d->job, "worker shutting down", -1);
        else
            ri->host->job_retry(d->job, ri->pg->error_message(res), -1);
        return dist_free(d);
    }
    for (int r = 0; r < ri->pg->ntuples(res); r++) {
        size_t idx = dist_index(ri->pg->get_text(res, r, 0));
        if (idx < d->req.count)
            d->items[idx].has_row = true;
    }
    dist_check_next(d);
}

static void dist_find_existing(struct dist_job *d)
{
    struct ri *ri = d->ri;
    struct dist_arrays a;
    if (dist_arrays_build(d, &a) != 0) {
        ri->host->job_retry(d->job, "out of memory", -1);
        return dist_free(d);
    }
    char camp[32];
    snprintf(camp, sizeof camp, "%" PRId64, d->req.campaign_id);
    const char *p[] = {a.refs, a.alts, a.dests, a.amts, camp};
    int rc = ri->pg->query(ri->host, SQL_DIST_EXISTING, 5, p, on_dist_existing, d);
    dist_arrays_free(&a);
    if (rc != 0) {
        ri->host->job_retry(d->job, "cannot start the query", -1);
        dist_free(d);
    }
}

static void on_dist_job(void *arg, nova_job *job)
{
    struct ri *ri = arg;
    struct dist_job *d = calloc(1, sizeof *d);
    if (d == NULL) {
        ri->host->job_retry(job, "out of memory", -1);
        return;
    }
    d->ri = ri;
    d->job = job;
    char err[RI_REASON_MAX] = "";
    int rc = nova__ri_parse_distribute(ri->st, ri->host->job_data(job), MAX_RECIPIENTS, &d->req,
                                       err, sizeof err);
    if (rc != 0) {
        ri->host->job_fail(job, rc == -ENOMEM ? "out of memory" : err);
        return dist_free(d);
    }
    d->items = calloc(d->req.count, sizeof *d->items);
    if (d->items == NULL) {
        ri->host->job_retry(job, "out of memory", -1);
        return dist_free(d);
    }
    for (size_t i = 0; i < d->req.count; i++) {
        d->items[i].d = d;
        d->items[i].index = i;
        if (d->req.recipients[i].error[0] != '\0') {
            snprintf(d->items[i].state, sizeof d->items[i].state, "failed");
            snprintf(d->items[i].error, sizeof d->items[i].error, "%s", d->req.recipients[i].error);
        }
    }
    dist_find_existing(d);
}

/* ---- queue depth ------------------------------------------------------------ */

static void on_depth(void *arg, int status, const struct nova_redis_reply *reply)
{
    struct ri *ri = arg;
    if (status == 0 && reply != NULL && reply->type == NOVA_REDIS_REPLY_INTEGER)
        ri->host->metric_set(ri->m_depth, NULL, (double)reply->integer);
}

/* Nothing consumes the DLQ: its wait list is what waits for an operator,
 * and the worker's bullmq_job_count covers only the queues it serves. */
static void on_dlq_depth(void *arg, int status, const struct nova_redis_reply *reply)
{
    struct ri *ri = arg;
    if (status == 0 && reply != NULL && reply->type == NOVA_REDIS_REPLY_INTEGER)
        ri->host->metric_set(ri->m_dlq_depth, NULL, (double)reply->integer);
}

static void on_depth_timer(void *arg)
{
    struct ri *ri = arg;
    /* Nothing new once draining: a reply arriving after unload would run
     * code that is gone (plugin Redis commands are not tracked per owner). */
    if (!NOVA_HOST_HAS(ri->host, redis) || ri->stopping)
        return;
    char key[256];
    snprintf(key, sizeof key, "%s:%s:wait", ri->cfg->queue_prefix, ISSUE_QUEUE);
    const char *argv[] = {"LLEN", key};
    (void)ri->host->redis->command(ri->host, 2, argv, NULL, on_depth, ri);
    snprintf(key, sizeof key, "%s:%s:wait", ri->cfg->queue_prefix, DLQ_QUEUE);
    (void)ri->host->redis->command(ri->host, 2, argv, NULL, on_dlq_depth, ri);
}

/* ---- lifecycle -------------------------------------------------------------- */

static void free_channels(struct ri *ri)
{
    for (size_t i = 0; i < ri->channel_count; i++) {
        explicit_bzero(ri->channel_seeds[i], strlen(ri->channel_seeds[i]));
        free(ri->channel_seeds[i]);
        ri->channel_seeds[i] = NULL;
    }
    ri->channel_count = 0;
}

/* channel_secrets: S... seeds separated by commas, blanks or newlines. */
static int parse_channels(struct ri *ri)
{
    const char *s = ri->cfg->channel_secrets;
    while (s != NULL && *s != '\0') {
        s += strspn(s, ", \t\r\n");
        size_t n = strcspn(s, ", \t\r\n");
        if (n == 0)
            break;
        if (ri->channel_count == RI_MAX_CHANNELS) {
            ri->host->log(ri->host, NOVA_LOG_ERROR, NULL,
                          "channel_secrets: more than %d channel accounts", RI_MAX_CHANNELS);
            return -EINVAL;
        }
        char *seed = strndup(s, n);
        if (seed == NULL)
            return -ENOMEM;
        size_t k = ri->channel_count;
        ri->channel_seeds[k] = seed;
        ri->channel_count++;
        char err[160] = "";
        if (ri->st->seed_to_account(seed, ri->channel_ids[k], err, sizeof err) != 0) {
            ri->host->log(ri->host, NOVA_LOG_ERROR, NULL, "channel_secrets: entry %zu: %s", k + 1,
                          err);
            return -EINVAL;
        }
        if (strcmp(ri->channel_ids[k], ri->source) == 0) {
            ri->host->log(ri->host, NOVA_LOG_ERROR, NULL,
                          "channel_secrets: entry %zu is the distribution account", k + 1);
            return -EINVAL;
        }
        s += n;
    }
    return 0;
}

static int start_lanes(struct ri *ri)
{
    int rc = nova__ri_lane_start(ri, ri->source, ri->cfg->distribution_secret, false,
                                 on_rows_changed, ri, &ri->lanes[0]);
    if (rc != 0)
        return rc;
    ri->lane_count = 1;
    for (size_t i = 0; i < ri->channel_count; i++) {
        rc = nova__ri_lane_start(ri, ri->channel_ids[i], ri->channel_seeds[i], true,
                                 on_rows_changed, ri, &ri->lanes[ri->lane_count]);
        if (rc != 0)
            return rc;
        ri->lane_count++;
    }
    return 0;
}

static void passphrase_of(const char *net, char *out, size_t len)
{
    if (strcasecmp(net, "testnet") == 0)
        snprintf(out, len, "Test SDF Network ; September 2015");
    else if (strcasecmp(net, "public") == 0 || strcasecmp(net, "mainnet") == 0 ||
             strcasecmp(net, "pubnet") == 0)
        snprintf(out, len, "Public Global Stellar Network ; September 2015");
    else
        snprintf(out, len, "%s", net);
}

static bool same_url(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    while (na > 0 && a[na - 1] == '/')
        na--;
    while (nb > 0 && b[nb - 1] == '/')
        nb--;
    return na == nb && strncmp(a, b, na) == 0;
}

/* Horizon is reached through the host's [stellar] client, so the network
 * and Horizon are the core section's; the plugin's horizon_url and network
 * keys are only accepted when they say the same (they used to select a
 * client of the plugin's own). Asset and distribution secret may differ:
 * the plugin's keys win, and without a distribution_secret here the host
 * signs with [stellar]'s. */
static int resolve_stellar(struct ri *ri, char *err, size_t errlen)
{
    const struct ri_config *cfg = ri->cfg;
    const struct nova_stellar_api *st = ri->st;
    const struct nova_stellar_network *net = st->network(ri->host);
    if (net == NULL || net->horizon_url == NULL || net->passphrase == NULL) {
        snprintf(err, errlen,
                 "needs the core [stellar] section (horizon_url, network): "
                 "Horizon is reached through the host's Stellar client");
        return -EINVAL;
    }
    if (cfg->horizon_url != NULL && !same_url(cfg->horizon_url, net->horizon_url)) {
        snprintf(err, errlen,
                 "horizon_url: %.150s differs from [stellar] horizon_url %.150s "
                 "(Horizon is reached through [stellar]: set it there, drop it here)",
                 cfg->horizon_url, net->horizon_url);
        return -EINVAL;
    }
    if (cfg->network != NULL) {
        char mine[128];
        passphrase_of(cfg->network, mine, sizeof mine);
        if (strcmp(mine, net->passphrase) != 0) {
            snprintf(err, errlen,
                     "network: \"%.100s\" differs from [stellar] network \"%.100s\" "
                     "(set it there, drop it here)",
                     mine, net->passphrase);
            return -EINVAL;
        }
    }
    const char *code = cfg->asset_code          ? cfg->asset_code
                       : net && net->asset_code ? net->asset_code
                                                : "NOVA";
    const char *issuer = cfg->asset_issuer ? cfg->asset_issuer : net->asset_issuer;
    if (strlen(net->horizon_url) >= sizeof ri->horizon_url ||
        strlen(code) >= sizeof ri->asset_code || strlen(net->passphrase) >= sizeof ri->passphrase) {
        snprintf(err, errlen, "[stellar] horizon_url or network, or asset_code: too long");
        return -EINVAL;
    }
    char why[160] = "";
    if (issuer == NULL || st->strkey_validate(issuer, NOVA_STRKEY_ACCOUNT, why, sizeof why) != 0) {
        snprintf(err, errlen, "asset_issuer: %s", why[0] ? why : "not set here nor in [stellar]");
        return -EINVAL;
    }
    snprintf(ri->horizon_url, sizeof ri->horizon_url, "%s", net->horizon_url);
    snprintf(ri->asset_code, sizeof ri->asset_code, "%s", code);
    snprintf(ri->asset_issuer, sizeof ri->asset_issuer, "%s", issuer);
    snprintf(ri->passphrase, sizeof ri->passphrase, "%s", net->passphrase);
    if (cfg->distribution_secret != NULL) {
        if (st->seed_to_account(cfg->distribution_secret, ri->source, why, sizeof why) != 0) {
            snprintf(err, errlen, "distribution_secret: %s", why);
            return -EINVAL;
        }
    } else if (net->distribution_account != NULL) {
        snprintf(ri->source, sizeof ri->source, "%s", net->distribution_account);
        ri->host_signs = true;
    } else {
        snprintf(err, errlen, "distribution_secret: not set here nor in [stellar]");
        return -EINVAL;
    }
    if (cfg->submit_timeout_ms > 0)
        ri->host->log(ri->host, NOVA_LOG_WARN, NULL,
                      "submit_timeout is ignored: submissions use the [stellar] client's timeout");
    return 0;
}

static int ri_init(const struct nova_host *host, const void *config, void **state)
{
    const struct ri_config *cfg = config;
    if (!NOVA_HOST_HAS(host, pg) || !NOVA_HOST_HAS(host, stellar) ||
        !NOVA_HOST_HAS(host, subscribe)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "reward_issuance needs PostgreSQL, Stellar and queues from the host");
        return -ENOTSUP;
    }
    const struct nova_stellar_api *st = host->stellar;
    if (!NOVA_STELLAR_HAS(st, build_payment) || !NOVA_STELLAR_HAS(st, decode_result) ||
        !NOVA_STELLAR_HAS(st, network) || !NOVA_STELLAR_HAS(st, build_payment_distribution) ||
        !NOVA_STELLAR_HAS(st, load_account) || !NOVA_STELLAR_HAS(st, submit) ||
        !NOVA_STELLAR_HAS(st, tx_lookup) || !NOVA_STELLAR_HAS(st, latest_ledger)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "reward_issuance needs the host's Stellar network calls (nova/stellar.h)");
        return -ENOTSUP;
    }
    struct ri *ri = calloc(1, sizeof *ri);
    if (ri == NULL)
        return -ENOMEM;
    ri->host = host;
    ri->cfg = cfg;
    ri->pg = host->pg;
    ri->st = st;
    char err[512] = "";
    if (resolve_stellar(ri, err, sizeof err) != 0) {
        host->log(host, NOVA_LOG_ERROR, NULL, "%s", err);
        free(ri);
        return -EINVAL;
    }
    if (parse_channels(ri) != 0) {
        free_channels(ri);
        free(ri);
        return -EINVAL;
    }
    /* The lease owner names this process (host, pid, process start time),
     * not this plugin instance: after a SIGHUP restart of the plugin the
     * same process takes its lane back at once, while a new process (even
     * one reusing the pid) waits for the old lease to lapse. */
    char hostname[64] = "";
    (void)gethostname(hostname, sizeof hostname - 1);
    unsigned long long start = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f != NULL) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        /* field 22 (starttime) is the 20th after the ") " that ends comm */
        for (int field = 2; p != NULL && field < 22; field++)
            p = strchr(p + 1, ' ');
        if (p != NULL)
            start = strtoull(p + 1, NULL, 10);
    }
    if (start == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        start = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 8);
    }
    snprintf(ri->owner, sizeof ri->owner, "%s/%ld/%llu", hostname, (long)getpid(), start);

    static const char *const l_status[] = {"status", NULL};
    static const char *const l_reason[] = {"reason", NULL};
    static const char *const l_result[] = {"result", NULL};
    static const double batch_buckets[] = {1, 2, 5, 10, 20, 50, 100};
    ri->m_issuances = host->metric_new(host, NOVA_METRIC_COUNTER, "reward_issuances_total",
                                       "Reward issuances finished, by outcome", l_status, NULL, 0);
    ri->m_duration =
        host->metric_new(host, NOVA_METRIC_HISTOGRAM, "reward_issuance_duration_seconds",
                         "Time from job start to outcome", l_status, NULL, 0);
    ri->m_depth = host->metric_new(host, NOVA_METRIC_GAUGE, "reward_queue_depth",
                                   "Waiting jobs of reward-issuance", NULL, NULL, 0);
    ri->m_dlq = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_reward_dlq_total",
                                 "Issuances dead-lettered, by reason", l_reason, NULL, 0);
    ri->m_dlq_depth = host->metric_new(
        host, NOVA_METRIC_GAUGE, "nova_reward_dlq_depth",
        "Dead-letter jobs waiting in reward-issuance-dlq for an operator", NULL, NULL, 0);
    ri->m_submits = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_reward_submissions_total",
                                     "Envelope submission outcomes", l_result, NULL, 0);
    ri->m_batch = host->metric_new(host, NOVA_METRIC_HISTOGRAM, "nova_reward_batch_size",
                                   "Payment operations per envelope", NULL, batch_buckets,
                                   sizeof batch_buckets / sizeof batch_buckets[0]);
    ri->m_open = host->metric_new(host, NOVA_METRIC_GAUGE, "nova_reward_open_transactions",
                                  "Envelopes of the lane not yet resolved", NULL, NULL, 0);
    ri->m_unresolvable = host->metric_new(
        host, NOVA_METRIC_GAUGE, "nova_reward_unresolvable_envelopes",
        "Envelopes whose sequence number was used but Horizon cannot find them (history "
        "retention, or another user of the account): their payments wait for ops",
        NULL, NULL, 0);

    static const char *const issue_names[] = {"issue-reward", NULL};
    static const char *const dist_names[] = {"distribute", NULL};
    struct nova_subscription sub = {
        .struct_size = sizeof sub,
        .queue = ISSUE_QUEUE,
        .job_names = issue_names,
        .concurrency = (unsigned)cfg->concurrency,
        .handle = on_issue_job,
        .arg = ri,
    };
    int rc = host->subscribe(host, &sub);
    if (rc == 0) {
        struct nova_subscription dsub = {
            .struct_size = sizeof dsub,
            .queue = DIST_QUEUE,
            .job_names = dist_names,
            .concurrency = (unsigned)cfg->distribution_concurrency,
            .handle = on_dist_job,
            .arg = ri,
        };
        rc = host->subscribe(host, &dsub);
    }
    if (rc == 0)
        rc = start_lanes(ri);
    if (rc != 0) {
        for (size_t i = 0; i < ri->lane_count; i++)
            nova__ri_lane_free(ri->lanes[i]);
        free_channels(ri);
        free(ri);
        return rc;
    }
    ri->poll_timer =
        host->timer_start(host, (uint64_t)cfg->poll_ms, (uint64_t)cfg->poll_ms, on_poll_timer, ri);
    ri->depth_timer = host->timer_start(host, 100, 5000, on_depth_timer, ri);
    host->log(host, NOVA_LOG_INFO, NULL,
              "paying %s:%s from %s via %s (batches of up to %" PRId64 ", %zu lane(s))",
              ri->asset_code, ri->asset_issuer, ri->source, ri->horizon_url, cfg->batch_max,
              ri->lane_count);
    *state = ri;
    return 0;
}

static void ri_stop(void *state)
{
    struct ri *ri = state;
    ri->stopping = true;
}

static void ri_shutdown(void *state)
{
    struct ri *ri = state;
    /* The host has stopped our timers and cancelled our requests already;
     * no job is in flight, so no waiter is left. */
    for (size_t i = 0; i < ri->lane_count; i++) {
        nova__ri_lane_close(ri->lanes[i]);
        nova__ri_lane_free(ri->lanes[i]);
    }
    free_channels(ri);
    free(ri);
}

static const struct nova_plugin ri_plugin = {
    NOVA_PLUGIN_ABI,
    .requires = NOVA_REQUIRES_REDIS | NOVA_REQUIRES_PG | NOVA_REQUIRES_STELLAR,
    .name = "reward_issuance",
    .version = "1.0.0",
    .description = "Nova reward issuance and distribution, paid exactly once in batches",
    .config = ri_config_table,
    .config_size = sizeof(struct ri_config),
    .required_columns = ri_columns,
    .init = ri_init,
    .stop = ri_stop,
    .shutdown = ri_shutdown,
};

NOVA_PLUGIN_DEFINE(ri_plugin)
