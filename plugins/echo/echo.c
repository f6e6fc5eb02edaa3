/*
 * echo - the smallest useful queue plugin: it answers every job of one
 * queue with the job's own data. Used by the interop tests and the
 * benchmark, and a worked example of the job API.
 *
 * Job data (all optional):
 *   sleep_ms  wait this long first (on a host timer, never blocking)
 *   progress  any JSON: reported with job_progress() before the outcome
 *   fail      string: report a transient failure with this reason
 *             (retried per the job's attempts and backoff)
 *   fatal     string (the reason) or true: report a permanent failure
 *   return    any JSON: the job's return value (default null)
 *
 * [plugin echo]
 *   queue = echo        # queue to serve
 *   concurrency = 1     # jobs in flight, 1..10000
 *   names =             # optional: only these job names (comma-separated);
 *                       # jobs with other names are left for other workers
 *   schedule =          # optional: also run a job "tick" on a schedule
 *                       # ("every 5s", or a cron line), data {"scheduled":true}
 *   timezone = UTC      # the zone a cron schedule is read in
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "nova/plugin.h"

struct echo_config {
    char *queue;
    int64_t concurrency;
    char *names;
    char *schedule;
    char *timezone;
};

/* One job waiting for its timer; listed so shutdown can free what the
 * host's timer stop left behind. */
struct pending {
    struct pending *prev, *next;
    struct echo_state *st;
    nova_job *job;
};

struct echo_state {
    const struct nova_host *host;
    const struct echo_config *cfg;
    struct pending *pending;
    char *names_buf;    /* the names key, split in place */
    const char **names; /* NULL-terminated, or NULL for every name */
};

static void pending_unlink(struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->st->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static const struct nova_config_entry echo_table[] = {
    {.key = "queue",
     .type = NOVA_CONFIG_STRING,
     .default_value = "echo",
     .offset = offsetof(struct echo_config, queue),
     .help = "BullMQ queue to serve"},
    {.key = "concurrency",
     .type = NOVA_CONFIG_INT,
     .default_value = "1",
     .offset = offsetof(struct echo_config, concurrency),
     .help = "jobs in flight at once",
     .min = 1,
     .max = 10000},
    {.key = "names",
     .type = NOVA_CONFIG_STRING,
     .offset = offsetof(struct echo_config, names),
     .help = "optional: only these job names (comma-separated); others are left for other "
             "workers"},
    {.key = "schedule",
     .type = NOVA_CONFIG_STRING,
     .offset = offsetof(struct echo_config, schedule),
     .help = "optional: also run a job \"tick\" on the queue on this schedule (every 5s, or a "
             "cron line)"},
    {.key = "timezone",
     .type = NOVA_CONFIG_STRING,
     .default_value = "UTC",
     .offset = offsetof(struct echo_config, timezone),
     .help = "IANA time zone a cron schedule is read in"},
    {.key = NULL},
};

/* The schedule, when one is configured: pure, from the config alone. */
static int echo_schedules(const void *config, struct nova_schedule *out, size_t max, char *err,
                          size_t errlen)
{
    const struct echo_config *cfg = config;
    (void)err;
    (void)errlen;
    if (cfg->schedule == NULL || cfg->schedule[0] == '\0' || max < 1)
        return 0;
    out[0] = (struct nova_schedule){.id = "echo-tick",
                                    .queue = cfg->queue,
                                    .job_name = "tick",
                                    .spec = cfg->schedule,
                                    .timezone = cfg->timezone,
                                    .data_json = "{\"scheduled\":true}"};
    return 1;
}

static void answer(struct echo_state *st, nova_job *job)
{
    const struct nova_host *h = st->host;
    const cJSON *data = h->job_data(job);
    const cJSON *fail = cJSON_GetObjectItemCaseSensitive(data, "fail");
    const cJSON *fatal = cJSON_GetObjectItemCaseSensitive(data, "fatal");
    const cJSON *ret = cJSON_GetObjectItemCaseSensitive(data, "return");
    const cJSON *progress = cJSON_GetObjectItemCaseSensitive(data, "progress");
    char *text;

    if (progress) {
        text = cJSON_PrintUnformatted(progress);
        if (text && h->job_progress(job, text) < 0)
            h->log(h, NOVA_LOG_WARN, job, "echo: could not report progress");
        free(text);
    }

    if (cJSON_IsString(fail)) {
        h->job_retry(job, fail->valuestring, -1);
        return;
    }
    if (cJSON_IsString(fatal) || cJSON_IsTrue(fatal)) {
        h->job_fail(job, cJSON_IsString(fatal) ? fatal->valuestring : "fatal");
        return;
    }
    text = ret ? cJSON_PrintUnformatted(ret) : NULL;
    h->job_done(job, text);
    free(text);
}

static void on_timer(void *arg)
{
    struct pending *p = arg;
    pending_unlink(p);
    answer(p->st, p->job);
    free(p);
}

static void handle(void *arg, nova_job *job)
{
    struct echo_state *st = arg;
    const struct nova_host *h = st->host;
    const cJSON *sleep = cJSON_GetObjectItemCaseSensitive(h->job_data(job), "sleep_ms");
    struct pending *p;

    if (!cJSON_IsNumber(sleep) || sleep->valuedouble <= 0) {
        answer(st, job);
        return;
    }
    p = malloc(sizeof(*p));
    if (!p) {
        h->job_retry(job, "echo: out of memory", -1);
        return;
    }
    p->st = st;
    p->job = job;
    p->prev = NULL;
    p->next = st->pending;
    if (st->pending)
        st->pending->prev = p;
    st->pending = p;
    if (!h->timer_start(h, (uint64_t)sleep->valuedouble, 0, on_timer, p)) {
        pending_unlink(p);
        free(p);
        h->job_retry(job, "echo: could not start a timer", -1);
    }
}

static int echo_init(const struct nova_host *host, const void *config, void **state)
{
    const struct echo_config *cfg = config;
    struct echo_state *st = calloc(1, sizeof(*st));
    struct nova_subscription sub = {
        .struct_size = sizeof(sub),
        .queue = cfg->queue,
        .concurrency = (unsigned)cfg->concurrency,
        .handle = handle,
    };
    int rc;
    if (!st)
        return -ENOMEM;
    st->host = host;
    st->cfg = cfg;
    if (cfg->names != NULL && cfg->names[0] != '\0') {
        size_t n = 2;
        for (const char *c = cfg->names; *c; c++)
            n += *c == ',';
        st->names_buf = strdup(cfg->names);
        st->names = calloc(n, sizeof *st->names);
        if (st->names_buf == NULL || st->names == NULL) {
            free(st->names_buf);
            free(st->names);
            free(st);
            return -ENOMEM;
        }
        size_t k = 0;
        for (char *save = NULL, *tok = strtok_r(st->names_buf, ", ", &save); tok != NULL;
             tok = strtok_r(NULL, ", ", &save))
            st->names[k++] = tok;
        sub.job_names = st->names;
    }
    sub.arg = st;
    rc = host->subscribe(host, &sub);
    if (rc < 0) {
        free(st->names_buf);
        free(st->names);
        free(st);
        return rc;
    }
    host->log(host, NOVA_LOG_INFO, NULL, "echo serving queue %s with concurrency %lld", cfg->queue,
              (long long)cfg->concurrency);
    *state = st;
    return 0;
}

static int echo_reload(void *state, const void *config)
{
    struct echo_state *st = state;
    const struct echo_config *cfg = config;
    if (strcmp(cfg->queue, st->cfg->queue) != 0 ||
        strcmp(cfg->names ? cfg->names : "", st->cfg->names ? st->cfg->names : "") != 0)
        return -EINVAL; /* a new queue or names need a restart of the plugin */
    st->cfg = cfg;
    return st->host->set_concurrency(st->host, cfg->queue, (unsigned)cfg->concurrency);
}

static void echo_shutdown(void *state)
{
    struct echo_state *st = state;
    /* The host stopped our timers; their jobs were given back by the
     * engine's drain, so only the memory is left. */
    while (st->pending) {
        struct pending *p = st->pending;
        pending_unlink(p);
        free(p);
    }
    free(st->names_buf);
    free(st->names);
    free(st);
}

static const struct nova_plugin echo_plugin = {
    NOVA_PLUGIN_ABI,
    .requires = NOVA_REQUIRES_REDIS,
    .name = "echo",
    .version = "1.0.0",
    .description = "answers every job of a queue with its data (example, tests, benchmark)",
    .config = echo_table,
    .config_size = sizeof(struct echo_config),
    .init = echo_init,
    .reload = echo_reload,
    .shutdown = echo_shutdown,
    .schedules = echo_schedules,
};

NOVA_PLUGIN_DEFINE(echo_plugin)
