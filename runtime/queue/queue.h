/*
 * queue - the BullMQ 5.81-compatible queue engine: consumer and producer.
 *
 * One engine per daemon. It owns one command connection to Redis plus,
 * per subscription, one blocking connection parked on BZPOPMIN of the
 * queue's marker (bounded at 10 s, with a watchdog). All Redis state
 * changes go through the engine's own Lua scripts (runtime/lua), which
 * keep BullMQ's key layout, job fields, locks, markers and events, so
 * Node producers and observers see the same thing as with a Node Worker.
 *
 * Everything runs on the loop thread. Plugins reach the engine through
 * the host table (runtime/queue_host.h).
 */
#ifndef NOVA_RUNTIME_QUEUE_H
#define NOVA_RUNTIME_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "nova/plugin.h"
#include "common/conf.h"
#include "common/log.h"

struct nova__queue_engine;

/*
 * Creates the engine and starts connecting (it reconnects by itself for
 * as long as it lives). cfg and worker_name (may be NULL: no `:w:` suffix,
 * no `pb`) are copied. Returns 0, or -EINVAL for a bad URL (logged), or
 * -ENOMEM.
 */
int nova__queue_engine_new(uv_loop_t *loop, const struct nova__redis_config *cfg,
                           const char *worker_name, struct nova__queue_engine **out);

/* Starts fetching for every subscription made so far and any made later. */
int nova__queue_engine_start(struct nova__queue_engine *e);

/*
 * Stops fetching everywhere and waits for in-flight jobs, renewing their
 * locks, up to timeout_ms. Jobs still running then are given back to the
 * head of `wait` (they were not finished, so no attempt is counted; when
 * Redis is unreachable the stall sweep of another worker recovers them)
 * and their late outcome is ignored. done(arg) runs once, on the loop,
 * never from inside this call.
 */
void nova__queue_engine_drain(struct nova__queue_engine *e, int64_t timeout_ms,
                              void (*done)(void *arg), void *arg);

/*
 * Frees the engine after drain (and after the plugins' shutdown(), since
 * it also frees jobs left with a plugin). Handles close asynchronously:
 * keep running the loop until it has no more handles.
 */
void nova__queue_engine_free(struct nova__queue_engine *e);

/*
 * Stops the subscriptions made through `host` (a plugin being disabled)
 * and drains them like nova__queue_engine_drain with the lock duration as
 * timeout. done(arg) runs once afterwards. Returns 0 (also when the plugin
 * had no subscription) or -EALREADY while a previous call for it is running.
 */
int nova__queue_unsubscribe_owner(struct nova__queue_engine *e, const struct nova_host *host,
                                  void (*done)(void *arg), void *arg);

/*
 * Ends what the plugin behind `host` still waits for from the engine: its
 * host->redis->command() and host->enqueue() requests without a reply yet.
 * (Such requests are tracked per host pointer; one that waits longer than
 * twice the connect timeout ends with -ETIMEDOUT the same way.)
 * cancel = true: each callback runs now, exactly once, with -ECANCELED
 * (before this returns); a request the plugin starts from such a callback
 * is refused with -ECANCELED. cancel = false: the callbacks are dropped and
 * never run (for requests started during shutdown(), after which the
 * plugin's state is gone). Either way the late Redis reply is discarded
 * and never reaches the plugin. Returns how many requests were ended.
 *
 * Call it with cancel = true before the plugin's shutdown() and with
 * cancel = false after it, before dlclose: runtime/host.c does so in
 * nova__host_release() and nova__host_after_shutdown().
 * At the end of nova__queue_engine_drain() (before its done) every
 * plugin's pending requests are cancelled the same way, and
 * nova__queue_engine_free() drops, with a warning, any started after.
 */
unsigned nova__queue_release_owner(struct nova__queue_engine *e, const struct nova_host *host,
                                   bool cancel);

/* For the queue folder's own modules (queue/schedulers.c): the command
 * connection and the key prefix; valid as long as the engine. */
struct nova__redis_conn *nova__queue_cmd_conn(struct nova__queue_engine *e);
const char *nova__queue_prefix(const struct nova__queue_engine *e);

/* The queues the plugin behind host subscribes to, at most max of them,
 * into out (borrowed: valid while the subscriptions are); returns how many. */
size_t nova__queue_owner_queues(const struct nova__queue_engine *e, const struct nova_host *host,
                                const char **out, size_t max);

/* True while the command connection is up (for /readyz). */
bool nova__queue_engine_connected(const struct nova__queue_engine *e);

/* Log context of a job: plugin, queue and job id; valid while the job is. */
const struct nova__log_ctx *nova__qh_job_log_ctx(const nova_job *job);

/* The key base "<prefix>:<queue>:" into buf; returns its length or -ENAMETOOLONG. */
int nova__queue_key_base(const char *prefix, const char *queue, char *buf, size_t len);

/*
 * Builds the opts JSON Node would store for these options (attempts
 * always present, backoff as {"type","delay"[,"jitter"]}). Caller frees.
 * NULL on bad options (err says why) or out of memory.
 */
char *nova__queue_opts_json(const struct nova_job_options *opts, char *err, size_t errlen);

/* Backoff delay in ms for the attempt that just failed (1-based), per
 * BullMQ: fixed = delay, exponential = round(2^(n-1) * delay), jitter j
 * scales into [d*(1-j), d). rnd in [0,1). Returns -1 for an unknown type. */
int64_t nova__queue_backoff_ms(const char *type, int64_t delay, double jitter, int attempt,
                               double rnd);

#endif
