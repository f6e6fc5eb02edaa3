#include "config.h"
#include "queue/queue.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include "common/metrics.h"
#include "queue/queue_counts.h"
#include "queue/queue_host.h"
#include "queue/queue_scripts.h"
#include "queue/schedulers.h"
#include "queue/redis_conn.h"
#include "queue/resp.h"

#define FETCH_BATCH_MAX   50    /* jobs per fetch call: bounds script time */
#define BLOCK_MAX_MS      10000 /* BZPOPMIN never waits longer */
#define SCRIPT_RETRIES    5     /* settle attempts of an outcome after script errors */
#define RATE_SLEEP_MAX_MS 30000 /* BullMQ's maximumRateLimitDelay */
#define STACKTRACE_LIMIT  10    /* BullMQ's default stackTraceLimit */
#define TOKEN_PREFIX_MAX  64
#define SETTLE_BATCH_MAX  64 /* outcomes per settle call */

static struct nova__redis_script s_fetch = {.name = "fetch", .source = nova__lua_fetch};
static struct nova__redis_script s_settle = {.name = "settle", .source = nova__lua_settle};
static struct nova__redis_script s_extend = {.name = "extend_locks",
                                             .source = nova__lua_extend_locks};
static struct nova__redis_script s_stalled = {.name = "stalled", .source = nova__lua_stalled};
static struct nova__redis_script s_add = {.name = "add", .source = nova__lua_add};
static struct nova__redis_script s_progress = {.name = "progress", .source = nova__lua_progress};
static struct nova__redis_script s_release = {.name = "release", .source = nova__lua_release};

enum job_state {
    JOB_RUNNING,   /* with the plugin */
    JOB_FINISHING, /* outcome known; script in flight or waiting for Redis */
    JOB_DETACHED,  /* abandoned by a drain timeout; freed when the plugin reports */
};

enum outcome { OUT_NONE, OUT_COMPLETE, OUT_RETRY, OUT_FAIL, OUT_RELEASE };

struct sub;
struct plugin_req;

/* What settle needs from a job's opts. Worked out once per distinct opts
 * text (jobs added together share it), not parsed again for every job. */
struct opts_info {
    int attempts;       /* opts.attempts, at least 1 */
    bool lifo;          /* opts.lifo */
    int64_t delay;      /* opts.delay (ms): the job is due at timestamp + delay */
    int64_t keep[2][3]; /* removeOnComplete, removeOnFail: count (-1 = all), age, limit */
};

struct nova_job {
    struct nova_job *prev, *next; /* sub->jobs or engine->detached */
    struct sub *sub;
    enum job_state state;
    /* id, name, data_json, token and stacktrace live in the same
     * allocation as the job (after the struct); freed with it. */
    char *id, *name, *data_json, *token;
    size_t id_n, token_n;
    char *stacktrace;  /* previous JSON array or NULL */
    bool release_back; /* OUT_RELEASE to the back of wait: not ours (job name) */
    cJSON *data;
    cJSON *opts;           /* parsed from opts_text when first needed, or NULL */
    const char *opts_text; /* in the job's allocation; NULL = none stored */
    size_t opts_len;
    struct opts_info oi;
    int atm;      /* attempts made before this one */
    int attempts; /* opts.attempts, at least 1 */
    /* The hash's own atm field as fetched, and whether the hash has deid or
     * parentKey: without those, settle needs no read of the hash. */
    int64_t atm_field;
    bool links;
    int64_t timestamp;
    uint64_t started_ns;
    bool cancelled, lock_lost, in_flight, resend, queued;
    bool stalled_out;  /* failed at fetch for stalling too often (defa): counted "stalled" */
    int script_errors; /* settle calls that failed with a script error */
    struct nova_job *out_next; /* sub->outq while queued */
    enum outcome outcome;
    char *value; /* returnvalue JSON or failed reason */
    int64_t retry_delay;
    unsigned fetch_count; /* jobs asked for along with the finish */
    struct nova__log_ctx log;
};

struct waiter {
    void (*done)(void *arg);
    void *arg;
    const struct nova_host *owner; /* NULL = every subscription */
    bool drain;                    /* nova__queue_engine_drain's */
    uv_timer_t timer;
    struct nova__queue_engine *e;
    bool fired;
};

struct sub {
    struct sub *next;
    struct nova__queue_engine *e;
    const struct nova_host *host;
    char *queue, *base, *meta_key, *marker_key, *plugin;
    char **names;       /* NULL = every name */
    int foreign_streak; /* fetches that brought only jobs for other workers */
    unsigned concurrency;
    int64_t lock_ms, lim_max, lim_dur;
    /* Arguments that never change, formatted once as RESP text: the two
     * keys every script starts with (meta, base), and the end of every
     * fetch (lock duration, limiter max and duration, worker name). */
    char *keys_resp, *fetch_resp;
    size_t keys_resp_n, fetch_resp_n;
    char lock_s[NOVA__RESP_I64_MAX];
    size_t lock_n, meta_n, base_n;
    void (*handle)(void *arg, nova_job *job);
    void *arg;
    struct nova__log_ctx log;
    char *opts_text; /* the last distinct opts seen, and what it says */
    size_t opts_len;
    struct opts_info opts_info;

    struct nova__redis_conn *block;
    bool started, accepting, stopped;
    bool fetch_inflight, blocking, drained, limited;
    bool dispatching; /* inside a handler called by dispatch_fetch */
    unsigned handling, fetch_pending, fetch_req;
    int64_t block_until; /* next delayed due ms, 0 = none */
    struct nova_job *jobs;
    struct nova_job *outq, **outq_tail; /* outcomes waiting for the next settle call */
    struct batch *spare_batch;          /* the last settle call's, for the next */
    struct waiter *waiter;
    uv_timer_t renew_timer, stalled_timer, wake_timer, watchdog, flush_timer;
    int open_handles;
};

struct nova__queue_engine {
    uv_loop_t *loop;
    struct nova__redis_target target;
    char *prefix, *worker_name;
    size_t worker_name_n;
    int64_t connect_timeout_ms, lock_ms, stalled_ms, max_stalled, drain_delay_ms;
    char token_base[33];
    uint64_t token_seq;
    struct nova__redis_conn *cmd;
    struct sub *subs;
    struct nova_job *detached;
    struct waiter *drain;
    struct plugin_req *preqs;         /* plugin commands and enqueues awaiting a reply */
    const struct nova_host *refusing; /* owner whose requests are being cancelled */
    bool refusing_all;                /* ... or everyone's (end of drain) */
    int64_t plugin_timeout_ms;        /* how long a plugin request may wait for Redis */
    uv_timer_t preq_timer;            /* runs while preqs is not empty */
    uv_timer_t counts_timer;          /* bullmq_job_count refreshes (queue_counts.h) */
    bool started, version_checked, freeing;
    int open_handles;
};

/* ---- metrics --------------------------------------------------------------- */

static nova_metric *m_jobs, *m_duration, *m_wait, *m_active, *m_renew_fail, *m_connected;

/* nova_worker_jobs_total{outcome}, one count per event (docs/operations.md):
 * completed; retried (failed with attempts left, back to delayed or
 * wait); failed (failed for good by job_fail() or by the engine while
 * attempts were left); dead (failed for good on its last allowed
 * attempt); stalled (given back by this worker's stall sweep, or failed
 * for stalling more than max_stalled_count); lost (the result was dropped
 * because the job's lock was no longer this worker's). */
enum job_metric { JM_COMPLETED, JM_RETRIED, JM_FAILED, JM_DEAD, JM_STALLED, JM_LOST, JM_N };
static const char *const job_metric_names[JM_N] = {"completed", "retried", "failed",
                                                   "dead",      "stalled", "lost"};

static void metrics_init(void)
{
    /* Jobs take from milliseconds (echo) to minutes (a payment waiting for
     * ledgers, a report); waits from milliseconds to an hour of backlog. */
    static const double run_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                         2.5,   5,    10,    30,   60,  120,  300};
    static const double wait_buckets[] = {0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                          5,     10,   30,   60,  300,  900, 3600};
    static const char *const q[] = {"queue", NULL};
    static const char *const qp[] = {"queue", "plugin", NULL};
    static const char *const qpo[] = {"queue", "plugin", "outcome", NULL};
    m_jobs = nova__metric_new(NOVA_METRIC_COUNTER, "nova_worker_jobs_total",
                              "Job attempts ended, by outcome", qpo, NULL, 0);
    m_duration = nova__metric_new(NOVA_METRIC_HISTOGRAM, "nova_worker_job_duration_seconds",
                                  "Time from fetch to outcome", qp, run_buckets,
                                  sizeof run_buckets / sizeof run_buckets[0]);
    m_wait = nova__metric_new(NOVA_METRIC_HISTOGRAM, "nova_worker_job_wait_seconds",
                              "Time from a job being due (timestamp plus delay) to the start of "
                              "its first attempt",
                              qp, wait_buckets, sizeof wait_buckets / sizeof wait_buckets[0]);
    m_active = nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_jobs_active",
                                "Jobs being processed", q, NULL, 0);
    m_renew_fail = nova__metric_new(NOVA_METRIC_COUNTER, "nova_worker_lock_renewal_failures_total",
                                    "Job locks found lost at renewal", q, NULL, 0);
    m_connected =
        nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_redis_connected",
                         "1 while the queue command connection to Redis is up", NULL, NULL, 0);
    nova__queue_counts_init();
}

/* A subscription's plugin as a label value ("" for engine-only tests). */
static const char *sub_plugin(const struct sub *s)
{
    return s->plugin ? s->plugin : "";
}

static void count_job(const struct sub *s, enum job_metric o, double v)
{
    const char *lv[] = {s->queue, sub_plugin(s), job_metric_names[o]};
    if (m_jobs)
        nova__metric_add(m_jobs, lv, v);
}

/* Every series a subscription can produce exists from its start, at 0:
 * a series born with its first event hides that event from increase(),
 * and an alert on it could never fire for a first failure. */
static void touch_series(const struct sub *s)
{
    const char *qp[] = {s->queue, sub_plugin(s)};
    const char *q[] = {s->queue};
    for (int o = 0; o < JM_N; o++)
        count_job(s, (enum job_metric)o, 0);
    nova__metric_touch(m_duration, qp);
    nova__metric_touch(m_wait, qp);
    nova__metric_touch(m_renew_fail, q);
    nova__metric_touch(m_active, q);
}

static void update_active(struct sub *s)
{
    const char *lv[] = {s->queue};
    if (m_active)
        nova__metric_set(m_active, lv, (double)s->handling);
}

/* ---- small helpers ------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int nova__queue_key_base(const char *prefix, const char *queue, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s:%s:", prefix, queue);
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return n;
}

/* buf holds at least NOVA__RESP_I64_MAX + 1 bytes. */
static void fmt_i64(char *buf, size_t len, int64_t v)
{
    (void)len;
    buf[nova__resp_i64(buf, v)] = '\0';
}

/* An integer as a RESP argument at p (at most 27 bytes); returns the end. */
static char *put_i64_arg(char *p, int64_t v)
{
    char num[NOVA__RESP_I64_MAX];
    return nova__resp_put_arg(p, num, nova__resp_i64(num, v));
}

static void list_remove(struct nova_job **head, struct nova_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else if (*head == j)
        *head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

static void list_push(struct nova_job **head, struct nova_job *j)
{
    j->prev = NULL;
    j->next = *head;
    if (*head)
        (*head)->prev = j;
    *head = j;
}

static void job_free(struct nova_job *j)
{
    free(j->value);
    cJSON_Delete(j->data);
    cJSON_Delete(j->opts);
    free(j);
}

/* ---- backoff and options -------------------------------------------------- */

int64_t nova__queue_backoff_ms(const char *type, int64_t delay, double jitter, int attempt,
                               double rnd)
{
    double d;
    if (!type)
        return 0;
    if (strcmp(type, "fixed") == 0)
        d = (double)delay;
    else if (strcmp(type, "exponential") == 0)
        d = round(pow(2.0, attempt > 0 ? attempt - 1 : 0) * (double)delay);
    else
        return -1;
    if (jitter > 0) {
        if (jitter > 1)
            jitter = 1;
        d = floor(rnd * d * jitter + d * (1 - jitter));
    }
    return d < 0 ? 0 : (int64_t)d;
}

char *nova__queue_opts_json(const struct nova_job_options *o, char *err, size_t errlen)
{
    cJSON *j = cJSON_CreateObject();
    char *out = NULL;
    if (!j)
        return NULL;
    if (o && o->attempts < 0) {
        snprintf(err, errlen, "attempts must be >= 0");
        goto done;
    }
    if (o && o->priority < 0) {
        snprintf(err, errlen, "priority must be >= 0 (0 = none)");
        goto done;
    }
    if (o && o->priority > 2097151) {
        snprintf(err, errlen, "priority must be <= 2097151");
        goto done;
    }
    if (o && o->delay_ms < 0) {
        snprintf(err, errlen, "delay must be >= 0");
        goto done;
    }
    if (o && o->job_id) {
        const char *p = o->job_id;
        bool digits = *p != '\0';
        for (; *p; p++)
            if (*p < '0' || *p > '9')
                digits = false;
        if (!*o->job_id || digits || strchr(o->job_id, ':')) {
            snprintf(err, errlen,
                     "custom job id '%s' must be non-empty, not all digits and "
                     "without ':'",
                     o->job_id);
            goto done;
        }
    }
    if (o && o->backoff_type && strcmp(o->backoff_type, "fixed") != 0 &&
        strcmp(o->backoff_type, "exponential") != 0) {
        snprintf(err, errlen, "unknown backoff type '%s' (fixed or exponential)", o->backoff_type);
        goto done;
    }
    cJSON_AddNumberToObject(j, "attempts", o ? o->attempts : 0);
    if (o && o->delay_ms > 0)
        cJSON_AddNumberToObject(j, "delay", (double)o->delay_ms);
    if (o && o->priority > 0)
        cJSON_AddNumberToObject(j, "priority", o->priority);
    if (o && o->job_id)
        cJSON_AddStringToObject(j, "jobId", o->job_id);
    if (o && o->backoff_type) {
        cJSON *b = cJSON_AddObjectToObject(j, "backoff");
        cJSON_AddStringToObject(b, "type", o->backoff_type);
        cJSON_AddNumberToObject(b, "delay", (double)o->backoff_delay_ms);
        if (o->backoff_jitter > 0)
            cJSON_AddNumberToObject(b, "jitter", o->backoff_jitter);
    }
    if (o && o->remove_on_complete == 0)
        cJSON_AddBoolToObject(j, "removeOnComplete", 1);
    else if (o && o->remove_on_complete > 0)
        cJSON_AddNumberToObject(j, "removeOnComplete", (double)o->remove_on_complete);
    if (o && o->remove_on_fail == 0)
        cJSON_AddBoolToObject(j, "removeOnFail", 1);
    else if (o && o->remove_on_fail > 0)
        cJSON_AddNumberToObject(j, "removeOnFail", (double)o->remove_on_fail);
    if (o && o->lifo)
        cJSON_AddBoolToObject(j, "lifo", 1);
    out = cJSON_PrintUnformatted(j);
done:
    cJSON_Delete(j);
    return out;
}

/* removeOnComplete/removeOnFail -> count, age (s), limit; -1 = keep all. */
static void keep_jobs(const cJSON *opts, const char *key, int64_t *count, int64_t *age,
                      int64_t *limit)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
    *count = -1;
    *age = 0;
    *limit = 0;
    if (cJSON_IsTrue(v))
        *count = 0;
    else if (cJSON_IsNumber(v))
        *count = v->valuedouble < 0 ? -1 : (int64_t)v->valuedouble;
    else if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "count");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, "age");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(v, "limit");
        if (cJSON_IsNumber(c))
            *count = (int64_t)c->valuedouble;
        if (cJSON_IsNumber(a))
            *age = (int64_t)a->valuedouble;
        if (cJSON_IsNumber(l))
            *limit = (int64_t)l->valuedouble;
    }
}

/* opts_info of an opts JSON text (NULL: none). */
static void opts_info_parse(const char *text, size_t len, struct opts_info *oi)
{
    cJSON *o = text ? cJSON_ParseWithLength(text, len) : NULL;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "attempts");
    oi->attempts = cJSON_IsNumber(a) && a->valuedouble > 1 ? (int)a->valuedouble : 1;
    oi->lifo = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "lifo"));
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "delay");
    oi->delay = cJSON_IsNumber(d) && d->valuedouble > 0 ? (int64_t)d->valuedouble : 0;
    keep_jobs(o, "removeOnComplete", &oi->keep[0][0], &oi->keep[0][1], &oi->keep[0][2]);
    keep_jobs(o, "removeOnFail", &oi->keep[1][0], &oi->keep[1][1], &oi->keep[1][2]);
    cJSON_Delete(o);
}

/* opts_info of a fetched job's opts, from the subscription's cache when
 * the text is the same as last time. */
static void opts_info_get(struct sub *s, const char *text, size_t len, struct opts_info *oi)
{
    char *copy;
    if (text && s->opts_text && s->opts_len == len && memcmp(s->opts_text, text, len) == 0) {
        *oi = s->opts_info;
        return;
    }
    opts_info_parse(text, len, oi);
    if (!text || !(copy = malloc(len + 1)))
        return;
    memcpy(copy, text, len);
    copy[len] = '\0';
    free(s->opts_text);
    s->opts_text = copy;
    s->opts_len = len;
    s->opts_info = *oi;
}

/* The job's opts as JSON, parsed on first use (failures only). */
static const cJSON *job_opts(struct nova_job *j)
{
    if (!j->opts && j->opts_text)
        j->opts = cJSON_ParseWithLength(j->opts_text, j->opts_len);
    return j->opts;
}

/* ---- forward declarations ------------------------------------------------ */

static void pump(struct sub *s);
static void flush_outcomes(struct sub *s);
static void start_block(struct sub *s);
static void send_finish(struct nova_job *j);
static void dispatch_fetch(struct sub *s, const redisReply *r, size_t first, unsigned asked);
static void sub_check_stopped(struct sub *s);
static void waiter_check(struct nova__queue_engine *e);
static unsigned preq_release(struct nova__queue_engine *e, const struct nova_host *owner,
                             bool cancel);

/* ---- fetching -------------------------------------------------------------- */

static unsigned free_slots(const struct sub *s)
{
    unsigned used = s->handling + s->fetch_pending;
    return used >= s->concurrency ? 0 : s->concurrency - used;
}

/* Appends the six fetch arguments shared by fetch and settle: count,
 * token prefix "<token_base>:<seq>", lock duration, limiter max and
 * duration, worker name. */
static void put_fetch_args(struct sub *s, struct nova__redis_cmd *m, unsigned count)
{
    struct nova__queue_engine *e = s->e;
    char prefix[TOKEN_PREFIX_MAX];
    size_t n = sizeof(e->token_base) - 1;
    memcpy(prefix, e->token_base, n);
    prefix[n++] = ':';
    n += nova__resp_u64(prefix + n, ++e->token_seq);
    char *p = nova__redis_cmd_room(m, 27 + n + 26 + s->fetch_resp_n);
    if (!p)
        return; /* the send fails with -ENOMEM */
    p = put_i64_arg(p, count);
    p = nova__resp_put_arg(p, prefix, n);
    memcpy(p, s->fetch_resp, s->fetch_resp_n);
    nova__redis_cmd_wrote(m, p + s->fetch_resp_n, 6);
}

/* Appends meta and base, then `now` and, when count >= 0, count. */
static void put_script_head(struct sub *s, struct nova__redis_cmd *m, int64_t count)
{
    char *p = nova__redis_cmd_room(m, s->keys_resp_n + 2 * 27);
    if (!p)
        return; /* the send fails with -ENOMEM */
    memcpy(p, s->keys_resp, s->keys_resp_n);
    p = put_i64_arg(p + s->keys_resp_n, wall_ms());
    if (count >= 0)
        p = put_i64_arg(p, count);
    nova__redis_cmd_wrote(m, p, count >= 0 ? 4 : 3);
}

static void on_wake(uv_timer_t *t)
{
    struct sub *s = t->data;
    s->limited = false;
    s->drained = false;
    pump(s);
}

/* Field names of a job hash are compared by length first: most of the
 * fields dispatch_fetch skips differ in length from those it wants. */
#define key_is(k, lit) ((k)->len == sizeof(lit) - 1 && memcmp((k)->str, lit, sizeof(lit) - 1) == 0)

/* A decimal integer field (as strtoll, base 10: leading blanks and sign,
 * stops at the first non-digit; 0 when there is none). */
static int64_t parse_i64(const redisReply *v)
{
    const char *p = v->str, *end = v->str + v->len;
    uint64_t n = 0;
    bool neg = false;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (n > (uint64_t)INT64_MAX / 10)
            return neg ? INT64_MIN : INT64_MAX; /* saturates like strtoll */
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (n > (uint64_t)INT64_MAX)
        return neg ? INT64_MIN : INT64_MAX;
    return neg ? -(int64_t)n : (int64_t)n;
}

/* Copies n bytes and a NUL at *p, moves *p past them; returns the copy. */
static char *put_str(char **p, const char *src, size_t n)
{
    char *out = *p;
    if (n)
        memcpy(out, src, n);
    out[n] = '\0';
    *p += n + 1;
    return out;
}

/* Handles {ttl, next_delayed, n, jobs...} starting at element `first`. */
static void dispatch_fetch(struct sub *s, const redisReply *r, size_t first, unsigned asked)
{
    long long ttl, next_due, n;
    unsigned started = 0, foreign = 0;
    int64_t now_ms = 0; /* read once per batch, for the wait metric */
    if (asked == 0 || r->elements < first + 3)
        return; /* nothing was asked for: the drained state stands */
    ttl = r->element[first]->integer;
    next_due = r->element[first + 1]->integer;
    n = r->element[first + 2]->integer;
    s->block_until = next_due;
    for (long long i = 0; i < n; i++) {
        size_t at = first + 3 + (size_t)i * 3;
        const redisReply *id, *tok, *fields;
        const redisReply *name = NULL, *data = NULL, *opts = NULL, *trace = NULL, *rjk = NULL;
        struct nova_job *j;
        const char *defa = NULL;
        int64_t timestamp = 0, atm_field = 0;
        int atm = 0;
        bool links = false;
        size_t size;
        char *p;
        if (at + 2 >= r->elements)
            break;
        id = r->element[at];
        tok = r->element[at + 1];
        fields = r->element[at + 2];
        if (fields->type != REDIS_REPLY_ARRAY)
            continue; /* cannot happen: the lock expires, the stall sweep recovers it */
        for (size_t f = 0; f + 1 < fields->elements; f += 2) {
            const redisReply *k = fields->element[f];
            const redisReply *v = fields->element[f + 1];
            if (v->type != REDIS_REPLY_STRING || k->type != REDIS_REPLY_STRING)
                continue;
            if (key_is(k, "name"))
                name = v;
            else if (key_is(k, "data"))
                data = v;
            else if (key_is(k, "opts"))
                opts = v;
            else if (key_is(k, "timestamp"))
                timestamp = parse_i64(v);
            else if (key_is(k, "atm"))
                atm = (int)(atm_field = parse_i64(v));
            else if (key_is(k, "attemptsMade"))
                atm = (int)parse_i64(v);
            else if (key_is(k, "deid") || key_is(k, "parentKey"))
                links = true;
            else if (key_is(k, "stacktrace"))
                trace = v;
            else if (key_is(k, "defa"))
                defa = v->str;
            else if (key_is(k, "rjk"))
                rjk = v;
        }
        /* The job and its strings in one allocation. */
        size = sizeof(*j) + id->len + tok->len + 2 + (name ? name->len : 0) + 1 +
               (data ? data->len : 2) + 1 + (trace ? trace->len + 1 : 0) +
               (opts ? opts->len + 1 : 0);
        j = malloc(size);
        if (!j)
            continue; /* the lock expires; the stall sweep recovers it */
        memset(j, 0, sizeof(*j));
        p = (char *)(j + 1);
        j->id = put_str(&p, id->str, id->len);
        j->id_n = id->len;
        j->token = put_str(&p, tok->str, tok->len);
        j->token_n = tok->len;
        j->name = name ? put_str(&p, name->str, name->len) : put_str(&p, "", 0);
        j->data_json = data ? put_str(&p, data->str, data->len) : put_str(&p, "{}", 2);
        j->stacktrace = trace ? put_str(&p, trace->str, trace->len) : NULL;
        if (opts) {
            j->opts_text = put_str(&p, opts->str, opts->len);
            j->opts_len = opts->len;
        }
        j->sub = s;
        j->attempts = 1;
        j->timestamp = timestamp;
        j->atm = atm;
        j->atm_field = atm_field;
        j->links = links;
        opts_info_get(s, j->opts_text, j->opts_len, &j->oi);
        j->attempts = j->oi.attempts;
        j->log.plugin = s->plugin;
        j->log.queue = s->queue;
        j->log.job = j->id;
        j->started_ns = uv_hrtime();
        list_push(&s->jobs, j);
        if (!s->accepting) {
            /* Fetched while stopping: give it straight back. */
            j->state = JOB_FINISHING;
            j->outcome = OUT_RELEASE;
            send_finish(j);
            continue;
        }
        if (defa) {
            nova__log(NOVA_LOG_WARN, &j->log, "failing job: %s", defa);
            j->state = JOB_FINISHING;
            j->outcome = OUT_FAIL;
            j->stalled_out = true;
            j->value = strdup(defa);
            send_finish(j);
            continue;
        }
        j->data = cJSON_Parse(j->data_json);
        if (!j->data) {
            j->state = JOB_FINISHING;
            j->outcome = OUT_FAIL;
            j->value = strdup("job data is not valid JSON");
            nova__log(NOVA_LOG_WARN, &j->log, "failing job: %s", j->value);
            send_finish(j);
            continue;
        }
        if (s->names) {
            bool found = false;
            for (char **nm = s->names; *nm; nm++)
                if (strcmp(*nm, j->name) == 0)
                    found = true;
            if (!found) {
                /* Another worker (a Node one, another plugin) handles this
                 * name: back to the end of wait, no attempt counted. */
                nova__log(NOVA_LOG_DEBUG, &j->log,
                          "job name '%.200s' is not handled here: given back", j->name);
                j->state = JOB_FINISHING;
                j->outcome = OUT_RELEASE;
                j->release_back = true;
                foreign++;
                send_finish(j);
                continue;
            }
        }
        /* A job scheduler's run: the next slot's job is made before this
         * one runs, as Node's workers do. */
        if (rjk != NULL)
            nova__queue_sched_advance(s->e, s->queue, j->id, rjk->str, j->opts_text, j->opts_len);
        j->state = JOB_RUNNING;
        s->handling++;
        started++;
        /* Only first attempts: a retry's wait is its backoff, on purpose,
         * and its due time is not kept. A job from another clock can look
         * early; it counts as no wait. */
        if (j->atm == 0 && j->timestamp > 0 && m_wait) {
            const char *lv[] = {s->queue, sub_plugin(s)};
            if (now_ms == 0)
                now_ms = wall_ms();
            int64_t waited = now_ms - (j->timestamp + j->oi.delay);
            nova__metric_observe(m_wait, lv, waited > 0 ? (double)waited / 1000.0 : 0.0);
        }
        s->dispatching = true;
        s->handle(s->arg, j);
        s->dispatching = false;
    }
    /* Once per batch: a handler that answered at once has already
     * updated the gauge on its way out. */
    if (started)
        update_active(s);
    if (started > 0) {
        s->foreign_streak = 0;
    } else if (foreign > 0) {
        /* Only others' jobs: give them time to take them before looking
         * again (100 ms doubling to 5 s), instead of cycling them. */
        int k = s->foreign_streak < 6 ? s->foreign_streak++ : 6;
        int64_t pause = (int64_t)100 << k;
        s->limited = true;
        uv_timer_start(&s->wake_timer, on_wake, (uint64_t)(pause > 5000 ? 5000 : pause), 0);
        return;
    }
    if ((unsigned long long)n < asked) {
        s->drained = true;
        if (ttl > 0 && n == 0) {
            /* Rate limited: sleep until the window reopens. */
            s->limited = true;
            uv_timer_start(&s->wake_timer, on_wake,
                           (uint64_t)(ttl < RATE_SLEEP_MAX_MS ? ttl : RATE_SLEEP_MAX_MS), 0);
        }
    } else {
        s->drained = false;
    }
}

static void on_fetch(void *arg, int status, const redisReply *r)
{
    struct sub *s = arg;
    unsigned asked = s->fetch_req;
    s->fetch_inflight = false;
    s->fetch_pending -= asked;
    s->fetch_req = 0;
    if (status < 0) {
        sub_check_stopped(s);
        return; /* reconnect pumps again */
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        nova__log(NOVA_LOG_ERROR, &s->log, "fetch script failed: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        s->limited = true;
        uv_timer_start(&s->wake_timer, on_wake, 1000, 0);
        sub_check_stopped(s);
        return;
    }
    dispatch_fetch(s, r, 0, asked);
    /* Handlers that answered at once are settled now, in one call. */
    if (s->outq)
        flush_outcomes(s);
    sub_check_stopped(s);
    pump(s);
}

static void pump(struct sub *s)
{
    struct nova__queue_engine *e = s->e;
    struct nova__redis_cmd *m;
    unsigned n;
    int rc;
    if (!s->accepting || s->limited || s->blocking || s->fetch_inflight ||
        !nova__redis_conn_up(e->cmd))
        return;
    n = free_slots(s);
    if (n == 0)
        return;
    if (s->drained) {
        start_block(s);
        return;
    }
    if (n > FETCH_BATCH_MAX)
        n = FETCH_BATCH_MAX;
    m = nova__redis_cmd_new(e->cmd, 256);
    if (!m)
        return; /* out of memory: the next event pumps again */
    put_script_head(s, m, -1);
    put_fetch_args(s, m, n);
    rc = nova__redis_conn_send_eval(m, &s_fetch, 1, on_fetch, s);
    if (rc == 0) {
        s->fetch_inflight = true;
        s->fetch_pending += n;
        s->fetch_req = n;
    }
}

/* ---- blocking wait on the marker -------------------------------------------- */

static void on_watchdog(uv_timer_t *t)
{
    struct sub *s = t->data;
    nova__log(NOVA_LOG_WARN, &s->log, "blocking wait did not return in time; reconnecting");
    s->blocking = false;
    if (s->block)
        nova__redis_conn_reset(s->block);
}

static void on_marker(void *arg, int status, const redisReply *r)
{
    struct sub *s = arg;
    if (!s->blocking)
        return; /* the watchdog already gave up on this call */
    s->blocking = false;
    uv_timer_stop(&s->watchdog);
    if (status < 0) {
        sub_check_stopped(s);
        return; /* the connection comes back by itself and pumps */
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        double score = strtod(r->element[2]->str, NULL);
        if (score > 0 && (int64_t)score > wall_ms() + 1) {
            /* A delayed job is due later: wait for it, or for new work. */
            s->block_until = (int64_t)score;
            start_block(s);
            return;
        }
    }
    /* Woken, timed out or a delayed job is due: try to fetch. */
    s->drained = false;
    pump(s);
}

static void start_block(struct sub *s)
{
    struct nova__queue_engine *e = s->e;
    int64_t wait_ms = e->drain_delay_ms > 0 ? e->drain_delay_ms : 5000;
    char timeout[32];
    const char *argv[3];
    if (s->blocking || !s->accepting || !nova__redis_conn_up(s->block))
        return;
    if (s->block_until > 0) {
        int64_t until = s->block_until - wall_ms();
        if (until < wait_ms)
            wait_ms = until;
    }
    if (wait_ms > BLOCK_MAX_MS)
        wait_ms = BLOCK_MAX_MS;
    if (wait_ms < 1) {
        s->drained = false;
        s->block_until = 0;
        pump(s);
        return;
    }
    /* The link writes the timeout as the socket's server takes it (whole
     * seconds before 6.0, ...): the watchdog waits for that one. */
    char wanted[32];
    snprintf(wanted, sizeof(wanted), "%.3f", (double)wait_ms / 1000.0);
    nova__redis_block_timeout(nova__redis_conn_version(s->block), wanted, timeout, sizeof(timeout));
    wait_ms = (int64_t)(strtod(timeout, NULL) * 1000.0 + 0.5);
    argv[0] = "BZPOPMIN";
    argv[1] = s->marker_key;
    argv[2] = timeout;
    if (nova__redis_conn_command(s->block, on_marker, s, 3, argv, NULL) == 0) {
        s->blocking = true;
        uv_timer_start(&s->watchdog, on_watchdog, (uint64_t)wait_ms + 1000, 0);
    }
}

static void on_block_state(void *arg, bool up)
{
    struct sub *s = arg;
    if (up)
        pump(s);
    else
        s->blocking = false;
}

/* ---- finishing ------------------------------------------------------------------ */

static void outq_remove(struct sub *s, struct nova_job *j)
{
    struct nova_job **pp = &s->outq;
    if (!j->queued)
        return;
    while (*pp && *pp != j)
        pp = &(*pp)->out_next;
    if (*pp)
        *pp = j->out_next;
    s->outq_tail = &s->outq;
    while (*s->outq_tail)
        s->outq_tail = &(*s->outq_tail)->out_next;
    j->queued = false;
    j->out_next = NULL;
}

static void job_detach(struct nova_job *j)
{
    struct sub *s = j->sub;
    outq_remove(s, j);
    list_remove(&s->jobs, j);
    if (j->state == JOB_RUNNING && s->handling > 0) {
        s->handling--;
        update_active(s);
    }
    j->state = JOB_DETACHED;
    j->cancelled = true;
    list_push(&s->e->detached, j);
}

static void job_release_done(struct nova_job *j)
{
    struct sub *s = j->sub;
    if (j->state == JOB_DETACHED) {
        list_remove(&s->e->detached, j);
        job_free(j);
        return;
    }
    list_remove(&s->jobs, j);
    job_free(j);
    sub_check_stopped(s);
}

static void on_ignored(void *arg, int status, const redisReply *r)
{
    (void)arg;
    if (status == 0 && r->type == REDIS_REPLY_ERROR)
        nova__log(NOVA_LOG_ERROR, NULL, "release script failed: %s", r->str);
}

/* Jobs fetched along with the finish of a job abandoned by a drain
 * timeout: nobody will run them here, so they go straight back. */
static void release_fetched(struct sub *s, const redisReply *r, size_t first)
{
    long long n;
    if (r->elements < first + 3)
        return;
    n = r->element[first + 2]->integer;
    for (long long i = 0; i < n; i++) {
        size_t at = first + 3 + (size_t)i * 3;
        const char *argv[4];
        if (at + 1 >= r->elements)
            break;
        argv[0] = s->meta_key;
        argv[1] = s->base;
        argv[2] = r->element[at]->str;
        argv[3] = r->element[at + 1]->str;
        nova__redis_conn_eval(s->e->cmd, &s_release, on_ignored, NULL, 1, 4, argv, NULL);
    }
}

static const char *outcome_text(enum outcome o)
{
    switch (o) {
    case OUT_COMPLETE:
        return "completed";
    case OUT_RETRY:
        return "retried";
    case OUT_FAIL:
        return "failed";
    default:
        return "released";
    }
}

static const char *outcome_name(const struct nova_job *j)
{
    return outcome_text(j->outcome);
}

/* The metric outcome of a settled job (see enum job_metric). */
static enum job_metric job_metric_of(const struct nova_job *j)
{
    switch (j->outcome) {
    case OUT_COMPLETE:
        return JM_COMPLETED;
    case OUT_RETRY:
        return JM_RETRIED;
    default:
        if (j->stalled_out)
            return JM_STALLED;
        return j->atm + 1 >= j->attempts ? JM_DEAD : JM_FAILED;
    }
}

static const char *code_text(long long code)
{
    switch (code) {
    case -1:
        return "job missing";
    case -2:
        return "lock missing";
    case -3:
        return "not in active";
    case -6:
        return "lock held by another worker";
    case -7:
        return "script error";
    default:
        return "unexpected code";
    }
}

/* Reply of a release (the only outcome sent on its own). */
static void on_released(void *arg, int status, const redisReply *r)
{
    struct nova_job *j = arg;
    j->in_flight = false;
    if (status < 0 && j->state != JOB_DETACHED && status != -ECANCELED) {
        j->resend = true; /* sent again when the connection is back */
        return;
    }
    if (status == 0 && r->type == REDIS_REPLY_ERROR)
        nova__log(NOVA_LOG_ERROR, &j->log, "release script failed: %s", r->str);
    job_release_done(j);
}

/* JSON array of the previous traces plus this one, at most STACKTRACE_LIMIT. */
static char *make_stacktrace(struct nova_job *j, const char *reason)
{
    cJSON *arr = j->stacktrace ? cJSON_Parse(j->stacktrace) : NULL;
    char line[1024];
    char *out;
    int limit = STACKTRACE_LIMIT;
    const cJSON *stl = cJSON_GetObjectItemCaseSensitive(job_opts(j), "stackTraceLimit");
    if (cJSON_IsNumber(stl) && stl->valuedouble >= 0)
        limit = (int)stl->valuedouble;
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        arr = cJSON_CreateArray();
    }
    snprintf(line, sizeof(line), "Error: %.700s\n    at %s (nova-worker plugin, queue %.200s)",
             reason, j->sub->plugin ? j->sub->plugin : "?", j->sub->queue);
    cJSON_AddItemToArray(arr, cJSON_CreateString(line));
    while (cJSON_GetArraySize(arr) > limit && cJSON_GetArraySize(arr) > 0)
        cJSON_DeleteItemFromArray(arr, 0);
    out = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return out;
}

/* One settle call in flight. */
struct batch {
    struct sub *sub;
    unsigned n, asked;
    struct nova_job *jobs[SETTLE_BATCH_MAX];
};

static void flush_outcomes(struct sub *s);
static void on_flush_timer(uv_timer_t *t);

/* A zeroed batch: the subscription's spare one when it has it. */
static struct batch *batch_get(struct sub *s)
{
    struct batch *b = s->spare_batch;
    if (!b)
        return calloc(1, sizeof(*b));
    s->spare_batch = NULL;
    memset(b, 0, sizeof(*b));
    return b;
}

static void batch_put(struct sub *s, struct batch *b)
{
    if (b && !s->spare_batch)
        s->spare_batch = b;
    else
        free(b);
}

static void on_settled(void *arg, int status, const redisReply *r)
{
    struct batch *b = arg;
    struct sub *s = b->sub;
    const redisReply *codes = NULL;
    bool abandoned = false;
    unsigned counted[JM_N] = {0}; /* per outcome, added once per call */
    const char *lv[] = {s->queue, sub_plugin(s)};
    uint64_t now_ns = uv_hrtime();
    s->fetch_pending -= b->asked;
    /* A failed script call changed nothing (the script checks before it
     * writes, and Redis refuses a script it cannot run before it starts):
     * its outcomes are sent again after a pause, never dropped. */
    bool script_error = status == 0 && r->type == REDIS_REPLY_ERROR;
    bool retry_later = false;
    if (script_error)
        nova__log(NOVA_LOG_ERROR, &s->log, "settle script failed: %s; outcomes sent again in 1 s",
                  r->str);
    if (status == 0 && r->type == REDIS_REPLY_ARRAY && r->elements >= 4 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == b->n)
        codes = r->element[0];
    for (unsigned i = 0; i < b->n; i++) {
        struct nova_job *j = b->jobs[i];
        j->in_flight = false;
        if (j->state == JOB_DETACHED)
            abandoned = true;
        if (status < 0 && j->state != JOB_DETACHED && status != -ECANCELED) {
            j->resend = true; /* sent again when the connection is back */
            continue;
        }
        long long code = codes && j->state != JOB_DETACHED ? codes->element[i]->integer : 0;
        if ((script_error || code == -7) && j->state != JOB_DETACHED &&
            ++j->script_errors <= SCRIPT_RETRIES) {
            j->resend = true;
            retry_later = true;
            continue;
        }
        if (codes && j->state != JOB_DETACHED) {
            if (code < 0) {
                nova__log(NOVA_LOG_WARN, &j->log,
                          "job was no longer ours when reporting %s (code %lld: %s); result "
                          "dropped",
                          outcome_name(j), code, code_text(code));
                counted[JM_LOST]++;
            } else {
                counted[job_metric_of(j)]++;
                if (m_duration)
                    nova__metric_observe(m_duration, lv, (double)(now_ns - j->started_ns) / 1e9);
            }
        }
        job_release_done(j);
    }
    for (int o = 0; o < JM_N; o++) {
        if (counted[o])
            count_job(s, (enum job_metric)o, counted[o]);
    }
    if (codes) {
        if (abandoned || s->stopped)
            release_fetched(s, r, 1);
        else
            dispatch_fetch(s, r, 1, b->asked);
    }
    batch_put(s, b);
    if (retry_later) {
        for (struct nova_job *j = s->jobs; j; j = j->next)
            if (j->state == JOB_FINISHING && j->resend && !j->in_flight && !j->queued) {
                j->resend = false;
                j->queued = true;
                j->out_next = NULL;
                *s->outq_tail = j;
                s->outq_tail = &j->out_next;
            }
        uv_timer_start(&s->flush_timer, on_flush_timer, 1000, 0);
        pump(s);
        return;
    }
    if (s->outq)
        flush_outcomes(s);
    pump(s);
}

static void flush_outcomes(struct sub *s)
{
    struct nova__queue_engine *e = s->e;
    while (s->outq && nova__redis_conn_up(e->cmd)) {
        struct batch *b = batch_get(s);
        struct nova__redis_cmd *m = NULL;
        unsigned want = 0, count = 0;
        int rc;
        for (struct nova_job *j = s->outq; j && count < SETTLE_BATCH_MAX; j = j->out_next)
            count++;
        if (b)
            m = nova__redis_cmd_new(e->cmd, 256 + (size_t)count * 192);
        if (!m) {
            batch_put(s, b);
            uv_timer_start(&s->flush_timer, on_flush_timer, 100, 0);
            return;
        }
        b->sub = s;
        put_script_head(s, m, count);
        while (b->n < count) {
            struct nova_job *j = s->outq;
            int64_t keep = -1, age = 0, limit = 0;
            s->outq = j->out_next;
            j->out_next = NULL;
            j->queued = false;
            b->jobs[b->n++] = j;
            if (j->outcome != OUT_RETRY) {
                const int64_t *k = j->oi.keep[j->outcome == OUT_COMPLETE ? 0 : 1];
                keep = k[0];
                age = k[1];
                limit = k[2];
            }
            {
                /* The eleven per-job arguments, written in place in one go. */
                const char *value = j->value ? j->value : "null";
                size_t vn = strlen(value);
                char *p = nova__redis_cmd_room(m, j->id_n + j->token_n + vn + 11 * 26);
                if (p) {
                    p = nova__resp_put_arg(p, j->id, j->id_n);
                    p = nova__resp_put_arg(p, j->token, j->token_n);
                    p = nova__resp_put_arg(p,
                                           j->outcome == OUT_COMPLETE ? "c"
                                           : j->outcome == OUT_RETRY  ? "r"
                                                                      : "f",
                                           1);
                    p = nova__resp_put_arg(p, value, vn);
                    p = put_i64_arg(p, j->attempts);
                    p = put_i64_arg(p, keep);
                    p = put_i64_arg(p, age);
                    p = put_i64_arg(p, limit);
                    p = put_i64_arg(p, j->retry_delay);
                    p = nova__resp_put_arg(p, j->oi.lifo ? "1" : "0", 1);
                    /* known_atm: "" makes settle read deid/parentKey/atm */
                    p = j->links ? nova__resp_put_arg(p, "", 0) : put_i64_arg(p, j->atm_field);
                    nova__redis_cmd_wrote(m, p, 11);
                }
            }
            if (j->outcome == OUT_COMPLETE) {
                nova__redis_cmd_arg(m, "0", 1);
            } else {
                char *trace = make_stacktrace(j, j->value);
                nova__redis_cmd_arg(m, "2", 1);
                nova__redis_cmd_arg(m, "failedReason", 12);
                nova__redis_cmd_str(m, j->value ? j->value : "");
                nova__redis_cmd_arg(m, "stacktrace", 10);
                nova__redis_cmd_str(m, trace ? trace : "[]");
                free(trace);
            }
        }
        if (!s->outq)
            s->outq_tail = &s->outq;
        if (s->accepting && !s->blocking && !s->drained && !s->limited) {
            want = free_slots(s);
            if (want > FETCH_BATCH_MAX)
                want = FETCH_BATCH_MAX;
        }
        put_fetch_args(s, m, want);
        rc = nova__redis_conn_send_eval(m, &s_settle, 1, on_settled, b);
        if (rc < 0) {
            for (unsigned i = 0; i < b->n; i++)
                b->jobs[i]->resend = true; /* Redis is down: sent on reconnect */
            batch_put(s, b);
            return;
        }
        for (unsigned i = 0; i < b->n; i++)
            b->jobs[i]->in_flight = true;
        b->asked = want;
        s->fetch_pending += want;
    }
}

static void on_flush_timer(uv_timer_t *t)
{
    flush_outcomes(t->data);
}

/* Queues an outcome; outcomes reported in the same loop turn share one
 * settle call (and the fetch of the next jobs) on the next turn. */
static void send_finish(struct nova_job *j)
{
    struct sub *s = j->sub;
    j->resend = false;
    if (j->outcome == OUT_RELEASE) {
        const char *argv[5] = {s->meta_key, s->base, j->id, j->token, j->release_back ? "0" : "1"};
        if (nova__redis_conn_eval(s->e->cmd, &s_release, on_released, j, 1, 5, argv, NULL) < 0)
            j->resend = true;
        else
            j->in_flight = true;
        return;
    }
    if (j->queued)
        return;
    j->queued = true;
    j->out_next = NULL;
    *s->outq_tail = j;
    s->outq_tail = &j->out_next;
    if (!uv_is_active((uv_handle_t *)&s->flush_timer))
        uv_timer_start(&s->flush_timer, on_flush_timer, 0, 0);
}

/* Common entry of job_done/retry/fail. */
static bool outcome_begin(nova_job *j, const char *what)
{
    if (!j)
        return false;
    if (j->state == JOB_DETACHED) {
        /* Drain timed out on this job: its outcome no longer matters. */
        list_remove(&j->sub->e->detached, j);
        job_free(j);
        return false;
    }
    if (j->state != JOB_RUNNING) {
        nova__log(NOVA_LOG_ERROR, &j->log, "%s called twice for the same job; ignored", what);
        return false;
    }
    j->sub->handling--;
    if (!j->sub->dispatching)
        update_active(j->sub); /* else dispatch_fetch updates it once at the end */
    if (j->lock_lost) {
        nova__log(NOVA_LOG_WARN, &j->log, "lock was lost; %s result dropped", what);
        count_job(j->sub, JM_LOST, 1);
        j->state = JOB_FINISHING;
        job_release_done(j);
        return false;
    }
    j->state = JOB_FINISHING;
    return true;
}

void nova__qh_job_done(nova_job *j, const char *result_json)
{
    struct sub *s;
    if (!outcome_begin(j, "job_done"))
        return;
    s = j->sub;
    j->outcome = OUT_COMPLETE;
    if (result_json) {
        cJSON *v = cJSON_Parse(result_json);
        if (v) {
            /* Re-printed so the stored text is compact, valid JSON. */
            j->value = cJSON_PrintUnformatted(v);
            cJSON_Delete(v);
        } else {
            char msg[256];
            snprintf(msg, sizeof(msg), "plugin returned a result that is not valid JSON");
            nova__log(NOVA_LOG_ERROR, &j->log, "%s", msg);
            j->outcome = OUT_FAIL;
            j->value = strdup(msg);
        }
    }
    send_finish(j);
    (void)s;
}

static void finish_failed(nova_job *j, const char *reason, bool permanent, int64_t delay_ms)
{
    int attempt = j->atm + 1;
    j->value = strdup(reason && *reason ? reason : "failed without a reason");
    if (!permanent && attempt < j->attempts) {
        int64_t d = delay_ms;
        if (d < 0) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(job_opts(j), "backoff");
            d = 0;
            if (cJSON_IsNumber(b)) {
                d = (int64_t)b->valuedouble;
            } else if (cJSON_IsObject(b)) {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "type");
                const cJSON *dl = cJSON_GetObjectItemCaseSensitive(b, "delay");
                const cJSON *jt = cJSON_GetObjectItemCaseSensitive(b, "jitter");
                double rnd = (double)randombytes_uniform(1000000) / 1000000.0;
                d = nova__queue_backoff_ms(cJSON_IsString(t) ? t->valuestring : "fixed",
                                           cJSON_IsNumber(dl) ? (int64_t)dl->valuedouble : 0,
                                           cJSON_IsNumber(jt) ? jt->valuedouble : 0, attempt, rnd);
                if (d < 0) {
                    nova__log(NOVA_LOG_ERROR, &j->log,
                              "unknown backoff type; failing without retry");
                    j->outcome = OUT_FAIL;
                    send_finish(j);
                    return;
                }
            }
        }
        j->outcome = OUT_RETRY;
        j->retry_delay = d;
    } else {
        j->outcome = OUT_FAIL;
    }
    send_finish(j);
}

void nova__qh_job_retry(nova_job *j, const char *reason, int64_t delay_ms)
{
    if (!outcome_begin(j, "job_retry"))
        return;
    finish_failed(j, reason, false, delay_ms);
}

void nova__qh_job_fail(nova_job *j, const char *reason)
{
    if (!outcome_begin(j, "job_fail"))
        return;
    finish_failed(j, reason, true, -1);
}

/* ---- lock renewal and stall sweeps --------------------------------------------- */

struct renew_req {
    struct sub *sub;
    size_t n;
    char **tokens; /* tokens[i] belongs to ids[i] */
    char **ids;
};

static void renew_req_free(struct renew_req *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->tokens[i]);
        free(r->ids[i]);
    }
    free(r->tokens);
    free(r->ids);
    free(r);
}

static void on_renewed(void *arg, int status, const redisReply *reply)
{
    struct renew_req *rq = arg;
    struct sub *s = rq->sub;
    if (status == 0 && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const char *id = reply->element[i]->str;
            const char *token = NULL;
            for (size_t k = 0; k < rq->n; k++)
                if (strcmp(rq->ids[k], id) == 0)
                    token = rq->tokens[k];
            for (struct nova_job *j = s->jobs; j && token; j = j->next) {
                if (j->state == JOB_RUNNING && strcmp(j->token, token) == 0 && !j->lock_lost) {
                    j->lock_lost = true;
                    j->cancelled = true;
                    if (m_renew_fail)
                        nova__metric_add(m_renew_fail, (const char *const[]){s->queue}, 1);
                    nova__log(NOVA_LOG_WARN, &j->log,
                              "could not renew lock: job is no longer ours; its result will "
                              "be dropped");
                }
            }
        }
    } else if (status == 0 && reply->type == REDIS_REPLY_ERROR) {
        nova__log(NOVA_LOG_ERROR, &s->log, "lock renewal failed: %s", reply->str);
    }
    renew_req_free(rq);
}

static void on_renew_timer(uv_timer_t *t)
{
    struct sub *s = t->data;
    size_t n = 0, argc = 0;
    const char **argv;
    struct renew_req *rq;
    char lock[24];
    for (struct nova_job *j = s->jobs; j; j = j->next)
        if (j->state != JOB_DETACHED)
            n++;
    if (n == 0 || !nova__redis_conn_up(s->e->cmd))
        return;
    rq = calloc(1, sizeof(*rq));
    argv = calloc(3 + 2 * n, sizeof(*argv));
    if (!rq || !argv) {
        free(rq);
        free(argv);
        return;
    }
    rq->sub = s;
    rq->tokens = calloc(n, sizeof(char *));
    rq->ids = calloc(n, sizeof(char *));
    if (!rq->tokens || !rq->ids) {
        renew_req_free(rq);
        free(argv);
        return;
    }
    fmt_i64(lock, sizeof(lock), s->lock_ms);
    argv[argc++] = s->meta_key;
    argv[argc++] = s->base;
    argv[argc++] = lock;
    for (struct nova_job *j = s->jobs; j && rq->n < n; j = j->next) {
        if (j->state == JOB_DETACHED)
            continue;
        rq->ids[rq->n] = strdup(j->id);
        rq->tokens[rq->n] = strdup(j->token);
        rq->n++;
        argv[argc++] = j->id;
        argv[argc++] = j->token;
    }
    if (nova__redis_conn_eval(s->e->cmd, &s_extend, on_renewed, rq, 1, (int)argc, argv, NULL) < 0)
        renew_req_free(rq);
    free(argv);
}

static void on_swept(void *arg, int status, const redisReply *r)
{
    struct sub *s = arg;
    if (status == 0 && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            struct nova__log_ctx lc = {s->plugin, s->queue, r->element[i]->str};
            nova__log(NOVA_LOG_WARN, &lc, "stalled job moved back to wait");
        }
        if (r->elements > 0)
            count_job(s, JM_STALLED, (double)r->elements);
    } else if (status == 0 && r->type == REDIS_REPLY_ERROR) {
        nova__log(NOVA_LOG_ERROR, &s->log, "stall sweep failed: %s", r->str);
    }
}

static void on_stalled_timer(uv_timer_t *t)
{
    struct sub *s = t->data;
    struct nova__queue_engine *e = s->e;
    char now[24], maxs[24], interval[24];
    const char *argv[5];
    if (!nova__redis_conn_up(e->cmd))
        return;
    fmt_i64(now, sizeof(now), wall_ms());
    fmt_i64(maxs, sizeof(maxs), e->max_stalled);
    fmt_i64(interval, sizeof(interval), e->stalled_ms);
    argv[0] = s->meta_key;
    argv[1] = s->base;
    argv[2] = now;
    argv[3] = maxs;
    argv[4] = interval;
    nova__redis_conn_eval(e->cmd, &s_stalled, on_swept, s, 1, 5, argv, NULL);
}

/* ---- job counts ------------------------------------------------------------------- */

/* bullmq_job_count for every queue a running subscription serves, each
 * once however many plugins share it. */
static void refresh_counts(struct nova__queue_engine *e)
{
    size_t n = 0, max = 0;
    for (struct sub *s = e->subs; s; s = s->next)
        max++;
    const char **queues = max ? malloc(max * sizeof(*queues)) : NULL;
    if (max && !queues)
        return; /* the next tick tries again */
    for (struct sub *s = e->subs; s; s = s->next) {
        bool seen = false;
        if (!s->started || s->stopped)
            continue;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(queues[i], s->queue) == 0;
        if (!seen)
            queues[n++] = s->queue;
    }
    nova__queue_counts_refresh(e->cmd, e->prefix, queues, n);
    free(queues);
}

static void on_counts_timer(uv_timer_t *t)
{
    refresh_counts(t->data);
}

/* ---- connection state ------------------------------------------------------------ */

static void on_version(void *arg, int status, const redisReply *r)
{
    struct sub *s = arg;
    if (status < 0)
        return;
    if (r->type == REDIS_REPLY_STRING) {
        if (strncmp(r->str, "bullmq:5.", 9) != 0)
            nova__log(NOVA_LOG_WARN, &s->log,
                      "queue was created by %s; nova-worker speaks the BullMQ 5.81 protocol",
                      r->str);
    } else if (r->type == REDIS_REPLY_NIL) {
        nova__log(NOVA_LOG_INFO, &s->log, "queue has no meta.version yet (no Node Queue seen)");
    }
}

static void check_version(struct sub *s)
{
    const char *argv[3] = {"HGET", s->meta_key, "version"};
    nova__redis_conn_command(s->e->cmd, on_version, s, 3, argv, NULL);
}

static void on_cmd_state(void *arg, bool up)
{
    struct nova__queue_engine *e = arg;
    if (m_connected)
        nova__metric_set(m_connected, NULL, up ? 1 : 0);
    if (!up) {
        nova__log(NOVA_LOG_WARN, NULL, "queue engine lost its Redis connection");
        return;
    }
    nova__log(NOVA_LOG_INFO, NULL, "queue engine connected to Redis");
    if (e->started)
        refresh_counts(e);
    for (struct sub *s = e->subs; s; s = s->next) {
        if (!s->started || s->stopped)
            continue;
        check_version(s);
        for (struct nova_job *j = s->jobs; j; j = j->next)
            if (j->state == JOB_FINISHING && j->resend && !j->in_flight && !j->queued)
                send_finish(j);
        if (s->outq)
            flush_outcomes(s); /* queued while the connection was down */
        pump(s);
    }
}

/* ---- subscriptions ---------------------------------------------------------------- */

static void engine_release(struct nova__queue_engine *e)
{
    while (e->subs) {
        struct sub *x = e->subs;
        e->subs = x->next;
        while (x->jobs) {
            struct nova_job *j = x->jobs;
            list_remove(&x->jobs, j);
            job_free(j);
        }
        if (x->names)
            for (char **p = x->names; *p; p++)
                free(*p);
        free(x->names);
        free(x->opts_text);
        free(x->keys_resp);
        free(x->fetch_resp);
        free(x->spare_batch);
        free(x->queue);
        free(x->base);
        free(x->meta_key);
        free(x->marker_key);
        free(x->plugin);
        free(x);
    }
    while (e->detached) {
        struct nova_job *j = e->detached;
        list_remove(&e->detached, j);
        job_free(j);
    }
    nova__redis_target_free(&e->target);
    free(e->prefix);
    free(e->worker_name);
    free(e);
}

/* Every handle the engine owns counts in open_handles; the last close
 * callback after nova__queue_engine_free() releases the memory. */
static void handle_gone(struct nova__queue_engine *e)
{
    e->open_handles--;
    if (e->freeing && e->open_handles == 0)
        engine_release(e);
}

static void sub_handle_closed(uv_handle_t *h)
{
    struct sub *s = h->data;
    handle_gone(s->e);
}

static char *client_name(struct nova__queue_engine *e, const char *queue)
{
    size_t qlen = strlen(queue);
    size_t b64 = sodium_base64_encoded_len(qlen, sodium_base64_VARIANT_ORIGINAL);
    size_t len = strlen(e->prefix) + b64 + 8 + (e->worker_name ? strlen(e->worker_name) : 0);
    char *out = malloc(len);
    char *enc = malloc(b64);
    if (!out || !enc) {
        free(out);
        free(enc);
        return NULL;
    }
    sodium_bin2base64(enc, b64, (const unsigned char *)queue, qlen, sodium_base64_VARIANT_ORIGINAL);
    if (e->worker_name && *e->worker_name)
        snprintf(out, len, "%s:%s:w:%s", e->prefix, enc, e->worker_name);
    else
        snprintf(out, len, "%s:%s", e->prefix, enc);
    free(enc);
    /* CLIENT SETNAME refuses spaces and control characters. */
    for (char *p = out; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 127)
            *p = '_';
    return out;
}

static int sub_start(struct sub *s)
{
    struct nova__queue_engine *e = s->e;
    struct nova__redis_conn_opts o = {0};
    char *name = client_name(e, s->queue);
    int rc;
    if (!name)
        return -ENOMEM;
    o.target = &e->target;
    o.client_name = name;
    o.what = "blocking";
    o.connect_timeout_ms = e->connect_timeout_ms;
    o.on_state = on_block_state;
    o.arg = s;
    rc = nova__redis_conn_new(e->loop, &o, &s->block);
    free(name);
    if (rc < 0)
        return rc;
    e->open_handles++; /* until on_block_closed */
    s->started = true;
    s->accepting = true;
    touch_series(s);
    uv_timer_start(&s->renew_timer, on_renew_timer, (uint64_t)(s->lock_ms / 2),
                   (uint64_t)(s->lock_ms / 2));
    uv_timer_start(&s->stalled_timer, on_stalled_timer, 0, (uint64_t)e->stalled_ms);
    if (nova__redis_conn_up(e->cmd)) {
        check_version(s);
        pump(s);
    }
    return 0;
}

static int sub_new(struct nova__queue_engine *e, const struct nova_host *host,
                   const struct nova_subscription *in, struct sub **out)
{
    struct sub *s = calloc(1, sizeof(*s));
    char buf[1024];
    int n;
    if (!s)
        return -ENOMEM;
    s->e = e;
    s->host = host;
    n = nova__queue_key_base(e->prefix, in->queue, buf, sizeof(buf) - 16);
    if (n >= 0 && e->target.mode == NOVA__REDIS_CLUSTER && !nova__redis_base_one_slot(buf, n)) {
        nova__log(NOVA_LOG_ERROR, NULL,
                  "queue %s: on Redis Cluster its keys (%s...) would span hash slots: put a hash "
                  "tag in [redis] prefix (such as {bull}) or in the queue name",
                  in->queue, buf);
        n = -EINVAL;
    }
    if (n < 0) {
        free(s);
        return n;
    }
    s->queue = strdup(in->queue);
    s->base = strdup(buf);
    strcpy(buf + n, "meta");
    s->meta_key = strdup(buf);
    strcpy(buf + n, "marker");
    s->marker_key = strdup(buf);
    s->plugin = xstrdup(host ? host->plugin_name : NULL);
    if (in->job_names) {
        size_t c = 0;
        while (in->job_names[c])
            c++;
        s->names = calloc(c + 1, sizeof(char *));
        for (size_t i = 0; s->names && i < c; i++)
            s->names[i] = strdup(in->job_names[i]);
    }
    s->concurrency = in->concurrency;
    s->lock_ms = in->lock_duration_ms > 0 ? in->lock_duration_ms : e->lock_ms;
    s->lim_max = in->limiter_max;
    s->lim_dur = in->limiter_duration_ms;
    s->lock_n = nova__resp_i64(s->lock_s, s->lock_ms);
    s->meta_n = s->meta_key ? strlen(s->meta_key) : 0;
    s->base_n = s->base ? strlen(s->base) : 0;
    s->keys_resp = malloc(s->meta_n + s->base_n + 2 * 26);
    s->fetch_resp = malloc(3 * 27 + e->worker_name_n + 26);
    if (s->keys_resp) {
        char *p = nova__resp_put_arg(s->keys_resp, s->meta_key, s->meta_n);
        p = nova__resp_put_arg(p, s->base, s->base_n);
        s->keys_resp_n = (size_t)(p - s->keys_resp);
    }
    if (s->fetch_resp) {
        char *p = nova__resp_put_arg(s->fetch_resp, s->lock_s, s->lock_n);
        p = put_i64_arg(p, s->lim_max);
        p = put_i64_arg(p, s->lim_dur);
        p = nova__resp_put_arg(p, e->worker_name ? e->worker_name : "", e->worker_name_n);
        s->fetch_resp_n = (size_t)(p - s->fetch_resp);
    }
    if (!s->queue || !s->base || !s->meta_key || !s->marker_key || !s->keys_resp ||
        !s->fetch_resp) {
        /* Every call of the subscription is built from these. */
        if (s->names)
            for (char **nm = s->names; *nm; nm++)
                free(*nm);
        free(s->names);
        free(s->queue);
        free(s->base);
        free(s->meta_key);
        free(s->marker_key);
        free(s->plugin);
        free(s->keys_resp);
        free(s->fetch_resp);
        free(s);
        return -ENOMEM;
    }
    s->handle = in->handle;
    s->arg = in->arg;
    s->log.plugin = s->plugin;
    s->log.queue = s->queue;
    uv_timer_init(e->loop, &s->renew_timer);
    uv_timer_init(e->loop, &s->stalled_timer);
    uv_timer_init(e->loop, &s->wake_timer);
    uv_timer_init(e->loop, &s->watchdog);
    uv_timer_init(e->loop, &s->flush_timer);
    s->renew_timer.data = s->stalled_timer.data = s->wake_timer.data = s->watchdog.data = s;
    s->flush_timer.data = s;
    s->outq_tail = &s->outq;
    s->open_handles = 5;
    e->open_handles += 5;
    s->next = e->subs;
    e->subs = s;
    *out = s;
    return 0;
}

int nova__queue_subscribe(struct nova__queue_engine *e, const struct nova_host *host,
                          const struct nova_subscription *in)
{
    struct sub *s;
    int rc;
    if (!e)
        return -ENOTSUP;
    if (!in || in->struct_size < offsetof(struct nova_subscription, arg) + sizeof(void *) ||
        !in->queue || !*in->queue || !in->handle || in->concurrency < 1 ||
        in->lock_duration_ms < 0 || in->limiter_max < 0 || in->limiter_duration_ms < 0) {
        nova__log(NOVA_LOG_ERROR, NULL,
                  "subscribe: invalid subscription (queue, handler and "
                  "concurrency >= 1 are required)");
        return -EINVAL;
    }
    if (e->drain)
        return -ESHUTDOWN;
    rc = sub_new(e, host, in, &s);
    if (rc < 0)
        return rc;
    if (e->started)
        return sub_start(s);
    return 0;
}

int nova__queue_set_concurrency(struct nova__queue_engine *e, const struct nova_host *host,
                                const char *queue, unsigned concurrency)
{
    int found = -ENOENT;
    if (!e || !queue)
        return -EINVAL;
    if (concurrency < 1)
        return -EINVAL;
    for (struct sub *s = e->subs; s; s = s->next) {
        if (s->host == host && strcmp(s->queue, queue) == 0 && !s->stopped) {
            s->concurrency = concurrency;
            found = 0;
            if (s->blocking && free_slots(s) > 0)
                continue; /* the marker wakes it */
            pump(s);
        }
    }
    return found;
}

/* ---- stopping ----------------------------------------------------------------------- */

static void on_block_closed(void *arg)
{
    struct sub *s = arg;
    struct nova__queue_engine *e = s->e;
    s->block = NULL;
    if (!e->freeing)
        sub_check_stopped(s);
    handle_gone(e);
}

static void sub_stop(struct sub *s, struct waiter *w)
{
    s->waiter = w;
    if (!s->started) {
        s->stopped = true;
        return;
    }
    s->accepting = false;
    uv_timer_stop(&s->wake_timer);
    uv_timer_stop(&s->watchdog);
    uv_timer_stop(&s->stalled_timer);
    s->blocking = false;
    if (s->block) {
        struct nova__redis_conn *b = s->block;
        nova__redis_conn_close(b, on_block_closed, s);
    }
}

static void sub_check_stopped(struct sub *s)
{
    if (s->accepting || s->stopped || !s->started)
        return;
    if (s->jobs || s->fetch_inflight || s->block)
        return;
    s->stopped = true;
    uv_timer_stop(&s->renew_timer);
    waiter_check(s->e);
}

static void waiter_finish(struct nova__queue_engine *e, struct waiter *w);

static void on_waiter_closed(uv_handle_t *h)
{
    struct waiter *w = h->data;
    void (*done)(void *) = w->done;
    void *arg = w->arg;
    struct nova__queue_engine *e = w->e;
    bool drain = w->drain;
    free(w);
    e->open_handles++; /* keep e alive through done() */
    /* The plugins are shut down after a drain: their requests still
     * waiting for Redis end here, while their code is certainly loaded. */
    if (drain)
        preq_release(e, NULL, true);
    if (done)
        done(arg);
    e->open_handles -= 1;
    handle_gone(e);
}

static void release_running(struct sub *s)
{
    struct nova_job *j = s->jobs;
    while (j) {
        struct nova_job *next = j->next;
        if (j->state == JOB_RUNNING && nova__redis_conn_up(s->e->cmd)) {
            const char *argv[4] = {s->meta_key, s->base, j->id, j->token};
            nova__log(NOVA_LOG_WARN, &j->log,
                      "shutdown timeout: job given back to the queue; its outcome will be "
                      "ignored");
            nova__redis_conn_eval(s->e->cmd, &s_release, on_ignored, NULL, 1, 4, argv, NULL);
        }
        /* In-flight finishes are freed by on_finished when the reply comes. */
        job_detach(j);
        j = next;
    }
}

static void on_waiter_timeout(uv_timer_t *t)
{
    struct waiter *w = t->data;
    struct nova__queue_engine *e = w->e;
    for (struct sub *s = e->subs; s; s = s->next) {
        if (s->waiter != w || s->stopped)
            continue;
        release_running(s);
        s->stopped = true;
        uv_timer_stop(&s->renew_timer);
    }
    waiter_finish(e, w);
}

static void waiter_finish(struct nova__queue_engine *e, struct waiter *w)
{
    if (w->fired)
        return;
    w->fired = true;
    for (struct sub *s = e->subs; s; s = s->next)
        if (s->waiter == w)
            s->waiter = NULL;
    if (e->drain == w)
        e->drain = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_waiter_closed);
}

static void waiter_check(struct nova__queue_engine *e)
{
    /* A waiter is done when none of its subscriptions is still stopping. */
    for (struct sub *s = e->subs; s; s = s->next) {
        struct waiter *w = s->waiter;
        bool busy = false;
        if (!w || w->fired)
            continue;
        for (struct sub *t = e->subs; t; t = t->next)
            if (t->waiter == w && !t->stopped)
                busy = true;
        if (!busy)
            waiter_finish(e, w);
    }
}

static struct waiter *waiter_new(struct nova__queue_engine *e, int64_t timeout_ms,
                                 void (*done)(void *), void *arg, const struct nova_host *owner)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->done = done;
    w->arg = arg;
    w->owner = owner;
    w->e = e;
    uv_timer_init(e->loop, &w->timer);
    w->timer.data = w;
    e->open_handles++;
    uv_timer_start(&w->timer, on_waiter_timeout, (uint64_t)(timeout_ms > 0 ? timeout_ms : 0), 0);
    return w;
}

void nova__queue_engine_drain(struct nova__queue_engine *e, int64_t timeout_ms,
                              void (*done)(void *arg), void *arg)
{
    struct waiter *w;
    if (e->drain) {
        nova__log(NOVA_LOG_ERROR, NULL, "queue engine: drain already running");
        return;
    }
    w = waiter_new(e, timeout_ms, done, arg, NULL);
    if (!w) {
        preq_release(e, NULL, true);
        if (done)
            done(arg);
        return;
    }
    e->drain = w;
    w->drain = true;
    for (struct sub *s = e->subs; s; s = s->next)
        if (!s->stopped && !s->waiter)
            sub_stop(s, w);
    for (struct sub *s = e->subs; s; s = s->next)
        sub_check_stopped(s);
    if (!w->fired) {
        bool busy = false;
        for (struct sub *s = e->subs; s; s = s->next)
            if (s->waiter == w && !s->stopped)
                busy = true;
        if (!busy)
            uv_timer_start(&w->timer, on_waiter_timeout, 0, 0);
    }
}

int nova__queue_unsubscribe_owner(struct nova__queue_engine *e, const struct nova_host *host,
                                  void (*done)(void *arg), void *arg)
{
    struct waiter *w;
    bool busy = false;
    for (struct sub *s = e->subs; s; s = s->next)
        if (s->host == host && s->waiter)
            return -EALREADY;
    w = waiter_new(e, e->lock_ms, done, arg, host);
    if (!w)
        return -ENOMEM;
    for (struct sub *s = e->subs; s; s = s->next)
        if (s->host == host && !s->stopped)
            sub_stop(s, w);
    for (struct sub *s = e->subs; s; s = s->next)
        if (s->host == host)
            sub_check_stopped(s);
    for (struct sub *s = e->subs; s; s = s->next)
        if (s->waiter == w && !s->stopped)
            busy = true;
    if (!busy && !w->fired)
        uv_timer_start(&w->timer, on_waiter_timeout, 0, 0);
    return 0;
}

/* ---- engine ----------------------------------------------------------------------- */

int nova__queue_engine_new(uv_loop_t *loop, const struct nova__redis_config *cfg,
                           const char *worker_name, struct nova__queue_engine **out)
{
    struct nova__queue_engine *e;
    struct nova__redis_conn_opts o = {0};
    unsigned char rnd[16];
    char err[256];
    int rc;
    if (sodium_init() < 0)
        return -EIO;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    rc = nova__redis_target_from_config(cfg, &e->target, err, sizeof(err));
    if (rc < 0) {
        nova__log(NOVA_LOG_ERROR, NULL, "%s", err);
        free(e);
        return rc;
    }
    e->loop = loop;
    e->prefix = strdup(cfg->prefix && *cfg->prefix ? cfg->prefix : "bull");
    e->worker_name = worker_name && *worker_name ? strdup(worker_name) : NULL;
    e->worker_name_n = e->worker_name ? strlen(e->worker_name) : 0;
    e->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    e->lock_ms = cfg->lock_duration_ms > 0 ? cfg->lock_duration_ms : 30000;
    e->stalled_ms = cfg->stalled_interval_ms > 0 ? cfg->stalled_interval_ms : 30000;
    e->max_stalled = cfg->max_stalled_count >= 0 ? cfg->max_stalled_count : 1;
    e->drain_delay_ms = cfg->drain_delay_ms > 0 ? cfg->drain_delay_ms : 5000;
    e->plugin_timeout_ms = 2 * e->connect_timeout_ms;
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(e->token_base, sizeof(e->token_base), rnd, sizeof(rnd));
    metrics_init();
    if (m_connected)
        nova__metric_set(m_connected, NULL, 0);
    o.target = &e->target;
    o.what = "queue commands";
    o.connect_timeout_ms = e->connect_timeout_ms;
    o.on_state = on_cmd_state;
    o.arg = e;
    rc = nova__redis_conn_new(loop, &o, &e->cmd);
    if (rc < 0) {
        nova__redis_target_free(&e->target);
        free(e->prefix);
        free(e->worker_name);
        free(e);
        return rc;
    }
    uv_timer_init(loop, &e->preq_timer);
    e->preq_timer.data = e;
    uv_timer_init(loop, &e->counts_timer);
    e->counts_timer.data = e;
    e->open_handles = 3; /* the command connection, preq_timer, counts_timer */
    *out = e;
    return 0;
}

int nova__queue_engine_start(struct nova__queue_engine *e)
{
    int rc = 0;
    e->started = true;
    for (struct sub *s = e->subs; s; s = s->next) {
        if (!s->started && !s->stopped) {
            int r = sub_start(s);
            if (r < 0)
                rc = r;
        }
    }
    /* The first counts on the next loop turn (Redis may be up already),
     * then on the interval and whenever Redis comes back. */
    uv_timer_start(&e->counts_timer, on_counts_timer, 0, NOVA__QUEUE_COUNTS_INTERVAL_MS);
    return rc;
}

size_t nova__queue_owner_queues(const struct nova__queue_engine *e, const struct nova_host *host,
                                const char **out, size_t max)
{
    size_t n = 0;
    for (const struct sub *s = e->subs; s != NULL && n < max; s = s->next) {
        if (s->host != host || s->stopped)
            continue;
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(out[i], s->queue) == 0;
        if (!seen)
            out[n++] = s->queue;
    }
    return n;
}

struct nova__redis_conn *nova__queue_cmd_conn(struct nova__queue_engine *e)
{
    return e->cmd;
}

const char *nova__queue_prefix(const struct nova__queue_engine *e)
{
    return e->prefix;
}

bool nova__queue_engine_connected(const struct nova__queue_engine *e)
{
    return e && nova__redis_conn_up(e->cmd);
}

static void on_cmd_closed(void *arg)
{
    struct nova__queue_engine *e = arg;
    e->cmd = NULL;
    handle_gone(e);
}

static void on_preq_timer_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

void nova__queue_engine_free(struct nova__queue_engine *e)
{
    if (!e)
        return;
    e->freeing = true;
    for (struct sub *s = e->subs; s; s = s->next) {
        s->accepting = false;
        s->blocking = false;
        if (s->block)
            nova__redis_conn_close(s->block, on_block_closed, s);
        uv_close((uv_handle_t *)&s->renew_timer, sub_handle_closed);
        uv_close((uv_handle_t *)&s->stalled_timer, sub_handle_closed);
        uv_close((uv_handle_t *)&s->wake_timer, sub_handle_closed);
        uv_close((uv_handle_t *)&s->watchdog, sub_handle_closed);
        uv_close((uv_handle_t *)&s->flush_timer, sub_handle_closed);
    }
    /* Plugins are shut down by now (and maybe unloaded): whatever they
     * started after the drain is dropped, never called back. */
    {
        unsigned n = preq_release(e, NULL, false);
        if (n)
            nova__log(NOVA_LOG_WARN, NULL,
                      "queue engine: %u plugin Redis request(s) still pending at shutdown; "
                      "their callbacks will not run",
                      n);
    }
    uv_close((uv_handle_t *)&e->preq_timer, on_preq_timer_closed);
    uv_close((uv_handle_t *)&e->counts_timer, on_preq_timer_closed); /* same accounting */
    nova__queue_sched_cache_free();
    /* Pending callbacks run now (-ECANCELED) while everything is alive. */
    if (e->cmd)
        nova__redis_conn_close(e->cmd, on_cmd_closed, e);
    else {
        e->open_handles++;
        handle_gone(e);
    }
}

/* ---- job accessors ------------------------------------------------------------------ */

const char *nova__qh_job_id(const nova_job *j)
{
    return j->id;
}

const char *nova__qh_job_name(const nova_job *j)
{
    return j->name;
}

const char *nova__qh_job_queue(const nova_job *j)
{
    return j->sub->queue;
}

const char *nova__qh_job_data_json(const nova_job *j)
{
    return j->data_json;
}

const struct cJSON *nova__qh_job_data(const nova_job *j)
{
    return j->data;
}

int nova__qh_job_attempts_made(const nova_job *j)
{
    return j->atm;
}

int nova__qh_job_attempts_max(const nova_job *j)
{
    return j->attempts;
}

int64_t nova__qh_job_timestamp_ms(const nova_job *j)
{
    return j->timestamp;
}

bool nova__qh_job_cancelled(const nova_job *j)
{
    return j->cancelled;
}

const struct nova__log_ctx *nova__qh_job_log_ctx(const nova_job *j)
{
    return &j->log;
}

static void on_progress(void *arg, int status, const redisReply *r)
{
    (void)arg;
    if (status == 0 && r->type == REDIS_REPLY_ERROR)
        nova__log(NOVA_LOG_ERROR, NULL, "progress script failed: %s", r->str);
}

int nova__qh_job_progress(nova_job *j, const char *json)
{
    cJSON *v;
    char *text;
    int rc;
    const char *argv[4];
    if (!j || !json || j->state != JOB_RUNNING)
        return -EINVAL;
    v = cJSON_Parse(json);
    if (!v)
        return -EINVAL;
    text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (!text)
        return -ENOMEM;
    argv[0] = j->sub->meta_key;
    argv[1] = j->sub->base;
    argv[2] = j->id;
    argv[3] = text;
    rc = nova__redis_conn_eval(j->sub->e->cmd, &s_progress, on_progress, NULL, 1, 4, argv, NULL);
    free(text);
    return rc;
}

/* ---- producing ----------------------------------------------------------------------- */

/*
 * A plugin's pending request (a redis->command() or an enqueue()). The
 * engine keeps it in e->preqs under its owner (the plugin's host pointer)
 * so that nova__queue_release_owner() can end it before the plugin's code
 * goes away. A released request stays allocated, `detached`, until the
 * connection answers (redis_conn calls back exactly once, at the latest
 * when it closes); that answer is then dropped.
 */
struct plugin_req {
    struct plugin_req *prev, *next; /* e->preqs while attached */
    struct nova__queue_engine *e;
    const struct nova_host *owner;
    uint64_t deadline_ms; /* uv_now() after which the plugin gets -ETIMEDOUT */
    bool detached, enqueue;
    nova_redis_cb redis_cb;
    nova_enqueue_cb enqueue_cb;
    void *arg;
};

static void on_preq_timer(uv_timer_t *t);

static struct plugin_req *preq_new(struct nova__queue_engine *e, const struct nova_host *owner)
{
    struct plugin_req *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->e = e;
    q->owner = owner;
    return q;
}

static void preq_attach(struct plugin_req *q)
{
    struct nova__queue_engine *e = q->e;
    q->deadline_ms = uv_now(e->loop) + (uint64_t)e->plugin_timeout_ms;
    if (!e->preqs) {
        uint64_t tick = (uint64_t)e->plugin_timeout_ms / 8 + 1;
        uv_timer_start(&e->preq_timer, on_preq_timer, tick, tick);
    }
    q->next = e->preqs;
    if (e->preqs)
        e->preqs->prev = q;
    e->preqs = q;
}

static void preq_unlink(struct plugin_req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        q->e->preqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

/* Takes the reply for q: false when q was released (then it is freed and
 * the plugin must not hear about it), true when the caller calls back. */
static bool preq_claim(struct plugin_req *q)
{
    if (q->detached) {
        free(q);
        return false;
    }
    preq_unlink(q);
    return true;
}

/*
 * Ends the requests of `owner` (NULL: every owner) that are due by
 * `due_ms` (0: whatever their deadline). status < 0: each callback runs
 * now, once, with it; 0: they are dropped silently. Either way a late
 * reply is discarded. On -ECANCELED, requests the callbacks start for the
 * same owner are refused while this runs (the plugin is going away).
 */
static unsigned preq_end(struct nova__queue_engine *e, const struct nova_host *owner,
                         uint64_t due_ms, int status)
{
    struct plugin_req *batch = NULL, *q, *next;
    const struct nova_host *was = e->refusing;
    bool was_all = e->refusing_all;
    unsigned n = 0;
    for (q = e->preqs; q; q = next) {
        next = q->next;
        if ((owner && q->owner != owner) || (due_ms && q->deadline_ms > due_ms))
            continue;
        preq_unlink(q);
        q->detached = true;
        q->next = batch; /* reuses the link: the list is e->preqs no more */
        batch = q;
        n++;
    }
    if (!e->preqs && !e->freeing)
        uv_timer_stop(&e->preq_timer);
    if (status == 0)
        return n;
    if (status == -ECANCELED) {
        e->refusing = owner;
        e->refusing_all = !owner;
    }
    for (q = batch; q; q = next) {
        next = q->next;
        q->next = NULL;
        if (q->enqueue)
            q->enqueue_cb(q->arg, status, NULL);
        else
            q->redis_cb(q->arg, status, NULL);
    }
    e->refusing = was;
    e->refusing_all = was_all;
    return n;
}

static unsigned preq_release(struct nova__queue_engine *e, const struct nova_host *owner,
                             bool cancel)
{
    return preq_end(e, owner, 0, cancel ? -ECANCELED : 0);
}

/* A Redis that stops answering without closing the socket (frozen, or a
 * peer gone without a reset) would keep a plugin waiting forever. */
static void on_preq_timer(uv_timer_t *t)
{
    struct nova__queue_engine *e = t->data;
    unsigned n = preq_end(e, NULL, uv_now(e->loop), -ETIMEDOUT);
    if (n)
        nova__log(NOVA_LOG_WARN, NULL,
                  "queue engine: %u plugin Redis request(s) got no reply within %lld ms", n,
                  (long long)e->plugin_timeout_ms);
}

static bool preq_refused(const struct nova__queue_engine *e, const struct nova_host *owner)
{
    return e->freeing || e->refusing_all || (e->refusing && e->refusing == owner);
}

unsigned nova__queue_release_owner(struct nova__queue_engine *e, const struct nova_host *host,
                                   bool cancel)
{
    if (!e || !host)
        return 0;
    return preq_release(e, host, cancel);
}

static void on_added(void *arg, int status, const redisReply *r)
{
    struct plugin_req *q = arg;
    if (!preq_claim(q))
        return;
    if (status < 0)
        q->enqueue_cb(q->arg, status, NULL);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[0]->type == REDIS_REPLY_STRING)
        q->enqueue_cb(q->arg, 0, r->element[0]->str);
    else {
        nova__log(NOVA_LOG_ERROR, NULL, "add script failed: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        q->enqueue_cb(q->arg, -EIO, NULL);
    }
    free(q);
}

int nova__queue_enqueue(struct nova__queue_engine *e, const struct nova_host *host,
                        const char *queue, const char *name, const char *data_json,
                        const struct nova_job_options *opts, nova_enqueue_cb cb, void *arg)
{
    char base[1024], meta[1040], now[24], delay[24], prio[16], err[256];
    char *ojson, *data;
    struct plugin_req *q;
    const char *argv[10];
    cJSON *parsed;
    int rc;
    if (!e)
        return -ENOTSUP;
    if (!queue || !*queue || !name || !cb)
        return -EINVAL;
    if (preq_refused(e, host))
        return -ECANCELED;
    if (opts && opts->struct_size < offsetof(struct nova_job_options, lifo) + sizeof(bool))
        return -EINVAL;
    parsed = cJSON_Parse(data_json ? data_json : "{}");
    if (!parsed) {
        nova__log(NOVA_LOG_ERROR, NULL, "enqueue on %s: data is not valid JSON", queue);
        return -EINVAL;
    }
    data = cJSON_PrintUnformatted(parsed);
    cJSON_Delete(parsed);
    ojson = nova__queue_opts_json(opts, err, sizeof(err));
    if (!ojson || !data || nova__queue_key_base(e->prefix, queue, base, sizeof(base)) < 0) {
        if (!ojson)
            nova__log(NOVA_LOG_ERROR, NULL, "enqueue on %s: %s", queue, err);
        free(ojson);
        free(data);
        return -EINVAL;
    }
    snprintf(meta, sizeof(meta), "%smeta", base);
    q = preq_new(e, host);
    if (!q) {
        free(ojson);
        free(data);
        return -ENOMEM;
    }
    q->enqueue = true;
    q->enqueue_cb = cb;
    q->arg = arg;
    fmt_i64(now, sizeof(now), wall_ms());
    fmt_i64(delay, sizeof(delay), opts ? opts->delay_ms : 0);
    snprintf(prio, sizeof(prio), "%d", opts ? opts->priority : 0);
    argv[0] = meta;
    argv[1] = base;
    argv[2] = now;
    argv[3] = name;
    argv[4] = data;
    argv[5] = ojson;
    argv[6] = opts && opts->job_id ? opts->job_id : "";
    argv[7] = delay;
    argv[8] = prio;
    argv[9] = opts && opts->lifo ? "1" : "0";
    rc = nova__redis_conn_eval(e->cmd, &s_add, on_added, q, 1, 10, argv, NULL);
    free(ojson);
    free(data);
    if (rc < 0)
        free(q);
    else
        preq_attach(q);
    return rc;
}

/* ---- generic Redis commands for plugins -------------------------------------------------- */

static size_t count_replies(const redisReply *r)
{
    size_t n = 1;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            n += count_replies(r->element[i]);
    return n;
}

/* Converts into a preallocated pool; returns the next free slot. */
static struct nova_redis_reply *convert(const redisReply *r, struct nova_redis_reply *dst,
                                        struct nova_redis_reply *pool)
{
    memset(dst, 0, sizeof(*dst));
    switch (r->type) {
    case REDIS_REPLY_STRING:
        dst->type = NOVA_REDIS_REPLY_STRING;
        break;
    case REDIS_REPLY_STATUS:
        dst->type = NOVA_REDIS_REPLY_STATUS;
        break;
    case REDIS_REPLY_ERROR:
        dst->type = NOVA_REDIS_REPLY_ERROR;
        break;
    case REDIS_REPLY_INTEGER:
        dst->type = NOVA_REDIS_REPLY_INTEGER;
        dst->integer = r->integer;
        return pool;
    case REDIS_REPLY_ARRAY: {
        struct nova_redis_reply *elems = pool;
        dst->type = NOVA_REDIS_REPLY_ARRAY;
        dst->elements = r->elements;
        dst->element = elems;
        pool += r->elements;
        for (size_t i = 0; i < r->elements; i++)
            pool = convert(r->element[i], &elems[i], pool);
        return pool;
    }
    default:
        dst->type = NOVA_REDIS_REPLY_NIL;
        return pool;
    }
    dst->str = r->str;
    dst->len = r->len;
    return pool;
}

static void on_plugin_reply(void *arg, int status, const redisReply *r)
{
    struct plugin_req *q = arg;
    if (!preq_claim(q))
        return;
    if (status < 0) {
        q->redis_cb(q->arg, status, NULL);
    } else {
        size_t n = count_replies(r);
        struct nova_redis_reply *pool = calloc(n, sizeof(*pool));
        if (!pool) {
            q->redis_cb(q->arg, -ENOMEM, NULL);
        } else {
            convert(r, &pool[0], pool + 1);
            q->redis_cb(q->arg, 0, &pool[0]);
            free(pool);
        }
    }
    free(q);
}

int nova__queue_redis_command(struct nova__queue_engine *e, const struct nova_host *host, int argc,
                              const char *const *argv, const size_t *argvlen, nova_redis_cb cb,
                              void *arg)
{
    struct plugin_req *q;
    int rc;
    if (!e)
        return -ENOTSUP;
    if (argc < 1 || !argv || !cb)
        return -EINVAL;
    if (preq_refused(e, host))
        return -ECANCELED;
    q = preq_new(e, host);
    if (!q)
        return -ENOMEM;
    q->redis_cb = cb;
    q->arg = arg;
    rc = nova__redis_conn_command(e->cmd, on_plugin_reply, q, argc, argv, argvlen);
    if (rc < 0)
        free(q);
    else
        preq_attach(q);
    return rc;
}
