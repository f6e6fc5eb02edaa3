/*
 * queue_host - the queue part of the plugin host table. Each function has
 * exactly the signature of its struct nova_host member and finds the
 * engine through nova__host_services(host)->queues. The integrator's
 * nova__host_init() stores these in the table; nova__redis_api is the
 * table for struct nova_host.redis.
 */
#ifndef NOVA_RUNTIME_QUEUE_HOST_H
#define NOVA_RUNTIME_QUEUE_HOST_H

#include "nova/plugin.h"
#include "nova/redis.h"

int nova__qh_subscribe(const struct nova_host *host, const struct nova_subscription *sub);
int nova__qh_set_concurrency(const struct nova_host *host, const char *queue, unsigned concurrency);
int nova__qh_enqueue(const struct nova_host *host, const char *queue, const char *name,
                     const char *data_json, const struct nova_job_options *opts, nova_enqueue_cb cb,
                     void *arg);

const char *nova__qh_job_id(const nova_job *job);
const char *nova__qh_job_name(const nova_job *job);
const char *nova__qh_job_queue(const nova_job *job);
const char *nova__qh_job_data_json(const nova_job *job);
const struct cJSON *nova__qh_job_data(const nova_job *job);
int nova__qh_job_attempts_made(const nova_job *job);
int nova__qh_job_attempts_max(const nova_job *job);
int64_t nova__qh_job_timestamp_ms(const nova_job *job);
bool nova__qh_job_cancelled(const nova_job *job);
int nova__qh_job_progress(nova_job *job, const char *json);
void nova__qh_job_done(nova_job *job, const char *result_json);
void nova__qh_job_retry(nova_job *job, const char *reason, int64_t delay_ms);
void nova__qh_job_fail(nova_job *job, const char *reason);

extern const struct nova_redis_api nova__redis_api;

#endif
