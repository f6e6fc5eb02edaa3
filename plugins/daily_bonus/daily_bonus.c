/*
 * daily_bonus - Nova's daily login bonus, granted once per user per day.
 * docs/plugins/daily_bonus.md has the details.
 *
 * One job (queue "daily-bonus", name "grant") grants the bonus of one day
 * to Nova's cohort of that day (reference §3.2): users not deleted whose
 * last_login_at lies in [the day before 00:00, the day 00:00) of the
 * configured time zone, not granted yet for that day. The plugin declares
 * its schedule (`schedule`, default 0 0 * * *) through the schedules
 * callback; the runtime adds one job per slot.
 *
 * The day of a run: the job data's "day" ("YYYY-MM-DD", for manual runs),
 * else the slot the scheduler put in the job id ("repeat:<id>:<slot ms>"),
 * else the job's timestamp (a job added by hand: today). A scheduled job's
 * timestamp is when it was created (the previous slot), never its slot.
 *
 * Exactly once: users are claimed in batches of batch_size with
 * SELECT ... FOR NO KEY UPDATE SKIP LOCKED in one transaction, which also
 * marks them (a conditional UPDATE of daily_bonus_granted_at: only rows not
 * granted for that day), locks or creates their user_balance rows FOR
 * UPDATE and inserts one 'bonus' point_transactions row each with the true
 * balance_before / balance_after. The batch commits or leaves no trace, so
 * a killed worker, a retried job or a second worker on the same day grant
 * nobody twice. A batch the server refuses is redone one user per
 * transaction, so one bad row fails alone.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include <nova/buf.h>
#include <nova/pg.h>
#include <nova/plugin.h>

#define DB_SCHEDULE_ID "daily-bonus-grant"
#define DB_JOB_NAME    "grant"
#define DB_MAX_PASSES  5    /* walks of the cohort per run (users locked by others) */
#define DB_MAX_RETRIES 5    /* transient database errors in a row before the job retries */
#define DB_MAX_FAILED  1000 /* users failed in one run before the run gives up */
#define DB_LOGGED_FAIL 10   /* failures logged one by one per run */

struct db_config {
    char *queue;
    char *schedule; /* "" = no schedule */
    char *timezone;
    int64_t points;
    int64_t batch_size;
    int64_t lock_duration_ms;
};

static const struct nova_config_entry db_config_table[] = {
    {.key = "queue",
     .type = NOVA_CONFIG_STRING,
     .default_value = "daily-bonus",
     .offset = offsetof(struct db_config, queue),
     .help = "BullMQ queue of the grant jobs"},
    {.key = "schedule",
     .type = NOVA_CONFIG_STRING,
     .default_value = "0 0 * * *",
     .offset = offsetof(struct db_config, schedule),
     .help = "when the runtime adds a grant job: a cron line or \"every <duration>\"; empty = "
             "never (jobs added by hand only)"},
    {.key = "timezone",
     .type = NOVA_CONFIG_STRING,
     .default_value = "UTC",
     .offset = offsetof(struct db_config, timezone),
     .help = "IANA time zone of the schedule and of the days (midnight to midnight)"},
    {.key = "points",
     .type = NOVA_CONFIG_INT,
     .default_value = "10",
     .offset = offsetof(struct db_config, points),
     .help = "bonus points per user and day",
     .min = 1,
     .max = 1000000,
     .env = "DAILY_BONUS_POINTS"},
    {.key = "batch_size",
     .type = NOVA_CONFIG_INT,
     .default_value = "500",
     .offset = offsetof(struct db_config, batch_size),
     .help = "users claimed and granted per transaction",
     .min = 1,
     .max = 10000},
    {.key = "lock_duration",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "30s",
     .offset = offsetof(struct db_config, lock_duration_ms),
     .help = "BullMQ lock of a running job: how soon a job of a dead worker runs again",
     .min = 5000,
     .max = 600000},
    {.key = NULL},
};

static const char *const db_columns[] = {
    "users.id",
    "users.is_deleted",
    "users.last_login_at",
    "users.daily_bonus_granted_at",
    "user_balance.user_id",
    "user_balance.balance",
    "user_balance.updated_at",
    "point_transactions.user_id",
    "point_transactions.type",
    "point_transactions.amount",
    "point_transactions.balance_before",
    "point_transactions.balance_after",
    "point_transactions.description",
    NULL,
};

/* ---- SQL ------------------------------------------------------------------ */

/* The bounds of the day $1 (date) in time zone $2: its 00:00 and the day
 * before's 00:00, as timestamptz. */
#define DAY_START  "($1::date::timestamp AT TIME ZONE $2)"
#define PREV_START "(($1::date - 1)::timestamp AT TIME ZONE $2)"
/* Nova's cohort (jobs/dailyLoginBonus.js): logged in during the day before,
 * not deleted, not granted yet for the day. */
#define IN_WINDOW                                                                                  \
    "is_deleted = FALSE AND last_login_at >= " PREV_START " AND last_login_at < " DAY_START
#define NOT_GRANTED "(daily_bonus_granted_at IS NULL OR daily_bonus_granted_at < " DAY_START ")"

/* $1 day or NULL, $2 zone, $3 slot ms or NULL: the day, and whether it has
 * begun somewhere near (a day more than one ahead of the zone's today is a
 * mistake; one ahead is a clock a little behind the scheduler's). */
static const char SQL_RESOLVE[] =
    "SELECT to_char(d, 'YYYY-MM-DD'), d <= (now() AT TIME ZONE $2)::date + 1 FROM (SELECT "
    "COALESCE($1::date, (to_timestamp($3::bigint / 1000.0) AT TIME ZONE $2)::date) AS d) s";

/* $3 keyset position, $4 batch size, $5 ids failed in this run. Rows
 * another transaction holds are skipped: another run grants them, or a
 * later pass of this one. */
static const char SQL_CLAIM[] = "SELECT id FROM users WHERE " IN_WINDOW " AND " NOT_GRANTED
                                " AND id > $3::bigint AND NOT (id = ANY ($5::bigint[])) "
                                "ORDER BY id LIMIT $4::int FOR NO KEY UPDATE SKIP LOCKED";

/* The idempotency guard, in the grant's transaction: only the rows still
 * in the cohort, not granted for the day, are marked. The mark is at least
 * the day's 00:00, so a run before midnight (a clock behind) still marks. */
static const char SQL_MARK[] =
    "UPDATE users SET daily_bonus_granted_at = GREATEST(now(), " DAY_START ") WHERE id = ANY "
    "($3::bigint[]) AND " IN_WINDOW " AND " NOT_GRANTED " RETURNING id";

/* Nova's recordPointTransaction: the balance row exists (0 if the user has
 * none) and is locked before it is read. */
static const char SQL_ENSURE[] =
    "INSERT INTO user_balance (user_id, balance) SELECT u, 0 FROM unnest($1::bigint[]) AS u "
    "ORDER BY u ON CONFLICT (user_id) DO NOTHING";
static const char SQL_LOCK[] = "SELECT user_id FROM user_balance WHERE user_id = ANY "
                               "($1::bigint[]) ORDER BY user_id FOR UPDATE";

/* From the locked balances: one 'bonus' row per user with the true
 * balance_before and balance_after. */
static const char SQL_INSERT[] =
    "INSERT INTO point_transactions (user_id, type, amount, balance_before, balance_after, "
    "description) SELECT user_id, 'bonus', $2::int, balance, balance + $2::int, $3 FROM "
    "user_balance WHERE user_id = ANY ($1::bigint[]) ORDER BY user_id "
    "RETURNING user_id, balance_after";

/* Nova's trigger on point_transactions (trg_sync_user_balance) sets
 * user_balance to each row's balance_after. Where the trigger is missing
 * the same absolute value is written here; where it ran, nothing changes.
 * Never an increment, so nothing is counted twice. */
static const char SQL_SYNC[] =
    "UPDATE user_balance AS b SET balance = x.after, updated_at = now() FROM unnest($1::bigint[], "
    "$2::int[]) AS x(uid, after) WHERE b.user_id = x.uid AND b.balance IS DISTINCT FROM x.after";

/* After a walk: users of the window granted for the day, and those still
 * waiting (held by another transaction), not counting this run's failures. */
static const char SQL_LEFT[] =
    "SELECT count(*) FILTER (WHERE NOT " NOT_GRANTED "), count(*) FILTER (WHERE " NOT_GRANTED
    " AND NOT (id = ANY ($3::bigint[]))) FROM users WHERE " IN_WINDOW;

/* ---- the day of a run (pure) ------------------------------------------------ */

enum db_day_source {
    DB_DAY_DATA = 1,  /* data.day: *day */
    DB_DAY_SLOT,      /* the scheduler's slot in the job id: *ms */
    DB_DAY_TIMESTAMP, /* the job's timestamp: *ms */
};

static bool valid_day(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* The slot of a scheduler job id "repeat:<scheduler id>:<slot ms>", or -1. */
static int64_t slot_of(const char *job_id)
{
    if (job_id == NULL || strncmp(job_id, "repeat:", 7) != 0)
        return -1;
    const char *colon = strrchr(job_id, ':');
    if (colon == job_id + 6 || colon[1] == '\0' || strlen(colon + 1) > 15)
        return -1;
    int64_t ms = 0;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        ms = ms * 10 + (*p - '0');
    }
    return ms;
}

/*
 * Where the day of a job comes from. data.day ("YYYY-MM-DD") when present,
 * copied to day; else the slot of a scheduler job id, else the job's
 * timestamp, into *ms. Returns the source, or -EINVAL with a reason in err
 * (data.day present but malformed: the job fails).
 */
static int db_day_source(const cJSON *data, const char *job_id, int64_t timestamp_ms, char day[11],
                         int64_t *ms, char *err, size_t errlen)
{
    const cJSON *d = cJSON_IsObject(data) ? cJSON_GetObjectItemCaseSensitive(data, "day") : NULL;
    if (d != NULL && !cJSON_IsNull(d)) {
        if (!cJSON_IsString(d) || !valid_day(d->valuestring)) {
            snprintf(err, errlen, "data.day must be a date \"YYYY-MM-DD\"");
            return -EINVAL;
        }
        memcpy(day, d->valuestring, 11);
        return DB_DAY_DATA;
    }
    int64_t slot = slot_of(job_id);
    if (slot >= 0) {
        *ms = slot;
        return DB_DAY_SLOT;
    }
    *ms = timestamp_ms;
    return DB_DAY_TIMESTAMP;
}

/* ---- id lists ------------------------------------------------------------------ */

struct db_ids {
    int64_t *v;
    size_t n, cap;
};

static int ids_push(struct db_ids *l, int64_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

static void ids_free(struct db_ids *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* A PostgreSQL array literal of v[0..n): "{1,2,3}". Caller frees. */
static char *array_text(const int64_t *v, size_t n)
{
    struct nova_buf s = {0};
    nova_buf_add(&s, "{", 1);
    for (size_t i = 0; i < n; i++)
        nova_buf_printf(&s, "%s%" PRId64, i ? "," : "", v[i]);
    nova_buf_add(&s, "}", 1);
    if (s.oom) {
        nova_buf_free(&s);
        return NULL;
    }
    return s.p;
}

/* ---- the plugin ------------------------------------------------------------------ */

struct db_run;

struct db {
    const struct nova_host *host;
    const struct db_config *cfg;
    const struct nova_pg_api *pg;
    const char *tz;
    struct db_run *runs;    /* in flight, for shutdown */
    nova_metric *m_runs;    /* nova_daily_bonus_runs_total{outcome} */
    nova_metric *m_users;   /* nova_daily_bonus_users_total{result} */
    nova_metric *m_seconds; /* nova_daily_bonus_run_seconds */
};

enum db_step { ST_CLAIM, ST_MARK, ST_ENSURE, ST_LOCK, ST_INSERT, ST_SYNC };

struct db_run {
    struct db *db;
    struct db_run *next, *prev;
    nova_job *job;
    int64_t started_ms;
    char day[11];
    char desc[64];
    nova_pg_lease *lease;
    nova_timer *timer;
    enum db_step step;
    int64_t last_id; /* keyset position of the walk */
    int pass;        /* walks of the cohort done */
    int retries;     /* transient errors in a row */
    bool fallback;   /* redoing `claimed` one user per transaction */
    size_t fb_next;  /* the user of `claimed` being redone */
    struct db_ids claimed, won, failed;
    struct db_ids sync_uid, sync_after;
    int64_t credited;
    char first_error[256];
};

static void run_unlink(struct db_run *run)
{
    struct db *db = run->db;
    if (run->prev != NULL)
        run->prev->next = run->next;
    else if (db->runs == run)
        db->runs = run->next;
    if (run->next != NULL)
        run->next->prev = run->prev;
    run->next = run->prev = NULL;
}

static void run_free(struct db_run *run)
{
    run_unlink(run);
    if (run->timer != NULL)
        run->db->host->timer_stop(run->db->host, run->timer);
    ids_free(&run->claimed);
    ids_free(&run->won);
    ids_free(&run->failed);
    ids_free(&run->sync_uid);
    ids_free(&run->sync_after);
    free(run);
}

static void count(struct db_run *run, const char *result, double n)
{
    const char *lv[] = {result, NULL};
    if (n > 0)
        run->db->host->metric_add(run->db->m_users, lv, n);
}

static void run_end(struct db_run *run, const char *outcome)
{
    const struct nova_host *h = run->db->host;
    const char *lv[] = {outcome, NULL};
    h->metric_add(run->db->m_runs, lv, 1);
    double secs = (double)(h->now_ms(h) - run->started_ms) / 1000.0;
    h->metric_observe(run->db->m_seconds, NULL, secs < 0 ? 0 : secs);
    run_free(run);
}

/* The server's message of a failed statement, or the errno's text when
 * there is no result. */
static const char *pg_error(const struct db *db, int status, const nova_pg_result *res)
{
    return res != NULL ? db->pg->error_message(res) : strerror(-status);
}

static void noop_rolled_back(void *arg, int status, const nova_pg_result *res)
{
    (void)arg;
    (void)status;
    (void)res;
}

/* Gives the lease back without waiting for it (ends of runs). */
static void drop_lease(struct db_run *run)
{
    if (run->lease == NULL)
        return;
    nova_pg_lease *l = run->lease;
    run->lease = NULL;
    (void)run->db->pg->rollback(run->db->host, l, noop_rolled_back, NULL);
}

/* Ends the run: a retry when it may pass later, a final failure else.
 * What was committed stays; the retried job grants the rest. */
static void run_fail(struct db_run *run, bool transient, const char *fmt, ...) NOVA_PRINTF(3, 4);

static void run_fail(struct db_run *run, bool transient, const char *fmt, ...)
{
    const struct nova_host *h = run->db->host;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    drop_lease(run);
    h->log(h, transient ? NOVA_LOG_WARN : NOVA_LOG_ERROR, run->job,
           "daily bonus %s: %s (%" PRId64 " granted by this run)", run->day[0] ? run->day : "",
           reason, run->credited);
    if (transient)
        h->job_retry(run->job, reason, -1);
    else
        h->job_fail(run->job, reason);
    run_end(run, transient ? "retry" : "failed");
}

static void batch_begin(struct db_run *run);
static void walk_start(struct db_run *run);
static void walk_end(struct db_run *run);
static void unit_done(struct db_run *run);

static void on_timer(void *arg)
{
    struct db_run *run = arg;
    run->timer = NULL;
    batch_begin(run);
}

static void on_pass_timer(void *arg)
{
    struct db_run *run = arg;
    run->timer = NULL;
    walk_start(run);
}

static void after(struct db_run *run, uint64_t ms, nova_timer_cb cb)
{
    run->timer = run->db->host->timer_start(run->db->host, ms, 0, cb, run);
    if (run->timer == NULL)
        run_fail(run, true, "out of memory (timer)");
}

/* After a transient error (first_error): the unit runs again after a
 * pause, or the job is retried after DB_MAX_RETRIES in a row. */
static void unit_again(struct db_run *run)
{
    if (++run->retries > DB_MAX_RETRIES)
        return run_fail(run, true, "database: %s", run->first_error);
    after(run, 250ULL << run->retries, on_timer);
}

/* A transient error (connection lost, deadlock, timeout): the transaction
 * is gone or rolled back; the same unit of work runs again after a pause. */
static void on_rolled_back_transient(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    (void)res;
    if (status == -ECANCELED)
        return run_fail(run, true, "worker stopping");
    unit_again(run);
}

static void rollback_then(struct db_run *run, nova_pg_cb cb)
{
    nova_pg_lease *l = run->lease;
    run->lease = NULL;
    int rc = l != NULL ? run->db->pg->rollback(run->db->host, l, cb, run) : -ENOTCONN;
    if (rc != 0)
        cb(run, rc == -ECANCELED ? -ECANCELED : 0, NULL);
}

/* The current unit (a batch, or one user of a refused batch) is over:
 * the next user, the next batch, or the end of the walk. */
static void unit_done(struct db_run *run)
{
    if (run->fallback) {
        if (++run->fb_next < run->claimed.n)
            return batch_begin(run);
        run->fallback = false;
    }
    if (run->claimed.n > 0)
        run->last_id = run->claimed.v[run->claimed.n - 1];
    /* fewer than asked: no claimable user is left after last_id */
    if (run->claimed.n < (size_t)run->db->cfg->batch_size)
        return walk_end(run);
    batch_begin(run);
}

/* The user of a per-user redo failed for good: counted, logged, skipped
 * by the rest of the run. */
static void on_rolled_back_user(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    (void)res;
    if (status == -ECANCELED)
        return run_fail(run, true, "worker stopping");
    if (run->failed.n >= DB_MAX_FAILED)
        return run_fail(run, false, "%zu grants failed; the first: %s", run->failed.n,
                        run->first_error);
    unit_done(run);
}

/* The batch was refused: redo its users one per transaction. */
static void on_rolled_back_batch(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    (void)res;
    if (status == -ECANCELED)
        return run_fail(run, true, "worker stopping");
    run->fallback = true;
    run->fb_next = 0;
    batch_begin(run);
}

/* Any statement of a batch failed. */
static void batch_error(struct db_run *run, int status, const nova_pg_result *res)
{
    struct db *db = run->db;
    const struct nova_host *h = db->host;
    const char *msg = pg_error(db, status, res);
    if (status == -ECANCELED)
        return run_fail(run, true, "worker stopping");
    if (nova_pg_error_retryable(status)) {
        snprintf(run->first_error, sizeof run->first_error, "%s", msg);
        h->log(h, NOVA_LOG_WARN, run->job, "daily bonus %s: %s; trying again", run->day, msg);
        return rollback_then(run, on_rolled_back_transient);
    }
    if (!run->fallback) {
        if (run->step == ST_CLAIM)
            return run_fail(run, false, "claiming users: %s", msg);
        h->log(h, NOVA_LOG_WARN, run->job,
               "daily bonus %s: a batch of %zu users was refused (%s); granting them one by one",
               run->day, run->claimed.n, msg);
        return rollback_then(run, on_rolled_back_batch);
    }
    int64_t uid = run->claimed.v[run->fb_next];
    if (run->failed.n == 0)
        snprintf(run->first_error, sizeof run->first_error, "user %" PRId64 ": %s", uid, msg);
    if (run->failed.n < DB_LOGGED_FAIL)
        h->log(h, NOVA_LOG_WARN, run->job, "daily bonus %s: user %" PRId64 " not granted: %s",
               run->day, uid, msg);
    if (ids_push(&run->failed, uid) != 0)
        return run_fail(run, true, "out of memory");
    count(run, "failed", 1);
    rollback_then(run, on_rolled_back_user);
}

/* The ids of the current unit: the batch, or the one user being redone. */
static const int64_t *unit_ids(struct db_run *run, size_t *n)
{
    if (run->fallback) {
        *n = 1;
        return &run->claimed.v[run->fb_next];
    }
    *n = run->claimed.n;
    return run->claimed.v;
}

static void step_query(struct db_run *run, enum db_step step, const char *sql, int nparams,
                       const char *const *params, nova_pg_cb cb)
{
    run->step = step;
    int rc = run->db->pg->lease_query(run->db->host, run->lease, sql, nparams, params, cb, run);
    /* not sent (connection gone, out of memory): the batch runs again */
    if (rc != 0)
        batch_error(run, rc == -ECANCELED ? rc : -ECONNRESET, NULL);
}

static void on_committed(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    struct db *db = run->db;
    run->lease = NULL; /* consumed */
    if (status != 0) {
        /* Rolled back, or not known (connection lost): the unit runs again,
         * and what did commit is no longer in the cohort. */
        if (status == -ECANCELED)
            return run_fail(run, true, "worker stopping");
        snprintf(run->first_error, sizeof run->first_error, "commit: %s",
                 pg_error(db, status, res));
        return unit_again(run);
    }
    run->retries = 0;
    run->credited += (int64_t)run->won.n;
    count(run, "credited", (double)run->won.n);
    unit_done(run);
}

static void commit(struct db_run *run)
{
    nova_pg_lease *l = run->lease;
    int rc = run->db->pg->commit(run->db->host, l, on_committed, run);
    if (rc != 0)
        batch_error(run, rc == -ECANCELED ? rc : -ECONNRESET, NULL);
}

static void on_synced(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    if (status != 0)
        return batch_error(run, status, res);
    commit(run);
}

static void on_inserted(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    const struct nova_pg_api *pg = run->db->pg;
    if (status != 0)
        return batch_error(run, status, res);
    int n = pg->ntuples(res);
    run->sync_uid.n = run->sync_after.n = 0;
    for (int r = 0; r < n; r++) {
        int64_t uid = 0, bal = 0;
        if (pg->get_int64(res, r, 0, &uid) != 0 || pg->get_int64(res, r, 1, &bal) != 0 ||
            ids_push(&run->sync_uid, uid) != 0 || ids_push(&run->sync_after, bal) != 0)
            return run_fail(run, true, "reading the inserted rows");
    }
    if ((size_t)n != run->won.n)
        return run_fail(run, false,
                        "%d point_transactions rows for %zu marked users (user_balance rows "
                        "missing?)",
                        n, run->won.n);
    char *uids = array_text(run->sync_uid.v, run->sync_uid.n);
    char *afters = array_text(run->sync_after.v, run->sync_after.n);
    if (uids == NULL || afters == NULL) {
        free(uids);
        free(afters);
        return run_fail(run, true, "out of memory");
    }
    const char *p[] = {uids, afters};
    step_query(run, ST_SYNC, SQL_SYNC, 2, p, on_synced);
    free(uids);
    free(afters);
}

/* Statements that take the won ids as $1. */
static void won_query(struct db_run *run, enum db_step step, const char *sql, nova_pg_cb cb)
{
    char *ids = array_text(run->won.v, run->won.n);
    if (ids == NULL)
        return run_fail(run, true, "out of memory");
    char points[24];
    snprintf(points, sizeof points, "%" PRId64, run->db->cfg->points);
    const char *p[] = {ids, points, run->desc};
    step_query(run, step, sql, step == ST_INSERT ? 3 : 1, p, cb);
    free(ids);
}

static void on_locked(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    if (status != 0)
        return batch_error(run, status, res);
    won_query(run, ST_INSERT, SQL_INSERT, on_inserted);
}

static void on_ensured(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    if (status != 0)
        return batch_error(run, status, res);
    won_query(run, ST_LOCK, SQL_LOCK, on_locked);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void on_marked(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    const struct nova_pg_api *pg = run->db->pg;
    if (status != 0)
        return batch_error(run, status, res);
    run->won.n = 0;
    for (int r = 0; r < pg->ntuples(res); r++) {
        int64_t id = 0;
        if (pg->get_int64(res, r, 0, &id) != 0 || ids_push(&run->won, id) != 0)
            return run_fail(run, true, "reading the marked users");
    }
    if (run->won.n == 0) /* granted meanwhile (by another run) */
        return commit(run);
    qsort(run->won.v, run->won.n, sizeof *run->won.v, cmp_id);
    won_query(run, ST_ENSURE, SQL_ENSURE, on_ensured);
}

static void mark(struct db_run *run)
{
    size_t n = 0;
    const int64_t *v = unit_ids(run, &n);
    char *ids = array_text(v, n);
    if (ids == NULL)
        return run_fail(run, true, "out of memory");
    const char *p[] = {run->day, run->db->tz, ids};
    step_query(run, ST_MARK, SQL_MARK, 3, p, on_marked);
    free(ids);
}

static void on_claimed(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    const struct nova_pg_api *pg = run->db->pg;
    if (status != 0)
        return batch_error(run, status, res);
    run->claimed.n = 0;
    run->won.n = 0;
    for (int r = 0; r < pg->ntuples(res); r++) {
        int64_t id = 0;
        if (pg->get_int64(res, r, 0, &id) != 0 || ids_push(&run->claimed, id) != 0)
            return run_fail(run, true, "reading the claimed users");
    }
    if (run->claimed.n == 0)
        return commit(run);
    mark(run);
}

static void claim(struct db_run *run)
{
    char last[24], limit[24];
    snprintf(last, sizeof last, "%" PRId64, run->last_id);
    snprintf(limit, sizeof limit, "%" PRId64, run->db->cfg->batch_size);
    char *failed = array_text(run->failed.v, run->failed.n);
    if (failed == NULL)
        return run_fail(run, true, "out of memory");
    const char *p[] = {run->day, run->db->tz, last, limit, failed};
    step_query(run, ST_CLAIM, SQL_CLAIM, 5, p, on_claimed);
    free(failed);
}

static void on_begun(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct db_run *run = arg;
    if (status != 0) {
        if (status == -ECANCELED)
            return run_fail(run, true, "worker stopping");
        snprintf(run->first_error, sizeof run->first_error, "BEGIN: %s",
                 pg_error(run->db, status, res));
        if (!nova_pg_error_retryable(status))
            return run_fail(run, false, "database: %s", run->first_error);
        return unit_again(run);
    }
    run->lease = lease;
    run->won.n = 0;
    if (run->fallback)
        mark(run);
    else
        claim(run);
}

static void batch_begin(struct db_run *run)
{
    const struct nova_host *h = run->db->host;
    /* A lost lock or the shutdown timeout: the job is someone else's now
     * (or back in the queue); what was committed stays. */
    if (h->job_cancelled(run->job))
        return run_fail(run, true, "job cancelled (lock lost or worker stopping)");
    int rc = run->db->pg->begin(h, on_begun, run);
    if (rc != 0)
        run_fail(run, rc != -EINVAL, "BEGIN not started: %s", strerror(-rc));
}

static void walk_start(struct db_run *run)
{
    run->last_id = 0;
    run->fallback = false;
    batch_begin(run);
}

static void on_left(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    struct db *db = run->db;
    const struct nova_host *h = db->host;
    if (status != 0)
        return run_fail(run, status != -EINVAL, "counting the cohort: %s",
                        status == -ECANCELED ? "worker stopping" : db->pg->error_message(res));
    int64_t granted = 0, left = 0;
    (void)db->pg->get_int64(res, 0, 0, &granted);
    (void)db->pg->get_int64(res, 0, 1, &left);
    run->pass++;
    if (left > 0) {
        /* Held by other transactions (another run of the day, the API):
         * walk again once they are done with them. */
        if (run->pass < DB_MAX_PASSES) {
            h->log(h, NOVA_LOG_INFO, run->job,
                   "daily bonus %s: %" PRId64 " users held by other transactions; walking the "
                   "cohort again",
                   run->day, left);
            return after(run, 500ULL << (run->pass - 1), on_pass_timer);
        }
        return run_fail(run, true,
                        "%" PRId64 " users of the cohort were held by other transactions "
                        "through %d walks",
                        left, run->pass);
    }
    int64_t skipped = granted > run->credited ? granted - run->credited : 0;
    count(run, "skipped", (double)skipped);
    char result[160];
    snprintf(result, sizeof result,
             "{\"credited\":%" PRId64 ",\"skipped\":%" PRId64 ",\"failed\":%zu}", run->credited,
             skipped, run->failed.n);
    h->log(h, run->failed.n > 0 ? NOVA_LOG_WARN : NOVA_LOG_INFO, run->job,
           "daily bonus %s: %" PRId64 " credited, %" PRId64 " already granted, %zu failed%s%s",
           run->day, run->credited, skipped, run->failed.n, run->failed.n ? "; the first: " : "",
           run->failed.n ? run->first_error : "");
    h->job_done(run->job, result);
    run_end(run, run->failed.n > 0 ? "partial" : "ok");
}

/* A walk is over: count who is left of the cohort. */
static void walk_end(struct db_run *run)
{
    char *failed = array_text(run->failed.v, run->failed.n);
    if (failed == NULL)
        return run_fail(run, true, "out of memory");
    const char *p[] = {run->day, run->db->tz, failed};
    int rc = run->db->pg->query(run->db->host, SQL_LEFT, 3, p, on_left, run);
    free(failed);
    if (rc != 0)
        run_fail(run, rc != -EINVAL, "counting the cohort: %s", strerror(-rc));
}

static void on_resolved(void *arg, int status, const nova_pg_result *res)
{
    struct db_run *run = arg;
    struct db *db = run->db;
    const struct nova_host *h = db->host;
    if (status != 0) {
        if (status == -ECANCELED)
            return run_fail(run, true, "worker stopping");
        /* 22023: unknown time zone; 22007/22008: not a date */
        return run_fail(run, nova_pg_error_retryable(status), "the day (time zone %s): %s", db->tz,
                        db->pg->error_message(res));
    }
    const char *day = db->pg->get_text(res, 0, 0);
    bool begun = false;
    if (day == NULL || strlen(day) != 10 || db->pg->get_bool(res, 0, 1, &begun) != 0)
        return run_fail(run, false, "the day could not be computed");
    memcpy(run->day, day, 11);
    if (!begun)
        return run_fail(run, false, "day %s has not begun in %s: nothing to grant yet", run->day,
                        db->tz);
    snprintf(run->desc, sizeof run->desc, "Daily login bonus %s", run->day);
    h->log(h, NOVA_LOG_INFO, run->job,
           "daily bonus %s (%s): granting %" PRId64 " points, batches of %" PRId64, run->day,
           db->tz, db->cfg->points, db->cfg->batch_size);
    walk_start(run);
}

static void on_job(void *arg, nova_job *job)
{
    struct db *db = arg;
    const struct nova_host *h = db->host;
    struct db_run *run = calloc(1, sizeof *run);
    if (run == NULL) {
        h->job_retry(job, "out of memory", -1);
        return;
    }
    run->db = db;
    run->job = job;
    run->started_ms = h->now_ms(h);
    run->next = db->runs;
    if (db->runs != NULL)
        db->runs->prev = run;
    db->runs = run;

    char day[11] = "", err[128] = "", ms_text[24] = "";
    int64_t ms = 0, ts = h->job_timestamp_ms(job);
    int src = db_day_source(h->job_data(job), h->job_id(job), ts > 0 ? ts : h->now_ms(h), day, &ms,
                            err, sizeof err);
    if (src < 0)
        return run_fail(run, false, "%s", err);
    if (src != DB_DAY_DATA)
        snprintf(ms_text, sizeof ms_text, "%" PRId64, ms);
    const char *p[] = {src == DB_DAY_DATA ? day : NULL, db->tz,
                       src == DB_DAY_DATA ? NULL : ms_text};
    int rc = db->pg->query(h, SQL_RESOLVE, 3, p, on_resolved, run);
    if (rc != 0)
        run_fail(run, rc != -EINVAL, "the day: query not started: %s", strerror(-rc));
}

/* Pure: the one schedule of a validated config (points into it). */
static int db_schedules(const void *config, struct nova_schedule *out, size_t max, char *err,
                        size_t errlen)
{
    const struct db_config *cfg = config;
    if (cfg->schedule == NULL || cfg->schedule[0] == '\0')
        return 0;
    if (max < 1) {
        snprintf(err, errlen, "no room for the daily bonus schedule");
        return -ENOSPC;
    }
    out[0] = (struct nova_schedule){
        .id = DB_SCHEDULE_ID,
        .queue = cfg->queue,
        .job_name = DB_JOB_NAME,
        .spec = cfg->schedule,
        .timezone = cfg->timezone,
        .data_json = NULL,
    };
    return 1;
}

static int db_init(const struct nova_host *host, const void *config, void **state)
{
    const struct db_config *cfg = config;
    if (!NOVA_HOST_HAS(host, pg) || !NOVA_HOST_HAS(host, subscribe)) {
        host->log(host, NOVA_LOG_ERROR, NULL, "daily_bonus needs PostgreSQL and queues");
        return -ENOTSUP;
    }
    if (cfg->queue == NULL || cfg->queue[0] == '\0') {
        host->log(host, NOVA_LOG_ERROR, NULL, "daily_bonus: queue must not be empty");
        return -EINVAL;
    }
    struct db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return -ENOMEM;
    db->host = host;
    db->cfg = cfg;
    db->pg = host->pg;
    db->tz = cfg->timezone != NULL && cfg->timezone[0] != '\0' ? cfg->timezone : "UTC";
    static const char *const l_outcome[] = {"outcome", NULL};
    static const char *const l_result[] = {"result", NULL};
    db->m_runs = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_daily_bonus_runs_total",
                                  "Daily bonus runs by outcome (ok, partial, retry, failed)",
                                  l_outcome, NULL, 0);
    db->m_users = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_daily_bonus_users_total",
                                   "Users of daily bonus runs by result (credited, skipped, "
                                   "failed)",
                                   l_result, NULL, 0);
    static const double buckets[] = {0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600};
    db->m_seconds = host->metric_new(host, NOVA_METRIC_HISTOGRAM, "nova_daily_bonus_run_seconds",
                                     "Time of one daily bonus run", NULL, buckets,
                                     sizeof buckets / sizeof buckets[0]);
    static const char *const names[] = {DB_JOB_NAME, NULL};
    struct nova_subscription sub = {
        .struct_size = sizeof sub,
        .queue = cfg->queue,
        .job_names = names,
        .concurrency = 1,
        .lock_duration_ms = cfg->lock_duration_ms,
        .handle = on_job,
        .arg = db,
    };
    int rc = host->subscribe(host, &sub);
    if (rc != 0) {
        free(db);
        return rc;
    }
    host->log(host, NOVA_LOG_INFO, NULL,
              "daily_bonus: queue %s, %" PRId64 " points, batches of %" PRId64
              ", schedule \"%s\" (%s)",
              cfg->queue, cfg->points, cfg->batch_size, cfg->schedule ? cfg->schedule : "", db->tz);
    *state = db;
    return 0;
}

/* Runs still here wait on a timer (stopped by the host) or on a statement
 * whose callback the host detached: their jobs were given back to the
 * queue, and their outcome is ignored. */
static void db_shutdown(void *state)
{
    struct db *db = state;
    while (db->runs != NULL) {
        struct db_run *run = db->runs;
        run->timer = NULL; /* stopped by the host already */
        drop_lease(run);   /* or, with a statement on it, rolled back by the host */
        db->host->job_retry(run->job, "worker stopped", -1);
        run_free(run);
    }
    free(db);
}

static const struct nova_plugin db_plugin = {
    NOVA_PLUGIN_ABI,
    .requires = NOVA_REQUIRES_PG,
    .name = "daily_bonus",
    .version = "1.0.0",
    .description = "Nova's daily login bonus, granted once per user and day",
    .config = db_config_table,
    .config_size = sizeof(struct db_config),
    .required_columns = db_columns,
    .init = db_init,
    .shutdown = db_shutdown,
    .schedules = db_schedules,
};

NOVA_PLUGIN_DEFINE(db_plugin)
