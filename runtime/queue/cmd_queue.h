/*
 * cmd_queue - `nova-worker queue ...`: inspect and feed BullMQ queues.
 *
 *   queue stats [QUEUE...]       job counts per state (like getJobCounts)
 *   queue add QUEUE NAME JSON [--job-id ID] [--delay MS] [--attempts N]
 *   queue failed QUEUE           failed job ids with their reasons
 *   queue retry QUEUE [JOB_ID...]  failed jobs back to wait (all when none given)
 *
 * Uses the [redis] section of cfg (url, prefix). argv[0] is "queue".
 * Returns the process exit code (0 ok, 1 failure, 2 usage).
 */
#ifndef NOVA_RUNTIME_CMD_QUEUE_H
#define NOVA_RUNTIME_CMD_QUEUE_H

#include "common/conf.h"

struct redisContext;

int nova__cmd_queue(const struct nova__config *cfg, int argc, char **argv);

/* A blocking connection to the [redis] url of cfg (NULL: the default
 * redis://127.0.0.1:6379), authenticated and on its database, for command
 * line tools. On failure prints "<who>: cannot connect to Redis at
 * HOST:PORT: reason" to stderr and returns NULL. Free with redisFree(). */
struct redisContext *nova__redis_connect_blocking(const struct nova__config *cfg, const char *who);

#endif
