/*
 * ri_lane - the one submitter of a source account (the distribution
 * account) across the fleet: lease, sequence, batch building, submission
 * and the resolution of every envelope (docs/plugins/reward_issuance.md,
 * "The exactly-once protocol").
 *
 * The lane runs one chain of asynchronous steps at a time, driven by a
 * timer. Its state lives in PostgreSQL; what it keeps in memory about the
 * open envelope is only a cache of the last answers it got, rebuilt from
 * the database after a restart or a lease takeover.
 */
#ifndef NOVA_RI_LANE_H
#define NOVA_RI_LANE_H

#include "ri.h"

/* Allocates the lane of one source account and schedules its first step.
 * source/secret: the account whose sequence the transactions use (the
 * distribution account itself, or a channel account when channel is true:
 * then the payments name the distribution account as their source and it
 * signs too). secret is borrowed and must outlive the lane.
 * rows_changed(arg) runs each time the lane has changed payment rows, so
 * the plugin's waiters look at them now rather than at their next poll;
 * it must not call back into the lane. Returns 0 or -ENOMEM. */
int nova__ri_lane_start(struct ri *ri, const char *source, const char *secret, bool channel,
                        void (*rows_changed)(void *arg), void *arg, struct ri_lane **out);

/* New pending payments exist: look now instead of at the next tick. */
void nova__ri_lane_poke(struct ri_lane *lane);

/* Stops scheduling; callbacks still pending (HTTP, PostgreSQL) find the
 * lane closing and do nothing more. Call from the plugin's shutdown(),
 * then nova__ri_lane_free(). */
void nova__ri_lane_close(struct ri_lane *lane);
void nova__ri_lane_free(struct ri_lane *lane);

#endif
