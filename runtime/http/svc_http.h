/*
 * svc_http - the table of nova-http.so (common/svc.h): the outbound HTTP
 * client and, built on it, the Stellar client (stellar/stellar_client.h).
 * The table is filled in stellar/svc_http.c, the one place that sees both
 * clients; this header needs neither.
 *
 * The calls take the client and the plugin's host pointer as an opaque
 * tag (nova__http_cancel_tag() ends a plugin's requests by it); finding
 * the client behind a plugin's host pointer is the core's business
 * (core/host.c builds host->http and host->stellar from this table).
 */
#ifndef NOVA_RUNTIME_SVC_HTTP_H
#define NOVA_RUNTIME_SVC_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "nova/http.h"
#include "nova/stellar.h"
#include "common/conf.h"
#include "common/svc.h"

struct cJSON;
struct nova__http_client;
struct nova__stellar_client;

struct nova__svc_http {
    /* The response helpers of struct nova_http_api (header, retry_after_ms);
     * its host-facing members are NULL. */
    const struct nova_http_api *response_api;
    /* nova_http_api's host-facing calls, on an explicit client. */
    int (*request)(struct nova__http_client *c, const struct nova_http_request *req,
                   nova_http_cb cb, void *arg, const void *tag);
    int (*request_json)(struct nova__http_client *c, const struct nova_http_request *req,
                        const struct cJSON *body, nova_http_json_cb cb, void *arg, const void *tag);
    int (*client_new)(uv_loop_t *loop, const struct nova__http_config *cfg,
                      struct nova__http_client **out);
    void (*client_close)(struct nova__http_client *c, void (*done)(void *arg), void *arg);
    void (*cancel_tag)(struct nova__http_client *c, const void *tag);
    int (*mail)(struct nova__http_client *c, const struct nova_mail_request *req, nova_http_cb cb,
                void *arg, const void *tag);

    int (*stellar_new)(uv_loop_t *loop, struct nova__http_client *http,
                       const struct nova__stellar_config *cfg, struct nova__stellar_client **out);
    void (*stellar_close)(struct nova__stellar_client *c, void (*done)(void *arg), void *arg);
    bool (*stellar_ready)(const struct nova__stellar_client *c);
    int (*stellar_probe)(struct nova__stellar_client *c, uint64_t interval_ms);
    const struct nova_stellar_network *(*stellar_network)(const struct nova__stellar_client *c);
    int (*stellar_build_payment)(const struct nova__stellar_client *c,
                                 const struct nova_stellar_payment_tx *tx,
                                 struct nova_stellar_signed_tx *out, char *err, size_t errlen);
    int (*load_account)(struct nova__stellar_client *c, const void *tag, const char *account_id,
                        nova_stellar_account_cb cb, void *arg, char *err, size_t errlen);
    int (*submit)(struct nova__stellar_client *c, const void *tag, const char *envelope_b64,
                  nova_stellar_tx_cb cb, void *arg, char *err, size_t errlen);
    int (*tx_lookup)(struct nova__stellar_client *c, const void *tag, const char *hash_hex,
                     nova_stellar_tx_cb cb, void *arg, char *err, size_t errlen);
    int (*latest_ledger)(struct nova__stellar_client *c, const void *tag, nova_stellar_ledger_cb cb,
                         void *arg, char *err, size_t errlen);
    int (*rpc_health)(struct nova__stellar_client *c, const void *tag,
                      nova_stellar_rpc_health_cb cb, void *arg, char *err, size_t errlen);
    int (*rpc_latest_ledger)(struct nova__stellar_client *c, const void *tag,
                             nova_stellar_rpc_ledger_cb cb, void *arg, char *err, size_t errlen);
    int (*get_events)(struct nova__stellar_client *c, const void *tag,
                      const struct nova_stellar_events_query *query, nova_stellar_events_cb cb,
                      void *arg, char *err, size_t errlen);
};

/* Linked into nova-http.so, and into libnova_full.la for the tests. */
extern const struct nova__svc_http nova__svc_http_table;

/* Loads nova-http.so on first use (nova__svc_load()). */
static inline const struct nova__svc_http *nova__svc_http(const char *needed_by, char *err,
                                                          size_t errlen)
{
    return nova__svc_load(NOVA__SVC_HTTP, sizeof(struct nova__svc_http), needed_by, err, errlen);
}

/* The table when nova-http.so is loaded, else NULL. */
static inline const struct nova__svc_http *nova__svc_http_loaded(void)
{
    return nova__svc_loaded(NOVA__SVC_HTTP);
}

#endif
