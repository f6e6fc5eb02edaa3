/*
 * wh_in - inbound actions: the process-inbound-action jobs Nova's
 * POST /api/webhooks/actions enqueues on webhook-delivery. Each credits
 * the action's points once, in one transaction through the locked-balance
 * path, with its audit_logs row and its nova_worker_processed_jobs row
 * (queue, job id and creation time): a job run again after that
 * transaction committed
 * returns the stored result and credits nothing.
 */
#ifndef NOVA_WH_IN_H
#define NOVA_WH_IN_H

#include "wh.h"

/* The subscription's handler; arg is the struct wh. */
void wh_in_handle(void *arg, nova_job *job);

#endif
