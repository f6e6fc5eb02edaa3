/*
 * wh_in - inbound actions (wh_in.h).
 *
 * One transaction per job, on one lease:
 *   1. mark the job in nova_worker_processed_jobs (queue, "<job id>@<its
 *      creation ms>"); when it is there already, that transaction committed
 *      before: return its stored result, credit nothing;
 *   2. the user's user_balance row (created at 0 when missing, only for an
 *      existing user), locked FOR UPDATE: the true balance before;
 *   3. the point transaction (type earned, balance_before/after, Nova's
 *      description), its audit_logs row and the job's result, in one
 *      statement; user_balance set to balance_after (Nova's trigger does
 *      the same where it exists);
 *   4. COMMIT, then the job is done.
 */
#include "wh_in.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

static const char SQL_MARK[] = "INSERT INTO nova_worker_processed_jobs (queue, job_id) "
                               "VALUES ($1, $2) ON CONFLICT DO NOTHING";

static const char SQL_STORED[] = "SELECT result::text FROM nova_worker_processed_jobs "
                                 "WHERE queue = $1 AND job_id = $2";

static const char SQL_BALANCE_ROW[] = "INSERT INTO user_balance (user_id, balance) "
                                      "SELECT id, 0 FROM users WHERE id = $1::int "
                                      "ON CONFLICT DO NOTHING";

static const char SQL_LOCK[] =
    "SELECT balance FROM user_balance WHERE user_id = $1::int FOR UPDATE";

/* $1 user, $2 points, $3 balance before, $4 description, $5 audit details,
 * $6 queue, $7 job id */
static const char SQL_CREDIT[] =
    "WITH pt AS ("
    " INSERT INTO point_transactions"
    "  (user_id, type, amount, balance_before, balance_after, description)"
    " VALUES ($1::int, 'earned', $2::int, $3::int, $3::int + $2::int, $4)"
    " RETURNING *),"
    "al AS ("
    " INSERT INTO audit_logs"
    "  (entity_type, entity_id, action, actor_type, source, after_state, details)"
    " SELECT 'point_transaction', pt.id, 'WEBHOOK_REWARD_ISSUANCE', 'system', 'webhook_handler',"
    "  to_jsonb(pt), $5::jsonb FROM pt RETURNING id),"
    "pj AS ("
    " UPDATE nova_worker_processed_jobs"
    " SET result = jsonb_build_object('handled', true, 'transactionId', (SELECT id FROM pt))"
    " WHERE queue = $6 AND job_id = $7 RETURNING 1) "
    "SELECT pt.id, pt.balance_after, (SELECT count(*) FROM al), (SELECT count(*) FROM pj) "
    "FROM pt";

static const char SQL_SET_BALANCE[] =
    "UPDATE user_balance SET balance = $2::int, updated_at = now() WHERE user_id = $1::int";

struct in_job {
    struct wh *wh;
    nova_job *job;
    nova_pg_lease *lease;
    int64_t user_id;
    int64_t points;
    int64_t balance_after;
    int64_t tx_id;
    char user[24];
    char action[WH_ACTION_NAME_MAX + 1];
    char *details; /* audit details JSON */
    char queue[256];
    char job_id[256];
    /* the outcome once the lease is given back */
    enum { OUT_DONE, OUT_RETRY, OUT_FAIL } outcome;
    char result[512];
};

static void count(struct wh *wh, const char *result)
{
    const char *lv[] = {result, NULL};
    wh->host->metric_add(wh->m_inbound, lv, 1);
}

static void in_free(struct in_job *j)
{
    free(j->details);
    free(j);
}

static void report(struct in_job *j)
{
    const struct nova_host *h = j->wh->host;
    switch (j->outcome) {
    case OUT_DONE:
        h->job_done(j->job, j->result);
        break;
    case OUT_RETRY:
        h->job_retry(j->job, j->result, -1);
        break;
    case OUT_FAIL:
        h->job_fail(j->job, j->result);
        break;
    }
    in_free(j);
}

static void on_rolled_back(void *arg, int status, const nova_pg_result *res)
{
    (void)status;
    (void)res;
    report(arg);
}

/* Ends the transaction without effect and reports the outcome. */
static void give_back(struct in_job *j)
{
    nova_pg_lease *l = j->lease;
    j->lease = NULL;
    if (l == NULL || j->wh->pg->rollback(j->wh->host, l, on_rolled_back, j) != 0)
        report(j);
}

/* A statement failed: retry what may pass later, fail the rest. */
static void failed_step(struct in_job *j, const char *step, int status, const nova_pg_result *res)
{
    struct wh *wh = j->wh;
    bool transient = nova_pg_error_retryable(status) || status == -ECANCELED;
    snprintf(j->result, sizeof j->result, "%s: %s", step,
             res != NULL ? wh->pg->error_message(res) : "database unavailable");
    j->outcome = transient ? OUT_RETRY : OUT_FAIL;
    count(wh, "error");
    wh->host->log(wh->host, transient ? NOVA_LOG_WARN : NOVA_LOG_ERROR, j->job, "%s", j->result);
    give_back(j);
}

static void on_committed(void *arg, int status, const nova_pg_result *res)
{
    struct in_job *j = arg;
    struct wh *wh = j->wh;
    if (status != 0) {
        /* -EINVAL: rolled back, nothing credited; -ECONNRESET: unknown, and
         * a retry finds the job's mark if it did commit. Either way a retry
         * credits at most once. */
        snprintf(j->result, sizeof j->result, "commit: %s", wh->pg->error_message(res));
        j->outcome = OUT_RETRY;
        count(wh, "error");
        report(j);
        return;
    }
    count(wh, "credited");
    wh->host->log(wh->host, NOVA_LOG_INFO, j->job,
                  "credited %" PRId64 " points to user %" PRId64 " for '%s' (transaction %" PRId64
                  ", balance %" PRId64 ")",
                  j->points, j->user_id, j->action, j->tx_id, j->balance_after);
    j->outcome = OUT_DONE;
    report(j);
}

static void on_balance_set(void *arg, int status, const nova_pg_result *res)
{
    struct in_job *j = arg;
    if (status != 0) {
        failed_step(j, "updating user_balance", status, res);
        return;
    }
    nova_pg_lease *l = j->lease;
    j->lease = NULL;
    if (j->wh->pg->commit(j->wh->host, l, on_committed, j) != 0) {
        j->lease = l;
        failed_step(j, "commit", -ECONNRESET, NULL);
    }
}

static void on_credited(void *arg, int status, const nova_pg_result *res)
{
    struct in_job *j = arg;
    const struct nova_pg_api *pg = j->wh->pg;
    if (status != 0) {
        failed_step(j, "crediting points", status, res);
        return;
    }
    int64_t audits = 0, marks = 0;
    if (pg->ntuples(res) != 1 || pg->get_int64(res, 0, 0, &j->tx_id) != 0 ||
        pg->get_int64(res, 0, 1, &j->balance_after) != 0 ||
        pg->get_int64(res, 0, 2, &audits) != 0 || pg->get_int64(res, 0, 3, &marks) != 0 ||
        audits != 1 || marks != 1) {
        failed_step(j, "crediting points", -EIO, NULL);
        return;
    }
    snprintf(j->result, sizeof j->result, "{\"handled\":true,\"transactionId\":%" PRId64 "}",
             j->tx_id);
    char bal[24];
    snprintf(bal, sizeof bal, "%" PRId64, j->balance_after);
    const char *p[] = {j->user, bal};
    if (pg->lease_query(j->wh->host, j->lease, SQL_SET_BALANCE, 2, p, on_balance_set, j) != 0)
        failed_step(j, "updating user_balance", -ECONNRESET, NULL);
}

static void on_locked(void *arg, int status, const nova_pg_result *res)
{
    struct in_job *j = arg;
    struct wh *wh = j->wh;
    const struct nova_pg_api *pg = wh->pg;
    int64_t before = 0;
    if (status != 0) {
        failed_step(j, "locking the balance", status, res);
        return;
    }
    if (pg->ntuples(res) == 0) {
        snprintf(j->result, sizeof j->result,
                 "userId %" PRId64 " is not a user (no users row with that id)", j->user_id);
        j->outcome = OUT_FAIL;
        count(wh, "rejected");
        wh->host->log(wh->host, NOVA_LOG_WARN, j->job, "%s", j->result);
        give_back(j);
        return;
    }
    if (pg->get_int64(res, 0, 0, &before) != 0) {
        failed_step(j, "reading the balance", -EIO, NULL);
        return;
    }
    char pts[24], bal[24], desc[WH_ACTION_NAME_MAX + 64];
    snprintf(pts, sizeof pts, "%" PRId64, j->points);
    snprintf(bal, sizeof bal, "%" PRId64, before);
    snprintf(desc, sizeof desc, "Awarded points for external action: %s", j->action);
    const char *p[] = {j->user, pts, bal, desc, j->details, j->queue, j->job_id};
    if (pg->lease_query(wh->host, j->lease, SQL_CREDIT, 7, p, on_credited, j) != 0)
        failed_step(j, "crediting points", -ECONNRESET, NULL);
}

static void on_balance_row(void *arg, int status, const nova_pg_result *res)
{
    struct in_job *j = arg;
    if (status != 0) {
        failed_step(j, "creating the balance row", status, res);
        return;
    }
    const char *p[] = {j->user};
    if (j->wh->pg->lease_query(j->wh->host, j->lease, SQL_LOCK, 1, p, on_locked, j) != 0)
        failed_step(j, "locking the balance", -ECONNRESET, NULL);
}

static void on_stored(void *arg, int status, const nova_pg_result *res)
{
    struct in_job *j = arg;
    struct wh *wh = j->wh;
    if (status != 0) {
        failed_step(j, "reading the stored result", status, res);
        return;
    }
    const char *stored = wh->pg->get_text(res, 0, 0);
    if (stored != NULL && strlen(stored) < sizeof j->result) {
        snprintf(j->result, sizeof j->result, "%s", stored);
        wh_json_compact(j->result);
    } else {
        snprintf(j->result, sizeof j->result, "{\"handled\":true}");
    }
    count(wh, "duplicate");
    wh->host->log(wh->host, NOVA_LOG_INFO, j->job,
                  "already credited by an earlier run of this job: %s (nothing credited now)",
                  j->result);
    j->outcome = OUT_DONE;
    give_back(j);
}

static void on_marked(void *arg, int status, const nova_pg_result *res)
{
    struct in_job *j = arg;
    const struct nova_pg_api *pg = j->wh->pg;
    if (status != 0) {
        failed_step(j, "marking the job", status, res);
        return;
    }
    if (pg->affected_rows(res) == 0) {
        const char *p[] = {j->queue, j->job_id};
        if (pg->lease_query(j->wh->host, j->lease, SQL_STORED, 2, p, on_stored, j) != 0)
            failed_step(j, "reading the stored result", -ECONNRESET, NULL);
        return;
    }
    const char *p[] = {j->user};
    if (pg->lease_query(j->wh->host, j->lease, SQL_BALANCE_ROW, 1, p, on_balance_row, j) != 0)
        failed_step(j, "creating the balance row", -ECONNRESET, NULL);
}

static void on_begun(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct in_job *j = arg;
    if (status != 0) {
        failed_step(j, "starting a transaction", status, res);
        return;
    }
    j->lease = lease;
    const char *p[] = {j->queue, j->job_id};
    if (j->wh->pg->lease_query(j->wh->host, lease, SQL_MARK, 2, p, on_marked, j) != 0)
        failed_step(j, "marking the job", -ECONNRESET, NULL);
}

/* userId as Nova's route passes it: a number or a string of digits. */
static bool parse_user(const cJSON *v, int64_t *out)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d < 1 || d > 2147483647.0 || floor(d) != d)
            return false;
        *out = (int64_t)d;
        return true;
    }
    if (cJSON_IsString(v) && v->valuestring[0] != '\0' && strlen(v->valuestring) <= 10) {
        int64_t n = 0;
        for (const char *p = v->valuestring; *p != '\0'; p++) {
            if (*p < '0' || *p > '9')
                return false;
            n = n * 10 + (*p - '0');
        }
        if (n < 1 || n > 2147483647)
            return false;
        *out = n;
        return true;
    }
    return false;
}

void wh_in_handle(void *arg, nova_job *job)
{
    struct wh *wh = arg;
    const struct nova_host *h = wh->host;
    const cJSON *data = h->job_data(job);
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(data, "action");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(data, "userId");
    int64_t points = cJSON_IsString(action)
                         ? wh_action_points(wh->actions, wh->nactions, action->valuestring)
                         : -1;

    if (points < 0) {
        count(wh, "unrecognized");
        h->job_done(job, "{\"handled\":false,\"reason\":\"unrecognized_action\"}");
        return;
    }
    int64_t user_id = 0;
    if (!parse_user(user, &user_id)) {
        char *shown = user != NULL ? cJSON_PrintUnformatted(user) : NULL;
        char why[200];
        snprintf(why, sizeof why, "userId must be a users.id, a positive integer (got %.60s)",
                 shown != NULL ? shown : "nothing");
        cJSON_free(shown);
        count(wh, "rejected");
        h->job_fail(job, why);
        return;
    }
    struct in_job *j = calloc(1, sizeof *j);
    cJSON *details = cJSON_CreateObject();
    if (j == NULL || details == NULL) {
        free(j);
        cJSON_Delete(details);
        h->job_retry(job, "out of memory", -1);
        return;
    }
    j->wh = wh;
    j->job = job;
    j->user_id = user_id;
    j->points = points;
    snprintf(j->user, sizeof j->user, "%" PRId64, user_id);
    snprintf(j->action, sizeof j->action, "%s", action->valuestring);
    snprintf(j->queue, sizeof j->queue, "%s", h->job_queue(job));
    /* The job's id with its creation time: Nova's route lets BullMQ number
     * the jobs, and a Redis that lost its data numbers them from 1 again. */
    snprintf(j->job_id, sizeof j->job_id, "%.200s@%" PRId64, h->job_id(job),
             h->job_timestamp_ms(job));
    /* Nova's audit details: {externalAction, originalDetails, timestamp} */
    const cJSON *orig = cJSON_GetObjectItemCaseSensitive(data, "details");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(data, "timestamp");
    cJSON_AddStringToObject(details, "externalAction", action->valuestring);
    cJSON_AddItemToObject(details, "originalDetails",
                          orig != NULL ? cJSON_Duplicate(orig, true) : cJSON_CreateNull());
    cJSON_AddItemToObject(details, "timestamp",
                          ts != NULL ? cJSON_Duplicate(ts, true) : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(details);
    cJSON_Delete(details);
    if (text == NULL) {
        in_free(j);
        h->job_retry(job, "out of memory", -1);
        return;
    }
    j->details = strdup(text);
    cJSON_free(text);
    if (j->details == NULL) {
        in_free(j);
        h->job_retry(job, "out of memory", -1);
        return;
    }
    if (wh->pg->begin(h, on_begun, j) != 0) {
        in_free(j);
        count(wh, "error");
        h->job_retry(job, "database unavailable", -1);
    }
}
