#include "config.h"
#include "core/host.h"
#include "common/metrics.h"
#include "queue/queue.h"
#include "queue/queue_host.h"
#include "stellar/stellar.h"
#include "common/svc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct nova__host_timer {
    uv_timer_t handle;
    struct nova__host_ctx *ctx;
    struct nova__host_timer *prev, *next;
    nova_timer_cb cb;
    void *arg;
    bool repeating;
    bool closing;
};

static void host_log(const struct nova_host *host, enum nova_log_level level, const nova_job *job,
                     const char *fmt, ...)
{
    struct nova__host_ctx *ctx = nova__host_ctx_of(host);
    struct nova__log_ctx lc = ctx->log_ctx;
    if (job != NULL && ctx->services != NULL && ctx->services->queues != NULL) {
        const struct nova__log_ctx *jc = nova__qh_job_log_ctx(job);
        lc.queue = jc->queue;
        lc.job = jc->job;
    }
    va_list ap;
    va_start(ap, fmt);
    nova__logv(level, &lc, fmt, ap);
    va_end(ap);
}

static int64_t host_now_ms(const struct nova_host *host)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void timer_release(struct nova__host_timer *t)
{
    if (t->closing)
        return;
    t->closing = true;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        t->ctx->timers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    uv_close((uv_handle_t *)&t->handle, timer_closed);
}

static void timer_fired(uv_timer_t *handle)
{
    struct nova__host_timer *t = handle->data;
    t->cb(t->arg);
    /* A one-shot timer ends with its callback (unless the callback stopped it). */
    if (!t->repeating)
        timer_release(t);
}

static nova_timer *host_timer_start(const struct nova_host *host, uint64_t after_ms,
                                    uint64_t repeat_ms, nova_timer_cb cb, void *arg)
{
    struct nova__host_ctx *ctx = nova__host_ctx_of(host);
    if (cb == NULL || ctx->services == NULL || ctx->services->loop == NULL)
        return NULL;
    struct nova__host_timer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    uv_timer_init(ctx->services->loop, &t->handle);
    t->handle.data = t;
    t->ctx = ctx;
    t->cb = cb;
    t->arg = arg;
    t->repeating = repeat_ms > 0;
    t->next = ctx->timers;
    if (t->next != NULL)
        t->next->prev = t;
    ctx->timers = t;
    uv_timer_start(&t->handle, timer_fired, after_ms, repeat_ms);
    return (nova_timer *)t;
}

static void host_timer_stop(const struct nova_host *host, nova_timer *timer)
{
    if (timer != NULL)
        timer_release((struct nova__host_timer *)timer);
}

/* A client in services was made by its module, which is therefore loaded. */
static const struct nova__svc_http *http_module(const struct nova__services *services)
{
    return services != NULL && services->http != NULL ? nova__svc_loaded(NOVA__SVC_HTTP) : NULL;
}

static const struct nova__svc_pg *pg_module(const struct nova__services *services)
{
    return services != NULL && services->pg != NULL ? nova__svc_loaded(NOVA__SVC_PG) : NULL;
}

void nova__host_release(struct nova__host_ctx *ctx)
{
    while (ctx->timers != NULL)
        timer_release(ctx->timers);
    const struct nova__svc_http *http = http_module(ctx->services);
    const struct nova__svc_pg *pg = pg_module(ctx->services);
    if (http != NULL)
        http->cancel_tag(ctx->services->http, &ctx->host);
    if (pg != NULL)
        pg->pool_release_owner(ctx->services->pg, &ctx->host, true);
    if (ctx->services != NULL && ctx->services->queues != NULL)
        nova__queue_release_owner(ctx->services->queues, &ctx->host, true);
}

void nova__host_after_shutdown(struct nova__host_ctx *ctx)
{
    const struct nova__svc_pg *pg = pg_module(ctx->services);
    if (pg != NULL)
        pg->pool_release_owner(ctx->services->pg, &ctx->host, false);
    if (ctx->services != NULL && ctx->services->queues != NULL)
        nova__queue_release_owner(ctx->services->queues, &ctx->host, false);
}

static nova_metric *host_metric_new(const struct nova_host *host, enum nova_metric_type type,
                                    const char *name, const char *help,
                                    const char *const *label_names, const double *buckets,
                                    size_t bucket_count)
{
    return nova__metric_new(type, name, help, label_names, buckets, bucket_count);
}

void nova__host_init(struct nova__host_ctx *ctx, struct nova__services *services,
                     const char *plugin_name, void *owner)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->services = services;
    ctx->owner = owner;
    ctx->log_ctx.plugin = plugin_name;

    struct nova_host *h = &ctx->host;
    h->abi_major = NOVA_ABI_MAJOR;
    h->abi_minor = NOVA_ABI_MINOR;
    h->struct_size = sizeof *h;
    h->plugin_name = plugin_name;
    h->log = host_log;
    h->now_ms = host_now_ms;
    h->timer_start = host_timer_start;
    h->timer_stop = host_timer_stop;
    h->metric_new = host_metric_new;
    h->metric_add = nova__metric_add;
    h->metric_set = nova__metric_set;
    h->metric_observe = nova__metric_observe;
    const struct nova__svc_http *http = http_module(services);
    const struct nova__svc_pg *pg = pg_module(services);
    h->http = http != NULL ? http->api : NULL;
    h->pg = pg != NULL ? pg->api : NULL;
    /* The offline half always works; network calls answer -ENOTSUP without
     * a configured Horizon. */
    h->stellar = &nova__stellar_api;

    if (services != NULL && services->queues != NULL) {
        h->subscribe = nova__qh_subscribe;
        h->set_concurrency = nova__qh_set_concurrency;
        h->enqueue = nova__qh_enqueue;
        h->job_id = nova__qh_job_id;
        h->job_name = nova__qh_job_name;
        h->job_queue = nova__qh_job_queue;
        h->job_data_json = nova__qh_job_data_json;
        h->job_data = nova__qh_job_data;
        h->job_attempts_made = nova__qh_job_attempts_made;
        h->job_attempts_max = nova__qh_job_attempts_max;
        h->job_timestamp_ms = nova__qh_job_timestamp_ms;
        h->job_cancelled = nova__qh_job_cancelled;
        h->job_progress = nova__qh_job_progress;
        h->job_done = nova__qh_job_done;
        h->job_retry = nova__qh_job_retry;
        h->job_fail = nova__qh_job_fail;
        h->redis = &nova__redis_api;
    }
}
