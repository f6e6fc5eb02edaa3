/*
 * queue_counts - bullmq_job_count{queue,state}: how many jobs each queue
 * this worker serves holds in each state, under the name, labels and state
 * names of BullMQ's Queue.exportPrometheusMetrics() (its getJobCounts()
 * states: waiting, paused, active, prioritized, delayed, completed, failed,
 * waiting-children), so dashboards built for Node keep working.
 *
 * A refresh sends one small script per queue, all at once on the engine's
 * command connection: one round trip, nothing waited for on the loop. The
 * queue engine calls it on a timer and when Redis comes back.
 */
#ifndef NOVA_RUNTIME_QUEUE_COUNTS_H
#define NOVA_RUNTIME_QUEUE_COUNTS_H

#include <stddef.h>

struct nova__redis_conn;

/* How often the engine refreshes the counts. */
#define NOVA__QUEUE_COUNTS_INTERVAL_MS 15000

/* Registers the gauge (again after nova__metrics_reset()). */
void nova__queue_counts_init(void);

/* Asks Redis for the counts of queues[0..n) (distinct names) under
 * prefix; each reply sets that queue's eight series. Series of queues not
 * in the list are removed at once: a queue no longer served must not keep
 * its last values. Returns how many queues were asked for (fewer when the
 * connection is down or memory is short; those keep their values). */
size_t nova__queue_counts_refresh(struct nova__redis_conn *c, const char *prefix,
                                  const char *const *queues, size_t n);

#endif
