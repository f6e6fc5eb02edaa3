/*
 * svc_import - the core functions as a module sees them (see svc.h).
 *
 * Linked only into the modules: the service code calls nova__log(),
 * nova__metric_new()... as it does when linked into the binary, and these
 * definitions pass each call to the core's own through the table handed
 * to nova__svc_bind(), so the process keeps one logger (with one list of
 * secrets to redact), one metrics registry and one Stellar library.
 */
#include "config.h"
#include "common/svc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "stellar/stellar_scval.h"
#include "stellar/stellar_strkey.h"
#include "stellar/stellar_tx.h"
#include "stellar/stellar_xdr.h"

/* Set once by the loader before the module's table is used. */
static const struct nova__svc_core *core;

void nova__svc_bind(const struct nova__svc_core *c);
void nova__svc_bind(const struct nova__svc_core *c)
{
    core = c;
}

void nova__logv(enum nova_log_level level, const struct nova__log_ctx *ctx, const char *fmt,
                va_list ap)
{
    core->logv(level, ctx, fmt, ap);
}

void nova__log(enum nova_log_level level, const struct nova__log_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    core->logv(level, ctx, fmt, ap);
    va_end(ap);
}

void nova__log_add_secret(const char *secret)
{
    core->log_add_secret(secret);
}

nova_metric *nova__metric_new(enum nova_metric_type type, const char *name, const char *help,
                              const char *const *label_names, const double *buckets,
                              size_t bucket_count)
{
    return core->metric_new(type, name, help, label_names, buckets, bucket_count);
}

void nova__metric_add(nova_metric *metric, const char *const *label_values, double value)
{
    core->metric_add(metric, label_values, value);
}

void nova__metric_set(nova_metric *metric, const char *const *label_values, double value)
{
    core->metric_set(metric, label_values, value);
}

void nova__metric_observe(nova_metric *metric, const char *const *label_values, double value)
{
    core->metric_observe(metric, label_values, value);
}

int nova__metrics_render(char **out, size_t *len)
{
    return core->metrics_render(out, len);
}

int nova__amount_parse(const char *text, unsigned flags, int64_t *out, char *err, size_t errlen)
{
    return core->amount_parse(text, flags, out, err, errlen);
}

int nova__hex_decode(const char *text, void *out, size_t len)
{
    return core->hex_decode(text, out, len);
}

int nova__scval_decode_b64(const char *b64, cJSON **out, char *err, size_t errlen)
{
    return core->scval_decode_b64(b64, out, err, errlen);
}

int nova__stellar_build_payment(const struct nova_stellar_payment_tx *tx,
                                struct nova_stellar_signed_tx *out, char *err, size_t errlen)
{
    return core->build_payment(tx, out, err, errlen);
}

int nova__stellar_seed_to_account(const char *seed, char *out, char *err, size_t errlen)
{
    return core->seed_to_account(seed, out, err, errlen);
}

int nova__stellar_result_decode_b64(const char *b64, struct nova_stellar_tx_result *out, char *err,
                                    size_t errlen)
{
    return core->result_decode_b64(b64, out, err, errlen);
}

char *nova__stellar_horizon_form_body(const char *envelope_b64)
{
    return core->horizon_form_body(envelope_b64);
}

int nova__strkey_decode(const char *text, enum nova_strkey_type expect,
                        enum nova_strkey_type *type_out, uint8_t *payload, size_t cap,
                        size_t *len_out, char *err, size_t errlen)
{
    return core->strkey_decode(text, expect, type_out, payload, cap, len_out, err, errlen);
}

int nova__strkey_decode32(const char *text, enum nova_strkey_type expect, uint8_t key[32],
                          char *err, size_t errlen)
{
    return core->strkey_decode32(text, expect, key, err, errlen);
}
