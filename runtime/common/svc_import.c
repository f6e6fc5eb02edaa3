/*
 * svc_import - the core functions as a module sees them (see svc.h).
 *
 * Linked only into the modules: the service code calls nova__log(),
 * nova__metric_new()... as it does when linked into the binary, and these
 * definitions pass each call to the core's own through the table handed
 * to nova__svc_bind(), so the process keeps one logger (with one list of
 * secrets to redact) and one metrics registry. The offline Stellar library
 * is forwarded the same way by stellar/stellar_import.c (nova-http.so).
 */
#include "config.h"
#include "common/svc.h"
#include "common/log.h"
#include "common/metrics.h"

/* Set once by the loader before the module's table is used. */
static const struct nova__svc_core *core;

void nova__svc_bind(const struct nova__svc_core *c);
void nova__svc_bind(const struct nova__svc_core *c)
{
    core = c;
}

const struct nova__svc_core *nova__svc_core_lent(void)
{
    return core;
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
