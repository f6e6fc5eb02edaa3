/*
 * ri_horizon - the four Horizon calls the payment lane needs, over the
 * host's HTTP client (host->http): account, submit, lookup by hash, latest
 * ledger. Each classifies the answer the way stellar.md §4-§5 asks and
 * hands the caller only what it decides on.
 *
 * Callbacks follow the host rule: a call returning a negative errno never
 * calls back; otherwise the callback runs exactly once (with -ECANCELED on
 * shutdown). Everything passed to a callback is borrowed for its duration.
 */
#ifndef NOVA_RI_HORIZON_H
#define NOVA_RI_HORIZON_H

#include <stdbool.h>
#include <stdint.h>
#include "ri.h"
#include "ri_logic.h"

struct cJSON;

/* status: 0 with the account resource, -ENOENT when Horizon says 404, or
 * another negative errno (transport, 5xx: -EAGAIN) with account NULL. */
typedef void (*ri_hz_account_cb)(void *arg, int status, const struct cJSON *account);
int nova__ri_hz_account(struct ri *ri, const char *account_id, ri_hz_account_cb cb, void *arg);

struct ri_submit_res {
    int transport_error;      /* 0 or the HTTP client's negative errno */
    long status;              /* HTTP status, 0 when none */
    const char *problem_type; /* suffix of the problem type, or NULL */
    const char *tx_code;      /* extras.result_codes.transaction, or NULL */
    bool successful;          /* 200 body field */
    int64_t ledger;           /* 200 body field, 0 otherwise */
    enum ri_submit_class cls;
};
typedef void (*ri_hz_submit_cb)(void *arg, const struct ri_submit_res *res);
int nova__ri_hz_submit(struct ri *ri, const char *envelope_b64, ri_hz_submit_cb cb, void *arg);

/* Passed as ledger (lookup) or close_time (latest) when the request was
 * cancelled because the runtime is shutting down: do nothing more. */
#define RI_HZ_CANCELLED INT64_MIN

/* lookup: SUCCESS/FAILED with ledger and result_xdr (for the per-op codes),
 * NOT_FOUND, or ERROR. */
typedef void (*ri_hz_tx_cb)(void *arg, enum ri_lookup lookup, int64_t ledger,
                            const char *result_xdr);
int nova__ri_hz_tx(struct ri *ri, const char *hash_hex, ri_hz_tx_cb cb, void *arg);

/* close_time: unix seconds of Horizon's latest ingested ledger, or -1. */
typedef void (*ri_hz_latest_cb)(void *arg, int64_t close_time);
int nova__ri_hz_latest(struct ri *ri, ri_hz_latest_cb cb, void *arg);

/* "2026-11-26T07:40:15Z" -> unix seconds; -1 when not RFC 3339 UTC. */
int64_t nova__ri_parse_rfc3339(const char *s);

#endif
