/*
 * wh_out - outbound deliveries: one scheduled run claims due rows of
 * webhook_deliveries in bounded batches (FOR UPDATE SKIP LOCKED, a lease
 * in next_retry_at), sends each signed attempt through the host's guarded
 * HTTP client with at most endpoint_concurrency requests per endpoint,
 * records the outcome in Nova's columns and keeps the circuit breaker of
 * each endpoint in nova_worker_webhook_breakers. docs/plugins/webhook.md
 * has the protocol.
 *
 * Ownership: created by webhook.c's init() after the struct wh it borrows,
 * freed by its shutdown(). One run at a time (the dispatch subscription's
 * concurrency is 1).
 */
#ifndef NOVA_WH_OUT_H
#define NOVA_WH_OUT_H

#include "wh.h"

struct wh_out *wh_out_new(struct wh *wh);

/* Handles one `deliver` job (a scheduled run): returns at once, finishes
 * the job when nothing is left to send or the run's time is up. */
void wh_out_run(struct wh_out *o, nova_job *job);

/* Draining: no more claims; deliveries not yet sent are given back to the
 * table (due again at once); those in flight finish and are recorded. */
void wh_out_stop(struct wh_out *o);

/* After the host cancelled every request and timer of the plugin. */
void wh_out_free(struct wh_out *o);

#endif
