/*
 * host - the services table handed to each plugin (see host.h).
 *
 * The services know nothing of struct nova_host: each exposes calls on an
 * explicit instance, with the plugin's host pointer as an opaque owner
 * tag. This file is the glue: every host-facing member finds the instance
 * in the plugin's nova__services and calls the service (through its
 * module's table for the loaded services). So dependencies point one way,
 * core -> services, and a plugin never holds a service pointer.
 */
#include "config.h"
#include "core/host.h"
#include "common/metrics.h"
#include "http/svc_http.h"
#include "pg/svc_pg.h"
#include "queue/queue.h"
#include "queue/queue_host.h"
#include "stellar/stellar.h"
#include "stellar/stellar_err.h"
#include "sys/file.h"
#include "sys/process.h"

#include <errno.h>
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
    return services != NULL && services->http != NULL ? nova__svc_http_loaded() : NULL;
}

static const struct nova__svc_pg *pg_module(const struct nova__services *services)
{
    return services != NULL && services->pg != NULL ? nova__svc_pg_loaded() : NULL;
}

static struct nova__services *services_of(const struct nova_host *host)
{
    return host != NULL ? nova__host_services(host) : NULL;
}

/* ---- queue: host->subscribe, set_concurrency, enqueue, redis -------------- */

static struct nova__queue_engine *engine_of(const struct nova_host *host)
{
    struct nova__services *s = services_of(host);
    return s != NULL ? s->queues : NULL;
}

static int host_subscribe(const struct nova_host *host, const struct nova_subscription *sub)
{
    return nova__queue_subscribe(engine_of(host), host, sub);
}

static int host_set_concurrency(const struct nova_host *host, const char *queue,
                                unsigned concurrency)
{
    return nova__queue_set_concurrency(engine_of(host), host, queue, concurrency);
}

static int host_enqueue(const struct nova_host *host, const char *queue, const char *name,
                        const char *data_json, const struct nova_job_options *opts,
                        nova_enqueue_cb cb, void *arg)
{
    return nova__queue_enqueue(engine_of(host), host, queue, name, data_json, opts, cb, arg);
}

static int host_redis_command(const struct nova_host *host, int argc, const char *const *argv,
                              const size_t *argvlen, nova_redis_cb cb, void *arg)
{
    return nova__queue_redis_command(engine_of(host), host, argc, argv, argvlen, cb, arg);
}

const struct nova_redis_api nova__host_redis_api = {
    .struct_size = sizeof(struct nova_redis_api),
    .command = host_redis_command,
};

/* ---- PostgreSQL: host->pg ------------------------------------------------ */

static struct nova__pg_pool *pool_of(const struct nova_host *host)
{
    struct nova__services *s = services_of(host);
    return s != NULL ? s->pg : NULL;
}

static int host_pg_query(const struct nova_host *host, const char *sql, int nparams,
                         const char *const *params, nova_pg_cb cb, void *arg)
{
    const struct nova__svc_pg *m = pg_module(services_of(host));
    return m != NULL ? m->query(pool_of(host), host, sql, nparams, params, cb, arg) : -ENOTSUP;
}

static int host_pg_begin(const struct nova_host *host, nova_pg_lease_cb cb, void *arg)
{
    const struct nova__svc_pg *m = pg_module(services_of(host));
    return m != NULL ? m->begin(pool_of(host), host, cb, arg) : -ENOTSUP;
}

static int host_pg_lease_query(const struct nova_host *host, nova_pg_lease *lease, const char *sql,
                               int nparams, const char *const *params, nova_pg_cb cb, void *arg)
{
    const struct nova__svc_pg *m = pg_module(services_of(host));
    return m != NULL ? m->lease_query(pool_of(host), host, lease, sql, nparams, params, cb, arg)
                     : -ENOTSUP;
}

static int host_pg_commit(const struct nova_host *host, nova_pg_lease *lease, nova_pg_cb cb,
                          void *arg)
{
    const struct nova__svc_pg *m = pg_module(services_of(host));
    return m != NULL ? m->lease_end(pool_of(host), host, lease, true, cb, arg) : -ENOTSUP;
}

static int host_pg_rollback(const struct nova_host *host, nova_pg_lease *lease, nova_pg_cb cb,
                            void *arg)
{
    const struct nova__svc_pg *m = pg_module(services_of(host));
    return m != NULL ? m->lease_end(pool_of(host), host, lease, false, cb, arg) : -ENOTSUP;
}

/* The module's result accessors plus the calls above; rebuilt from the
 * loaded module's table each time (a reload may move its functions). */
static struct nova_pg_api host_pg;

const struct nova_pg_api *nova__host_pg_api(void)
{
    const struct nova__svc_pg *m = nova__svc_pg_loaded();
    if (m == NULL)
        return NULL;
    host_pg = *m->result_api;
    host_pg.query = host_pg_query;
    host_pg.begin = host_pg_begin;
    host_pg.lease_query = host_pg_lease_query;
    host_pg.commit = host_pg_commit;
    host_pg.rollback = host_pg_rollback;
    return &host_pg;
}

/* ---- HTTP: host->http ---------------------------------------------------- */

static int host_http_request(const struct nova_host *host, const struct nova_http_request *req,
                             nova_http_cb cb, void *arg)
{
    struct nova__services *s = services_of(host);
    const struct nova__svc_http *m = http_module(s);
    if (host == NULL)
        return -EINVAL;
    return m != NULL ? m->request(s->http, req, cb, arg, host) : -ENOTSUP;
}

static int host_http_request_json(const struct nova_host *host, const struct nova_http_request *req,
                                  const struct cJSON *body, nova_http_json_cb cb, void *arg)
{
    struct nova__services *s = services_of(host);
    const struct nova__svc_http *m = http_module(s);
    if (host == NULL)
        return -EINVAL;
    return m != NULL ? m->request_json(s->http, req, body, cb, arg, host) : -ENOTSUP;
}

static int host_http_mail(const struct nova_host *host, const struct nova_mail_request *req,
                          nova_http_cb cb, void *arg)
{
    if (host == NULL)
        return -EINVAL;
    struct nova__services *s = nova__host_services(host);
    const struct nova__svc_http *m = http_module(s);
    return m != NULL ? m->mail(s->http, req, cb, arg, host) : -ENOTSUP;
}

static struct nova_http_api host_http;

const struct nova_http_api *nova__host_http_api(void)
{
    const struct nova__svc_http *m = nova__svc_http_loaded();
    if (m == NULL)
        return NULL;
    host_http = *m->response_api;
    host_http.request = host_http_request;
    host_http.request_json = host_http_request_json;
    host_http.mail = host_http_mail;
    return &host_http;
}

/* ---- Stellar: host->stellar ---------------------------------------------- */
/* The offline half is the Stellar library's own table. The network calls
 * go to the shared client, tagged with the plugin's host pointer so
 * nova__http_cancel_tag(http, host) ends them. The client lives in the
 * HTTP module, loaded when a plugin requiring Stellar started; without it
 * there is no client. */

static struct nova__stellar_client *client_of(const struct nova_host *host)
{
    struct nova__services *s = services_of(host);
    return s != NULL ? s->stellar : NULL;
}

/* The module of an existing client, or NULL (then there is no client). */
static const struct nova__svc_http *module_of(const struct nova_host *host)
{
    return client_of(host) != NULL ? nova__svc_http_loaded() : NULL;
}

static int no_client(char *err, size_t errlen)
{
    return nova__stellar_fail(err, errlen, -ENOTSUP, "no [stellar] client");
}

/* Synchronous refusals carry no message through the return value: log the
 * reason with the plugin's name so the author sees what was wrong. */
static int refused(const struct nova_host *host, const char *call, int rc, const char *err)
{
    if (rc < 0 && rc != -ECANCELED) {
        struct nova__log_ctx lc = {.plugin = host != NULL ? host->plugin_name : NULL};
        nova__log(NOVA_LOG_WARN, &lc, "stellar %s refused: %s", call, err[0] ? err : strerror(-rc));
    }
    return rc;
}

static const struct nova_stellar_network *api_network(const struct nova_host *host)
{
    const struct nova__svc_http *m = module_of(host);
    return m != NULL ? m->stellar_network(client_of(host)) : NULL;
}

static int api_build_payment_distribution(const struct nova_host *host,
                                          const struct nova_stellar_payment_tx *tx,
                                          struct nova_stellar_signed_tx *out, char *err,
                                          size_t errlen)
{
    const struct nova__svc_http *m = module_of(host);
    if (m != NULL)
        return m->stellar_build_payment(client_of(host), tx, out, err, errlen);
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    return no_client(err, errlen);
}

#define NET_CALL(call, ...)                                                                        \
    do {                                                                                           \
        char err[300] = "";                                                                        \
        if (host == NULL)                                                                          \
            return -EINVAL;                                                                        \
        const struct nova__svc_http *m = module_of(host);                                          \
        int rc = m != NULL ? m->call(client_of(host), host, __VA_ARGS__, err, sizeof(err))         \
                           : no_client(err, sizeof(err));                                          \
        return refused(host, #call, rc, err);                                                      \
    } while (0)

static int api_load_account(const struct nova_host *host, const char *account_id,
                            nova_stellar_account_cb cb, void *arg)
{
    NET_CALL(load_account, account_id, cb, arg);
}

static int api_submit(const struct nova_host *host, const char *envelope_b64, nova_stellar_tx_cb cb,
                      void *arg)
{
    NET_CALL(submit, envelope_b64, cb, arg);
}

static int api_tx_lookup(const struct nova_host *host, const char *hash_hex, nova_stellar_tx_cb cb,
                         void *arg)
{
    NET_CALL(tx_lookup, hash_hex, cb, arg);
}

static int api_latest_ledger(const struct nova_host *host, nova_stellar_ledger_cb cb, void *arg)
{
    NET_CALL(latest_ledger, cb, arg);
}

static int api_rpc_health(const struct nova_host *host, nova_stellar_rpc_health_cb cb, void *arg)
{
    NET_CALL(rpc_health, cb, arg);
}

static int api_rpc_latest_ledger(const struct nova_host *host, nova_stellar_rpc_ledger_cb cb,
                                 void *arg)
{
    NET_CALL(rpc_latest_ledger, cb, arg);
}

static int api_get_events(const struct nova_host *host,
                          const struct nova_stellar_events_query *query, nova_stellar_events_cb cb,
                          void *arg)
{
    NET_CALL(get_events, query, cb, arg);
}

#undef NET_CALL

static struct nova_stellar_api host_stellar;

const struct nova_stellar_api *nova__host_stellar_api(void)
{
    host_stellar = nova__stellar_offline_api;
    host_stellar.network = api_network;
    host_stellar.build_payment_distribution = api_build_payment_distribution;
    host_stellar.load_account = api_load_account;
    host_stellar.submit = api_submit;
    host_stellar.tx_lookup = api_tx_lookup;
    host_stellar.latest_ledger = api_latest_ledger;
    host_stellar.rpc_health = api_rpc_health;
    host_stellar.rpc_latest_ledger = api_rpc_latest_ledger;
    host_stellar.get_events = api_get_events;
    return &host_stellar;
}

/* ---- processes and files: the plugin's host pointer is the owner tag ---- */

static uv_loop_t *loop_of(const struct nova_host *host)
{
    struct nova__services *s = host != NULL ? nova__host_services(host) : NULL;
    return s != NULL ? s->loop : NULL;
}

static int host_spawn(const struct nova_host *host, const struct nova_process_spec *spec,
                      nova_process_data_cb on_stdout, nova_process_exit_cb on_exit, void *arg,
                      nova_process **out)
{
    return nova__process_spawn(loop_of(host), host, spec, on_stdout, on_exit, arg, out);
}

static const struct nova_process_api host_process = {
    .struct_size = sizeof(struct nova_process_api),
    .spawn = host_spawn,
    .pause = nova__process_pause,
    .resume = nova__process_resume,
    .kill = nova__process_kill,
    .write_stdin = nova__process_write_stdin,
    .close_stdin = nova__process_close_stdin,
};

static int host_file_open(const struct nova_host *host, const char *path, uint32_t flags, int mode,
                          nova_file_open_cb cb, void *arg)
{
    return nova__file_open(loop_of(host), host, path, flags, mode, cb, arg);
}

static int host_file_rename(const struct nova_host *host, const char *from, const char *to,
                            bool fsync_dir, nova_file_cb cb, void *arg)
{
    return nova__file_rename(loop_of(host), host, from, to, fsync_dir, cb, arg);
}

static int host_file_unlink(const struct nova_host *host, const char *path, nova_file_cb cb,
                            void *arg)
{
    return nova__file_unlink(loop_of(host), host, path, cb, arg);
}

static int host_file_mkdir(const struct nova_host *host, const char *path, int mode,
                           nova_file_cb cb, void *arg)
{
    return nova__file_mkdir(loop_of(host), host, path, mode, cb, arg);
}

static int host_file_list(const struct nova_host *host, const char *dir, nova_file_list_cb cb,
                          void *arg)
{
    return nova__file_list(loop_of(host), host, dir, cb, arg);
}

static const struct nova_file_api host_file = {
    .struct_size = sizeof(struct nova_file_api),
    .open = host_file_open,
    .write = nova__file_write,
    .read = nova__file_read,
    .sync = nova__file_sync,
    .close = nova__file_close,
    .rename = host_file_rename,
    .unlink = host_file_unlink,
    .mkdir = host_file_mkdir,
    .list = host_file_list,
};

void nova__host_release(struct nova__host_ctx *ctx)
{
    while (ctx->timers != NULL)
        timer_release(ctx->timers);
    nova__process_release_owner(&ctx->host);
    nova__file_release_owner(&ctx->host);
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
    h->http = http_module(services) != NULL ? nova__host_http_api() : NULL;
    h->pg = pg_module(services) != NULL ? nova__host_pg_api() : NULL;
    /* The offline half always works; network calls answer -ENOTSUP without
     * a configured Horizon. */
    h->stellar = nova__host_stellar_api();
    if (services != NULL && services->loop != NULL) {
        h->process = &host_process;
        h->file = &host_file;
    }

    if (services != NULL && services->queues != NULL) {
        h->subscribe = host_subscribe;
        h->set_concurrency = host_set_concurrency;
        h->enqueue = host_enqueue;
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
        h->redis = &nova__host_redis_api;
    }
}
