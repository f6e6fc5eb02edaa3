/* schedulers - periodic jobs as BullMQ job schedulers; see schedulers.h. */
#include "config.h"
#include "queue/schedulers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "common/log.h"
#include "queue/queue.h"
#include "queue/queue_scripts.h"
#include "queue/redis_conn.h"
#include "sched/sched.h"

static struct nova__redis_script s_upsert = {.name = "sched_upsert",
                                             .source = nova__lua_sched_upsert};
static struct nova__redis_script s_advance = {.name = "sched_advance",
                                              .source = nova__lua_sched_advance};
static struct nova__redis_script s_remove = {.name = "sched_remove",
                                             .source = nova__lua_sched_remove};

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- sync ----------------------------------------------------------------- */

struct sync {
    void (*done)(void *arg, int failures);
    void *arg;
    char *owner;
    int pending;
    int failures;
};

struct sync_call {
    struct sync *s;
    char what[200]; /* for the log: "upsert leaderboard on leaderboard" */
};

static void sync_unref(struct sync *s)
{
    if (--s->pending > 0)
        return;
    s->done(s->arg, s->failures);
    free(s->owner);
    free(s);
}

static void on_synced(void *arg, int status, const redisReply *r)
{
    struct sync_call *c = arg;
    struct sync *s = c->s;
    struct nova__log_ctx lc = {.plugin = s->owner};
    if (status != 0 || r == NULL || r->type == REDIS_REPLY_ERROR) {
        s->failures++;
        if (status != -ECANCELED)
            nova__log(NOVA_LOG_WARN, &lc, "schedules: %s failed: %s", c->what,
                      r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : strerror(-status));
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               strcmp(r->element[0]->str, "kept") != 0) {
        nova__log(NOVA_LOG_INFO, &lc, "schedules: %s: %s, next run at %s ms", c->what,
                  r->element[0]->str,
                  r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "?");
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
               strncmp(c->what, "remove", 6) == 0) {
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                nova__log(NOVA_LOG_INFO, &lc, "schedules: %s: removed %s (no longer configured)",
                          c->what, r->element[i]->str);
    }
    free(c);
    sync_unref(s);
}

static void call(struct nova__queue_engine *e, struct sync *s, struct nova__redis_script *script,
                 int argc, const char **argv, const char *fmt, ...) NOVA_PRINTF(6, 7);

/* argv[0] is the meta key (KEYS[1]), argv[1] the key base (ARGV[1]). A call
 * that cannot be sent counts as a failure. */
static void call(struct nova__queue_engine *e, struct sync *s, struct nova__redis_script *script,
                 int argc, const char **argv, const char *fmt, ...)
{
    struct sync_call *c = calloc(1, sizeof *c);
    if (c == NULL) {
        s->failures++;
        return;
    }
    c->s = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->what, sizeof c->what, fmt, ap);
    va_end(ap);
    s->pending++;
    int rc =
        nova__redis_conn_eval(nova__queue_cmd_conn(e), script, on_synced, c, 1, argc, argv, NULL);
    if (rc < 0) {
        s->pending--;
        s->failures++;
        free(c);
    }
}

int nova__queue_sched_sync(struct nova__queue_engine *e, const char *owner,
                           const struct nova__sched_entry *entries, size_t n,
                           const char *const *queues, size_t nqueues,
                           void (*done)(void *arg, int failures), void *arg)
{
    if (e == NULL || owner == NULL || done == NULL || (n > 0 && entries == NULL))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!nova__sched_valid_id(entries[i].id) || entries[i].queue == NULL ||
            entries[i].sched == NULL || entries[i].job_name == NULL)
            return -EINVAL;
    struct sync *s = calloc(1, sizeof *s);
    if (s == NULL || (s->owner = strdup(owner)) == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->done = done;
    s->arg = arg;
    s->pending = 1; /* released below, so done runs after every call was sent */
    const char *prefix = nova__queue_prefix(e);
    char base[1024], meta[1040], now[24], first[24], every[24];
    snprintf(now, sizeof now, "%" PRId64, wall_ms());
    for (size_t i = 0; i < n; i++) {
        const struct nova__sched_entry *en = &entries[i];
        if (nova__queue_key_base(prefix, en->queue, base, sizeof base) < 0) {
            s->failures++;
            continue;
        }
        snprintf(meta, sizeof meta, "%smeta", base);
        const struct nova__sched *sc = en->sched;
        int64_t slot = nova__sched_next(sc, wall_ms());
        if (slot < 0) {
            struct nova__log_ctx lc = {.plugin = owner};
            nova__log(NOVA_LOG_ERROR, &lc, "schedules: %s (%s) never fires", en->id, sc->spec);
            s->failures++;
            continue;
        }
        snprintf(first, sizeof first, "%" PRId64, slot);
        bool is_every = sc->kind == NOVA__SCHED_EVERY;
        snprintf(every, sizeof every, "%" PRId64, sc->every_ms);
        const char *argv[] = {meta,
                              base,
                              now,
                              en->id,
                              en->job_name,
                              en->data_json != NULL ? en->data_json : "{}",
                              NOVA__SCHED_RUN_OPTS,
                              is_every ? "every" : "cron",
                              is_every ? every : sc->spec,
                              !is_every && sc->tz != NULL ? nova__tz_name(sc->tz) : "",
                              first,
                              owner};
        call(e, s, &s_upsert, 12, argv, "upsert %s on %s", en->id, en->queue);
    }
    for (size_t q = 0; q < nqueues; q++) {
        if (queues[q] == NULL || nova__queue_key_base(prefix, queues[q], base, sizeof base) < 0)
            continue;
        snprintf(meta, sizeof meta, "%smeta", base);
        size_t argc = 3;
        const char **argv = calloc(n + 3, sizeof *argv);
        if (argv == NULL) {
            s->failures++;
            continue;
        }
        argv[0] = meta;
        argv[1] = base;
        argv[2] = owner;
        for (size_t i = 0; i < n; i++)
            if (strcmp(entries[i].queue, queues[q]) == 0)
                argv[argc++] = entries[i].id;
        call(e, s, &s_remove, (int)argc, argv, "remove on %s", queues[q]);
        free(argv);
    }
    sync_unref(s);
    return 0;
}

/* ---- advance ------------------------------------------------------------------- */

/* Parsed cron specs by (pattern, tz): a zone file is read once. */
#define CACHE_MAX 32
static struct cached {
    char *pattern, *tz;
    struct nova__sched sched;
} cache[CACHE_MAX];
static size_t cache_n;

static const struct nova__sched *cron_of(const char *pattern, const char *tz)
{
    for (size_t i = 0; i < cache_n; i++)
        if (strcmp(cache[i].pattern, pattern) == 0 && strcmp(cache[i].tz, tz) == 0)
            return &cache[i].sched;
    char err[256];
    struct cached c = {0};
    if (nova__sched_parse(pattern, tz[0] ? tz : NULL, &c.sched, err, sizeof err) < 0) {
        nova__log(NOVA_LOG_ERROR, NULL, "job scheduler pattern \"%s\" (tz \"%s\"): %s", pattern, tz,
                  err);
        return NULL;
    }
    if (c.sched.kind != NOVA__SCHED_CRON || cache_n == CACHE_MAX ||
        (c.pattern = strdup(pattern)) == NULL || (c.tz = strdup(tz)) == NULL) {
        free(c.pattern);
        nova__sched_free(&c.sched);
        return NULL;
    }
    cache[cache_n++] = c;
    return &cache[cache_n - 1].sched;
}

void nova__queue_sched_cache_free(void)
{
    for (size_t i = 0; i < cache_n; i++) {
        free(cache[i].pattern);
        free(cache[i].tz);
        nova__sched_free(&cache[i].sched);
    }
    cache_n = 0;
}

struct advance {
    struct nova__queue_engine *e;
    char base[1024], meta[1040], sid[128], producer[256];
    int64_t slot;
    int tries;
};

static void advance_send(struct advance *a, const char *pattern, const char *tz);

static void on_advanced(void *arg, int status, const redisReply *r)
{
    struct advance *a = arg;
    if (status == 0 && r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "respec") == 0 &&
        a->tries++ == 0) {
        /* The template changed since this job was made: its cron line wins. */
        advance_send(a, r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "",
                     r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "");
        return;
    }
    if (status != 0 || r == NULL || r->type == REDIS_REPLY_ERROR ||
        (r->type == REDIS_REPLY_ARRAY && r->elements == 3)) {
        if (status != -ECANCELED)
            nova__log(NOVA_LOG_WARN, NULL,
                      "job scheduler %s: the next run of %s was not made (%s); the schedule's "
                      "owner makes it at its next sync",
                      a->sid, a->producer,
                      status != 0                                 ? strerror(-status)
                      : r != NULL && r->type == REDIS_REPLY_ERROR ? r->str
                                                                  : "its cron line is invalid");
    }
    free(a);
}

static void advance_send(struct advance *a, const char *pattern, const char *tz)
{
    char now[24], slot[24], next[24] = "";
    int64_t t = wall_ms();
    snprintf(now, sizeof now, "%" PRId64, t);
    snprintf(slot, sizeof slot, "%" PRId64, a->slot);
    if (pattern[0] != '\0') {
        const struct nova__sched *sc = cron_of(pattern, tz);
        int64_t n = sc != NULL ? nova__sched_next(sc, a->slot > t ? a->slot : t) : -1;
        if (n > 0)
            snprintf(next, sizeof next, "%" PRId64, n);
    }
    const char *argv[] = {a->meta, a->base, now, a->sid, a->producer, slot, next, pattern, tz};
    if (nova__redis_conn_eval(nova__queue_cmd_conn(a->e), &s_advance, on_advanced, a, 1, 9, argv,
                              NULL) < 0) {
        nova__log(NOVA_LOG_WARN, NULL,
                  "job scheduler %s: Redis is not reachable, the next run of %s was not made; "
                  "the schedule's owner makes it at its next sync",
                  a->sid, a->producer);
        free(a);
    }
}

void nova__queue_sched_advance(struct nova__queue_engine *e, const char *queue, const char *job_id,
                               const char *rjk, const char *opts_json, size_t opts_len)
{
    /* "repeat:<id>:<slot ms>": the slot is the last part */
    const char *colon = strrchr(job_id, ':');
    if (strncmp(job_id, "repeat:", 7) != 0 || colon == NULL || strlen(rjk) >= 128 ||
        strlen(job_id) >= 256)
        return; /* a v5 legacy repeatable or a stranger: not a job scheduler's */
    struct advance *a = calloc(1, sizeof *a);
    if (a == NULL)
        return;
    a->e = e;
    a->slot = strtoll(colon + 1, NULL, 10);
    snprintf(a->sid, sizeof a->sid, "%s", rjk);
    snprintf(a->producer, sizeof a->producer, "%s", job_id);
    if (nova__queue_key_base(nova__queue_prefix(e), queue, a->base, sizeof a->base) < 0) {
        free(a);
        return;
    }
    snprintf(a->meta, sizeof a->meta, "%smeta", a->base);
    char pattern[256] = "", tz[128] = "";
    cJSON *o = opts_json != NULL ? cJSON_ParseWithLength(opts_json, opts_len) : NULL;
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(o, "repeat");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(rep, "pattern");
    const cJSON *z = cJSON_GetObjectItemCaseSensitive(rep, "tz");
    if (cJSON_IsString(p))
        snprintf(pattern, sizeof pattern, "%s", p->valuestring);
    if (cJSON_IsString(z))
        snprintf(tz, sizeof tz, "%s", z->valuestring);
    cJSON_Delete(o);
    advance_send(a, pattern, tz);
}
