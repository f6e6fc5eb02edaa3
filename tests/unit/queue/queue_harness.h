/*
 * queue_harness - drives the queue engine in tests without the daemon: a
 * private redis-server, a uv loop, the daemon's host table
 * (nova__host_init) for a plugin named "test", and a synchronous hiredis
 * client for inspecting and seeding Redis.
 */
#ifndef NOVA_TEST_QUEUE_HARNESS_H
#define NOVA_TEST_QUEUE_HARNESS_H

#include <stdbool.h>
#include <hiredis/hiredis.h>
#include <uv.h>
#include "core/host.h"
#include "queue/queue.h"
#include "queue/queue_host.h"
#include "lib/redis_server.h"

struct qh {
    uv_loop_t loop;
    struct nova_test_redis redis;
    struct nova__redis_config cfg;
    struct nova__queue_engine *e;
    struct nova__services sv;
    struct nova__host_ctx ctx;
    redisContext *sync;
    char url[64];
};

/* drain_delay_ms for the next qh_setup() (default 5000). */
extern int64_t qh_drain_delay_ms;

/* Starts Redis, the loop and the engine (not started). lock/stall in ms. */
void qh_setup(struct qh *h, int64_t lock_ms, int64_t stalled_ms);
/* Drains (timeout 2 s), releases the "test" plugin (nova__host_release
 * and nova__host_after_shutdown), frees the engine, runs the loop empty,
 * stops Redis. A test that frees the engine itself sets h->e and h->sv.queues
 * to NULL. */
void qh_teardown(struct qh *h);

/* Runs the loop until pred(arg) is true; false after timeout_ms. */
bool qh_run_until(struct qh *h, bool (*pred)(void *arg), void *arg, int timeout_ms);
/* Runs the loop for ms milliseconds. */
void qh_run_for(struct qh *h, int ms);

/* Adds a job with the engine's add script (synchronously). Returns the id
 * (static buffer). */
const char *qh_add(struct qh *h, const char *queue, const char *name, const char *data,
                   const struct nova_job_options *opts);

/* Synchronous command helpers (printf-style, hiredis format). */
redisReply *qh_cmd(struct qh *h, const char *fmt, ...);
long long qh_int(struct qh *h, const char *fmt, ...);
/* String reply copied into a static buffer; "" for nil. */
const char *qh_str(struct qh *h, const char *fmt, ...);
/* Number of events named `event` in the queue's stream. */
int qh_events(struct qh *h, const char *queue, const char *event);

int64_t qh_now_ms(void);

#endif
