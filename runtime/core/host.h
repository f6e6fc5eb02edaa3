/*
 * host - the services table handed to each plugin, and the shared
 * services behind it.
 *
 * struct nova__host_ctx starts with the public struct nova_host, so the
 * runtime recovers its per-plugin context from the pointer a plugin passes
 * back (nova__host_ctx_of). The shared clients live in struct
 * nova__services, owned by the daemon; a service pointer is NULL when that
 * service is not configured.
 */
#ifndef NOVA_RUNTIME_HOST_H
#define NOVA_RUNTIME_HOST_H

#include <uv.h>
#include "nova/plugin.h"
#include "nova/http.h"
#include "nova/pg.h"
#include "nova/redis.h"
#include "nova/stellar.h"
#include "nova/sys.h"
#include "common/log.h"

struct nova__config;
struct nova__queue_engine;
struct nova__pg_pool;
struct nova__http_client;
struct nova__stellar_client;
struct nova__host_timer;

struct nova__services {
    uv_loop_t *loop;
    const struct nova__config *config;
    struct nova__queue_engine *queues;    /* queue/queue.h */
    struct nova__pg_pool *pg;             /* pg/pg_pool.h (nova-pg.so) */
    struct nova__http_client *http;       /* http/http_client.h (nova-http.so) */
    struct nova__stellar_client *stellar; /* stellar/stellar_client.h (nova-http.so) */
};

struct nova__host_ctx {
    struct nova_host host; /* must stay first */
    struct nova__services *services;
    struct nova__log_ctx log_ctx;    /* plugin name for log lines */
    struct nova__host_timer *timers; /* live timers, stopped before shutdown */
    void *owner;                     /* the loaded plugin (runtime/loader.h) */
};

static inline struct nova__host_ctx *nova__host_ctx_of(const struct nova_host *host)
{
    return (struct nova__host_ctx *)(uintptr_t)host;
}

static inline struct nova__services *nova__host_services(const struct nova_host *host)
{
    return nova__host_ctx_of(host)->services;
}

/*
 * The tables behind host->pg, host->http, host->stellar and host->redis:
 * each service's own functions plus the host-facing calls, which find the
 * service's instance in the calling plugin's nova__services. pg and http
 * are NULL while their module is not loaded; the Stellar table always
 * exists (its network calls answer -ENOTSUP without a client). Static
 * tables, valid until the modules are unloaded.
 */
const struct nova_pg_api *nova__host_pg_api(void);
const struct nova_http_api *nova__host_http_api(void);
const struct nova_stellar_api *nova__host_stellar_api(void);
extern const struct nova_redis_api nova__host_redis_api;

/* Fills ctx->host with the host functions and ctx's service tables.
 * plugin_name is borrowed and must outlive ctx. */
void nova__host_init(struct nova__host_ctx *ctx, struct nova__services *services,
                     const char *plugin_name, void *owner);

/* Ends everything a plugin still has outstanding with the host, before its
 * shutdown(): stops its timers, kills its child processes, drops its
 * file requests and cancels its HTTP requests, queued PostgreSQL
 * requests, Redis commands and enqueues (their callbacks run with
 * -ECANCELED first). */
void nova__host_release(struct nova__host_ctx *ctx);

/* After shutdown(): rolls back (and logs) any PostgreSQL lease the plugin
 * leaked and detaches its statements still running. */
void nova__host_after_shutdown(struct nova__host_ctx *ctx);

#endif
