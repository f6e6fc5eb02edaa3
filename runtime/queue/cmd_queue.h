/*
 * cmd_queue - `nova-worker queue ...`: inspect and repair BullMQ queues with
 * the effects Node's bullmq has (its own Lua scripts, runtime/queue/lua).
 *
 *   queue stats [QUEUE...]                 job counts per state (getJobCounts)
 *   queue add QUEUE NAME JSON [...]        a job, as queue.add() adds it
 *   queue failed QUEUE                     failed jobs with their reasons
 *   queue retry QUEUE [ID...]              failed jobs back to wait
 *   queue list QUEUE STATE [--limit N]     one state's jobs (getJobs)
 *   queue show [QUEUE] ID                  one job, decoded
 *   queue remove [QUEUE] ID...             Job.remove()
 *   queue clean QUEUE STATE --older-than D Queue.clean()
 *   queue promote [QUEUE] ID...            Job.promote()
 *   queue pause|resume QUEUE               Queue.pause() / resume()
 *   queue replay DLQ [--to QUEUE] [ID... | --all] [--dry-run]
 *                                          dead letters back as issue-reward jobs
 * Every command takes --json and --help (cmd_queue.c has the texts).
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
