/*
 * stellar_client - Horizon and Stellar RPC over the shared HTTP client.
 *
 * One client per daemon, created on the loop thread and used only from it.
 * Every call is one HTTP request (the client never retries: a 429/503 is
 * reported as -EAGAIN with the server's delay, so the caller decides and
 * nothing is ever hammered). Statuses and result structs are those of
 * include/nova/stellar.h; docs/stellar.md explains them.
 *
 * The one exception is the RPC fallback: with soroban_rpc_url_fallback set,
 * an RPC call whose server failed (no answer, an HTTP error, 429/503, an
 * answer that is not JSON-RPC, or JSON-RPC -32603 "internal error", which
 * an unhealthy RPC answers) is sent once more to the other URL, and the
 * answer of that second request is the call's. After the primary failed,
 * calls go to the fallback first for NOVA__STELLAR_RPC_FALLBACK_HOLD_MS,
 * then the primary is tried again. RPC calls are reads, so sending one
 * twice is harmless. A JSON-RPC error about the request itself (-32600,
 * -32602...) is an answer, never a reason to fall back.
 *
 * Tags: each request carries a tag for nova__http_cancel_tag(). Plugin
 * calls are tagged with the plugin's host pointer, so cancelling a
 * plugin's HTTP requests also ends its Stellar calls (callback with
 * -ECANCELED, memory freed). Runtime calls pass tag NULL: they are tagged
 * with the client itself and cancelled by nova__stellar_client_close().
 *
 * Ownership: the client copies what it needs from cfg (the distribution
 * secret in memory wiped at close). Results are borrowed for the callback.
 *
 * Metrics:
 *   nova_worker_stellar_submissions_total{result}  ok, tx_failed, timeout
 *       (outcome unknown), rate_limited, error (refused as malformed, cancelled)
 *   nova_worker_stellar_request_duration_seconds{api}  horizon | rpc
 */
#ifndef NOVA_RUNTIME_STELLAR_CLIENT_H
#define NOVA_RUNTIME_STELLAR_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "nova/stellar.h"
#include "common/conf.h"

struct cJSON;
struct nova__http_client;
struct nova__stellar_client;

/* Submissions wait for a ledger: Horizon's own limit is 30 s, so the
 * client waits longer and reports -ETIMEDOUT only after that. */
#define NOVA__STELLAR_SUBMIT_TIMEOUT_MS 60000
/* Reads (account, lookup, ledger, RPC) take the [http] timeout. */
/* How long RPC calls prefer the fallback after the primary failed. */
#define NOVA__STELLAR_RPC_FALLBACK_HOLD_MS 30000

/* Creates a client. cfg->horizon_url and network_passphrase are required;
 * distribution_secret, asset fields, soroban_rpc_url and
 * soroban_rpc_url_fallback are optional.
 * Returns 0, -EINVAL (a bad setting; the reason is logged, never the
 * secret) or -ENOMEM. http must outlive the client. */
int nova__stellar_client_new(uv_loop_t *loop, struct nova__http_client *http,
                             const struct nova__stellar_config *cfg,
                             struct nova__stellar_client **out);

/* Cancels every call still in flight (each callback runs with -ECANCELED
 * before this returns), stops the probe and frees the client; done(arg)
 * runs once from the loop afterwards (done may be NULL). Calls started
 * afterwards fail with -ECANCELED. NULL-safe. */
void nova__stellar_client_close(struct nova__stellar_client *c, void (*done)(void *arg), void *arg);

/* True when the last Horizon call got a well-formed answer from a Horizon
 * of the configured network (a 404 or a failed transaction counts: Horizon
 * answered). False before the first answer, after a transport error, a 5xx,
 * garbage, or a probe that found another network passphrase. */
bool nova__stellar_client_ready(const struct nova__stellar_client *c);

/* Keeps readiness fresh for /readyz: GET / now and then every interval_ms
 * (0 = 30 s), checking the network passphrase (a mismatch is logged as an
 * error and keeps the client not ready). Returns 0 or -ECANCELED. */
int nova__stellar_client_probe(struct nova__stellar_client *c, uint64_t interval_ms);

/* Overrides the request timeouts (tests): reads (0 = [http] timeout) and
 * submissions (0 = NOVA__STELLAR_SUBMIT_TIMEOUT_MS). */
void nova__stellar_client_set_timeouts(struct nova__stellar_client *c, int64_t read_ms,
                                       int64_t submit_ms);

const struct nova_stellar_network *
nova__stellar_client_network(const struct nova__stellar_client *c);

/* build_payment with the distribution key (see nova_stellar_api). */
int nova__stellar_client_build_payment(const struct nova__stellar_client *c,
                                       const struct nova_stellar_payment_tx *tx,
                                       struct nova_stellar_signed_tx *out, char *err,
                                       size_t errlen);

/* The calls. tag: the plugin's host pointer, or NULL for runtime code.
 * Argument errors return -EINVAL with the reason in err (may be NULL);
 * otherwise the contract of include/nova/stellar.h. */
int nova__stellar_load_account(struct nova__stellar_client *c, const void *tag,
                               const char *account_id, nova_stellar_account_cb cb, void *arg,
                               char *err, size_t errlen);
int nova__stellar_submit(struct nova__stellar_client *c, const void *tag, const char *envelope_b64,
                         nova_stellar_tx_cb cb, void *arg, char *err, size_t errlen);
int nova__stellar_tx_lookup(struct nova__stellar_client *c, const void *tag, const char *hash_hex,
                            nova_stellar_tx_cb cb, void *arg, char *err, size_t errlen);
int nova__stellar_latest_ledger(struct nova__stellar_client *c, const void *tag,
                                nova_stellar_ledger_cb cb, void *arg, char *err, size_t errlen);
int nova__stellar_rpc_health(struct nova__stellar_client *c, const void *tag,
                             nova_stellar_rpc_health_cb cb, void *arg, char *err, size_t errlen);
int nova__stellar_rpc_latest_ledger(struct nova__stellar_client *c, const void *tag,
                                    nova_stellar_rpc_ledger_cb cb, void *arg, char *err,
                                    size_t errlen);
int nova__stellar_get_events(struct nova__stellar_client *c, const void *tag,
                             const struct nova_stellar_events_query *query,
                             nova_stellar_events_cb cb, void *arg, char *err, size_t errlen);

/* Calls in flight (tests). */
unsigned nova__stellar_client_in_flight(const struct nova__stellar_client *c);

/* ---- parsers, exposed for tests ----------------------------------------
 * Each fills *out from a parsed JSON body. Strings point into json (or
 * into storage owned by the out-of-band holder); returns 0 or -EBADMSG
 * with the offending field named in err. */

/* Account resource; trustlines are written to tl (room for tl_max; more
 * trustlines than that is -EBADMSG). */
int nova__stellar_parse_account(const struct cJSON *json, struct nova_stellar_account *out,
                                struct nova_stellar_trustline *tl, size_t tl_max, char *err,
                                size_t errlen);

/* Decoded state behind a struct nova_stellar_tx_info. */
struct nova__stellar_tx_holder {
    struct nova_stellar_tx_info info;
    const char *ops[NOVA_STELLAR_MAX_OPS];
    struct nova_stellar_tx_result result;
};
/* A transaction resource (200 of submit / lookup). */
int nova__stellar_parse_tx(const struct cJSON *json, struct nova__stellar_tx_holder *out, char *err,
                           size_t errlen);
/* The extras of a 400 transaction_failed problem. */
int nova__stellar_parse_tx_failed(const struct cJSON *json, struct nova__stellar_tx_holder *out,
                                  char *err, size_t errlen);
/* Horizon's root resource. */
int nova__stellar_parse_root(const struct cJSON *json, struct nova_stellar_ledger *out, char *err,
                             size_t errlen);

/* getEvents result; decoded ScVals and arrays are owned by *page_store,
 * released with nova__stellar_events_free(). */
struct nova__stellar_events_store {
    struct nova_stellar_events_page page;
    struct nova_stellar_event *events;
    const char **topic_xdr; /* all events' topics, back to back */
    struct cJSON **decoded; /* every topics array and value tree */
    size_t ndecoded;
};
int nova__stellar_parse_events(const struct cJSON *result, struct nova__stellar_events_store *out,
                               char *err, size_t errlen);
/* The same with the query's NOVA_STELLAR_EVENTS_* flags. */
int nova__stellar_parse_events_flags(const struct cJSON *result, uint64_t flags,
                                     struct nova__stellar_events_store *out, char *err,
                                     size_t errlen);
void nova__stellar_events_free(struct nova__stellar_events_store *s);

/* Builds getEvents params; -EINVAL naming the bad field. Caller frees with
 * cJSON_Delete. */
int nova__stellar_events_params(const struct nova_stellar_events_query *q, struct cJSON **out,
                                char *err, size_t errlen);

/* RFC 3339 ("2025-01-01T00:00:05Z", fractions and offsets allowed) to unix
 * seconds; -EINVAL when malformed. */
int nova__stellar_parse_time(const char *text, int64_t *out);

#endif
