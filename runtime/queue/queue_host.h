/*
 * queue_host - what the queue engine gives the plugin host table.
 *
 * The job accessors have exactly the signature of their struct nova_host
 * member: core/host.c stores them in the table as they are. The calls
 * that act on the engine take it explicitly, with the plugin's host
 * pointer as the owner tag its requests and subscriptions are kept under
 * (nova__queue_release_owner()); finding the engine behind a plugin's
 * host pointer is the core's business. Each has the contract of the
 * struct nova_host or struct nova_redis_api member it backs.
 */
#ifndef NOVA_RUNTIME_QUEUE_HOST_H
#define NOVA_RUNTIME_QUEUE_HOST_H

#include "nova/plugin.h"
#include "nova/redis.h"

struct nova__queue_engine;

int nova__queue_subscribe(struct nova__queue_engine *e, const struct nova_host *owner,
                          const struct nova_subscription *sub);
int nova__queue_set_concurrency(struct nova__queue_engine *e, const struct nova_host *owner,
                                const char *queue, unsigned concurrency);
int nova__queue_enqueue(struct nova__queue_engine *e, const struct nova_host *owner,
                        const char *queue, const char *name, const char *data_json,
                        const struct nova_job_options *opts, nova_enqueue_cb cb, void *arg);
int nova__queue_redis_command(struct nova__queue_engine *e, const struct nova_host *owner, int argc,
                              const char *const *argv, const size_t *argvlen, nova_redis_cb cb,
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

#endif
