/*
 * cmd_queue_admin - the `queue` subcommands that change state: remove,
 * clean, promote, pause, resume and replay. Each change is one of the
 * command's own Lua scripts (runtime/queue/lua/job_remove.lua,
 * job_promote.lua, queue_pause.lua, dlq_replay.lua) with the effects
 * BullMQ 5.81's Job.remove, Queue.clean, Job.promote, Queue.pause/resume
 * and Queue.add have, so Node's observers see what Node would have done.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "queue/cmd_queue_int.h"
#include "queue/queue.h"
#include "queue/queue_scripts.h"
#include "queue/redis_sync.h"

/* Jobs per script call: each call blocks Redis while it runs. */
#define IDS_PER_CALL     100
#define CLEAN_WINDOW     1000
#define REPLAYS_PER_CALL 50

/* ---- helpers --------------------------------------------------------------- */

long long nova__queue_parse_duration(const char *s)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
    long long total = 0;
    const char *p = s;
    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0)
        return 0;
    while (*p) {
        char *end;
        long long v, mult = 0;
        if (!isdigit((unsigned char)*p))
            return -1;
        errno = 0;
        v = strtoll(p, &end, 10);
        if (errno)
            return -1;
        p = end;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0 &&
                (units[i].unit[0] != 'm' || n == 2 || p[1] != 's')) {
                mult = units[i].ms;
                p += n;
                break;
            }
        }
        if (mult == 0 || v > LLONG_MAX / mult || total > LLONG_MAX - v * mult)
            return -1;
        total += v * mult;
    }
    return total;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* p at a string's opening quote: just past its closing quote. */
static const char *skip_string(const char *p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p ? p + 1 : p;
}

/* p at a value (of a document known to be valid JSON): just past it. */
static const char *skip_value(const char *p)
{
    int depth = 0;
    if (*p == '"')
        return skip_string(p);
    if (*p != '{' && *p != '[') {
        while (*p && !strchr(",}] \t\r\n", *p))
            p++;
        return p;
    }
    do {
        if (*p == '"') {
            p = skip_string(p);
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']')
            depth--;
        p++;
    } while (*p && depth > 0);
    return p;
}

/* Whether the key token [k, end) (quotes included) is `name`. */
static bool key_is(const char *k, const char *end, const char *name)
{
    size_t n = (size_t)(end - k);
    bool same;
    cJSON *s;
    if (!memchr(k, '\\', n))
        return n == strlen(name) + 2 && memcmp(k + 1, name, n - 2) == 0;
    s = cJSON_ParseWithLength(k, n);
    same = cJSON_IsString(s) && strcmp(s->valuestring, name) == 0;
    cJSON_Delete(s);
    return same;
}

char *nova__queue_dead_letter_data(const char *data)
{
    cJSON *doc = cJSON_Parse(data), *raw;
    const char *p;
    char *out, *o;
    bool first = true, found = false;
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return NULL;
    }
    cJSON_Delete(doc);
    out = malloc(strlen(data) + 3);
    if (!out)
        return NULL;
    o = out;
    *o++ = '{';
    p = skip_ws(data) + 1;
    for (;;) {
        const char *k, *kend, *v, *vend;
        p = skip_ws(p);
        if (*p != '"')
            break;
        k = p;
        kend = skip_string(k);
        v = skip_ws(skip_ws(kend) + 1); /* past ':' */
        vend = skip_value(v);
        if (key_is(k, kend, "failedReason")) {
            found = true;
        } else {
            if (!first)
                *o++ = ',';
            memcpy(o, k, (size_t)(vend - k));
            o += vend - k;
            first = false;
        }
        p = skip_ws(vend);
        if (*p == ',')
            p++;
    }
    *o++ = '}';
    *o = '\0';
    if (!found) {
        free(out);
        return strdup(data);
    }
    /* the plugin wraps data that is not an object as {"raw": TEXT} */
    doc = cJSON_Parse(out);
    raw = cJSON_GetObjectItemCaseSensitive(doc, "raw");
    if (cJSON_GetArraySize(doc) == 1 && cJSON_IsString(raw)) {
        cJSON *inner = cJSON_Parse(raw->valuestring);
        if (inner && !cJSON_IsObject(inner)) {
            free(out);
            out = strdup(raw->valuestring);
        }
        cJSON_Delete(inner);
    }
    cJSON_Delete(doc);
    return out;
}

/* A failure about one job: on stderr, and in the --json document's
 * "errors" (queue may be NULL). */
static void job_error(struct qcmd *q, cJSON *errors, const char *queue, const char *id,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void job_error(struct qcmd *q, cJSON *errors, const char *queue, const char *id,
                      const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    qc_progress_clear();
    qc_err(q, "%s", msg);
    if (errors) {
        cJSON *e = cJSON_CreateObject();
        if (queue)
            cJSON_AddStringToObject(e, "queue", queue);
        else
            cJSON_AddNullToObject(e, "queue");
        cJSON_AddStringToObject(e, "id", id);
        cJSON_AddStringToObject(e, "error", msg);
        cJSON_AddItemToArray(errors, e);
    }
}

/* A state key's name ("wait", as BullMQ's events name it) in words. */
static const char *state_words(const char *prev)
{
    return strcmp(prev, "wait") == 0 ? "waiting" : prev;
}

struct target {
    const char *queue;
    const char *id;
};

/* The (queue, id) pairs of [QUEUE] ID... (or --queue QUEUE ID...). Ids
 * not found anywhere, or in several queues, are reported (and counted in
 * *failed) and left out. Returns the pairs (NULL when out of memory). */
static struct target *targets_of(struct qcmd *q, int npos, const char **pos, cJSON *errors, int *n,
                                 int *failed)
{
    struct target *t = calloc((size_t)npos + 1, sizeof(*t));
    int first = 0;
    *n = 0;
    if (!t)
        return NULL;
    if (!q->queue && npos >= 2 && qc_queue_known(q, pos[0])) {
        q->queue = pos[0];
        first = 1;
    }
    for (int i = first; i < npos; i++) {
        const char *queue;
        if (qc_job_queue(q, pos[i], &queue) != 0) {
            (*failed)++;
            if (errors) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNullToObject(e, "queue");
                cJSON_AddStringToObject(e, "id", pos[i]);
                cJSON_AddStringToObject(e, "error", "not found in exactly one queue");
                cJSON_AddItemToArray(errors, e);
            }
            continue;
        }
        t[*n].queue = queue;
        t[*n].id = pos[i];
        (*n)++;
    }
    return t;
}

/* Runs `script` over the targets, up to IDS_PER_CALL ids of one queue per
 * call (ARGV after the base: the fixed args, then the ids); hands each
 * reply's per-job entries (`stride` values each) to fn. */
typedef void (*per_job_fn)(struct qcmd *q, const char *queue, redisReply **entry, void *arg);
static int run_over(struct qcmd *q, const char *script, int nfixed, const char *const *fixed,
                    const struct target *t, int n, size_t stride, per_job_fn fn, void *arg,
                    const char *verb)
{
    const char **args = calloc((size_t)nfixed + IDS_PER_CALL, sizeof(*args));
    struct qc_progress prog;
    int i = 0;
    if (!args)
        return -1;
    qc_progress_start(&prog, verb);
    while (i < n) {
        int k = 0;
        redisReply *r;
        for (int f = 0; f < nfixed; f++)
            args[k++] = fixed[f];
        for (int j = i; j < n && j - i < IDS_PER_CALL && strcmp(t[j].queue, t[i].queue) == 0; j++)
            args[k++] = t[j].id;
        r = qc_eval(q, script, t[i].queue, NULL, k, args);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)(k - nfixed) * stride) {
            if (r)
                qc_err(q, "unexpected reply from Redis");
            freeReplyObject(r);
            qc_progress_end(&prog);
            free(args);
            return -1;
        }
        for (size_t e = 0; e < r->elements; e += stride)
            fn(q, t[i].queue, r->element + e, arg);
        freeReplyObject(r);
        i += k - nfixed;
        qc_progress(&prog, (size_t)i, (size_t)n);
    }
    qc_progress_end(&prog);
    free(args);
    return 0;
}

struct outcome {
    cJSON *done;   /* --json: the successes */
    cJSON *errors; /* --json: the failures */
    int ok, failed;
};

static void outcome_init(struct qcmd *q, struct outcome *o, cJSON **doc, const char *done_key)
{
    memset(o, 0, sizeof(*o));
    *doc = NULL;
    if (q->json) {
        *doc = cJSON_CreateObject();
        o->done = cJSON_AddArrayToObject(*doc, done_key);
        o->errors = cJSON_AddArrayToObject(*doc, "errors");
    }
}

/* ---- remove ----------------------------------------------------------------- */

static void on_removed(struct qcmd *q, const char *queue, redisReply **e, void *arg)
{
    struct outcome *o = arg;
    qc_progress_clear();
    const char *id = e[0]->str, *status = e[1]->str, *detail = e[2]->str;
    if (strcmp(status, "removed") == 0) {
        o->ok++;
        if (o->done) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "queue", queue);
            cJSON_AddStringToObject(j, "id", id);
            cJSON_AddStringToObject(j, "prev", detail);
            cJSON_AddItemToArray(o->done, j);
        } else {
            printf("%s removed from %s (was %s)\n", id, queue, state_words(detail));
        }
        return;
    }
    o->failed++;
    if (strcmp(status, "missing") == 0)
        job_error(q, o->errors, queue, id, "job '%s' not found in queue '%s'", id, queue);
    else if (strcmp(status, "locked") == 0)
        job_error(q, o->errors, queue, id,
                  "job '%s' of %s is locked: a worker is running it; remove it once it has "
                  "finished",
                  id, queue);
    else if (strcmp(status, "scheduler") == 0)
        job_error(q, o->errors, queue, id,
                  "job '%s' of %s is the next run of job scheduler '%s': remove the schedule, "
                  "not its job",
                  id, queue, detail);
    else if (strcmp(status, "children") == 0)
        job_error(q, o->errors, queue, id,
                  "job '%s' of %s is a flow parent with %s unfinished children: remove it with "
                  "Node's Job.remove(), which removes them too",
                  id, queue, detail);
    else
        job_error(q, o->errors, queue, id,
                  "job '%s' of %s is an unfinished child of flow parent %s: remove it with "
                  "Node's Job.remove(), which updates the parent",
                  id, queue, detail);
}

/* remove and promote: each named job (QUEUE given or found), through
 * script in batches; the document lists them under verb. summary: the
 * count on stderr when several were named. */
static int each_named_job(struct qcmd *q, int argc, char **argv, const char *script, int nfixed,
                          const char *const *fixed, size_t stride, per_job_fn fn, const char *verb,
                          bool summary)
{
    const char **pos = calloc((size_t)argc, sizeof(*pos));
    const struct qc_opt opts[] = {{"--queue", &q->queue, NULL}, {NULL, NULL, NULL}};
    struct target *t = NULL;
    struct outcome o;
    cJSON *doc;
    int npos, n = 0, rc;
    if (!pos)
        return 1;
    rc = qc_parse(q, argc, argv, opts, pos, argc, &npos);
    if (rc == 0 && npos < 1)
        rc = qc_usage(q, "expects [QUEUE] ID...");
    if (rc || !qc_redis(q)) {
        free(pos);
        return rc ? rc : 1;
    }
    outcome_init(q, &o, &doc, verb);
    t = targets_of(q, npos, pos, o.errors, &n, &o.failed);
    rc = !t || run_over(q, script, nfixed, fixed, t, n, stride, fn, &o, verb) < 0;
    if (!rc && doc)
        qc_json_print(doc);
    else
        cJSON_Delete(doc);
    if (summary && !q->json && npos > 1)
        fprintf(stderr, "%d job(s) %s\n", o.ok, verb);
    free(t);
    free(pos);
    return rc || o.failed ? 1 : 0;
}

int qc_cmd_remove(struct qcmd *q, int argc, char **argv)
{
    static const char *const fixed[] = {"ids"};
    return each_named_job(q, argc, argv, nova__lua_job_remove, 1, fixed, 3, on_removed, "removed",
                          true);
}

/* ---- promote ---------------------------------------------------------------- */

static void on_promoted(struct qcmd *q, const char *queue, redisReply **e, void *arg)
{
    struct outcome *o = arg;
    qc_progress_clear();
    const char *id = e[0]->str;
    long long code = e[1]->integer;
    char state[64];
    if (code == 0) {
        o->ok++;
        if (o->done) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "queue", queue);
            cJSON_AddStringToObject(j, "id", id);
            cJSON_AddItemToArray(o->done, j);
        } else {
            printf("%s promoted in %s\n", id, queue);
        }
        return;
    }
    o->failed++;
    if (code == -1 || qc_job_state(q, queue, id, state, sizeof(state)) < 0 || !*state)
        job_error(q, o->errors, queue, id, "job '%s' not found in queue '%s'", id, queue);
    else
        job_error(q, o->errors, queue, id,
                  "job '%s' of %s is not delayed (it is %s): only delayed jobs can be promoted", id,
                  queue, state);
}

int qc_cmd_promote(struct qcmd *q, int argc, char **argv)
{
    return each_named_job(q, argc, argv, nova__lua_job_promote, 0, NULL, 2, on_promoted, "promoted",
                          false);
}

/* ---- clean ------------------------------------------------------------------ */

static long long state_size(struct qcmd *q, const char *queue, const char *key, bool list)
{
    redisReply *r = nova__redis_sync_command(q->c, list ? "LLEN %s:%s:%s" : "ZCARD %s:%s:%s",
                                             q->prefix, queue, key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return n;
}

int qc_cmd_clean(struct qcmd *q, int argc, char **argv)
{
    const char *pos[3], *older = NULL, *limit_s = NULL, *state, *key;
    const struct qc_opt opts[] = {
        {"--older-than", &older, NULL}, {"--limit", &limit_s, NULL}, {NULL, NULL, NULL}};
    long long grace, limit = 0, cutoff, start = 0, cleaned = 0, skipped = 0, looked = 0, total;
    bool finished, list;
    struct qc_progress prog;
    cJSON *doc = NULL, *ids = NULL;
    char when[40];
    int npos, rc;
    rc = qc_parse(q, argc, argv, opts, pos, 3, &npos);
    if (rc == 0 && npos != 2)
        rc = qc_usage(q, "expects QUEUE STATE");
    if (rc)
        return rc;
    state = qc_state_name(pos[1]);
    if (!state || strcmp(state, "waiting-children") == 0)
        return qc_usage(q,
                        "cannot clean state '%s' (completed, failed, delayed, prioritized, "
                        "waiting, paused, active)",
                        pos[1]);
    if (!older)
        return qc_usage(q, "--older-than D is required (e.g. 7d; 0 for every job)");
    grace = nova__queue_parse_duration(older);
    if (grace < 0)
        return qc_usage(q,
                        "--older-than: '%s' is not a duration (e.g. 30s, 15m, 12h, 7d, 2w, "
                        "1h30m, 0)",
                        older);
    if (limit_s) {
        char *end;
        errno = 0;
        limit = strtoll(limit_s, &end, 10);
        if (errno || *end || end == limit_s || limit < 0)
            return qc_usage(q, "--limit must be a non-negative integer, got '%s'", limit_s);
    }
    if (!qc_redis(q))
        return 1;
    key = strcmp(state, "waiting") == 0 ? "wait" : state;
    finished = strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0;
    list = strcmp(key, "wait") == 0 || strcmp(key, "paused") == 0 || strcmp(key, "active") == 0;
    cutoff = qc_now_ms() - grace;
    total = state_size(q, pos[0], key, list);
    if (q->json) {
        doc = cJSON_CreateObject();
        ids = cJSON_CreateArray();
    }
    qc_progress_start(&prog, "cleaning: looked at");
    for (;;) {
        long long cap = CLEAN_WINDOW, fetched, scanned, removed;
        char cut_s[24], start_s[24], win_s[24], cap_s[24];
        redisReply *r;
        if (limit > 0 && limit - cleaned < cap)
            cap = limit - cleaned;
        if (cap <= 0)
            break;
        snprintf(cut_s, sizeof(cut_s), "%lld", cutoff);
        snprintf(start_s, sizeof(start_s), "%lld", start);
        snprintf(win_s, sizeof(win_s), "%d", CLEAN_WINDOW);
        snprintf(cap_s, sizeof(cap_s), "%lld", cap);
        {
            const char *av[] = {"clean", key, cut_s, start_s, win_s, cap_s};
            r = qc_eval(q, nova__lua_job_remove, pos[0], NULL, 6, av);
        }
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 4) {
            if (r)
                qc_err(q, "unexpected reply from Redis");
            freeReplyObject(r);
            qc_progress_end(&prog);
            cJSON_Delete(doc);
            cJSON_Delete(ids);
            return 1;
        }
        fetched = r->element[0]->integer;
        scanned = r->element[1]->integer;
        removed = r->element[2]->integer;
        skipped += r->element[3]->integer;
        for (size_t i = 4; ids && i < r->elements; i++)
            cJSON_AddItemToArray(ids, cJSON_CreateString(r->element[i]->str));
        freeReplyObject(r);
        cleaned += removed;
        looked += scanned;
        qc_progress(&prog, (size_t)looked, (size_t)(total > looked ? total : looked));
        if (finished) {
            if (fetched < cap)
                break;
        } else {
            start += scanned - removed;
            if (fetched < CLEAN_WINDOW && scanned == fetched)
                break;
        }
    }
    qc_progress_end(&prog);
    if (doc) {
        cJSON_AddStringToObject(doc, "queue", pos[0]);
        cJSON_AddStringToObject(doc, "state", state);
        cJSON_AddStringToObject(doc, "olderThan", older);
        qc_iso(cutoff, when, sizeof(when));
        cJSON_AddStringToObject(doc, "cutoff", when);
        cJSON_AddNumberToObject(doc, "cleaned", (double)cleaned);
        cJSON_AddNumberToObject(doc, "skipped", (double)skipped);
        cJSON_AddItemToObject(doc, "ids", ids);
        qc_json_print(doc);
    } else {
        printf("cleaned %lld %s job%s older than %s from %s", cleaned, state,
               cleaned == 1 ? "" : "s", older, pos[0]);
        if (skipped > 0)
            printf("; left %lld that a worker is running or that belong to a scheduler or "
                   "an unfinished flow",
                   skipped);
        printf("\n");
    }
    return 0;
}

/* ---- pause, resume ---------------------------------------------------------- */

static int pause_resume(struct qcmd *q, int argc, char **argv, bool pause)
{
    const char *pos[2];
    const char *mode = pause ? "pause" : "resume";
    redisReply *r;
    bool was;
    int npos, rc = qc_parse(q, argc, argv, NULL, pos, 2, &npos);
    if (rc == 0 && npos != 1)
        rc = qc_usage(q, "expects one QUEUE");
    if (rc)
        return rc;
    if (!qc_redis(q))
        return 1;
    if (!qc_queue_known(q, pos[0]))
        fprintf(stderr,
                "nova-worker queue %s: note: queue '%s' has no jobs or metadata under the "
                "prefix '%s' yet\n",
                q->name, pos[0], q->prefix);
    r = qc_eval(q, nova__lua_queue_pause, pos[0], NULL, 1, &mode);
    if (!r)
        return 1;
    was = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (q->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "queue", pos[0]);
        cJSON_AddBoolToObject(doc, "paused", pause);
        cJSON_AddBoolToObject(doc, "wasPaused", was);
        qc_json_print(doc);
    } else if (pause) {
        printf("%s paused%s\n", pos[0], was ? " (it was paused already)" : "");
    } else {
        printf("%s resumed%s\n", pos[0], was ? "" : " (it was not paused)");
    }
    return 0;
}

int qc_cmd_pause(struct qcmd *q, int argc, char **argv)
{
    return pause_resume(q, argc, argv, true);
}

int qc_cmd_resume(struct qcmd *q, int argc, char **argv)
{
    return pause_resume(q, argc, argv, false);
}

/* ---- replay ----------------------------------------------------------------- */

/* The job a replay adds: the name and options Nova's API gives reward
 * issuances (shared/reference/nova-rewards-system.md §2.2, queue
 * reward-issuance: job name `issue-reward`, "`jobId` = idempotencyKey;
 * queue defaults `attempts 3`, `backoff {type:'exponential', delay:1000}`,
 * `removeOnComplete true`, `removeOnFail false`"). The jobId is the
 * replay's own, added by the script. */
static const char replay_name[] = "issue-reward";
static const char replay_opts[] = "{\"attempts\":3,\"backoff\":{\"type\":\"exponential\","
                                  "\"delay\":1000},\"removeOnComplete\":true,"
                                  "\"removeOnFail\":false}";

struct replay {
    struct qcmd *q;
    const char *dlq, *to;
    char dlq_base[1024];
    bool dry, all;
    cJSON *done, *errors;
    int ok, failed;
    /* the batch being gathered: id, data as read, new data, stem */
    char *batch[REPLAYS_PER_CALL * 4];
    int nbatch;
};

static void batch_clear(struct replay *rp)
{
    for (int i = 0; i < rp->nbatch * 4; i++)
        free(rp->batch[i]);
    rp->nbatch = 0;
}

static const char *batch_data(const struct replay *rp, const char *id)
{
    for (int i = 0; i < rp->nbatch; i++)
        if (strcmp(rp->batch[i * 4], id) == 0)
            return rp->batch[i * 4 + 2];
    return "";
}

static int replay_flush(struct replay *rp)
{
    const char *args[5 + REPLAYS_PER_CALL * 4];
    char now[24];
    redisReply *r;
    int k = 0;
    if (rp->nbatch == 0)
        return 0;
    snprintf(now, sizeof(now), "%lld", qc_now_ms());
    args[k++] = now;
    args[k++] = rp->dlq_base;
    args[k++] = rp->dry ? "1" : "0";
    args[k++] = replay_name;
    args[k++] = replay_opts;
    for (int i = 0; i < rp->nbatch * 4; i++)
        args[k++] = rp->batch[i];
    r = qc_eval(rp->q, nova__lua_dlq_replay, rp->to, rp->dlq, k, args);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)rp->nbatch * 4) {
        if (r)
            qc_err(rp->q, "unexpected reply from Redis");
        freeReplyObject(r);
        batch_clear(rp);
        return -1;
    }
    qc_progress_clear();
    for (size_t e = 0; e < r->elements; e += 4) {
        const char *id = r->element[e]->str, *status = r->element[e + 1]->str,
                   *new_id = r->element[e + 2]->str, *detail = r->element[e + 3]->str;
        const char *data = batch_data(rp, id);
        if (strcmp(status, "replayed") == 0 || strcmp(status, "dry") == 0) {
            rp->ok++;
            if (rp->done) {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "id", id);
                cJSON_AddStringToObject(j, "newId", new_id);
                cJSON_AddItemToObject(j, "data", qc_json_value(data));
                cJSON_AddItemToArray(rp->done, j);
            } else if (rp->dry) {
                printf("%s -> %s %s\n", id, new_id, data);
            } else {
                printf("%s -> %s\n", id, new_id);
            }
        } else if (strcmp(status, "missing") == 0) {
            rp->failed++;
            job_error(rp->q, rp->errors, rp->dlq, id, "job '%s' not found in %s", id, rp->dlq);
        } else if (strcmp(status, "not-dead-letter") == 0) {
            rp->failed++;
            job_error(rp->q, rp->errors, rp->dlq, id,
                      "job '%s' of %s is not a dead letter (its name is '%s')", id, rp->dlq,
                      detail);
        } else if (strcmp(status, "changed") == 0) {
            rp->failed++;
            job_error(rp->q, rp->errors, rp->dlq, id,
                      "dead letter '%s' of %s changed while being replayed: run the command "
                      "again",
                      id, rp->dlq);
        } else if (strcmp(status, "locked") == 0) {
            rp->failed++;
            job_error(rp->q, rp->errors, rp->dlq, id,
                      "dead letter '%s' of %s is locked by a worker running it", id, rp->dlq);
        } else {
            rp->failed++;
            job_error(rp->q, rp->errors, rp->dlq, id, "no free job id %s-replay-1 to -1000 in %s",
                      id, rp->to);
        }
    }
    freeReplyObject(r);
    batch_clear(rp);
    return 0;
}

/* Reads one dead letter and adds it to the batch (flushing a full one).
 * -1: a Redis failure, the command stops. */
static int replay_one(struct replay *rp, const char *id)
{
    struct qcmd *q = rp->q;
    redisReply *r = nova__redis_sync_command(q->c, "HMGET %s%s name data", rp->dlq_base, id);
    char *data, *stem;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        qc_err(q, "%s", r && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(q->c));
        freeReplyObject(r);
        return -1;
    }
    if (r->element[0]->type != REDIS_REPLY_STRING) {
        if (!rp->all) {
            rp->failed++;
            job_error(q, rp->errors, rp->dlq, id, "job '%s' not found in %s", id, rp->dlq);
        }
        freeReplyObject(r);
        return 0;
    }
    if (strcmp(r->element[0]->str, "dead-letter") != 0) {
        if (rp->all) {
            qc_progress_clear();
            fprintf(stderr,
                    "nova-worker queue replay: skipped job '%s' of %s: not a dead letter "
                    "(its name is '%s')\n",
                    id, rp->dlq, r->element[0]->str);
        } else {
            rp->failed++;
            job_error(q, rp->errors, rp->dlq, id,
                      "job '%s' of %s is not a dead letter (its name is '%s')", id, rp->dlq,
                      r->element[0]->str);
        }
        freeReplyObject(r);
        return 0;
    }
    data = r->element[1]->type == REDIS_REPLY_STRING
               ? nova__queue_dead_letter_data(r->element[1]->str)
               : NULL;
    if (!data) {
        rp->failed++;
        job_error(q, rp->errors, rp->dlq, id,
                  "dead letter '%s' of %s has no JSON object as data: nothing to replay", id,
                  rp->dlq);
        freeReplyObject(r);
        return 0;
    }
    stem = strdup(id);
    rp->batch[rp->nbatch * 4] = strdup(id);
    rp->batch[rp->nbatch * 4 + 1] = strdup(r->element[1]->str);
    rp->batch[rp->nbatch * 4 + 2] = data;
    rp->batch[rp->nbatch * 4 + 3] = stem;
    rp->nbatch++;
    freeReplyObject(r);
    for (int i = 0; i < 4; i++)
        if (!rp->batch[(rp->nbatch - 1) * 4 + i]) {
            qc_err(q, "out of memory");
            return -1;
        }
    /* custom job ids may not contain ':' */
    for (char *p = stem; *p; p++)
        if (*p == ':')
            *p = '-';
    return rp->nbatch == REPLAYS_PER_CALL ? replay_flush(rp) : 0;
}

/* Every job id waiting in the dead-letter queue, oldest first. */
static redisReply *dlq_ids(struct replay *rp, const char *key, bool list)
{
    redisReply *r = nova__redis_sync_command(
        rp->q->c, list ? "LRANGE %s%s 0 -1" : "ZRANGE %s%s 0 -1", rp->dlq_base, key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        qc_err(rp->q, "%s",
               r && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(rp->q->c));
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int qc_cmd_replay(struct qcmd *q, int argc, char **argv)
{
    const char **pos = calloc((size_t)argc, sizeof(*pos));
    struct replay rp;
    const struct qc_opt opts[] = {{"--to", &rp.to, NULL},
                                  {"--all", NULL, &rp.all},
                                  {"--dry-run", NULL, &rp.dry},
                                  {NULL, NULL, NULL}};
    struct qc_progress prog;
    char tobuf[1024];
    cJSON *doc = NULL;
    int npos, rc, stop = 0;
    memset(&rp, 0, sizeof(rp));
    rp.q = q;
    if (!pos)
        return 1;
    rc = qc_parse(q, argc, argv, opts, pos, argc, &npos);
    if (rc == 0 && npos < 1)
        rc = qc_usage(q, "expects the dead-letter queue");
    if (rc == 0 && (npos > 1) == rp.all)
        rc = qc_usage(q, "give the dead letters' ids or --all (not both)");
    if (rc == 0) {
        size_t n = strlen(pos[0]);
        rp.dlq = pos[0];
        if (!rp.to && n > 4 && strcmp(pos[0] + n - 4, "-dlq") == 0) {
            snprintf(tobuf, sizeof(tobuf), "%.*s", (int)(n - 4), pos[0]);
            rp.to = tobuf;
        }
        if (!rp.to)
            rc = qc_usage(q, "%s does not end in -dlq: say where its jobs go with --to QUEUE",
                          pos[0]);
        else if (strcmp(rp.to, rp.dlq) == 0)
            rc = qc_usage(q, "--to names the dead-letter queue itself");
        else if (nova__queue_key_base(q->prefix, rp.dlq, rp.dlq_base, sizeof(rp.dlq_base)) < 0)
            rc = qc_usage(q, "queue name too long");
    }
    if (rc || !qc_redis(q)) {
        free(pos);
        return rc ? rc : 1;
    }
    if (q->json) {
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "dlq", rp.dlq);
        cJSON_AddStringToObject(doc, "to", rp.to);
        cJSON_AddBoolToObject(doc, "dryRun", rp.dry);
        rp.done = cJSON_AddArrayToObject(doc, "replayed");
        rp.errors = cJSON_AddArrayToObject(doc, "errors");
    }
    qc_progress_start(&prog, rp.dry ? "checked" : "replayed");
    if (rp.all) {
        static const struct {
            const char *key;
            bool list;
        } states[] = {{"wait", true}, {"paused", true}, {"prioritized", false}, {"delayed", false}};
        redisReply *lists[4] = {NULL};
        size_t total = 0, done = 0;
        for (int s = 0; s < 4 && !stop; s++) {
            lists[s] = dlq_ids(&rp, states[s].key, states[s].list);
            if (!lists[s])
                stop = 1;
            else
                total += lists[s]->elements;
        }
        for (int s = 0; s < 4 && !stop; s++) {
            size_t n = lists[s]->elements;
            for (size_t i = 0; i < n && !stop; i++) {
                /* lists: the oldest at the tail */
                size_t at = states[s].list ? n - 1 - i : i;
                stop = replay_one(&rp, lists[s]->element[at]->str) < 0;
                qc_progress(&prog, ++done, total);
            }
        }
        for (int s = 0; s < 4; s++)
            freeReplyObject(lists[s]);
    } else {
        for (int i = 1; i < npos && !stop; i++) {
            stop = replay_one(&rp, pos[i]) < 0;
            qc_progress(&prog, (size_t)i, (size_t)npos - 1);
        }
    }
    if (!stop)
        stop = replay_flush(&rp) < 0;
    batch_clear(&rp);
    qc_progress_end(&prog);
    if (doc && !stop)
        qc_json_print(doc);
    else
        cJSON_Delete(doc);
    if (rp.dry)
        fprintf(stderr,
                "dry run: %d dead letter(s) of %s would be replayed to %s; nothing was "
                "changed\n",
                rp.ok, rp.dlq, rp.to);
    else
        fprintf(stderr, "replayed %d dead letter(s) from %s to %s\n", rp.ok, rp.dlq, rp.to);
    free(pos);
    return stop || rp.failed ? 1 : 0;
}
