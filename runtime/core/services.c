/* services - the shared clients and their modules; see services.h. */
#include "config.h"
#include "core/services.h"
#include "common/conf.h"
#include "http/svc_http.h"
#include "pg/svc_pg.h"
#include "queue/queue.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int nova__service_set_open(struct nova__service_set *s, uv_loop_t *loop,
                           const struct nova__config *cfg, bool want_pg, bool want_redis, char *err,
                           size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->svc.loop = loop;
    s->svc.config = cfg;
    int rc;
    if (want_pg && cfg->postgres.dsn != NULL && cfg->postgres.dsn[0] != '\0') {
        s->pg = nova__svc_pg("[postgres] dsn is set", err, errlen);
        if (s->pg == NULL)
            return -ENOENT;
        rc = s->pg->pool_new(loop, &cfg->postgres, &s->svc.pg);
        if (rc != 0) {
            snprintf(err, errlen, "[postgres] cannot create the pool: %s", strerror(-rc));
            return rc;
        }
    }
    if (want_redis && cfg->redis.url != NULL && cfg->redis.url[0] != '\0') {
        rc = nova__queue_engine_new(loop, &cfg->redis, cfg->worker.name, &s->svc.queues);
        if (rc != 0) {
            snprintf(err, errlen, "[redis] cannot start the queue engine: %s", strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Only processes whose plugins use them load libcurl: plugins that need
 * neither get host->http NULL and the offline half of host->stellar. */
int nova__service_set_for_plugin(struct nova__service_set *s, const char *plugin_name,
                                 uint32_t requires, char *err, size_t errlen)
{
    const struct nova__config *cfg = s->svc.config;
    bool stellar = (requires & NOVA_REQUIRES_STELLAR) != 0 && cfg->stellar.horizon_url != NULL &&
                   cfg->stellar.horizon_url[0] != '\0';
    if (!stellar && !(requires & NOVA_REQUIRES_HTTP))
        return 0;
    int rc;
    if (s->svc.http == NULL) {
        char why[256];
        snprintf(why, sizeof why, "plugin %s requires %s", plugin_name,
                 stellar ? "Stellar" : "the HTTP client");
        s->http = nova__svc_http(why, err, errlen);
        if (s->http == NULL)
            return -ENOENT;
        rc = s->http->client_new(s->svc.loop, &cfg->http, &s->svc.http);
        if (rc != 0) {
            snprintf(err, errlen, "[http] cannot create the HTTP client: %s", strerror(-rc));
            return rc;
        }
    }
    if (stellar && s->svc.stellar == NULL) {
        /* No traffic yet: Horizon is probed once a plugin runs. */
        rc = s->http->stellar_new(s->svc.loop, s->svc.http, &cfg->stellar, &s->svc.stellar);
        if (rc != 0) {
            snprintf(err, errlen, "[stellar] cannot create the Stellar client: %s", strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static void one_closed(void *arg)
{
    struct nova__service_set *s = arg;
    if (--s->closing == 0 && s->on_closed != NULL)
        s->on_closed(s->closed_arg);
}

void nova__service_set_close(struct nova__service_set *s, void (*on_closed)(void *arg), void *arg)
{
    s->on_closed = on_closed;
    s->closed_arg = arg;
    s->closing = 1;
    if (s->svc.queues != NULL) {
        nova__queue_engine_free(s->svc.queues);
        s->svc.queues = NULL;
    }
    /* The Stellar client runs on the HTTP client: close it first. */
    if (s->svc.stellar != NULL) {
        s->closing++;
        s->http->stellar_close(s->svc.stellar, one_closed, s);
        s->svc.stellar = NULL;
    }
    if (s->svc.pg != NULL) {
        s->closing++;
        s->pg->pool_close(s->svc.pg, one_closed, s);
        s->svc.pg = NULL;
    }
    if (s->svc.http != NULL) {
        s->closing++;
        s->http->client_close(s->svc.http, one_closed, s);
        s->svc.http = NULL;
    }
    one_closed(s);
}
