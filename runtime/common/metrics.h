/*
 * metrics - a process-wide Prometheus registry.
 *
 * Metrics are registered once and live until nova__metrics_reset() (tests)
 * or process exit; the returned pointers stay valid that long. Updates and
 * rendering take one mutex, because /metrics is served from the HTTP
 * server's thread while the loop thread updates values.
 */
#ifndef NOVA_RUNTIME_METRICS_H
#define NOVA_RUNTIME_METRICS_H

#include <stddef.h>
#include "nova/plugin.h"

/* Registers (or finds) a metric. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*
 * and label names [a-zA-Z_][a-zA-Z0-9_]*. Returns NULL when the name is
 * invalid or already registered with another type or label set. */
nova_metric *nova__metric_new(enum nova_metric_type type, const char *name, const char *help,
                              const char *const *label_names, const double *buckets,
                              size_t bucket_count);

/* label_values has exactly as many entries as the metric has labels. */
void nova__metric_add(nova_metric *metric, const char *const *label_values, double value);
void nova__metric_set(nova_metric *metric, const char *const *label_values, double value);
void nova__metric_observe(nova_metric *metric, const char *const *label_values, double value);

/* Current value of a counter/gauge series, or the count of a histogram;
 * -1 when the series does not exist. For tests and /readyz. */
double nova__metric_value(nova_metric *metric, const char *const *label_values);

/* Renders the text exposition format 0.0.4 into a malloc'ed buffer the
 * caller frees. Includes process_* metrics. Returns 0 or -ENOMEM. */
int nova__metrics_render(char **out, size_t *len);

void nova__metrics_reset(void);

#endif
