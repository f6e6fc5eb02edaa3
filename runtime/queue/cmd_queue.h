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

int nova__cmd_queue(const struct nova__config *cfg, int argc, char **argv);

#endif
