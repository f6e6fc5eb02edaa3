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

struct nova__redis_sync;

int nova__cmd_queue(const struct nova__config *cfg, int argc, char **argv);

/* A blocking connection as the [redis] section of cfg says (NULL: the
 * default redis://127.0.0.1:6379), for command line tools: the same URLs,
 * TLS, ACL users, Sentinel and Cluster as the daemon (redis_sync.h). On
 * failure prints "<who>: cannot connect to Redis (...): reason" to stderr
 * and returns NULL. Free with nova__redis_sync_close(). */
struct nova__redis_sync *nova__redis_connect_blocking(const struct nova__config *cfg,
                                                      const char *who);

#endif
