/*
 * skeleton - a template for nova-worker plugins. Copy this folder, rename
 * "skeleton" everywhere, and keep what you need.
 *
 * What it shows:
 *   - the descriptor (NOVA_PLUGIN_ABI + NOVA_PLUGIN_DEFINE), the only
 *     exported symbol;
 *   - a declarative config table: the host validates the [plugin skeleton]
 *     section against it (unknown keys, types, ranges) before init();
 *   - state allocated in init() and freed in shutdown();
 *   - a repeating timer and a counter metric;
 *   - an optional queue subscription whose handler finishes every job with
 *     exactly one of job_done / job_retry / job_fail.
 *
 * Everything the plugin touches comes from the host table; it never links
 * runtime symbols and never sees the event loop.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nova/plugin.h>

/* Filled by the host from [plugin skeleton]; see the table below. */
struct skeleton_config {
    char *greeting;      /* NOVA_CONFIG_STRING: host-owned */
    int64_t interval_ms; /* NOVA_CONFIG_DURATION */
    char *queue;         /* empty: do not consume jobs */
    int64_t concurrency; /* NOVA_CONFIG_INT */
};

static const struct nova_config_entry skeleton_config_table[] = {
    {.key = "greeting",
     .type = NOVA_CONFIG_STRING,
     .default_value = "hello",
     .offset = offsetof(struct skeleton_config, greeting),
     .help = "text logged on every tick and returned as job result"},
    {.key = "interval",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "60s",
     .offset = offsetof(struct skeleton_config, interval_ms),
     .help = "how often the tick runs",
     .min = 10,
     .max = 86400000},
    {.key = "queue",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = offsetof(struct skeleton_config, queue),
     .help = "BullMQ queue to consume (empty: none)"},
    {.key = "concurrency",
     .type = NOVA_CONFIG_INT,
     .default_value = "1",
     .offset = offsetof(struct skeleton_config, concurrency),
     .help = "jobs processed at once",
     .min = 1,
     .max = 1000},
    {.key = NULL},
};

struct skeleton {
    const struct nova_host *host;      /* valid until shutdown() returns */
    const struct skeleton_config *cfg; /* host-owned; replaced on reload */
    nova_timer *tick;
    nova_metric *ticks_total;
    nova_metric *jobs_total;
    unsigned long ticks;
};

static void on_tick(void *arg)
{
    struct skeleton *s = arg;
    s->ticks++;
    s->host->metric_add(s->ticks_total, NULL, 1);
    s->host->log(s->host, NOVA_LOG_DEBUG, NULL, "%s (tick %lu)", s->cfg->greeting, s->ticks);
}

/* Called for each job; must end with exactly one outcome call. */
static void on_job(void *arg, nova_job *job)
{
    struct skeleton *s = arg;
    const struct nova_host *h = s->host;
    const char *labels[] = {"done"};

    /* Validate the data first: bad input fails the job for good with a
     * reason that names the field (a transient error would be
     * job_retry(job, "why", -1): the job's backoff applies). */
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(h->job_data(job), "name");
    if (who != NULL && !cJSON_IsString(who)) {
        const char *failed[] = {"failed"};
        h->metric_add(s->jobs_total, failed, 1);
        h->job_fail(job, "data.name must be a string");
        return;
    }
    /* Results are JSON: build them with cJSON, never by hand. */
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "greeting", s->cfg->greeting);
    if (who != NULL)
        cJSON_AddStringToObject(result, "name", who->valuestring);
    cJSON_AddNumberToObject(result, "attempt", h->job_attempts_made(job) + 1);
    char *text = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    if (text == NULL) {
        h->job_retry(job, "out of memory", -1);
        return;
    }
    h->metric_add(s->jobs_total, labels, 1);
    h->job_done(job, text);
    cJSON_free(text);
}

static int start_tick(struct skeleton *s)
{
    s->tick = s->host->timer_start(s->host, (uint64_t)s->cfg->interval_ms,
                                   (uint64_t)s->cfg->interval_ms, on_tick, s);
    return s->tick ? 0 : -ENOMEM;
}

static int skeleton_init(const struct nova_host *host, const void *config, void **state)
{
    struct skeleton *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->host = host;
    s->cfg = config;

    static const char *const outcome[] = {"outcome", NULL};
    s->ticks_total = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_skeleton_ticks_total",
                                      "Timer ticks of the skeleton plugin", NULL, NULL, 0);
    s->jobs_total = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_skeleton_jobs_total",
                                     "Jobs handled by the skeleton plugin", outcome, NULL, 0);
    int rc = start_tick(s);
    if (rc == 0 && s->cfg->queue[0] != '\0') {
        if (!NOVA_HOST_HAS(host, subscribe)) {
            host->log(host, NOVA_LOG_ERROR, NULL, "this host cannot consume queues");
            rc = -ENOTSUP;
        } else {
            struct nova_subscription sub = {
                .struct_size = sizeof sub,
                .queue = s->cfg->queue,
                .concurrency = (unsigned)s->cfg->concurrency,
                .handle = on_job,
                .arg = s,
            };
            rc = host->subscribe(host, &sub);
        }
    }
    if (rc != 0) {
        if (s->tick != NULL)
            host->timer_stop(host, s->tick);
        free(s);
        return rc;
    }
    host->log(host, NOVA_LOG_INFO, NULL, "skeleton started: greeting '%s', every %lld ms",
              s->cfg->greeting, (long long)s->cfg->interval_ms);
    *state = s;
    return 0;
}

/* SIGHUP with a changed [plugin skeleton] section. The old config stays
 * valid until we return 0. */
static int skeleton_reload(void *state, const void *config)
{
    struct skeleton *s = state;
    const struct skeleton_config *next = config;
    if (strcmp(next->queue, s->cfg->queue) != 0)
        return -EINVAL; /* changing the queue needs a restart of the plugin */
    if (next->concurrency != s->cfg->concurrency && s->cfg->queue[0] != '\0')
        s->host->set_concurrency(s->host, s->cfg->queue, (unsigned)next->concurrency);
    s->host->timer_stop(s->host, s->tick);
    s->cfg = next;
    return start_tick(s);
}

/* Draining: stop making new work; in-flight jobs still finish. */
static void skeleton_stop(void *state)
{
    struct skeleton *s = state;
    if (s->tick != NULL) {
        s->host->timer_stop(s->host, s->tick);
        s->tick = NULL;
    }
}

static void skeleton_shutdown(void *state)
{
    struct skeleton *s = state;
    /* The host already stopped any timer we left running. */
    s->host->log(s->host, NOVA_LOG_INFO, NULL, "skeleton stopped after %lu ticks", s->ticks);
    free(s);
}

static const struct nova_plugin skeleton_plugin = {
    NOVA_PLUGIN_ABI,
    .name = "skeleton",
    .version = "1.0.0",
    .description = "template plugin: a timer, a metric and an optional queue handler",
    .config = skeleton_config_table,
    .config_size = sizeof(struct skeleton_config),
    .init = skeleton_init,
    .reload = skeleton_reload,
    .stop = skeleton_stop,
    .shutdown = skeleton_shutdown,
};

NOVA_PLUGIN_DEFINE(skeleton_plugin)
