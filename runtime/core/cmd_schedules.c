/* cmd_schedules - `nova-worker schedules`; see cmd_schedules.h. */
#include "config.h"
#include "core/cmd_schedules.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "core/loader.h"
#include "core/schedules.h"
#include "queue/cmd_queue.h"
#include "queue/redis_sync.h"
#include "queue/queue.h"
#include "queue/queue_scripts.h"
#include "queue/schedulers.h"

static const char usage[] =
    "usage: nova-worker schedules [-c FILE] [--count N]\n"
    "       nova-worker schedules run NAME [-c FILE]\n"
    "\n"
    "Lists the schedules of the enabled plugins with their next N runs (default 3)\n"
    "and what Redis holds for each (next slot, runs made). `run NAME` adds one run\n"
    "of schedule NAME now, as an extra job on its queue; the schedule's own slots\n"
    "do not move. A schedule is named by its id, or QUEUE/ID when ids repeat.\n";

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

struct loaded {
    struct nova__plugin *p;
};

/* Opens and configures every enabled plugin and collects its schedules;
 * prints each problem. Returns how many plugins failed. */
static int load_plugins(const struct nova__config *cfg, struct nova__plugin **out, size_t *n)
{
    int failures = 0;
    *n = 0;
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const struct nova__plugin_section *s = &cfg->plugins[i];
        if (!s->enabled)
            continue;
        char err[NOVA_CONFIG_ERRMAX];
        struct nova__plugin *p = NULL;
        int rc = nova__plugin_open(cfg->worker.plugin_dir, s->name, &p, err, sizeof err);
        if (rc == 0)
            rc = nova__plugin_configure(p, cfg, s, err, sizeof err);
        if (rc == 0) {
            p->schedules = calloc(1, sizeof *p->schedules);
            rc = p->schedules == NULL
                     ? -ENOMEM
                     : nova__schedules_collect(p, p->config, p->schedules, err, sizeof err);
            if (rc != 0) {
                free(p->schedules);
                p->schedules = NULL;
            }
        }
        if (rc != 0) {
            fprintf(stderr, "%s:%d: [plugin %s] %s\n", s->file, s->line, s->name, err);
            nova__plugin_close(p);
            failures++;
            continue;
        }
        out[(*n)++] = p;
    }
    return failures;
}

static const char *prefix_of(const struct nova__config *cfg)
{
    return cfg->redis.prefix && *cfg->redis.prefix ? cfg->redis.prefix : "bull";
}

static void redis_state(struct nova__redis_sync *c, const char *prefix,
                        const struct nova_schedule *d, const struct nova__sched *sc)
{
    char base[1024];
    if (c == NULL || nova__queue_key_base(prefix, d->queue, base, sizeof base) < 0)
        return;
    redisReply *score = nova__redis_sync_command(c, "ZSCORE %srepeat %s", base, d->id);
    redisReply *tpl = nova__redis_sync_command(c, "HMGET %srepeat:%s ic nova", base, d->id);
    if (score != NULL && score->type == REDIS_REPLY_STRING) {
        char when[64];
        nova__schedules_format_time(sc, strtoll(score->str, NULL, 10), when, sizeof when);
        printf("  in Redis:  next %s (job repeat:%s:%s), %s run(s) made\n", when, d->id, score->str,
               tpl != NULL && tpl->type == REDIS_REPLY_ARRAY && tpl->elements == 2 &&
                       tpl->element[0]->type == REDIS_REPLY_STRING
                   ? tpl->element[0]->str
                   : "0");
    } else if (score != NULL && score->type == REDIS_REPLY_NIL) {
        printf("  in Redis:  not yet (a running worker with this plugin adds it)\n");
    }
    freeReplyObject(score);
    freeReplyObject(tpl);
}

static int list(const struct nova__config *cfg, struct nova__plugin **ps, size_t n, long count)
{
    struct nova__redis_sync *c = nova__redis_connect_blocking(cfg, "nova-worker schedules");
    if (c == NULL)
        fprintf(stderr, "nova-worker schedules: listing without what Redis holds\n");
    size_t shown = 0;
    int64_t now = wall_ms();
    for (size_t i = 0; i < n; i++) {
        const struct nova__plugin_schedules *s = ps[i]->schedules;
        for (size_t k = 0; s != NULL && k < s->n; k++) {
            const struct nova_schedule *d = &s->decl[k];
            const struct nova__sched *sc = &s->parsed[k];
            printf("%s%s  (plugin %s, queue %s, job %s)\n  spec:      %s%s%s\n", shown ? "\n" : "",
                   d->id, ps[i]->name, d->queue, d->job_name, d->spec,
                   sc->kind == NOVA__SCHED_CRON ? " in " : "",
                   sc->kind == NOVA__SCHED_CRON ? nova__tz_name(sc->tz) : "");
            int64_t runs[32];
            size_t got = nova__sched_next_n(sc, now, runs, (size_t)count);
            printf("  next runs:");
            for (size_t r = 0; r < got; r++) {
                char when[64];
                nova__schedules_format_time(sc, runs[r], when, sizeof when);
                printf("%s%s", r ? ", " : " ", when);
            }
            printf("%s\n", got == 0 ? " never" : "");
            if (strcmp(s->data[k], "{}") != 0)
                printf("  data:      %s\n", s->data[k]);
            redis_state(c, prefix_of(cfg), d, sc);
            shown++;
        }
    }
    if (shown == 0)
        printf("no schedules: no enabled plugin declares one\n");
    nova__redis_sync_close(c);
    return 0;
}

static int run_now(const struct nova__config *cfg, struct nova__plugin **ps, size_t n,
                   const char *name)
{
    const struct nova_schedule *found = NULL;
    const char *data = NULL;
    int matches = 0;
    const char *slash = strchr(name, '/');
    for (size_t i = 0; i < n; i++) {
        const struct nova__plugin_schedules *s = ps[i]->schedules;
        for (size_t k = 0; s != NULL && k < s->n; k++) {
            const struct nova_schedule *d = &s->decl[k];
            bool match = slash != NULL
                             ? strncmp(name, d->queue, (size_t)(slash - name)) == 0 &&
                                   d->queue[slash - name] == '\0' && strcmp(slash + 1, d->id) == 0
                             : strcmp(name, d->id) == 0;
            if (match) {
                found = d;
                data = s->data[k];
                matches++;
            }
        }
    }
    if (matches == 0) {
        fprintf(stderr,
                "nova-worker schedules run: no schedule named '%s' (see nova-worker "
                "schedules)\n",
                name);
        return 1;
    }
    if (matches > 1) {
        fprintf(stderr, "nova-worker schedules run: '%s' names %d schedules; use QUEUE/ID\n", name,
                matches);
        return 2;
    }
    struct nova__redis_sync *c = nova__redis_connect_blocking(cfg, "nova-worker schedules run");
    if (c == NULL)
        return 1;
    char base[1024], meta[1040], now[24], id[160];
    int64_t t = wall_ms();
    if (nova__queue_key_base(prefix_of(cfg), found->queue, base, sizeof base) < 0) {
        nova__redis_sync_close(c);
        return 1;
    }
    snprintf(meta, sizeof meta, "%smeta", base);
    snprintf(now, sizeof now, "%" PRId64, t);
    /* An id of its own (never a slot's), so the schedule's next run stays. */
    snprintf(id, sizeof id, "%s-run-%" PRId64, found->id, t);
    const char *av[] = {"EVAL", nova__lua_add,        "1", meta, base, now, found->job_name,
                        data,   NOVA__SCHED_RUN_OPTS, id,  "0",  "0",  "0"};
    redisReply *r = nova__redis_sync_argv(c, 13, av, NULL);
    int rc = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        fprintf(stderr, "nova-worker schedules run: %s\n",
                r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : nova__redis_sync_error(c));
        rc = 1;
    } else {
        printf("added job %s on queue %s (a run of schedule %s)\n", r->element[0]->str,
               found->queue, found->id);
    }
    freeReplyObject(r);
    nova__redis_sync_close(c);
    return rc;
}

int nova__cmd_schedules(const struct nova__config *cfg, int argc, char **argv)
{
    long count = 3;
    const char *run = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            char *end;
            count = strtol(argv[++i], &end, 10);
            if (*end != '\0' || count < 1 || count > 32) {
                fprintf(stderr, "nova-worker schedules: --count must be 1 to 32\n");
                return 2;
            }
        } else if (strcmp(argv[i], "run") == 0 && i + 1 < argc && run == NULL) {
            run = argv[++i];
        } else {
            fprintf(stderr, "nova-worker schedules: unexpected argument '%s'\n\n%s", argv[i],
                    usage);
            return 2;
        }
    }
    if (cfg == NULL) {
        fprintf(stderr, "nova-worker schedules: no configuration\n");
        return 1;
    }
    struct nova__plugin **ps = calloc(cfg->plugin_count + 1, sizeof *ps);
    if (ps == NULL)
        return 1;
    size_t n = 0;
    int failures = load_plugins(cfg, ps, &n);
    int rc = run != NULL ? run_now(cfg, ps, n, run) : list(cfg, ps, n, count);
    for (size_t i = 0; i < n; i++)
        nova__plugin_close(ps[i]);
    free(ps);
    return rc != 0 ? rc : failures > 0 ? 1 : 0;
}
