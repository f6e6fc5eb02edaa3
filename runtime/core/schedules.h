/*
 * schedules - the plugins' schedules (include/nova/plugin.h, struct
 * nova_schedule): asked from each plugin for its config, checked, and kept
 * in Redis as BullMQ job schedulers (queue/schedulers.h).
 *
 * The daemon syncs a plugin's schedules when it starts or reloads it, and
 * again every minute (a run whose worker could not make the next slot's job
 * gets it then). Which worker runs a slot is decided by Redis: the sync
 * only makes sure the scheduler and its one pending job exist.
 */
#ifndef NOVA_RUNTIME_SCHEDULES_H
#define NOVA_RUNTIME_SCHEDULES_H

#include <stddef.h>
#include "nova/plugin.h"
#include "sched/sched.h"

struct nova__plugin;
struct nova__queue_engine;

/* A plugin's schedules as checked: decl[] as the plugin returned it (its
 * strings borrowed from the plugin's config, valid while that config is),
 * with each spec parsed and each data normalised to compact JSON. */
struct nova__plugin_schedules {
    size_t n;
    struct nova_schedule decl[NOVA_SCHEDULES_MAX];
    struct nova__sched parsed[NOVA_SCHEDULES_MAX];
    char *data[NOVA_SCHEDULES_MAX]; /* malloc'ed */
};

/*
 * Asks the plugin for its schedules under config and checks every one: an
 * id of letters, digits, '-', '_', '.', unique on its queue; a queue and a
 * job name; a spec and zone sched/sched.h accepts; data a JSON object.
 * A plugin without a schedules callback has none. Returns 0 with out
 * filled (free it with nova__schedules_free), or -errno with a one-line
 * reason naming the schedule in err (out is then empty).
 */
int nova__schedules_collect(const struct nova__plugin *p, const void *config,
                            struct nova__plugin_schedules *out, char *err, size_t errlen);

void nova__schedules_free(struct nova__plugin_schedules *s);

/*
 * Keeps s in Redis for the plugin (nova__queue_sched_sync): its schedules
 * upserted, and its schedulers on `queues` that s no longer lists removed.
 * done(arg, failures) runs once (see queue/schedulers.h). Returns 0 or
 * -errno (done then never runs).
 */
int nova__schedules_sync(struct nova__queue_engine *e, const char *plugin,
                         const struct nova__plugin_schedules *s, const char *const *queues,
                         size_t nqueues, void (*done)(void *arg, int failures), void *arg);

/* "2026-12-08T00:00:00+01:00": ms in the zone of the schedule's spec. */
void nova__schedules_format_time(const struct nova__sched *s, int64_t ms, char *buf, size_t len);

#endif
