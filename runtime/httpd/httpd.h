/*
 * httpd - the operations endpoint: /metrics, /healthz, /readyz.
 *
 * Served by libmicrohttpd on its own thread, so a slow scraper never
 * touches the job loop. The loop thread publishes readiness with
 * nova__httpd_set_ready(); the server thread only reads that value and
 * renders the (mutex-protected) metrics registry.
 */
#ifndef NOVA_RUNTIME_HTTPD_H
#define NOVA_RUNTIME_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

struct nova__httpd;

/* Listens on "host:port" (IPv4 or [IPv6]). Returns 0 or -errno with a
 * message in err. An empty listen string starts nothing (*out = NULL). */
int nova__httpd_start(const char *listen, struct nova__httpd **out, char *err, size_t errlen);

/* Ready state for /readyz; reason is copied (shown in the 503 body). */
void nova__httpd_set_ready(struct nova__httpd *h, bool ready, const char *reason);

/* The bound port (useful when listen asked for port 0). */
int nova__httpd_port(const struct nova__httpd *h);

void nova__httpd_stop(struct nova__httpd *h);

#endif
