#include "config.h"
#include "queue/cmd_queue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "queue/cmd_queue_int.h"
#include "queue/queue.h"
#include "queue/queue_scripts.h"
#include "queue/redis_conn.h"
#include "queue/redis_sync.h"

/* ---- shared helpers (cmd_queue_int.h) ------------------------------------ */

void qc_err(const struct qcmd *q, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nova-worker queue %s: ", q->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int qc_usage(const struct qcmd *q, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nova-worker queue %s: ", q->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: nova-worker queue %s\n", q->synopsis);
    return 2;
}

int qc_parse(struct qcmd *q, int argc, char **argv, const struct qc_opt *opts, const char **pos,
             int maxpos, int *npos)
{
    bool operands_only = false;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool matched = false;
        if (operands_only || a[0] != '-' || a[1] == '\0') {
            if (*npos >= maxpos)
                return qc_usage(q, "too many arguments");
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            operands_only = true;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            q->json = true;
            continue;
        }
        for (const struct qc_opt *o = opts; o && o->name; o++) {
            size_t n = strlen(o->name);
            if (strncmp(a, o->name, n) != 0 || (a[n] != '\0' && a[n] != '='))
                continue;
            matched = true;
            if (o->flag) {
                if (a[n] == '=')
                    return qc_usage(q, "%s takes no value", o->name);
                *o->flag = true;
            } else if (a[n] == '=') {
                *o->value = a + n + 1;
            } else if (i + 1 < argc) {
                *o->value = argv[++i];
            } else {
                return qc_usage(q, "%s needs a value", o->name);
            }
            break;
        }
        if (!matched)
            return qc_usage(q, "unknown option '%s'", a);
    }
    return 0;
}

struct nova__redis_sync *nova__redis_connect_blocking(const struct nova__config *cfg,
                                                      const char *who)
{
    char err[600];
    struct nova__redis_sync *c = nova__redis_sync_open(cfg ? &cfg->redis : NULL, err, sizeof(err));
    if (!c)
        fprintf(stderr, "%s: %s\n", who, err);
    return c;
}

struct nova__redis_sync *qc_redis(struct qcmd *q)
{
    if (!q->c) {
        char who[64];
        snprintf(who, sizeof(who), "nova-worker queue %s", q->name);
        q->c = nova__redis_connect_blocking(q->cfg, who);
    }
    return q->c;
}

redisReply *qc_eval(struct qcmd *q, const char *script, const char *queue, const char *queue2,
                    int argc, const char *const *args)
{
    char base[1024], meta[1040], base2[1024], meta2[1040];
    const char **av;
    redisReply *r;
    int n = 0;
    if (!qc_redis(q))
        return NULL;
    if (nova__queue_key_base(q->prefix, queue, base, sizeof(base)) < 0 ||
        (queue2 && nova__queue_key_base(q->prefix, queue2, base2, sizeof(base2)) < 0)) {
        qc_err(q, "queue name too long");
        return NULL;
    }
    snprintf(meta, sizeof(meta), "%smeta", base);
    if (queue2)
        snprintf(meta2, sizeof(meta2), "%smeta", base2);
    av = calloc((size_t)argc + 6, sizeof(*av));
    if (!av) {
        qc_err(q, "out of memory");
        return NULL;
    }
    av[n++] = "EVAL";
    av[n++] = script;
    av[n++] = queue2 ? "2" : "1";
    av[n++] = meta;
    if (queue2)
        av[n++] = meta2;
    av[n++] = base;
    for (int i = 0; i < argc; i++)
        av[n++] = args[i];
    r = nova__redis_sync_argv(q->c, n, av, NULL);
    free(av);
    if (!r) {
        qc_err(q, "%s", nova__redis_sync_error(q->c));
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (queue2 && strncmp(r->str, "CROSSSLOT", 9) == 0)
            qc_err(q,
                   "%s and %s are in different cluster hash slots: give the queues one slot "
                   "with a hash-tagged [redis] prefix such as {bull}",
                   queue, queue2);
        else
            qc_err(q, "Redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int add_queue_name(struct qcmd *q, const char *name, size_t len)
{
    char **grown;
    for (size_t i = 0; i < q->nqueues; i++)
        if (strlen(q->queues[i]) == len && memcmp(q->queues[i], name, len) == 0)
            return 0;
    grown = realloc(q->queues, (q->nqueues + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    q->queues = grown;
    q->queues[q->nqueues] = strndup(name, len);
    if (!q->queues[q->nqueues])
        return -1;
    q->nqueues++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int qc_list_queues(struct qcmd *q)
{
    static const char *const suffixes[] = {"id", "meta"};
    size_t plen = strlen(q->prefix) + 1;
    if (q->listed)
        return 0;
    if (!qc_redis(q))
        return -1;
    for (size_t m = 0; m < nova__redis_sync_masters(q->c); m++) {
        for (size_t s = 0; s < 2; s++) {
            char cursor[32] = "0";
            size_t slen = strlen(suffixes[s]) + 1;
            do {
                redisReply *r = nova__redis_sync_command_at(
                    q->c, m, "SCAN %s MATCH %s:*:%s COUNT 1000", cursor, q->prefix, suffixes[s]);
                if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                    qc_err(q, "SCAN failed: %s",
                           r && r->type == REDIS_REPLY_ERROR ? r->str
                                                             : nova__redis_sync_error(q->c));
                    freeReplyObject(r);
                    return -1;
                }
                snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
                for (size_t i = 0; i < r->element[1]->elements; i++) {
                    const char *key = r->element[1]->element[i]->str;
                    size_t klen = strlen(key);
                    if (klen <= plen + slen)
                        continue;
                    const char *name = key + plen;
                    size_t nlen = klen - plen - slen;
                    if (memchr(name, ':', nlen))
                        continue;
                    if (add_queue_name(q, name, nlen) < 0) {
                        freeReplyObject(r);
                        qc_err(q, "out of memory");
                        return -1;
                    }
                }
                freeReplyObject(r);
            } while (strcmp(cursor, "0") != 0);
        }
    }
    if (q->nqueues > 1)
        qsort(q->queues, q->nqueues, sizeof(*q->queues), cmp_str);
    q->listed = true;
    return 0;
}

static long long key_exists(struct qcmd *q, const char *fmt, const char *a, const char *b)
{
    redisReply *r = nova__redis_sync_command(q->c, fmt, q->prefix, a, b);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (v < 0)
        qc_err(q, "%s", r && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(q->c));
    freeReplyObject(r);
    return v;
}

bool qc_queue_known(struct qcmd *q, const char *queue)
{
    if (!qc_redis(q))
        return false;
    return key_exists(q, "EXISTS %s:%s:%s", queue, "id") > 0 ||
           key_exists(q, "EXISTS %s:%s:%s", queue, "meta") > 0;
}

int qc_job_queue(struct qcmd *q, const char *id, const char **queue)
{
    const char *found[8];
    size_t n = 0;
    if (q->queue) {
        *queue = q->queue;
        return 0;
    }
    if (qc_list_queues(q) < 0)
        return 1;
    for (size_t i = 0; i < q->nqueues; i++) {
        long long e = key_exists(q, "EXISTS %s:%s:%s", q->queues[i], id);
        if (e < 0)
            return 1;
        if (e > 0 && n < 8)
            found[n++] = q->queues[i];
    }
    if (n == 1) {
        *queue = found[0];
        return 0;
    }
    if (n == 0) {
        qc_err(q, "job '%s' not found in any queue under the prefix '%s' (%zu queue%s searched)",
               id, q->prefix, q->nqueues, q->nqueues == 1 ? "" : "s");
        return 1;
    }
    fprintf(stderr, "nova-worker queue %s: job '%s' exists in several queues:", q->name, id);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", found[i]);
    fprintf(stderr, "\nname one: nova-worker queue %s QUEUE %s (or --queue QUEUE)\n", q->name, id);
    return 1;
}

int qc_job_state(struct qcmd *q, const char *queue, const char *id, char *buf, size_t len)
{
    redisReply *r = qc_eval(q, nova__lua_job_info, queue, NULL, 1, &id);
    if (!r)
        return -1;
    snprintf(buf, len, "%s",
             r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->str : "");
    freeReplyObject(r);
    return 0;
}

const char *qc_state_name(const char *s)
{
    static const char *const names[] = {"waiting",     "paused",           "active",
                                        "prioritized", "delayed",          "completed",
                                        "failed",      "waiting-children", NULL};
    if (strcmp(s, "wait") == 0)
        return "waiting";
    for (size_t i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return names[i];
    return NULL;
}

long long qc_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void qc_iso(long long ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    char day[32];
    if (ms < 0 || !gmtime_r(&sec, &tm)) {
        snprintf(buf, len, "%lld", ms);
        return;
    }
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
}

void qc_json_print(cJSON *doc)
{
    char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
    if (s)
        printf("%s\n", s);
    else
        fprintf(stderr, "nova-worker queue: out of memory\n");
    free(s);
    cJSON_Delete(doc);
}

cJSON *qc_json_value(const char *s)
{
    cJSON *v = cJSON_Parse(s);
    return v ? v : cJSON_CreateString(s);
}

/* The progress line being shown, if any. */
static struct qc_progress *shown_progress;

void qc_progress_start(struct qc_progress *p, const char *verb)
{
    memset(p, 0, sizeof(*p));
    p->on = isatty(STDERR_FILENO) == 1;
    p->verb = verb;
}

void qc_progress_clear(void)
{
    if (shown_progress && shown_progress->drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        shown_progress->drawn = false;
    }
}

void qc_progress(struct qc_progress *p, size_t done, size_t total)
{
    long long now;
    if (!p->on)
        return;
    now = qc_now_ms();
    if (now - p->last_ms < 100 && done < total)
        return;
    p->last_ms = now;
    p->drawn = true;
    shown_progress = p;
    fflush(stdout);
    fprintf(stderr, "\r\033[K%s %zu/%zu", p->verb, done, total);
    fflush(stderr);
}

void qc_progress_end(struct qc_progress *p)
{
    if (p->on && p->drawn)
        fprintf(stderr, "\r\033[K");
    p->drawn = false;
    if (shown_progress == p)
        shown_progress = NULL;
}

/* ---- stats, add, failed, retry ------------------------------------------- */

static int queue_stats_one(struct qcmd *q, const char *queue, cJSON *doc)
{
    static const char *const states[] = {"waiting",     "paused",           "active",
                                         "prioritized", "delayed",          "completed",
                                         "failed",      "waiting-children", NULL};
    static const char *const keys[] = {"wait",    "paused",    "active", "prioritized",
                                       "delayed", "completed", "failed", "waiting-children"};
    cJSON *counts = doc ? cJSON_AddObjectToObject(doc, queue) : NULL;
    if (!doc)
        printf("%s:", queue);
    for (int i = 0; states[i]; i++) {
        redisReply *r = nova__redis_sync_command(q->c, i < 3 ? "LLEN %s:%s:%s" : "ZCARD %s:%s:%s",
                                                 q->prefix, queue, keys[i]);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            if (!doc)
                printf("\n");
            qc_err(q, "%s",
                   r && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(q->c));
            freeReplyObject(r);
            return 1;
        }
        if (counts)
            cJSON_AddNumberToObject(counts, states[i], (double)r->integer);
        else if (!doc)
            printf(" %s=%lld", states[i], r->integer);
        freeReplyObject(r);
    }
    if (!doc)
        printf("\n");
    return 0;
}

static int cmd_stats(struct qcmd *q, int argc, char **argv)
{
    const char **pos = calloc((size_t)argc, sizeof(*pos));
    cJSON *doc = NULL;
    int npos, rc = 0;
    if (!pos)
        return 1;
    rc = qc_parse(q, argc, argv, NULL, pos, argc, &npos);
    if (rc || !qc_redis(q)) {
        free(pos);
        return rc ? rc : 1;
    }
    if (q->json)
        doc = cJSON_CreateObject();
    if (npos > 0) {
        for (int i = 0; i < npos; i++)
            rc |= queue_stats_one(q, pos[i], doc);
    } else if (qc_list_queues(q) < 0) {
        rc = 1;
    } else {
        /* every queue that has a meta or id key under the prefix (on every
         * master of a cluster) */
        for (size_t i = 0; i < q->nqueues; i++)
            rc |= queue_stats_one(q, q->queues[i], doc);
    }
    free(pos);
    if (doc && rc == 0)
        qc_json_print(doc);
    else
        cJSON_Delete(doc);
    return rc;
}

static int parse_count(struct qcmd *q, const char *what, const char *s, long long max,
                       long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (errno || *end || end == s || *out < 0 || *out > max) {
        qc_usage(q, "%s must be an integer from 0 to %lld, got '%s'", what, max, s);
        return -1;
    }
    return 0;
}

static int cmd_add(struct qcmd *q, int argc, char **argv)
{
    struct nova_job_options o = {
        .struct_size = sizeof(o), .remove_on_complete = -1, .remove_on_fail = -1};
    const char *pos[3], *job_id = NULL, *delay_s = NULL, *attempts_s = NULL;
    const char **all = calloc((size_t)argc, sizeof(*all));
    const struct qc_opt opts[] = {{"--job-id", &job_id, NULL},
                                  {"--delay", &delay_s, NULL},
                                  {"--attempts", &attempts_s, NULL},
                                  {NULL, NULL, NULL}};
    char err[256], now[24], delay[24];
    char *ojson, *data;
    cJSON *parsed;
    redisReply *r;
    long long v;
    int npos, rc;
    if (!all)
        return 1;
    rc = qc_parse(q, argc, argv, opts, all, argc, &npos);
    if (rc == 0 && npos != 3)
        rc = qc_usage(q, "expects QUEUE NAME JSON");
    if (rc) {
        free(all);
        return rc;
    }
    memcpy(pos, all, sizeof(pos));
    free(all);
    o.job_id = job_id;
    if (delay_s) {
        if (parse_count(q, "--delay", delay_s, (1LL << 53), &v) < 0)
            return 2;
        o.delay_ms = v;
    }
    if (attempts_s) {
        if (parse_count(q, "--attempts", attempts_s, 1000000, &v) < 0)
            return 2;
        o.attempts = (int)v;
    }
    parsed = cJSON_Parse(pos[2]);
    if (!parsed)
        return qc_usage(q, "JSON data is not valid JSON: %s", pos[2]);
    data = cJSON_PrintUnformatted(parsed);
    cJSON_Delete(parsed);
    ojson = nova__queue_opts_json(&o, err, sizeof(err));
    if (!ojson || !data) {
        free(ojson);
        free(data);
        return ojson ? 1 : qc_usage(q, "%s", err);
    }
    snprintf(now, sizeof(now), "%lld", qc_now_ms());
    snprintf(delay, sizeof(delay), "%lld", (long long)o.delay_ms);
    {
        const char *av[] = {now, pos[1], data, ojson, o.job_id ? o.job_id : "", delay, "0", "0"};
        r = qc_eval(q, nova__lua_add, pos[0], NULL, 8, av);
    }
    free(ojson);
    free(data);
    if (!r)
        return 1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        qc_err(q, "unexpected reply from Redis");
        freeReplyObject(r);
        return 1;
    }
    if (q->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "queue", pos[0]);
        cJSON_AddStringToObject(doc, "id", r->element[0]->str);
        cJSON_AddBoolToObject(doc, "duplicate", r->element[1]->integer != 0);
        qc_json_print(doc);
    } else {
        printf("%s%s\n", r->element[0]->str,
               r->element[1]->integer ? " (duplicate: a job with this id exists)" : "");
    }
    freeReplyObject(r);
    return 0;
}

static int cmd_failed(struct qcmd *q, int argc, char **argv)
{
    const char *pos[2];
    cJSON *doc = NULL, *jobs = NULL;
    redisReply *r;
    int npos, rc;
    rc = qc_parse(q, argc, argv, NULL, pos, 2, &npos);
    if (rc == 0 && npos != 1)
        rc = qc_usage(q, "expects one QUEUE");
    if (rc)
        return rc;
    if (!qc_redis(q))
        return 1;
    r = nova__redis_sync_command(q->c, "ZRANGE %s:%s:failed 0 -1", q->prefix, pos[0]);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        qc_err(q, "%s", r && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(q->c));
        freeReplyObject(r);
        return 1;
    }
    if (q->json) {
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "queue", pos[0]);
        jobs = cJSON_AddArrayToObject(doc, "jobs");
    }
    for (size_t i = 0; i < r->elements; i++) {
        const char *id = r->element[i]->str;
        redisReply *f = nova__redis_sync_command(q->c, "HMGET %s:%s:%s failedReason atm", q->prefix,
                                                 pos[0], id);
        const char *reason = "", *atm = "0";
        if (f && f->type == REDIS_REPLY_ARRAY && f->elements == 2) {
            if (f->element[0]->type == REDIS_REPLY_STRING)
                reason = f->element[0]->str;
            if (f->element[1]->type == REDIS_REPLY_STRING)
                atm = f->element[1]->str;
        }
        if (jobs) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "id", id);
            cJSON_AddNumberToObject(j, "attemptsMade", atoi(atm));
            cJSON_AddStringToObject(j, "failedReason", reason);
            cJSON_AddItemToArray(jobs, j);
        } else {
            printf("%s\tattempts=%s\t%s\n", id, atm, reason);
        }
        freeReplyObject(f);
    }
    freeReplyObject(r);
    if (doc)
        qc_json_print(doc);
    return 0;
}

static int cmd_retry(struct qcmd *q, int argc, char **argv)
{
    const char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    char now[24];
    redisReply *r;
    int npos, rc, n;
    if (!pos)
        return 1;
    /* pos[0] is left for the script's first argument */
    rc = qc_parse(q, argc, argv, NULL, pos + 1, argc, &npos);
    if (rc == 0 && npos < 1)
        rc = qc_usage(q, "expects a QUEUE");
    if (rc) {
        free(pos);
        return rc;
    }
    {
        const char *queue = pos[1];
        snprintf(now, sizeof(now), "%lld", qc_now_ms());
        pos[1] = now; /* ARGV: now, id... */
        r = qc_eval(q, nova__lua_retry_failed, queue, NULL, npos, pos + 1);
    }
    free(pos);
    if (!r)
        return 1;
    if (r->type != REDIS_REPLY_ARRAY) {
        qc_err(q, "unexpected reply from Redis");
        freeReplyObject(r);
        return 1;
    }
    n = (int)r->elements;
    if (q->json) {
        cJSON *doc = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(doc, "retried");
        for (size_t i = 0; i < r->elements; i++)
            cJSON_AddItemToArray(ids, cJSON_CreateString(r->element[i]->str));
        qc_json_print(doc);
    } else {
        for (size_t i = 0; i < r->elements; i++)
            printf("%s\n", r->element[i]->str);
    }
    fprintf(stderr, "%d job(s) moved back to wait\n", n);
    freeReplyObject(r);
    return npos > 1 && n == 0 ? 1 : 0;
}

/* ---- list, show ----------------------------------------------------------- */

static void print_reason(const char *s)
{
    for (; *s; s++)
        putchar(*s == '\n' || *s == '\t' || *s == '\r' ? ' ' : *s);
}

static int cmd_list(struct qcmd *q, int argc, char **argv)
{
    const char *pos[3], *limit_s = NULL, *state;
    const struct qc_opt opts[] = {{"--limit", &limit_s, NULL}, {NULL, NULL, NULL}};
    long long limit = 20, total = 0, shown = 0;
    cJSON *doc = NULL, *jobs = NULL;
    char off[24], cnt[24], when[40];
    int npos, rc;
    rc = qc_parse(q, argc, argv, opts, pos, 3, &npos);
    if (rc == 0 && npos != 2)
        rc = qc_usage(q, "expects QUEUE STATE");
    if (rc)
        return rc;
    state = qc_state_name(pos[1]);
    if (!state)
        return qc_usage(q,
                        "unknown state '%s' (waiting, paused, active, prioritized, delayed, "
                        "completed, failed, waiting-children)",
                        pos[1]);
    if (limit_s && parse_count(q, "--limit", limit_s, 1LL << 40, &limit) < 0)
        return 2;
    if (q->json) {
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "queue", pos[0]);
        cJSON_AddStringToObject(doc, "state", state);
    }
    for (;;) {
        long long want = limit == 0 ? 500 : limit - shown;
        redisReply *r;
        size_t got;
        if (want <= 0)
            break;
        if (want > 500)
            want = 500;
        snprintf(off, sizeof(off), "%lld", shown);
        snprintf(cnt, sizeof(cnt), "%lld", want);
        {
            const char *av[] = {state, off, cnt};
            r = qc_eval(q, nova__lua_job_list, pos[0], NULL, 3, av);
        }
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || (r->elements - 1) % 10 != 0) {
            if (r)
                qc_err(q, "unexpected reply from Redis");
            freeReplyObject(r);
            cJSON_Delete(doc);
            return 1;
        }
        total = r->element[0]->integer;
        got = (r->elements - 1) / 10;
        for (size_t i = 0; i < got; i++) {
            redisReply **e = r->element + 1 + i * 10;
            const char *id = e[0]->str, *name = e[1]->str, *ts = e[2]->str, *atm = e[3]->str,
                       *reason = e[4]->str, *fin = e[6]->str, *prio = e[7]->str, *due = e[8]->str;
            /* a dead letter's reason is in its data */
            cJSON *dl = *e[9]->str && !*reason ? cJSON_Parse(e[9]->str) : NULL;
            cJSON *dlr = cJSON_GetObjectItemCaseSensitive(dl, "failedReason");
            if (cJSON_IsString(dlr))
                reason = dlr->valuestring;
            if (doc) {
                cJSON *j = cJSON_CreateObject();
                if (!jobs)
                    jobs = cJSON_AddArrayToObject(doc, "jobs");
                cJSON_AddStringToObject(j, "id", id);
                cJSON_AddStringToObject(j, "name", name);
                if (*ts) {
                    qc_iso(atoll(ts), when, sizeof(when));
                    cJSON_AddStringToObject(j, "timestamp", when);
                }
                cJSON_AddNumberToObject(j, "attemptsMade", atoi(atm));
                if (*e[5]->str) {
                    qc_iso(atoll(e[5]->str), when, sizeof(when));
                    cJSON_AddStringToObject(j, "processedOn", when);
                }
                if (*fin) {
                    qc_iso(atoll(fin), when, sizeof(when));
                    cJSON_AddStringToObject(j, "finishedOn", when);
                }
                if (*due) {
                    qc_iso(atoll(due), when, sizeof(when));
                    cJSON_AddStringToObject(j, "due", when);
                }
                if (atoi(prio) > 0)
                    cJSON_AddNumberToObject(j, "priority", atoi(prio));
                if (*reason)
                    cJSON_AddStringToObject(j, "failedReason", reason);
                cJSON_AddItemToArray(jobs, j);
            } else {
                qc_iso(*ts ? atoll(ts) : 0, when, sizeof(when));
                printf("%s\t%s\tcreated=%s\tattempts=%s", id, name, *ts ? when : "-",
                       *atm ? atm : "0");
                if (*fin && (strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0)) {
                    qc_iso(atoll(fin), when, sizeof(when));
                    printf("\tfinished=%s", when);
                }
                if (*due) {
                    qc_iso(atoll(due), when, sizeof(when));
                    printf("\tdue=%s", when);
                }
                if (atoi(prio) > 0)
                    printf("\tpriority=%s", prio);
                if (*reason) {
                    printf("\treason=");
                    print_reason(reason);
                }
                putchar('\n');
            }
            cJSON_Delete(dl);
        }
        shown += (long long)got;
        freeReplyObject(r);
        if ((long long)got < want)
            break;
    }
    if (doc) {
        cJSON_AddNumberToObject(doc, "total", (double)total);
        if (!jobs)
            cJSON_AddArrayToObject(doc, "jobs");
        qc_json_print(doc);
    } else {
        fprintf(stderr, "%lld of %lld %s job%s of %s (newest first)\n", shown, total, state,
                total == 1 ? "" : "s", pos[0]);
    }
    return 0;
}

/* The field's value in a flat HGETALL reply (from element `from`). */
static const char *field(const redisReply *r, size_t from, const char *name)
{
    for (size_t i = from; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1]->str;
    return NULL;
}

static void show_line(const char *label, const char *value)
{
    printf("%-16s ", label);
    for (const char *p = value; *p; p++) {
        putchar(*p);
        if (*p == '\n' && p[1])
            printf("%-16s ", "");
    }
    putchar('\n');
}

static int cmd_show(struct qcmd *q, int argc, char **argv)
{
    static const struct {
        const char *field, *label;
        char kind; /* s string, n number, t time, j JSON */
    } fields[] = {
        {"name", "name", 's'},
        {"data", "data", 'j'},
        {"opts", "opts", 'j'},
        {"timestamp", "timestamp", 't'},
        {"delay", "delay", 'n'},
        {"priority", "priority", 'n'},
        {"atm", "attemptsMade", 'n'},
        {"ats", "attemptsStarted", 'n'},
        {"stc", "stalledCounter", 'n'},
        {"processedOn", "processedOn", 't'},
        {"finishedOn", "finishedOn", 't'},
        {"pb", "processedBy", 's'},
        {"progress", "progress", 'j'},
        {"returnvalue", "returnvalue", 'j'},
        {"failedReason", "failedReason", 's'},
        {"stacktrace", "stacktrace", 'j'},
        {"defa", "deferredFailure", 's'},
        {"deid", "deduplicationId", 's'},
        {"rjk", "repeatJobKey", 's'},
        {"parentKey", "parentKey", 's'},
    };
    const char *pos[3], *queue = NULL, *id, *given = NULL;
    const struct qc_opt opts[] = {{"--queue", &given, NULL}, {NULL, NULL, NULL}};
    char when[40];
    redisReply *r;
    int npos, rc;
    rc = qc_parse(q, argc, argv, opts, pos, 3, &npos);
    if (rc == 0 && (npos < 1 || npos > 2 || (npos == 2 && given)))
        rc = qc_usage(q, "expects [QUEUE] ID");
    if (rc)
        return rc;
    q->queue = npos == 2 ? pos[0] : given;
    id = pos[npos - 1];
    if (qc_job_queue(q, id, &queue) != 0)
        return 1;
    r = qc_eval(q, nova__lua_job_info, queue, NULL, 1, &id);
    if (!r)
        return 1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        qc_err(q, "job '%s' not found in queue '%s'", id, queue);
        freeReplyObject(r);
        return 1;
    }
    if (q->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "queue", queue);
        cJSON_AddStringToObject(doc, "id", id);
        cJSON_AddStringToObject(doc, "state", r->element[0]->str);
        cJSON_AddBoolToObject(doc, "locked", r->element[1]->integer != 0);
        cJSON_AddNumberToObject(doc, "logs", (double)r->element[2]->integer);
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            const char *v = field(r, 3, fields[i].field);
            if (!v)
                continue;
            if (fields[i].kind == 'j') {
                cJSON_AddItemToObject(doc, fields[i].label, qc_json_value(v));
            } else if (fields[i].kind == 'n') {
                cJSON_AddNumberToObject(doc, fields[i].label, atof(v));
            } else if (fields[i].kind == 't') {
                qc_iso(atoll(v), when, sizeof(when));
                cJSON_AddStringToObject(doc, fields[i].label, when);
            } else {
                cJSON_AddStringToObject(doc, fields[i].label, v);
            }
        }
        qc_json_print(doc);
    } else {
        char logs[32];
        show_line("queue", queue);
        show_line("id", id);
        show_line("state", r->element[0]->str);
        if (r->element[1]->integer)
            show_line("locked", "yes (a worker is running it)");
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            const char *v = field(r, 3, fields[i].field);
            if (!v)
                continue;
            if (fields[i].kind == 't') {
                qc_iso(atoll(v), when, sizeof(when));
                show_line(fields[i].label, when);
            } else if (strcmp(fields[i].field, "stacktrace") == 0) {
                cJSON *st = cJSON_Parse(v), *line;
                if (cJSON_IsArray(st)) {
                    if (cJSON_GetArraySize(st) > 0)
                        printf("%s\n", fields[i].label);
                    cJSON_ArrayForEach(line, st) if (cJSON_IsString(line))
                        printf("  %s\n", line->valuestring);
                } else {
                    show_line(fields[i].label, v);
                }
                cJSON_Delete(st);
            } else {
                show_line(fields[i].label, v);
            }
        }
        if (r->element[2]->integer > 0) {
            snprintf(logs, sizeof(logs), "%lld lines", r->element[2]->integer);
            show_line("logs", logs);
        }
    }
    freeReplyObject(r);
    return 0;
}

/* ---- the dispatcher ------------------------------------------------------- */

static const struct qc_command {
    const char *name, *synopsis, *summary, *details;
    int (*fn)(struct qcmd *, int, char **);
} commands[] = {
    {"stats", "stats [QUEUE...] [--json]",
     "job counts per state (every queue under the prefix when none given)",
     "Prints the number of jobs per state (waiting, paused, active, prioritized,\n"
     "delayed, completed, failed, waiting-children) for each queue, or for\n"
     "every queue under the configured prefix when none is named.\n"
     "--json: {\"QUEUE\": {\"waiting\": N, \"paused\": N, ...}, ...}\n",
     cmd_stats},
    {"add", "add QUEUE NAME JSON [--job-id ID] [--delay MS] [--attempts N] [--json]",
     "add a job, as Node's queue.add() does",
     "Adds a job exactly as Node's queue.add() would and prints its id.\n"
     "A custom --job-id that already exists is reported as a duplicate.\n"
     "--json: {\"queue\", \"id\", \"duplicate\"}\n",
     cmd_add},
    {"failed", "failed QUEUE [--json]", "failed jobs with their reasons",
     "Lists failed jobs: id, attempts made and failure reason, oldest first.\n"
     "--json: {\"queue\", \"jobs\": [{\"id\", \"attemptsMade\", \"failedReason\"}]}\n",
     cmd_failed},
    {"retry", "retry QUEUE [ID...] [--json]",
     "failed jobs back to wait (up to 1000 when no ID is given)",
     "Moves the given failed jobs (or up to 1000 of the oldest when none is\n"
     "given) back to wait. Exit status 1 when none of the given ids was failed.\n"
     "--json: {\"retried\": [ID...]}\n",
     cmd_retry},
    {"list", "list QUEUE STATE [--limit N] [--json]", "the jobs in one state, newest first",
     "Lists the jobs in one state in the order of Node's getJobs and Bull Board\n"
     "(newest first; delayed: latest due first; prioritized: lowest priority\n"
     "first), one line each: id, name, creation time, attempts made, and where\n"
     "they apply finish time, due time, priority and failure reason (for a\n"
     "dead letter, the failedReason in its data). --limit N shows N jobs\n"
     "(default 20, 0 for all); the total is printed on stderr.\n"
     "--json: {\"queue\", \"state\", \"total\", \"jobs\": [{\"id\", \"name\", \"timestamp\",\n"
     "\"attemptsMade\", \"processedOn\", \"finishedOn\", \"due\", \"priority\",\n"
     "\"failedReason\"}]} (times in ISO 8601, UTC; what a job lacks is left out).\n",
     cmd_list},
    {"show", "show [QUEUE] ID [--json]", "one job: state, data, options, attempts, errors",
     "Prints one job: its state (the state's key that holds it), name, data,\n"
     "options, creation, start and finish times (ISO 8601, UTC), attempts\n"
     "made and started, progress, return value, failure reason and stack trace.\n"
     "QUEUE may be left out (or given as --queue QUEUE) when exactly one queue\n"
     "under the prefix has a job with that id. Exit status 1 when there is none.\n"
     "--json: {\"queue\", \"id\", \"state\", \"locked\", \"logs\", \"name\", \"data\", \"opts\",\n"
     "\"timestamp\", \"attemptsMade\", \"failedReason\", \"stacktrace\", \"returnvalue\", ...}\n",
     cmd_show},
    {"remove", "remove [QUEUE] ID... [--json]", "remove jobs, as Node's Job.remove() does",
     "Removes jobs as Node's Job.remove() does: out of their state, with their\n"
     "logs, a `removed` event each. Refused (exit status 1) for a job a worker\n"
     "is running (its lock is held), for the pending run of a job scheduler,\n"
     "and for a job of an unfinished flow (Node's Job.remove() also removes its\n"
     "children). QUEUE may be left out (or given as --queue QUEUE) when exactly\n"
     "one queue under the prefix has a job with that id.\n"
     "--json: {\"removed\": [{\"queue\", \"id\", \"prev\"}], \"errors\": [{\"queue\", \"id\", "
     "\"error\"}]}\n",
     qc_cmd_remove},
    {"clean", "clean QUEUE STATE --older-than D [--limit N] [--json]",
     "remove the jobs of a state older than D, as Node's Queue.clean() does",
     "Removes the jobs in STATE (completed, failed, delayed, prioritized,\n"
     "waiting, paused, active) older than D, as Node's Queue.clean() does:\n"
     "completed and failed jobs by their finish time, the others by the time\n"
     "they last ran or else were created. D is a duration: 30s, 15m, 12h, 7d,\n"
     "2w, 1h30m (0: all). Jobs a worker is running and pending runs of job\n"
     "schedulers stay. Works in batches of 1000 jobs, one `cleaned` event\n"
     "each; --limit N stops after N jobs.\n"
     "--json: {\"queue\", \"state\", \"olderThan\", \"cutoff\", \"cleaned\", \"skipped\", "
     "\"ids\"}\n",
     qc_cmd_clean},
    {"promote", "promote [QUEUE] ID... [--json]",
     "run delayed jobs now, as Node's Job.promote() does",
     "Moves delayed jobs to be run now, as Node's Job.promote() does: to\n"
     "waiting (prioritized for a job with a priority), with a `waiting` event\n"
     "each. A job that is not delayed is refused (exit status 1). QUEUE may be\n"
     "left out (or given as --queue QUEUE) when exactly one queue under the\n"
     "prefix has a job with that id.\n"
     "--json: {\"promoted\": [{\"queue\", \"id\"}], \"errors\": [{\"queue\", \"id\", "
     "\"error\"}]}\n",
     qc_cmd_promote},
    {"pause", "pause QUEUE [--json]", "stop workers taking jobs from a queue (Queue.pause())",
     "Pauses a queue as Node's Queue.pause() does: no worker, Node's or\n"
     "nova-worker's, takes a new job from it; running jobs finish; jobs added\n"
     "meanwhile wait in `paused`. Bull Board and Queue.isPaused() show it.\n"
     "--json: {\"queue\", \"paused\": true, \"wasPaused\"}\n",
     qc_cmd_pause},
    {"resume", "resume QUEUE [--json]", "resume a paused queue (Queue.resume())",
     "Resumes a paused queue as Node's Queue.resume() does: its jobs are\n"
     "taken again.\n"
     "--json: {\"queue\", \"paused\": false, \"wasPaused\"}\n",
     qc_cmd_resume},
    {"replay", "replay DLQ [--to QUEUE] [ID... | --all] [--dry-run] [--json]",
     "dead letters back onto their queue as new issue-reward jobs",
     "Moves dead letters (the `dead-letter` jobs the reward_issuance plugin adds\n"
     "to reward-issuance-dlq) back onto their queue: each becomes a new\n"
     "`issue-reward` job on QUEUE (by default DLQ without its -dlq suffix) with\n"
     "the dead letter's data less failedReason, the options Nova's API gives\n"
     "reward-issuance jobs (attempts 3, exponential backoff from 1 s,\n"
     "removeOnComplete, failed jobs kept) and the id OLD-replay-N (the first N\n"
     "not taken). The new job is added and the dead letter removed in one\n"
     "atomic step: a crash loses neither, and nothing is added twice. Replaying\n"
     "an issuance that is already confirmed pays nothing. Give the dead\n"
     "letters' ids, or --all for every dead letter waiting in DLQ. --dry-run\n"
     "prints what would be replayed (OLD -> NEW DATA) and changes nothing.\n"
     "Prints OLD -> NEW per dead letter; exit status 1 when a given id is not\n"
     "found or is not a dead letter.\n"
     "--json: {\"dlq\", \"to\", \"dryRun\", \"replayed\": [{\"id\", \"newId\", \"data\"}],\n"
     "\"errors\": [{\"id\", \"error\"}]}\n",
     qc_cmd_replay},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fputs("usage: nova-worker queue COMMAND [ARGS...] [-c FILE]\n"
          "\n"
          "Inspects and repairs BullMQ queues with the effects Node's bullmq has, so\n"
          "Bull Board, QueueEvents and getJobCounts see the same state.\n"
          "\n",
          out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %s\n      %s\n", commands[i].synopsis, commands[i].summary);
    fputs("\n"
          "STATE: waiting, paused, active, prioritized, delayed, completed, failed,\n"
          "waiting-children. QUEUE may be left out before an ID (or given as\n"
          "--queue QUEUE) when exactly one queue under the prefix has a job with\n"
          "that id. D: a duration such as 30s, 15m, 12h, 7d, 2w or 1h30m.\n"
          "Each command takes --help; --json prints one JSON document instead of\n"
          "text; -c FILE may come before or after the command. Redis comes from the\n"
          "[redis] section (url, prefix). Exit status: 0 done, 1 failed (also when\n"
          "only some of the given jobs could not be handled), 2 usage.\n",
          out);
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

int nova__cmd_queue(const struct nova__config *cfg, int argc, char **argv)
{
    struct qcmd q;
    int rc;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (wants_help(argc - 1, argv + 1)) {
            printf("usage: nova-worker queue %s\n\n%s", commands[i].synopsis, commands[i].details);
            return 0;
        }
        memset(&q, 0, sizeof(q));
        q.cfg = cfg;
        q.prefix = cfg && cfg->redis.prefix && *cfg->redis.prefix ? cfg->redis.prefix : "bull";
        q.name = commands[i].name;
        q.synopsis = commands[i].synopsis;
        fflush(stdout);
        rc = commands[i].fn(&q, argc - 1, argv + 1);
        fflush(stdout);
        nova__redis_sync_close(q.c);
        for (size_t k = 0; k < q.nqueues; k++)
            free(q.queues[k]);
        free(q.queues);
        return rc;
    }
    fprintf(stderr, "nova-worker queue: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
