#include "config.h"
#include "queue/cmd_queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "queue/queue.h"
#include "queue/queue_scripts.h"
#include "queue/redis_conn.h"
#include "queue/redis_sync.h"

static const char usage[] =
    "usage: nova-worker queue COMMAND ...\n"
    "\n"
    "  stats [QUEUE...]          job counts per state (all queues when none given)\n"
    "  add QUEUE NAME JSON [--job-id ID] [--delay MS] [--attempts N]\n"
    "                            add a job, as Node's queue.add() does\n"
    "  failed QUEUE              list failed job ids with their reasons\n"
    "  retry QUEUE [JOB_ID...]   move failed jobs back to wait (all when none given)\n"
    "\n"
    "Each command takes --help. Redis comes from the [redis] section (url, prefix).\n";

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
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

static const char *prefix_of(const struct nova__config *cfg)
{
    return cfg->redis.prefix && *cfg->redis.prefix ? cfg->redis.prefix : "bull";
}

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int queue_stats_one(struct nova__redis_sync *c, const char *prefix, const char *queue)
{
    static const char *const lists[] = {"wait", "paused", "active", NULL};
    static const char *const sets[] = {"prioritized", "delayed",          "completed",
                                       "failed",      "waiting-children", NULL};
    printf("%s:", queue);
    for (int i = 0; lists[i]; i++) {
        redisReply *r = nova__redis_sync_command(c, "LLEN %s:%s:%s", prefix, queue, lists[i]);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            fprintf(stderr, "\nnova-worker queue: Redis error\n");
            return 1;
        }
        printf(" %s=%lld", strcmp(lists[i], "wait") == 0 ? "waiting" : lists[i], r->integer);
        freeReplyObject(r);
    }
    for (int i = 0; sets[i]; i++) {
        redisReply *r = nova__redis_sync_command(c, "ZCARD %s:%s:%s", prefix, queue, sets[i]);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            fprintf(stderr, "\nnova-worker queue: Redis error\n");
            return 1;
        }
        printf(" %s=%lld", sets[i], r->integer);
        freeReplyObject(r);
    }
    printf("\n");
    return 0;
}

static int cmd_stats(struct nova__redis_sync *c, const char *prefix, int argc, char **argv)
{
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            rc |= queue_stats_one(c, prefix, argv[i]);
        return rc;
    }
    /* No names: every queue that has a meta or id key under the prefix
     * (on every master of a cluster). */
    for (size_t m = 0; m < nova__redis_sync_masters(c); m++) {
        char cursor[32] = "0";
        do {
            redisReply *r = nova__redis_sync_command_at(c, m, "SCAN %s MATCH %s:*:id COUNT 1000",
                                                        cursor, prefix);
            if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                freeReplyObject(r);
                fprintf(stderr, "nova-worker queue: SCAN failed\n");
                return 1;
            }
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            for (size_t i = 0; i < r->element[1]->elements; i++) {
                const char *key = r->element[1]->element[i]->str;
                size_t plen = strlen(prefix) + 1, klen = strlen(key);
                if (klen > plen + 3) {
                    char *q = strndup(key + plen, klen - plen - 3);
                    if (q && !strchr(q, ':'))
                        rc |= queue_stats_one(c, prefix, q);
                    free(q);
                }
            }
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
    }
    return rc;
}

static int parse_i64(const char *what, const char *s, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (errno || *end || end == s || *out < 0) {
        fprintf(stderr, "nova-worker queue add: %s must be a non-negative integer, got '%s'\n",
                what, s);
        return -1;
    }
    return 0;
}

static int cmd_add(struct nova__redis_sync *c, const char *prefix, int argc, char **argv)
{
    struct nova_job_options o = {
        .struct_size = sizeof(o), .remove_on_complete = -1, .remove_on_fail = -1};
    const char *pos[3];
    int npos = 0;
    char base[1024], meta[1040], err[256], now[24], delay[24];
    char *ojson, *data;
    cJSON *parsed;
    redisReply *r;
    for (int i = 1; i < argc; i++) {
        long long v;
        if (strcmp(argv[i], "--job-id") == 0 && i + 1 < argc) {
            o.job_id = argv[++i];
        } else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc) {
            if (parse_i64("--delay", argv[++i], &v) < 0)
                return 2;
            o.delay_ms = v;
        } else if (strcmp(argv[i], "--attempts") == 0 && i + 1 < argc) {
            if (parse_i64("--attempts", argv[++i], &v) < 0 || v > 1000000)
                return 2;
            o.attempts = (int)v;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "nova-worker queue add: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "nova-worker queue add: too many arguments\n");
            return 2;
        }
    }
    if (npos != 3) {
        fprintf(stderr, "usage: nova-worker queue add QUEUE NAME JSON [--job-id ID] "
                        "[--delay MS] [--attempts N]\n");
        return 2;
    }
    parsed = cJSON_Parse(pos[2]);
    if (!parsed) {
        fprintf(stderr, "nova-worker queue add: JSON data is not valid JSON: %s\n", pos[2]);
        return 2;
    }
    data = cJSON_PrintUnformatted(parsed);
    cJSON_Delete(parsed);
    ojson = nova__queue_opts_json(&o, err, sizeof(err));
    if (!ojson || nova__queue_key_base(prefix, pos[0], base, sizeof(base)) < 0) {
        fprintf(stderr, "nova-worker queue add: %s\n", ojson ? "queue name too long" : err);
        free(ojson);
        free(data);
        return 2;
    }
    snprintf(meta, sizeof(meta), "%smeta", base);
    snprintf(now, sizeof(now), "%lld", now_ms());
    snprintf(delay, sizeof(delay), "%lld", (long long)o.delay_ms);
    {
        const char *av[] = {"EVAL", nova__lua_add, "1",  meta,  base,
                            now,    pos[1],        data, ojson, o.job_id ? o.job_id : "",
                            delay,  "0",           "0"};
        r = nova__redis_sync_argv(c, 13, av, NULL);
    }
    free(ojson);
    free(data);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        fprintf(stderr, "nova-worker queue add: %s\n",
                r && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(c));
        freeReplyObject(r);
        return 1;
    }
    printf("%s%s\n", r->element[0]->str,
           r->element[1]->integer ? " (duplicate: a job with this id exists)" : "");
    freeReplyObject(r);
    return 0;
}

static int cmd_failed(struct nova__redis_sync *c, const char *prefix, int argc, char **argv)
{
    redisReply *r;
    if (argc != 2) {
        fprintf(stderr, "usage: nova-worker queue failed QUEUE\n");
        return 2;
    }
    r = nova__redis_sync_command(c, "ZRANGE %s:%s:failed 0 -1", prefix, argv[1]);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "nova-worker queue failed: %s\n",
                r && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(c));
        freeReplyObject(r);
        return 1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const char *id = r->element[i]->str;
        redisReply *f =
            nova__redis_sync_command(c, "HMGET %s:%s:%s failedReason atm", prefix, argv[1], id);
        const char *reason = "", *atm = "0";
        if (f && f->type == REDIS_REPLY_ARRAY && f->elements == 2) {
            if (f->element[0]->type == REDIS_REPLY_STRING)
                reason = f->element[0]->str;
            if (f->element[1]->type == REDIS_REPLY_STRING)
                atm = f->element[1]->str;
        }
        printf("%s\tattempts=%s\t%s\n", id, atm, reason);
        freeReplyObject(f);
    }
    freeReplyObject(r);
    return 0;
}

static int cmd_retry(struct nova__redis_sync *c, const char *prefix, int argc, char **argv)
{
    char base[1024], meta[1040], now[24];
    const char **av;
    redisReply *r;
    int n = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: nova-worker queue retry QUEUE [JOB_ID...]\n");
        return 2;
    }
    if (nova__queue_key_base(prefix, argv[1], base, sizeof(base)) < 0) {
        fprintf(stderr, "nova-worker queue retry: queue name too long\n");
        return 2;
    }
    snprintf(meta, sizeof(meta), "%smeta", base);
    snprintf(now, sizeof(now), "%lld", now_ms());
    av = calloc((size_t)argc + 6, sizeof(*av));
    if (!av)
        return 1;
    av[n++] = "EVAL";
    av[n++] = nova__lua_retry_failed;
    av[n++] = "1";
    av[n++] = meta;
    av[n++] = base;
    av[n++] = now;
    for (int i = 2; i < argc; i++)
        av[n++] = argv[i];
    r = nova__redis_sync_argv(c, n, av, NULL);
    free(av);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "nova-worker queue retry: %s\n",
                r && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(c));
        freeReplyObject(r);
        return 1;
    }
    n = (int)r->elements;
    for (size_t i = 0; i < r->elements; i++)
        printf("%s\n", r->element[i]->str);
    fprintf(stderr, "%d job(s) moved back to wait\n", n);
    freeReplyObject(r);
    return argc > 2 && n == 0 ? 1 : 0;
}

int nova__cmd_queue(const struct nova__config *cfg, int argc, char **argv)
{
    static const struct {
        const char *name, *help;
        int (*fn)(struct nova__redis_sync *, const char *, int, char **);
    } cmds[] = {
        {"stats",
         "usage: nova-worker queue stats [QUEUE...]\n\nPrints the number of jobs "
         "per state (waiting, paused, active, prioritized,\ndelayed, completed, "
         "failed, waiting-children) for each queue, or for\nevery queue under the "
         "configured prefix when none is named.\n",
         cmd_stats},
        {"add",
         "usage: nova-worker queue add QUEUE NAME JSON [--job-id ID] [--delay MS] "
         "[--attempts N]\n\nAdds a job exactly as Node's queue.add() would and prints "
         "its id.\nA custom --job-id that already exists is reported as a duplicate.\n",
         cmd_add},
        {"failed",
         "usage: nova-worker queue failed QUEUE\n\nLists failed jobs: id, attempts "
         "made and failure reason, oldest first.\n",
         cmd_failed},
        {"retry",
         "usage: nova-worker queue retry QUEUE [JOB_ID...]\n\nMoves the given failed "
         "jobs (or up to 1000 of the oldest when none is\ngiven) back to wait. Exit "
         "status 1 when none of the given ids was failed.\n",
         cmd_retry},
    };
    struct nova__redis_sync *c;
    int rc;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        if (wants_help(argc - 1, argv + 1)) {
            fputs(cmds[i].help, stdout);
            return 0;
        }
        c = nova__redis_connect_blocking(cfg, "nova-worker queue");
        if (!c)
            return 1;
        rc = cmds[i].fn(c, prefix_of(cfg), argc - 1, argv + 1);
        nova__redis_sync_close(c);
        return rc;
    }
    fprintf(stderr, "nova-worker queue: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
