/*
 * metrics - a process-wide Prometheus registry.
 *
 * Metrics are registered once and live until nova__metrics_reset() (tests)
 * or process exit; the returned pointers stay valid that long. Everything
 * runs on the loop thread, rendering too (/metrics is served on the loop,
 * httpd/); the registry still takes its mutex, which costs nothing
 * uncontended and keeps a stray call from another thread safe.
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

/* Creates the series with value 0 when it does not exist yet, and leaves
 * it alone when it does. A series that appears only with its first event
 * makes rate() and increase() miss that event, so owners touch the
 * series they know of (a queue's outcomes) when they start. */
void nova__metric_touch(nova_metric *metric, const char *const *label_values);

/* Removes every series whose label number `label` (0-based, in the order
 * of the names given to nova__metric_new) is none of keep[0..nkeep).
 * For gauges that describe things that can go away (a queue no longer
 * served): a stale value would otherwise be scraped for ever. Returns how
 * many series were removed. */
size_t nova__metric_prune(nova_metric *metric, size_t label, const char *const *keep, size_t nkeep);

/* Current value of a counter/gauge series, or the count of a histogram;
 * -1 when the series does not exist. For tests and /readyz. */
double nova__metric_value(nova_metric *metric, const char *const *label_values);

/* Renders the text exposition format 0.0.4 into a malloc'ed buffer the
 * caller frees. Includes process_* metrics. Returns 0 or -ENOMEM. */
int nova__metrics_render(char **out, size_t *len);

void nova__metrics_reset(void);

#endif
