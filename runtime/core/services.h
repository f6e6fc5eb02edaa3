/*
 * services - the shared clients a process opens for its plugins, and
 * their modules.
 *
 * One struct nova__service_set holds the clients (struct nova__services,
 * what host tables point into) and the module tables they came from. The
 * daemon opens PostgreSQL and Redis as configured, then the HTTP and
 * Stellar clients as the first plugin that declares them arrives; a
 * plugin's command (`nova-worker backup now`) opens only what its plugin
 * declares. Everything runs on the set's loop; the set is owned by the
 * caller, which closes it with nova__service_set_close() before the loop
 * ends.
 */
#ifndef NOVA_RUNTIME_SERVICES_H
#define NOVA_RUNTIME_SERVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "core/host.h"

struct nova__config;
struct nova__svc_pg;
struct nova__svc_http;

struct nova__service_set {
    struct nova__services svc;
    /* Module tables (common/svc.h), NULL until a client of theirs opens. */
    const struct nova__svc_pg *pg;
    const struct nova__svc_http *http;
    /* private: closes in flight */
    int closing;
    void (*on_closed)(void *arg);
    void *closed_arg;
};

/* Opens PostgreSQL when [postgres] dsn is set and want_pg, and the queue
 * engine (not started) when [redis] url is set and want_redis. cfg must
 * outlive the set. Returns 0 or -errno with the reason in err; on error
 * the set still needs closing. */
int nova__service_set_open(struct nova__service_set *s, uv_loop_t *loop,
                           const struct nova__config *cfg, bool want_pg, bool want_redis, char *err,
                           size_t errlen);

/* Opens the HTTP client (and the Stellar client, when [stellar] has a
 * Horizon URL) for a plugin whose `requires` declare them; nothing when
 * they do not. Idempotent. Returns 0 or -errno with the reason in err. */
int nova__service_set_for_plugin(struct nova__service_set *s, const char *plugin_name,
                                 uint32_t requires, char *err, size_t errlen);

/* Closes every client; on_closed(arg) runs once all have (possibly before
 * this returns). The set may not be used afterwards. */
void nova__service_set_close(struct nova__service_set *s, void (*on_closed)(void *arg), void *arg);

#endif
