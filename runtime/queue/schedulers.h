/*
 * schedulers - periodic jobs as BullMQ 5.81 job schedulers.
 *
 * A schedule is kept in the layout Queue.upsertJobScheduler writes: its
 * template in the hash <queue>:repeat:<id>, its next slot as the score of
 * <id> in the zset <queue>:repeat, and exactly one pending job per
 * scheduler, id "repeat:<id>:<slot ms>" (delayed until its slot). Node's
 * getJobSchedulers() and Bull Board list them. Whoever takes a slot's job
 * makes the next slot's job first (nova__queue_sched_advance, from the
 * engine's fetch; Node's workers do the same), so which process runs a
 * slot is decided by Redis, like any other job, and however many workers
 * keep the same schedule there is one job per slot.
 *
 * Our schedulers carry the field `nova` = the owning plugin, so a schedule
 * a plugin stops declaring is removed and nobody else's is touched.
 *
 * Everything here runs on the loop thread.
 */
#ifndef NOVA_RUNTIME_SCHEDULERS_H
#define NOVA_RUNTIME_SCHEDULERS_H

#include <stddef.h>
#include <stdint.h>

struct nova__queue_engine;
struct nova__sched;

/* The options of every scheduled run (the template's opts): retried like
 * Nova's jobs, and finished runs trimmed so Redis does not grow. */
#define NOVA__SCHED_RUN_OPTS                                                                       \
    "{\"attempts\":3,\"backoff\":{\"type\":\"exponential\",\"delay\":1000},"                       \
    "\"removeOnComplete\":100,\"removeOnFail\":100}"

struct nova__sched_entry {
    const char *id;                  /* scheduler id on its queue (no ':') */
    const char *queue;               /* queue name */
    const char *job_name;            /* each run's job name */
    const char *data_json;           /* each run's data, compact JSON object text */
    const struct nova__sched *sched; /* the parsed spec (sched/sched.h) */
};

/*
 * Makes Redis hold exactly owner's schedules: each entry is upserted
 * (unchanged ones are left as they are, so a fleet of workers doing this at
 * once changes nothing), then owner's schedulers on each of `queues` that
 * are not entries are removed with their pending job. Everything is copied
 * before the call returns. done(arg, failures) runs exactly once when every
 * script has answered; failures counts the scripts that failed (Redis down,
 * a script error, logged): the caller calls again later. Returns 0, or
 * -EINVAL / -ENOMEM (then done is never called).
 */
int nova__queue_sched_sync(struct nova__queue_engine *e, const char *owner,
                           const struct nova__sched_entry *entries, size_t n,
                           const char *const *queues, size_t nqueues,
                           void (*done)(void *arg, int failures), void *arg);

/*
 * For the engine: a worker took job_id of scheduler rjk on queue; make its
 * next slot's job (before the run, as Node's workers do). opts_json is the
 * job's opts (its repeat.pattern / repeat.tz say how to compute a cron
 * slot). Fire and forget: a failure is logged, and the owner's periodic
 * sync (or the Node side's next upsert) makes the missing job.
 */
void nova__queue_sched_advance(struct nova__queue_engine *e, const char *queue, const char *job_id,
                               const char *rjk, const char *opts_json, size_t opts_len);

/* Frees the engine's cache of parsed cron specs (engine shutdown). */
void nova__queue_sched_cache_free(void);

#endif
