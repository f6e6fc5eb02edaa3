/*
 * http_client - the shared outbound HTTP client: one libcurl multi handle
 * driven by the libuv loop (socket interface: a uv_poll per socket curl
 * asks about, one uv_timer for curl's timeout).
 *
 * One client per daemon, created on the loop thread and used only from
 * it. Connections (keep-alive, HTTP/2 where the server offers it), DNS
 * results and TLS sessions are shared by every request. TLS peers are
 * always verified (ca_file, or the system store). Environment proxies are
 * ignored. Requests with NOVA_HTTP_GUARD go through runtime/http_guard.h.
 *
 * Metrics (runtime/metrics.h), host = the URL's host name, or "guarded"
 * for NOVA_HTTP_GUARD requests (user-supplied hosts would be unbounded
 * label values; they belong in logs), or "other" beyond 64 distinct hosts:
 *   nova_worker_http_requests_total{host,code_class}   responses by 1xx..5xx
 *   nova_worker_http_errors_total{host,reason}         timeout, too_large, guard,
 *       resolve, connect, tls, connection, redirects, invalid_url, bad_json,
 *       cancelled, other
 *   nova_worker_http_request_duration_seconds{host}    completed requests
 *
 * Ownership: the client is allocated by nova__http_client_new() and freed
 * by nova__http_client_close() once its handles are closed, just before
 * done runs. cfg is copied.
 */
#ifndef NOVA_RUNTIME_HTTP_CLIENT_H
#define NOVA_RUNTIME_HTTP_CLIENT_H

#include <stdint.h>
#include <uv.h>
#include "nova/http.h"
#include "common/conf.h"

struct cJSON;
struct nova__http_client;

/* The response helpers of struct nova_http_api (header, retry_after_ms);
 * the host-facing members are NULL: the core pairs this table with
 * nova__http_request_tagged() and _json_tagged() to make a plugin's
 * host->http (core/host.c). */
extern const struct nova_http_api nova__http_response_api;

/* Creates a client on loop. cfg fields that are 0/NULL take the defaults
 * (timeout 10 s, connect timeout 5 s, 1 MiB responses, 64 connections,
 * system CA store, "nova-worker/VERSION"). Returns 0 or -ENOMEM/-EIO. */
int nova__http_client_new(uv_loop_t *loop, const struct nova__http_config *cfg,
                          struct nova__http_client **out);

/*
 * Cancels every request (each callback runs before this returns, with
 * -ECANCELED unless its outcome was already known), closes the uv handles
 * and frees the client; done(arg) runs from the loop once that is complete
 * (done may be NULL). Requests started after this return -ECANCELED.
 */
void nova__http_client_close(struct nova__http_client *c, void (*done)(void *arg), void *arg);

/* The plain request call for runtime code (no plugin host): same contract
 * as nova_http_api.request(). */
int nova__http_request(struct nova__http_client *c, const struct nova_http_request *req,
                       nova_http_cb cb, void *arg);

/* Same contract as nova_http_api.request_json(). */
int nova__http_request_json(struct nova__http_client *c, const struct nova_http_request *req,
                            const struct cJSON *body, nova_http_json_cb cb, void *arg);

/* Requests started with a tag (the host uses the plugin's host pointer)
 * can be cancelled together, e.g. before a plugin is unloaded: each
 * callback runs with -ECANCELED before nova__http_cancel_tag() returns. */
int nova__http_request_tagged(struct nova__http_client *c, const struct nova_http_request *req,
                              nova_http_cb cb, void *arg, const void *tag);
int nova__http_request_json_tagged(struct nova__http_client *c, const struct nova_http_request *req,
                                   const struct cJSON *body, nova_http_json_cb cb, void *arg,
                                   const void *tag);
void nova__http_cancel_tag(struct nova__http_client *c, const void *tag);

/* nova_http_api.mail() on an explicit client, with a tag as above. */
int nova__http_mail_tagged(struct nova__http_client *c, const struct nova_mail_request *req,
                           nova_http_cb cb, void *arg, const void *tag);

/* nova_http_api.header() and .retry_after_ms(). */
const char *nova__http_header(const struct nova_http_response *res, const char *name);
int64_t nova__http_retry_after_ms(const struct nova_http_response *res);

/* The Retry-After rule on its own, for tests: status, the Retry-After and
 * X-RateLimit-Reset values (NULL when absent) and the current time. */
int64_t nova__http_retry_after_parse(long status, const char *retry_after,
                                     const char *ratelimit_reset, int64_t now_s);

/* Counters for tests and debugging. */
struct nova__http_stats {
    uint64_t sockets_opened; /* sockets created by curl's open-socket callback */
    uint64_t guard_refusals;
    unsigned in_flight;
};
void nova__http_client_stats(const struct nova__http_client *c, struct nova__http_stats *out);

/* Test hooks, never wired to configuration:
 *   resolve: a curl CURLOPT_RESOLVE entry "name:port:address" applied to
 *     every request, to point a made-up name at an address without DNS;
 *   guard_allow: lets the guard pass one exact numeric address and port.
 * Both copy their arguments. Return 0 or -ENOMEM. */
int nova__http_client_test_resolve(struct nova__http_client *c, const char *entry);
int nova__http_client_test_guard_allow(struct nova__http_client *c, const char *addr,
                                       unsigned port);

#endif
