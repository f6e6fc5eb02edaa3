/*
 * leaderboard - refreshes the two leaderboard lists Nova's API serves from
 * Redis (leaderboard:weekly, leaderboard:alltime), in the very bytes Nova's
 * own cache warmer wrote. docs/plugins/leaderboard.md has the details.
 *
 * One job (queue "leaderboard", name "refresh") runs one query per period
 * and writes each list with SETEX. The plugin declares its schedule
 * (`schedule`, default every 5 minutes) through the schedules callback; the
 * runtime adds one job per slot.
 *
 * The value is what Nova's route reads: JSON.stringify() of the rows
 * node-pg returns for Nova's query, an array of
 * {"user_id": <number>, "total_points": "<string>", "rank": "<string>"}
 * (node-pg hands int4 over as a number, int8 and numeric as strings; the
 * keys come in column order).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nova/pg.h>
#include <nova/buf.h>
#include <nova/plugin.h>
#include <nova/redis.h>

#define LB_SCHEDULE_ID "leaderboard-refresh"
#define LB_JOB_NAME    "refresh"

struct lb_config {
    char *queue;
    char *schedule; /* "" = no schedule: runs only when a job is added */
    char *timezone;
    int64_t limit;
    int64_t ttl_ms;
};

static const struct nova_config_entry lb_config_table[] = {
    {.key = "queue",
     .type = NOVA_CONFIG_STRING,
     .default_value = "leaderboard",
     .offset = offsetof(struct lb_config, queue),
     .help = "BullMQ queue of the refresh jobs"},
    {.key = "schedule",
     .type = NOVA_CONFIG_STRING,
     .default_value = "every 5m",
     .offset = offsetof(struct lb_config, schedule),
     .help = "when the runtime adds a refresh job: \"every <duration>\" or a cron line; empty = "
             "never (jobs added by hand only)"},
    {.key = "timezone",
     .type = NOVA_CONFIG_STRING,
     .default_value = "UTC",
     .offset = offsetof(struct lb_config, timezone),
     .help = "IANA time zone a cron schedule is read in"},
    {.key = "limit",
     .type = NOVA_CONFIG_INT,
     .default_value = "50",
     .offset = offsetof(struct lb_config, limit),
     .help = "users per list (Nova's warmer: 50; its route reads at most 100)",
     .min = 1,
     .max = 100},
    {.key = "ttl",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "300s",
     .offset = offsetof(struct lb_config, ttl_ms),
     .help = "expiry of the two keys (SETEX, whole seconds, rounded up); Nova uses 300s",
     .min = 1000,
     .max = 86400000},
    {.key = NULL},
};

static const char *const lb_columns[] = {
    "point_transactions.user_id",
    "point_transactions.type",
    "point_transactions.amount",
    "point_transactions.created_at",
    NULL,
};

/*
 * Nova's query (db/leaderboardRepository.js getLeaderboard, reference §3.1):
 * earned rows only, the weekly list from the last 7 days by the database's
 * clock, SUM per user, RANK() over the sums (ties share a rank, the next
 * rank skips), ordered by rank, LIMIT. Nova's ORDER BY rank leaves the
 * order of tied users to the plan (it changes with statistics), and with
 * it which of them a LIMIT inside a tie keeps; here ties are ordered by
 * user_id, one of the orders Nova's query may return, and the same on
 * every run. Served by idx_nova_worker_pt_earned (migration 103).
 */
#define LB_RANKED(where)                                                                           \
    "SELECT user_id, total_points, rank FROM (SELECT user_id, SUM(amount) AS total_points, "       \
    "RANK() OVER (ORDER BY SUM(amount) DESC) AS rank FROM point_transactions "                     \
    "WHERE type = 'earned'" where " GROUP BY user_id) ranked ORDER BY rank, user_id LIMIT $1"

static const struct lb_period {
    const char *name;
    const char *key;
    const char *sql;
} lb_periods[] = {
    {"weekly", "leaderboard:weekly", LB_RANKED(" AND created_at >= NOW() - INTERVAL '7 days'")},
    {"alltime", "leaderboard:alltime", LB_RANKED("")},
};
#define LB_PERIODS (sizeof lb_periods / sizeof lb_periods[0])

/* ---- rendering: JSON.stringify of node-pg's rows ------------------------ */

/* A JSON string as JSON.stringify writes it: '"' and '\' escaped, the
 * control characters as \b \t \n \f \r or \u00xx, everything else as is. */
static void buf_json_string(struct nova_buf *b, const char *s)
{
    static const char plain[] = "\"\\\b\t\n\f\r", escaped[] = "\"\\btnfr";
    nova_buf_add(b, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        const char *q = strchr(plain, c);
        char esc[8];
        if (q != NULL) {
            esc[0] = '\\';
            esc[1] = escaped[q - plain];
            nova_buf_add(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            nova_buf_add(b, esc, 6);
        } else {
            nova_buf_add(b, s, 1);
        }
    }
    nova_buf_add(b, "\"", 1);
}

/* True for the text of an integer node-pg turns into a JavaScript number
 * (int2/int4: -2147483648..2147483647); JSON.stringify writes it back as
 * the same digits. */
static bool is_int32_text(const char *s)
{
    const char *d = s[0] == '-' ? s + 1 : s;
    size_t n = strlen(d);
    if (n == 0 || n > 10 || (n > 1 && d[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9')
            return false;
    long long v = strtoll(s, NULL, 10);
    return v >= -2147483648LL && v <= 2147483647LL;
}

/* One cell as text, NULL for SQL NULL. */
typedef const char *(*lb_cell_fn)(void *ctx, int row, int col);

/*
 * The list as Nova's warmer stores it: JSON.stringify(rows) for rows of
 * (user_id, total_points, rank). user_id is a number (Nova's column is
 * INT; another type, such as the wallet-keyed VARCHAR of Nova's 006, comes
 * out a string as node-pg would give it), the two others strings, SQL NULL
 * null. Returns a malloc'd string or NULL when out of memory.
 */
static char *lb_render(int rows, lb_cell_fn cell, void *ctx)
{
    static const char *const keys[] = {"{\"user_id\":", ",\"total_points\":", ",\"rank\":"};
    struct nova_buf b = {0};
    nova_buf_add(&b, "[", 1);
    for (int r = 0; r < rows; r++) {
        if (r > 0)
            nova_buf_add(&b, ",", 1);
        for (int c = 0; c < 3; c++) {
            nova_buf_str(&b, keys[c]);
            const char *v = cell(ctx, r, c);
            if (v == NULL)
                nova_buf_str(&b, "null");
            else if (c == 0 && is_int32_text(v))
                nova_buf_str(&b, v);
            else
                buf_json_string(&b, v);
        }
        nova_buf_add(&b, "}", 1);
    }
    nova_buf_add(&b, "]", 1);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- the plugin --------------------------------------------------------- */

struct lb_run;

struct lb {
    const struct nova_host *host;
    const struct lb_config *cfg;
    struct lb_run *runs;    /* in flight, for shutdown */
    nova_metric *m_runs;    /* nova_leaderboard_runs_total{outcome} */
    nova_metric *m_seconds; /* nova_leaderboard_refresh_seconds */
    nova_metric *m_rows;    /* nova_leaderboard_rows{period} */
};

struct lb_run {
    struct lb *lb;
    struct lb_run *next, *prev;
    nova_job *job;
    int64_t started_ms;
    size_t period;
    int rows[LB_PERIODS];
};

struct lb_cells {
    const struct nova_pg_api *pg;
    const nova_pg_result *res;
};

static const char *pg_cell(void *ctx, int row, int col)
{
    struct lb_cells *c = ctx;
    return c->pg->get_text(c->res, row, col);
}

static void run_free(struct lb_run *run)
{
    struct lb *lb = run->lb;
    if (run->prev != NULL)
        run->prev->next = run->next;
    else
        lb->runs = run->next;
    if (run->next != NULL)
        run->next->prev = run->prev;
    free(run);
}

static void run_end(struct lb_run *run, const char *outcome)
{
    const struct nova_host *h = run->lb->host;
    const char *lv[] = {outcome, NULL};
    h->metric_add(run->lb->m_runs, lv, 1);
    double secs = (double)(h->now_ms(h) - run->started_ms) / 1000.0;
    h->metric_observe(run->lb->m_seconds, NULL, secs < 0 ? 0 : secs);
    run_free(run);
}

/* Ends the run with a failure: a retry for what may pass later (database
 * or Redis trouble), a final failure otherwise. */
static void run_fail(struct lb_run *run, bool transient, const char *fmt, ...) NOVA_PRINTF(3, 4);

static void run_fail(struct lb_run *run, bool transient, const char *fmt, ...)
{
    const struct nova_host *h = run->lb->host;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    h->log(h, transient ? NOVA_LOG_WARN : NOVA_LOG_ERROR, run->job, "leaderboard: %s", reason);
    if (transient)
        h->job_retry(run->job, reason, -1);
    else
        h->job_fail(run->job, reason);
    run_end(run, transient ? "retry" : "failed");
}

static void run_period(struct lb_run *run);

static void on_set(void *arg, int status, const struct nova_redis_reply *reply)
{
    struct lb_run *run = arg;
    const struct lb_period *p = &lb_periods[run->period];
    if (status == -ECANCELED)
        return run_fail(run, true, "worker stopping before %s was written", p->key);
    if (status != 0)
        return run_fail(run, true, "SETEX %s: %s", p->key, strerror(-status));
    if (reply->type == NOVA_REDIS_REPLY_ERROR)
        return run_fail(run, true, "SETEX %s: %s", p->key, reply->str);
    const char *lv[] = {p->name, NULL};
    run->lb->host->metric_set(run->lb->m_rows, lv, run->rows[run->period]);
    run->period++;
    run_period(run);
}

static void on_rows(void *arg, int status, const nova_pg_result *res)
{
    struct lb_run *run = arg;
    struct lb *lb = run->lb;
    const struct nova_host *h = lb->host;
    const struct lb_period *p = &lb_periods[run->period];
    if (status == -ECANCELED)
        return run_fail(run, true, "worker stopping during the %s query", p->name);
    if (status != 0)
        return run_fail(run, nova_pg_error_retryable(status), "%s query: %s", p->name,
                        h->pg->error_message(res));
    struct lb_cells cells = {h->pg, res};
    int n = h->pg->ntuples(res);
    char *json = lb_render(n, pg_cell, &cells);
    if (json == NULL)
        return run_fail(run, true, "out of memory rendering the %s list", p->name);
    run->rows[run->period] = n;
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, (lb->cfg->ttl_ms + 999) / 1000);
    const char *argv[] = {"SETEX", p->key, ttl, json};
    int rc = h->redis->command(h, 4, argv, NULL, on_set, run);
    free(json);
    if (rc != 0)
        run_fail(run, rc != -ECANCELED && rc != -EINVAL, "SETEX %s: %s", p->key, strerror(-rc));
}

static void run_period(struct lb_run *run)
{
    struct lb *lb = run->lb;
    const struct nova_host *h = lb->host;
    if (run->period == LB_PERIODS) {
        char result[96];
        snprintf(result, sizeof result, "{\"weekly\":%d,\"alltime\":%d}", run->rows[0],
                 run->rows[1]);
        h->log(h, NOVA_LOG_INFO, run->job, "leaderboard refreshed: %d weekly, %d all-time",
               run->rows[0], run->rows[1]);
        h->job_done(run->job, result);
        return run_end(run, "ok");
    }
    char limit[24];
    snprintf(limit, sizeof limit, "%" PRId64, lb->cfg->limit);
    const char *params[] = {limit};
    int rc = h->pg->query(h, lb_periods[run->period].sql, 1, params, on_rows, run);
    if (rc != 0)
        run_fail(run, rc != -EINVAL, "%s query not started: %s", lb_periods[run->period].name,
                 strerror(-rc));
}

static void on_job(void *arg, nova_job *job)
{
    struct lb *lb = arg;
    struct lb_run *run = calloc(1, sizeof *run);
    if (run == NULL) {
        lb->host->job_retry(job, "out of memory", -1);
        return;
    }
    run->lb = lb;
    run->job = job;
    run->started_ms = lb->host->now_ms(lb->host);
    run->next = lb->runs;
    if (lb->runs != NULL)
        lb->runs->prev = run;
    lb->runs = run;
    run_period(run);
}

/* Pure: the one schedule of a validated config (points into it). */
static int lb_schedules(const void *config, struct nova_schedule *out, size_t max, char *err,
                        size_t errlen)
{
    const struct lb_config *cfg = config;
    if (cfg->schedule == NULL || cfg->schedule[0] == '\0')
        return 0;
    if (max < 1) {
        snprintf(err, errlen, "no room for the leaderboard schedule");
        return -ENOSPC;
    }
    out[0] = (struct nova_schedule){
        .id = LB_SCHEDULE_ID,
        .queue = cfg->queue,
        .job_name = LB_JOB_NAME,
        .spec = cfg->schedule,
        .timezone = cfg->timezone,
        .data_json = NULL,
    };
    return 1;
}

static int lb_init(const struct nova_host *host, const void *config, void **state)
{
    const struct lb_config *cfg = config;
    if (!NOVA_HOST_HAS(host, pg) || !NOVA_HOST_HAS(host, redis) ||
        !NOVA_HOST_HAS(host, subscribe)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "leaderboard needs PostgreSQL, Redis and queues from the host");
        return -ENOTSUP;
    }
    if (cfg->queue == NULL || cfg->queue[0] == '\0') {
        host->log(host, NOVA_LOG_ERROR, NULL, "leaderboard: queue must not be empty");
        return -EINVAL;
    }
    struct lb *lb = calloc(1, sizeof *lb);
    if (lb == NULL)
        return -ENOMEM;
    lb->host = host;
    lb->cfg = cfg;
    static const char *const l_outcome[] = {"outcome", NULL};
    static const char *const l_period[] = {"period", NULL};
    lb->m_runs = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_leaderboard_runs_total",
                                  "Leaderboard refreshes by outcome (ok, retry, failed)", l_outcome,
                                  NULL, 0);
    lb->m_seconds = host->metric_new(
        host, NOVA_METRIC_HISTOGRAM, "nova_leaderboard_refresh_seconds",
        "Time of one leaderboard refresh (both queries and writes)", NULL, NULL, 0);
    lb->m_rows = host->metric_new(host, NOVA_METRIC_GAUGE, "nova_leaderboard_rows",
                                  "Users in the list last written, by period", l_period, NULL, 0);
    static const char *const names[] = {LB_JOB_NAME, NULL};
    struct nova_subscription sub = {
        .struct_size = sizeof sub,
        .queue = cfg->queue,
        .job_names = names,
        .concurrency = 1,
        .handle = on_job,
        .arg = lb,
    };
    int rc = host->subscribe(host, &sub);
    if (rc != 0) {
        free(lb);
        return rc;
    }
    host->log(host, NOVA_LOG_INFO, NULL,
              "leaderboard: queue %s, top %" PRId64 ", ttl %" PRId64 " s, schedule \"%s\" (%s)",
              cfg->queue, cfg->limit, (cfg->ttl_ms + 999) / 1000,
              cfg->schedule != NULL ? cfg->schedule : "", cfg->timezone ? cfg->timezone : "UTC");
    *state = lb;
    return 0;
}

/* A run still here waits on a query whose callback the host detached: its
 * job was given back to the queue, and its outcome is ignored. */
static void lb_shutdown(void *state)
{
    struct lb *lb = state;
    while (lb->runs != NULL) {
        lb->host->job_retry(lb->runs->job, "worker stopped", -1);
        run_free(lb->runs);
    }
    free(lb);
}

static const struct nova_plugin lb_plugin = {
    NOVA_PLUGIN_ABI,
    .requires = NOVA_REQUIRES_REDIS | NOVA_REQUIRES_PG,
    .name = "leaderboard",
    .version = "1.0.0",
    .description = "Nova's weekly and all-time leaderboards, cached in Redis as the API reads them",
    .config = lb_config_table,
    .config_size = sizeof(struct lb_config),
    .required_columns = lb_columns,
    .init = lb_init,
    .shutdown = lb_shutdown,
    .schedules = lb_schedules,
};

NOVA_PLUGIN_DEFINE(lb_plugin)
