/*
 * test_queue - the queue engine against a real redis-server: outcomes,
 * retries with backoff, permanent failure, bad input, priorities, delayed
 * jobs, stall recovery, lock loss, a Redis restart mid-run and drain.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "common/metrics.h"
#include "queue_harness.h"
#include "queue/queue_scripts.h"
#include "unit/testutil.h"

/* Helpers are shared by both programs built from this file. */
#define MAYBE_UNUSED __attribute__((unused))

static struct qh H;

static void setup(void)
{
    qh_setup(&H, 2000, 1000);
}

static void teardown(void)
{
    qh_teardown(&H);
}

/* ---- a scriptable test handler ------------------------------------------------- */

enum mode { M_ECHO, M_RETRY, M_FAIL, M_HOLD };

struct seen {
    enum mode mode;
    int calls;
    char order[64][32];
    int64_t at[64];
    nova_job *held[64];
    int held_n;
    int per_id[1024];
    int dup;
    int delay_ms; /* M_ECHO: finish after this long */
};

struct later {
    nova_job *job;
};

MAYBE_UNUSED static void finish_echo(nova_job *job)
{
    const cJSON *ret = cJSON_GetObjectItemCaseSensitive(H.ctx.host.job_data(job), "return");
    char *text = ret ? cJSON_PrintUnformatted(ret) : NULL;
    H.ctx.host.job_done(job, text);
    free(text);
}

MAYBE_UNUSED static void on_later(void *arg)
{
    struct later *l = arg;
    finish_echo(l->job);
    free(l);
}

MAYBE_UNUSED static void handler(void *arg, nova_job *job)
{
    struct seen *s = arg;
    const struct nova_host *h = &H.ctx.host;
    const char *id = h->job_id(job);
    long n = strtol(id, NULL, 10);
    if (s->calls < 64) {
        snprintf(s->order[s->calls], sizeof(s->order[0]), "%s", h->job_name(job));
        s->at[s->calls] = qh_now_ms();
    }
    s->calls++;
    if (n > 0 && n < 1024 && ++s->per_id[n] > 1)
        s->dup++;
    switch (s->mode) {
    case M_ECHO:
        if (s->delay_ms > 0) {
            struct later *l = malloc(sizeof(*l));
            l->job = job;
            ck_assert_ptr_nonnull(h->timer_start(h, (uint64_t)s->delay_ms, 0, on_later, l));
        } else {
            finish_echo(job);
        }
        break;
    case M_RETRY:
        h->job_retry(job, "temporary trouble", -1);
        break;
    case M_FAIL:
        h->job_fail(job, "permanent trouble");
        break;
    case M_HOLD:
        s->held[s->held_n++] = job;
        break;
    }
}

MAYBE_UNUSED static void subscribe(struct seen *s, const char *queue, unsigned conc,
                                   const char *const *names)
{
    struct nova_subscription sub = {
        .struct_size = sizeof(sub),
        .queue = queue,
        .job_names = names,
        .concurrency = conc,
        .handle = handler,
        .arg = s,
    };
    ck_assert_int_eq(H.ctx.host.subscribe(&H.ctx.host, &sub), 0);
}

struct count_cond {
    const char *key;
    long long want;
};

MAYBE_UNUSED static bool zcard_reaches(void *arg)
{
    struct count_cond *c = arg;
    return qh_int(&H, "ZCARD %s", c->key) >= c->want;
}

MAYBE_UNUSED static bool calls_reach(void *arg)
{
    struct seen *s = arg;
    return s->calls >= s->held_n + 1 && s->mode != M_HOLD ? true : s->held_n > 0;
}

/* nova_worker_jobs_total{queue,plugin="test",outcome}; -1 when absent. */
MAYBE_UNUSED static double jobs_metric(const char *queue, const char *outcome)
{
    static const char *const qpo[] = {"queue", "plugin", "outcome", NULL};
    nova_metric *m =
        nova__metric_new(NOVA_METRIC_COUNTER, "nova_worker_jobs_total", "", qpo, NULL, 0);
    const char *lv[] = {queue, "test", outcome};
    return nova__metric_value(m, lv);
}

/* Outcomes are counted when the engine reads the settle reply, which can
 * come after Redis shows the result: run the loop until the count is in. */
MAYBE_UNUSED static void await_jobs_metric(const char *queue, const char *outcome, double want)
{
    for (int i = 0; i < 300 && jobs_metric(queue, outcome) < want; i++)
        qh_run_for(&H, 10);
    ck_assert_msg(jobs_metric(queue, outcome) == want, "%s: %g, want %g", outcome,
                  jobs_metric(queue, outcome), want);
}

/* bullmq_job_count{queue,state}; -1 when absent. */
MAYBE_UNUSED static double count_metric(const char *queue, const char *state)
{
    static const char *const qs[] = {"queue", "state", NULL};
    nova_metric *m = nova__metric_new(NOVA_METRIC_GAUGE, "bullmq_job_count", "", qs, NULL, 0);
    const char *lv[] = {queue, state};
    return nova__metric_value(m, lv);
}

/* ---- tests ------------------------------------------------------------------------ */

#ifndef QUEUE_FAULTS
START_TEST(complete_stores_result_and_events)
{
    struct seen s = {.mode = M_ECHO};
    struct count_cond c = {"bull:q:completed", 1};
    const char *id = qh_add(&H, "q", "greet", "{\"return\":{\"hello\":\"world\"}}", NULL);
    ck_assert_str_eq(id, "1");
    subscribe(&s, "q", 1, NULL);
    ck_assert_int_eq(nova__queue_engine_start(H.e), 0);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:1 returnvalue"), "{\"hello\":\"world\"}");
    ck_assert_int_eq(qh_int(&H, "HGET bull:q:1 atm"), 1);
    ck_assert_int_eq(qh_int(&H, "HGET bull:q:1 ats"), 1);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:1 pb"), "ctest");
    ck_assert_int_gt(qh_int(&H, "HGET bull:q:1 finishedOn"), 0);
    ck_assert_int_gt(qh_int(&H, "HGET bull:q:1 processedOn"), 0);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:active"), 0);
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:1:lock"), 0);
    ck_assert_int_eq(qh_events(&H, "q", "added"), 1);
    ck_assert_int_eq(qh_events(&H, "q", "waiting"), 1);
    ck_assert_int_eq(qh_events(&H, "q", "active"), 1);
    ck_assert_int_eq(qh_events(&H, "q", "completed"), 1);
    ck_assert_int_eq(qh_events(&H, "q", "drained"), 1);
    ck_assert(nova__queue_engine_connected(H.e));
    {
        static const char *const qpo[] = {"queue", "plugin", "outcome", NULL};
        static const char *const qp[] = {"queue", "plugin", NULL};
        const char *done[] = {"q", "test", "completed"};
        const char *queue[] = {"q", "test"};
        nova_metric *jobs = nova__metric_new(NOVA_METRIC_COUNTER, "nova_worker_jobs_total",
                                             "Job attempts ended, by outcome", qpo, NULL, 0);
        nova_metric *dur =
            nova__metric_new(NOVA_METRIC_HISTOGRAM, "nova_worker_job_duration_seconds",
                             "Time from fetch to outcome", qp, NULL, 0);
        nova_metric *waited = nova__metric_new(NOVA_METRIC_HISTOGRAM,
                                               "nova_worker_job_wait_seconds", "", qp, NULL, 0);
        nova_metric *up =
            nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_redis_connected",
                             "1 while the queue command connection to Redis is up", NULL, NULL, 0);
        ck_assert_ptr_nonnull(jobs);
        /* Redis has the result before the engine has read the reply. */
        for (int i = 0; i < 200 && nova__metric_value(jobs, done) < 1.0; i++)
            qh_run_for(&H, 10);
        ck_assert(nova__metric_value(jobs, done) == 1.0);
        ck_assert(nova__metric_value(dur, queue) == 1.0);
        ck_assert(nova__metric_value(waited, queue) == 1.0);
        ck_assert(nova__metric_value(up, NULL) == 1.0);
        /* The other outcomes exist from the start, at 0 (increase() needs them). */
        ck_assert(jobs_metric("q", "failed") == 0.0);
        ck_assert(jobs_metric("q", "dead") == 0.0);
        ck_assert(jobs_metric("q", "stalled") == 0.0);
    }
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(null_result_and_remove_on_complete)
{
    struct seen s = {.mode = M_ECHO};
    struct nova_job_options o = {
        .struct_size = sizeof(o), .remove_on_complete = 0, .remove_on_fail = -1};
    struct nova_job_options keep2 = {
        .struct_size = sizeof(o), .remove_on_complete = 2, .remove_on_fail = -1};
    struct count_cond c = {"bull:q:completed", 2};
    qh_add(&H, "q", "a", "{}", NULL);
    qh_add(&H, "q", "b", "{}", &o);
    for (int i = 0; i < 4; i++)
        qh_add(&H, "q", "c", "{}", &keep2);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    qh_run_for(&H, 300);
    ck_assert_int_eq(s.calls, 6);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:6 returnvalue"), "null");
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:2"), 0);
    /* keep the newest 2: jobs 5 and 6; job 1 was pruned by the count too */
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:1"), 0);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 2);
    ck_assert_int_eq(qh_int(&H, "ZSCORE bull:q:completed 6") > 0, 1);
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:3"), 0);
    ck_assert_int_eq(qh_events(&H, "q", "completed"), 6);
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
static bool events_reach(void *arg)
{
    struct count_cond *c = arg;
    return qh_events(&H, "q", c->key) >= c->want;
}

/* 150 jobs through concurrency 60: fetches take many jobs per call and
 * settles finish many per call (one MGET of the locks, one DEL of the
 * removed jobs' keys). Order, clean-up and the stalled set must be exactly
 * what one job at a time would leave. */
START_TEST(batched_fetch_and_settle_keep_order_and_clean_up)
{
    struct seen s = {.mode = M_ECHO};
    struct nova_job_options rm = {
        .struct_size = sizeof(rm), .remove_on_complete = 0, .remove_on_fail = -1};
    struct nova_job_options keep = {
        .struct_size = sizeof(keep), .remove_on_complete = -1, .remove_on_fail = -1};
    struct count_cond done = {"completed", 150};
    char name[16];
    qh_teardown(&H);
    qh_setup(&H, 2000, 60000); /* no stall sweep during the test */
    for (int i = 1; i <= 150; i++) {
        snprintf(name, sizeof(name), "n%03d", i);
        qh_add(&H, "q", name, "{\"return\":1}", i % 2 ? &rm : &keep);
    }
    /* as if a stall sweep had just marked jobs: finishing must unmark them */
    freeReplyObject(qh_cmd(&H, "SADD bull:q:stalled 3 4 77 150 ghost"));
    subscribe(&s, "q", 60, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, events_reach, &done, 8000));
    qh_run_for(&H, 100);
    ck_assert_int_eq(s.calls, 150);
    ck_assert_int_eq(s.dup, 0);
    for (int i = 0; i < 64; i++) {
        snprintf(name, sizeof(name), "n%03d", i + 1);
        ck_assert_str_eq(s.order[i], name);
    }
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:wait"), 0);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:active"), 0);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 75);
    ck_assert_int_eq(qh_int(&H, "SCARD bull:q:stalled"), 1);
    ck_assert_int_eq(qh_int(&H, "SISMEMBER bull:q:stalled ghost"), 1);
    for (int i = 1; i <= 150; i++) {
        ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:%d:lock", i), 0);
        ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:%d", i), i % 2 ? 0 : 1);
        if (i % 2 == 0) {
            ck_assert_str_eq(qh_str(&H, "HGET bull:q:%d returnvalue", i), "1");
            ck_assert_str_eq(qh_str(&H, "HGET bull:q:%d atm", i), "1");
            ck_assert_str_eq(qh_str(&H, "HGET bull:q:%d ats", i), "1");
            ck_assert_int_eq(qh_int(&H, "HEXISTS bull:q:%d finishedOn", i), 1);
        }
    }
    ck_assert_int_eq(qh_events(&H, "q", "active"), 150);
}
END_TEST

/* Kept jobs enter `completed` with one ZADD per call; a count prune later in
 * the same call must still see them (BullMQ's count covers the whole set). */
START_TEST(count_prune_sees_jobs_kept_earlier_in_the_batch)
{
    struct seen s = {.mode = M_ECHO};
    struct nova_job_options all = {
        .struct_size = sizeof(all), .remove_on_complete = -1, .remove_on_fail = -1};
    struct nova_job_options keep3 = {
        .struct_size = sizeof(keep3), .remove_on_complete = 3, .remove_on_fail = -1};
    struct count_cond done = {"completed", 30};
    for (int i = 1; i <= 30; i++)
        qh_add(&H, "q", "n", "{}", i % 2 ? &all : &keep3);
    subscribe(&s, "q", 30, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, events_reach, &done, 8000));
    qh_run_for(&H, 100);
    ck_assert_int_eq(s.calls, 30);
    /* job 30 finished last and kept the newest 3 of the whole set */
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 3);
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:1"), 0);
}
END_TEST

/* The engine never reports a job twice in one settle call, but the script
 * must not trust its prefetched locks if that happens: the second report
 * finds the lock released by the first, as separate calls would. */
START_TEST(settle_same_job_twice_in_one_call)
{
    const char *keep[] = {"-1", "0"}; /* removeOnComplete false, true */
    for (int k = 0; k < 2; k++) {
        freeReplyObject(qh_cmd(&H, "DEL bull:q:1 bull:q:active bull:q:completed"));
        freeReplyObject(qh_cmd(&H, "HSET bull:q:1 name x data {} opts {}"));
        freeReplyObject(qh_cmd(&H, "LPUSH bull:q:active 1"));
        freeReplyObject(qh_cmd(&H, "SET bull:q:1:lock tok PX 10000"));
        const char *one[] = {"1", "tok", "c", "7", "1", keep[k], "0", "0", "0", "0", "", "0"};
        const char *av[64] = {"EVAL", nova__lua_settle, "1", "bull:q:meta", "bull:q:", "1000", "2"};
        int ac = 7;
        for (int rep = 0; rep < 2; rep++)
            for (int i = 0; i < 12; i++)
                av[ac++] = one[i];
        const char *fetch[] = {"0", "w", "1000", "0", "0", ""};
        for (int i = 0; i < 6; i++)
            av[ac++] = fetch[i];
        redisReply *r = redisCommandArgv(H.sync, ac, av, NULL);
        ck_assert_ptr_nonnull(r);
        ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "settle: %s",
                      r->type == REDIS_REPLY_ERROR ? r->str : "?");
        ck_assert_int_eq(r->element[0]->elements, 2);
        ck_assert_int_eq(r->element[0]->element[0]->integer, 0);
        /* kept: the job exists without a lock (-2); removed: no job (-1) */
        ck_assert_int_eq(r->element[0]->element[1]->integer, k == 0 ? -2 : -1);
        freeReplyObject(r);
        ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:1:lock"), 0);
        ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:1"), k == 0 ? 1 : 0);
        ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), k == 0 ? 1 : 0);
    }
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
/* Jobs with different opts fetched in one batch: each is settled by its
 * own opts (the engine caches what an opts text says, by its text). */
START_TEST(mixed_opts_in_one_batch)
{
    struct seen s = {.mode = M_ECHO};
    struct nova_job_options rm = {
        .struct_size = sizeof(rm), .remove_on_complete = 0, .remove_on_fail = -1};
    struct nova_job_options keep = {
        .struct_size = sizeof(keep), .remove_on_complete = -1, .remove_on_fail = -1};
    struct count_cond c = {"bull:q:completed", 4};
    for (int i = 0; i < 8; i++)
        qh_add(&H, "q", "m", "{}", i % 2 ? &rm : &keep); /* ids 1..8, even ids removed */
    subscribe(&s, "q", 10, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    qh_run_for(&H, 300);
    ck_assert_int_eq(s.calls, 8);
    ck_assert_int_eq(qh_events(&H, "q", "completed"), 8);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 4);
    for (int id = 1; id <= 8; id++) {
        ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:%d", id), id % 2);
        ck_assert_int_eq(qh_int(&H, "ZSCORE bull:q:completed %d", id) > 0, id % 2);
    }
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(retry_with_exponential_backoff_then_exhausted)
{
    struct seen s = {.mode = M_RETRY};
    struct nova_job_options o = {.struct_size = sizeof(o),
                                 .attempts = 3,
                                 .backoff_type = "exponential",
                                 .backoff_delay_ms = 150,
                                 .remove_on_complete = -1,
                                 .remove_on_fail = -1};
    struct count_cond c = {"bull:q:failed", 1};
    qh_add(&H, "q", "flaky", "{}", &o);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 8000));
    ck_assert_int_eq(s.calls, 3);
    /* 150 ms after the first failure, 300 ms after the second */
    ck_assert_int_ge(s.at[1] - s.at[0], 140);
    ck_assert_int_ge(s.at[2] - s.at[1], 290);
    ck_assert_int_eq(qh_int(&H, "HGET bull:q:1 atm"), 3);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:1 failedReason"), "temporary trouble");
    {
        cJSON *st = cJSON_Parse(qh_str(&H, "HGET bull:q:1 stacktrace"));
        ck_assert(cJSON_IsArray(st));
        ck_assert_int_eq(cJSON_GetArraySize(st), 3);
        cJSON_Delete(st);
    }
    ck_assert_int_eq(qh_events(&H, "q", "delayed"), 2);
    ck_assert_int_eq(qh_events(&H, "q", "failed"), 1);
    ck_assert_int_eq(qh_events(&H, "q", "retries-exhausted"), 1);
    /* Two attempts went back to delayed; the last one is dead, not failed. */
    await_jobs_metric("q", "dead", 1);
    ck_assert(jobs_metric("q", "retried") == 2.0);
    ck_assert(jobs_metric("q", "failed") == 0.0);
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(immediate_retry_without_backoff)
{
    struct seen s = {.mode = M_RETRY};
    struct nova_job_options o = {
        .struct_size = sizeof(o), .attempts = 2, .remove_on_complete = -1, .remove_on_fail = -1};
    struct count_cond c = {"bull:q:failed", 1};
    qh_add(&H, "q", "flaky", "{}", &o);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    ck_assert_int_eq(s.calls, 2);
    ck_assert_int_eq(qh_events(&H, "q", "delayed"), 0);
    ck_assert_int_eq(qh_events(&H, "q", "waiting"), 2); /* add + retry */
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(fail_is_permanent)
{
    struct seen s = {.mode = M_FAIL};
    struct nova_job_options o = {
        .struct_size = sizeof(o), .attempts = 5, .remove_on_complete = -1, .remove_on_fail = -1};
    struct count_cond c = {"bull:q:failed", 1};
    qh_add(&H, "q", "bad", "{}", &o);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    qh_run_for(&H, 200);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(qh_int(&H, "HGET bull:q:1 atm"), 1);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:1 failedReason"), "permanent trouble");
    ck_assert_int_eq(qh_events(&H, "q", "retries-exhausted"), 0);
    /* Given up with 4 attempts left: failed, not dead. */
    await_jobs_metric("q", "failed", 1);
    ck_assert(jobs_metric("q", "dead") == 0.0);
    ck_assert(jobs_metric("q", "retried") == 0.0);
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(bad_json_fails_and_unknown_name_is_given_back)
{
    static const char *const names[] = {"known", NULL};
    struct seen s = {.mode = M_ECHO};
    struct count_cond c = {"bull:q:failed", 1};
    qh_add(&H, "q", "known", "{}", NULL);
    qh_add(&H, "q", "mystery", "{}", NULL);
    qh_add(&H, "q", "known", "{}", NULL);
    /* corrupt job 3's data behind the producer's back */
    freeReplyObject(qh_cmd(&H, "HSET bull:q:3 data %s", "{not json"));
    subscribe(&s, "q", 1, names);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    qh_run_for(&H, 400);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_ptr_nonnull(strstr(qh_str(&H, "HGET bull:q:3 failedReason"), "not valid JSON"));
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 1);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:failed"), 1);
    /* the job for another worker's name is waiting for that worker, with
     * no attempt counted and no failure */
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:wait"), 1);
    ck_assert_str_eq(qh_str(&H, "LINDEX bull:q:wait 0"), "2");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:2 failedReason"), "");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:2 atm"), "");
    /* and it is not taken again and again: a pause after a batch of others' jobs */
    long long ats = strtoll(qh_str(&H, "HGET bull:q:2 ats"), NULL, 10);
    ck_assert_int_le(ats, 5);
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(priorities_wait_first_then_by_priority)
{
    struct seen s = {.mode = M_ECHO};
    struct nova_job_options p[4];
    struct count_cond c = {"bull:q:completed", 5};
    for (int i = 0; i < 4; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].struct_size = sizeof(p[i]);
        p[i].remove_on_complete = p[i].remove_on_fail = -1;
    }
    p[0].priority = 3;
    p[1].priority = 1;
    p[2].priority = 2;
    p[3].priority = 1;
    qh_add(&H, "q", "p3", "{}", &p[0]);
    qh_add(&H, "q", "p1a", "{}", &p[1]);
    qh_add(&H, "q", "p2", "{}", &p[2]);
    qh_add(&H, "q", "plain", "{}", NULL);
    qh_add(&H, "q", "p1b", "{}", &p[3]);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    ck_assert_str_eq(s.order[0], "plain");
    ck_assert_str_eq(s.order[1], "p1a");
    ck_assert_str_eq(s.order[2], "p1b");
    ck_assert_str_eq(s.order[3], "p2");
    ck_assert_str_eq(s.order[4], "p3");
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:pc"), 0);
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(delayed_job_runs_when_due)
{
    struct seen s = {.mode = M_ECHO};
    struct nova_job_options o = {
        .struct_size = sizeof(o), .delay_ms = 600, .remove_on_complete = -1, .remove_on_fail = -1};
    struct count_cond c = {"bull:q:completed", 1};
    int64_t t0;
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    qh_run_for(&H, 200); /* the worker is now parked on the marker */
    t0 = qh_now_ms();
    qh_add(&H, "q", "later", "{}", &o);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:delayed"), 1);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    ck_assert_int_ge(s.at[0] - t0, 590);
    ck_assert_int_le(s.at[0] - t0, 3000);
    ck_assert_int_eq(qh_int(&H, "HGET bull:q:1 delay"), 0);
    ck_assert_int_eq(qh_events(&H, "q", "delayed"), 1);
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(enqueue_from_c_and_duplicates)
{
    struct seen s = {.mode = M_ECHO};
    struct count_cond c = {"bull:q:completed", 1};
    struct nova_job_options o = {.struct_size = sizeof(o),
                                 .job_id = "dead-letter-7",
                                 .attempts = 2,
                                 .backoff_type = "fixed",
                                 .backoff_delay_ms = 100,
                                 .remove_on_complete = -1,
                                 .remove_on_fail = -1};
    const char *id = qh_add(&H, "q", "dl", "{\"return\":1}", &o);
    ck_assert_str_eq(id, "dead-letter-7");
    id = qh_add(&H, "q", "dl", "{\"return\":2}", &o);
    ck_assert_str_eq(id, "dead-letter-7");
    ck_assert_int_eq(qh_events(&H, "q", "duplicated"), 1);
    ck_assert_int_eq(qh_int(&H, "GET bull:q:id"), 2);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:dead-letter-7 opts"),
                     "{\"attempts\":2,\"jobId\":\"dead-letter-7\",\"backoff\":{\"type\":"
                     "\"fixed\",\"delay\":100}}");
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 5000));
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:dead-letter-7 returnvalue"), "1");
}
END_TEST
#endif

MAYBE_UNUSED static bool counts_in(void *arg)
{
    (void)arg;
    return count_metric("q", "completed") == 4.0 && count_metric("q2", "failed") == 1.0;
}

#ifndef QUEUE_FAULTS
/* bullmq_job_count: every state of every served queue, as BullMQ's
 * getJobCounts() names them, and nothing left of a queue not served. */
START_TEST(job_counts_per_queue_and_state)
{
    struct seen s = {.mode = M_HOLD};
    static const char *const qs[] = {"queue", "state", NULL};
    nova_metric *m = nova__metric_new(NOVA_METRIC_GAUGE, "bullmq_job_count", "", qs, NULL, 0);
    const char *gone[] = {"gone", "waiting"};
    long long later = (qh_now_ms() + 86400000LL) * 4096; /* a delayed score due tomorrow */
    ck_assert_ptr_nonnull(m);
    nova__metric_set(m, gone, 7);
    /* A paused queue keeps its jobs where they are put. */
    freeReplyObject(qh_cmd(&H, "HSET bull:q:meta paused 1"));
    freeReplyObject(qh_cmd(&H, "RPUSH bull:q:paused p1 p2 p3"));
    freeReplyObject(qh_cmd(&H, "ZADD bull:q:prioritized 1 x1 2 x2"));
    freeReplyObject(qh_cmd(&H, "ZADD bull:q:delayed %lld d1", later));
    freeReplyObject(qh_cmd(&H, "ZADD bull:q:completed 1 c1 2 c2 3 c3 4 c4"));
    freeReplyObject(qh_cmd(&H, "ZADD bull:q:failed 1 f1 2 f2 3 f3 4 f4 5 f5"));
    freeReplyObject(qh_cmd(&H, "ZADD bull:q:waiting-children 1 w1 2 w2 3 w3 4 w4 5 w5 6 w6"));
    freeReplyObject(qh_cmd(&H, "ZADD bull:q2:failed 1 f1"));
    subscribe(&s, "q", 1, NULL);
    subscribe(&s, "q", 1, NULL); /* two subscriptions, one queue: counted once */
    subscribe(&s, "q2", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, counts_in, NULL, 5000));
    ck_assert(count_metric("q", "waiting") == 0.0);
    ck_assert(count_metric("q", "paused") == 3.0);
    ck_assert(count_metric("q", "active") == 0.0);
    ck_assert(count_metric("q", "prioritized") == 2.0);
    ck_assert(count_metric("q", "delayed") == 1.0);
    ck_assert(count_metric("q", "completed") == 4.0);
    ck_assert(count_metric("q", "failed") == 5.0);
    ck_assert(count_metric("q", "waiting-children") == 6.0);
    ck_assert(count_metric("q2", "waiting") == 0.0);
    ck_assert(count_metric("gone", "waiting") == -1.0);
    {
        char *text;
        size_t len;
        ck_assert_int_eq(nova__metrics_render(&text, &len), 0);
        ck_assert_ptr_nonnull(
            strstr(text, "# HELP bullmq_job_count Number of jobs in the queue by state\n"));
        ck_assert_ptr_nonnull(
            strstr(text, "bullmq_job_count{queue=\"q\",state=\"waiting-children\"} 6\n"));
        free(text);
    }
}
END_TEST
#endif

MAYBE_UNUSED static bool stalled_done(void *arg)
{
    (void)arg;
    return qh_int(&H, "ZCARD bull:q:completed") + qh_int(&H, "ZCARD bull:q:failed") >= 2;
}

#ifdef QUEUE_FAULTS
START_TEST(stalled_jobs_recovered_or_failed)
{
    struct seen s = {.mode = M_ECHO};
    /* Two jobs a dead worker left in active, lock expired, already suspects. */
    qh_add(&H, "q", "orphan", "{}", NULL);
    qh_add(&H, "q", "orphan2", "{}", NULL);
    freeReplyObject(qh_cmd(&H, "DEL bull:q:wait bull:q:marker"));
    freeReplyObject(qh_cmd(&H, "RPUSH bull:q:active 1 2"));
    freeReplyObject(qh_cmd(&H, "SADD bull:q:stalled 1 2"));
    freeReplyObject(qh_cmd(&H, "HSET bull:q:2 stc 1")); /* stalled once before */
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, stalled_done, NULL, 5000));
    ck_assert_int_eq(qh_int(&H, "HGET bull:q:1 stc"), 1);
    ck_assert_int_eq(qh_int(&H, "ZSCORE bull:q:completed 1") > 0, 1);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:2 failedReason"),
                     "job stalled more than allowable limit");
    ck_assert_int_eq(qh_events(&H, "q", "stalled"), 2);
    ck_assert_int_eq(s.calls, 1); /* the over-stalled one never reaches the plugin */
    /* Both given back by this worker's sweep, and the over-stalled one
     * then failed for it: three stall events, one completion, no failure. */
    await_jobs_metric("q", "stalled", 3);
    await_jobs_metric("q", "completed", 1);
    ck_assert(jobs_metric("q", "failed") == 0.0);
    ck_assert(jobs_metric("q", "dead") == 0.0);
}
END_TEST
#endif

MAYBE_UNUSED static bool has_held(void *arg)
{
    return ((struct seen *)arg)->held_n > 0;
}

MAYBE_UNUSED static bool cancelled0(void *arg)
{
    struct seen *s = arg;
    return H.ctx.host.job_cancelled(s->held[0]);
}

#ifdef QUEUE_FAULTS
START_TEST(lost_lock_drops_result)
{
    struct seen s = {.mode = M_HOLD};
    qh_teardown(&H);
    qh_setup(&H, 400, 5000);
    qh_add(&H, "q", "slow", "{}", NULL);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, has_held, &s, 3000));
    /* renewal keeps the lock alive past its duration */
    qh_run_for(&H, 700);
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:1:lock"), 1);
    ck_assert(!H.ctx.host.job_cancelled(s.held[0]));
    /* someone else takes the job */
    freeReplyObject(qh_cmd(&H, "SET bull:q:1:lock other-worker"));
    ck_assert(qh_run_until(&H, cancelled0, &s, 2000));
    H.ctx.host.job_done(s.held[0], "{\"late\":true}");
    qh_run_for(&H, 200);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 0);
    ck_assert_int_eq(qh_int(&H, "HEXISTS bull:q:1 returnvalue"), 0);
    ck_assert_str_eq(qh_str(&H, "GET bull:q:1:lock"), "other-worker");
    {
        static const char *const q[] = {"queue", NULL};
        const char *lv[] = {"q"};
        nova_metric *renew = nova__metric_new(
            NOVA_METRIC_COUNTER, "nova_worker_lock_renewal_failures_total", "", q, NULL, 0);
        ck_assert(nova__metric_value(renew, lv) == 1.0);
        ck_assert(jobs_metric("q", "lost") == 1.0);
        ck_assert(jobs_metric("q", "completed") == 0.0);
    }
}
END_TEST
#endif

#ifdef QUEUE_FAULTS
START_TEST(redis_restart_mid_run)
{
    struct seen s = {.mode = M_ECHO, .delay_ms = 5};
    struct count_cond half = {"bull:q:completed", 60};
    struct count_cond all = {"bull:q:completed", 200};
    for (int i = 0; i < 200; i++)
        qh_add(&H, "q", "n", "{}", NULL);
    subscribe(&s, "q", 10, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &half, 10000));
    redisFree(H.sync);
    ck_assert_int_eq(nova_test_redis_halt(&H.redis), 0);
    qh_run_for(&H, 300);
    ck_assert(!nova__queue_engine_connected(H.e));
    ck_assert_int_eq(nova_test_redis_resume(&H.redis), 0);
    H.sync = redisConnect("127.0.0.1", H.redis.port);
    ck_assert(qh_run_until(&H, zcard_reaches, &all, 20000));
    qh_run_for(&H, 200);
    ck_assert(nova__queue_engine_connected(H.e));
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 200);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:wait"), 0);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:active"), 0);
    ck_assert_int_eq(s.dup, 0);
}
END_TEST
#endif

MAYBE_UNUSED static void drain_cb(void *arg)
{
    *(int64_t *)arg = qh_now_ms();
}

MAYBE_UNUSED static bool nonzero(void *arg)
{
    return *(int64_t *)arg != 0;
}

#ifdef QUEUE_FAULTS
START_TEST(drain_timeout_gives_jobs_back)
{
    struct seen s = {.mode = M_HOLD};
    int64_t t0, done_at = 0;
    qh_add(&H, "q", "forever", "{}", NULL);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, has_held, &s, 3000));
    t0 = qh_now_ms();
    nova__queue_engine_drain(H.e, 300, drain_cb, &done_at);
    ck_assert_int_eq(done_at, 0); /* never from inside the call */
    ck_assert(qh_run_until(&H, nonzero, &done_at, 3000));
    ck_assert_int_ge(done_at - t0, 290);
    qh_run_for(&H, 100);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:wait"), 1);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:active"), 0);
    ck_assert(H.ctx.host.job_cancelled(s.held[0]));
    /* the late outcome is dropped safely */
    H.ctx.host.job_done(s.held[0], "1");
    nova__queue_engine_free(H.e);
    H.e = NULL;
}
END_TEST
#endif

#ifdef QUEUE_FAULTS
START_TEST(drain_waits_for_running_jobs)
{
    struct seen s = {.mode = M_ECHO, .delay_ms = 200};
    int64_t t0, done_at = 0;
    qh_add(&H, "q", "short", "{}", NULL);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, calls_reach, &s, 3000));
    t0 = qh_now_ms();
    nova__queue_engine_drain(H.e, 5000, drain_cb, &done_at);
    ck_assert(qh_run_until(&H, nonzero, &done_at, 3000));
    ck_assert_int_lt(done_at - t0, 1000);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 1);
    nova__queue_engine_free(H.e);
    H.e = NULL;
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(concurrency_and_set_concurrency)
{
    struct seen s = {.mode = M_HOLD};
    for (int i = 0; i < 10; i++)
        qh_add(&H, "q", "n", "{}", NULL);
    subscribe(&s, "q", 3, NULL);
    nova__queue_engine_start(H.e);
    qh_run_for(&H, 300);
    ck_assert_int_eq(s.held_n, 3);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:active"), 3);
    ck_assert_int_eq(H.ctx.host.set_concurrency(&H.ctx.host, "q", 5), 0);
    qh_run_for(&H, 300);
    ck_assert_int_eq(s.held_n, 5);
    for (int i = 0; i < s.held_n; i++)
        H.ctx.host.job_done(s.held[i], NULL);
    s.held_n = 0;
    qh_run_for(&H, 300);
    ck_assert_int_eq(s.held_n, 5);
    for (int i = 0; i < s.held_n; i++)
        H.ctx.host.job_done(s.held[i], NULL);
    s.held_n = 0;
    qh_run_for(&H, 300);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:completed"), 10);
}
END_TEST
#endif

MAYBE_UNUSED static void on_plugin_reply(void *arg, int status, const struct nova_redis_reply *r)
{
    long long *out = arg;
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(r->type, NOVA_REDIS_REPLY_INTEGER);
    *out = r->integer;
}

MAYBE_UNUSED static bool ll_set(void *arg)
{
    return *(long long *)arg != -99;
}

#ifndef QUEUE_FAULTS
START_TEST(plugin_redis_command)
{
    long long got = -99;
    const char *argv[] = {"DEL", "balance:GABC", "balance:GDEF"};
    freeReplyObject(qh_cmd(&H, "SET balance:GABC 10"));
    qh_run_for(&H, 200);
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 3, argv, NULL, on_plugin_reply, &got),
                     0);
    ck_assert(qh_run_until(&H, ll_set, &got, 2000));
    ck_assert_int_eq(got, 1);
}
END_TEST
#endif

MAYBE_UNUSED static bool active_ok(void *arg)
{
    long long *max_active = arg;
    long long a = qh_int(&H, "LLEN bull:q:active");
    if (a > *max_active)
        *max_active = a;
    return qh_int(&H, "ZCARD bull:q:completed") >= 6;
}

#ifndef QUEUE_FAULTS
START_TEST(rate_limiter_spreads_jobs)
{
    struct seen s = {.mode = M_ECHO};
    struct nova_subscription sub = {
        .struct_size = sizeof(sub),
        .queue = "q",
        .concurrency = 10,
        .handle = handler,
        .arg = &s,
        .limiter_max = 2,
        .limiter_duration_ms = 400,
    };
    struct count_cond c = {"bull:q:completed", 6};
    for (int i = 0; i < 6; i++)
        qh_add(&H, "q", "n", "{}", NULL);
    ck_assert_int_eq(H.ctx.host.subscribe(&H.ctx.host, &sub), 0);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 8000));
    /* 2 per 400 ms window: the 5th job starts at least two windows later */
    ck_assert_int_ge(s.at[4] - s.at[0], 790);
    ck_assert_int_le(s.at[1] - s.at[0], 300);
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(global_concurrency_from_meta)
{
    struct seen s = {.mode = M_ECHO, .delay_ms = 30};
    long long max_active = 0;
    freeReplyObject(qh_cmd(&H, "HSET bull:q:meta concurrency 1"));
    for (int i = 0; i < 6; i++)
        qh_add(&H, "q", "n", "{}", NULL);
    subscribe(&s, "q", 5, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, active_ok, &max_active, 8000));
    ck_assert_int_eq(max_active, 1);
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(paused_queue_is_not_consumed)
{
    struct seen s = {.mode = M_ECHO};
    struct count_cond c = {"bull:q:completed", 1};
    freeReplyObject(qh_cmd(&H, "HSET bull:q:meta paused 1"));
    qh_add(&H, "q", "n", "{}", NULL);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:paused"), 1); /* v5: adds go to paused */
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    qh_run_for(&H, 500);
    ck_assert_int_eq(s.calls, 0);
    /* resume as Node does: rename back, clear the flag, wake workers */
    freeReplyObject(qh_cmd(&H, "RENAME bull:q:paused bull:q:wait"));
    freeReplyObject(qh_cmd(&H, "HDEL bull:q:meta paused"));
    freeReplyObject(qh_cmd(&H, "ZADD bull:q:marker 0 0"));
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 3000));
}
END_TEST
#endif

MAYBE_UNUSED static void unsub_done(void *arg)
{
    *(int *)arg += 1;
}

MAYBE_UNUSED static bool int_set(void *arg)
{
    return *(int *)arg != 0;
}

#ifdef QUEUE_FAULTS
START_TEST(unsubscribe_one_owner)
{
    struct seen a = {.mode = M_HOLD}, b = {.mode = M_ECHO};
    struct nova__host_ctx other = H.ctx; /* a second plugin */
    struct nova_subscription sub = {.struct_size = sizeof(sub),
                                    .queue = "other",
                                    .concurrency = 1,
                                    .handle = handler,
                                    .arg = &b};
    struct count_cond c = {"bull:other:completed", 2};
    int done = 0;
    other.host.plugin_name = "other";
    qh_add(&H, "q", "n", "{}", NULL);
    subscribe(&a, "q", 1, NULL);
    ck_assert_int_eq(other.host.subscribe(&other.host, &sub), 0);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, has_held, &a, 3000));
    ck_assert_int_eq(nova__queue_unsubscribe_owner(H.e, &H.ctx.host, unsub_done, &done), 0);
    ck_assert_int_eq(nova__queue_unsubscribe_owner(H.e, &H.ctx.host, unsub_done, &done), -EALREADY);
    qh_run_for(&H, 100);
    ck_assert_int_eq(done, 0); /* waits for the job in flight */
    H.ctx.host.job_done(a.held[0], NULL);
    ck_assert(qh_run_until(&H, int_set, &done, 3000));
    ck_assert_int_eq(done, 1);
    /* the first plugin takes nothing more; the other one keeps working */
    qh_add(&H, "q", "n", "{}", NULL);
    qh_add(&H, "other", "n", "{}", NULL);
    qh_add(&H, "other", "n", "{}", NULL);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 3000));
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(qh_int(&H, "LLEN bull:q:wait"), 1);
}
END_TEST
#endif

MAYBE_UNUSED static bool progress_seen(void *arg)
{
    (void)arg;
    return qh_events(&H, "q", "progress") > 0;
}

#ifndef QUEUE_FAULTS
START_TEST(progress_and_version_warning)
{
    struct seen s = {.mode = M_HOLD};
    char path[] = "/tmp/nova-qlog-XXXXXX";
    int fd = mkstemp(path);
    char buf[65536];
    ssize_t n;
    ck_assert_int_ge(fd, 0);
    unlink(path);
    freeReplyObject(qh_cmd(&H, "HSET bull:q:meta version bullmq:6.7.0"));
    nova__log_set_fd(fd);
    qh_add(&H, "q", "n", "{}", NULL);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, has_held, &s, 3000));
    ck_assert_int_eq(H.ctx.host.job_progress(s.held[0], "{ \"pct\" : 10 }"), 0);
    ck_assert_int_eq(H.ctx.host.job_progress(s.held[0], "not json"), -EINVAL);
    ck_assert(qh_run_until(&H, progress_seen, NULL, 2000));
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:1 progress"), "{\"pct\":10}");
    H.ctx.host.job_done(s.held[0], "[1,2]");
    qh_run_for(&H, 200);
    nova__log_set_fd(-1);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "bullmq:6.7.0"));
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:1 returnvalue"), "[1,2]");
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(invalid_result_json_fails_job)
{
    struct seen s = {.mode = M_HOLD};
    struct count_cond c = {"bull:q:failed", 1};
    qh_add(&H, "q", "n", "{}", NULL);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    ck_assert(qh_run_until(&H, has_held, &s, 3000));
    H.ctx.host.job_done(s.held[0], "{broken");
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 3000));
    ck_assert_ptr_nonnull(strstr(qh_str(&H, "HGET bull:q:1 failedReason"), "not valid JSON"));
}
END_TEST
#endif

MAYBE_UNUSED static void on_debug_sleep(void *arg, int status, const struct nova_redis_reply *r)
{
    (void)r;
    *(int *)arg = status == 0 ? 1 : -1;
}

#ifdef QUEUE_FAULTS
START_TEST(watchdog_recovers_a_stuck_blocking_wait)
{
    struct seen s = {.mode = M_ECHO};
    struct count_cond c = {"bull:q:completed", 1};
    char path[] = "/tmp/nova-qlog-XXXXXX";
    int fd = mkstemp(path), slept = 0;
    char buf[65536];
    ssize_t n;
    const char *argv[] = {"DEBUG", "SLEEP", "2.5"};
    qh_teardown(&H);
    qh_drain_delay_ms = 300;
    qh_setup(&H, 5000, 30000);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    qh_run_for(&H, 200); /* parked on BZPOPMIN with a 0.3 s timeout */
    nova__log_set_fd(fd);
    /* The server freezes, like a blocking call lost in a failover: the
     * BZPOPMIN reply never comes in time. */
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 3, argv, NULL, on_debug_sleep, &slept),
                     0);
    ck_assert(qh_run_until(&H, int_set, &slept, 5000));
    qh_run_for(&H, 300);
    nova__log_set_fd(-1);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "blocking wait did not return in time"));
    qh_add(&H, "q", "n", "{}", NULL);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 3000));
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(far_delayed_job_does_not_hold_back_new_work)
{
    struct seen s = {.mode = M_ECHO};
    struct nova_job_options o = {.struct_size = sizeof(o),
                                 .delay_ms = 60000,
                                 .remove_on_complete = -1,
                                 .remove_on_fail = -1};
    struct count_cond c = {"bull:q:completed", 1};
    int64_t t0;
    subscribe(&s, "q", 1, NULL);
    nova__queue_engine_start(H.e);
    qh_add(&H, "q", "much-later", "{}", &o);
    qh_run_for(&H, 300); /* parked until the delayed job, at most 10 s */
    t0 = qh_now_ms();
    qh_add(&H, "q", "now", "{}", NULL);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 3000));
    ck_assert_int_lt(s.at[0] - t0, 1500);
    ck_assert_str_eq(s.order[0], "now");
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:delayed"), 1);
}
END_TEST
#endif

#ifdef QUEUE_FAULTS
START_TEST(starts_while_redis_is_down)
{
    struct seen s = {.mode = M_ECHO};
    struct count_cond c = {"bull:q:completed", 3};
    for (int i = 0; i < 3; i++)
        qh_add(&H, "q", "n", "{}", NULL);
    redisFree(H.sync);
    ck_assert_int_eq(nova_test_redis_halt(&H.redis), 0);
    qh_run_for(&H, 200);
    subscribe(&s, "q", 2, NULL);
    ck_assert_int_eq(nova__queue_engine_start(H.e), 0);
    qh_run_for(&H, 500);
    ck_assert(!nova__queue_engine_connected(H.e));
    ck_assert_int_eq(s.calls, 0);
    ck_assert_int_eq(nova_test_redis_resume(&H.redis), 0);
    H.sync = redisConnect("127.0.0.1", H.redis.port);
    ck_assert(qh_run_until(&H, zcard_reaches, &c, 8000));
    ck_assert(nova__queue_engine_connected(H.e));
}
END_TEST
#endif

#ifndef QUEUE_FAULTS
START_TEST(backoff_math)
{
    ck_assert_int_eq(nova__queue_backoff_ms("fixed", 100, 0, 3, 0.5), 100);
    ck_assert_int_eq(nova__queue_backoff_ms("exponential", 100, 0, 1, 0.5), 100);
    ck_assert_int_eq(nova__queue_backoff_ms("exponential", 100, 0, 2, 0.5), 200);
    ck_assert_int_eq(nova__queue_backoff_ms("exponential", 100, 0, 4, 0.5), 800);
    ck_assert_int_eq(nova__queue_backoff_ms("fixed", 1000, 0.5, 1, 0.0), 500);
    ck_assert_int_eq(nova__queue_backoff_ms("fixed", 1000, 0.5, 1, 0.999), 999);
    ck_assert_int_eq(nova__queue_backoff_ms("weird", 1000, 0, 1, 0), -1);
}
END_TEST
#endif

/* ---- plugin requests and their owner ------------------------------------------------ */

/* What a plugin callback saw. Heap-allocated and freed once the owner is
 * released, so a late call would be a use-after-free ASan reports. */
struct pcall {
    int calls;
    int status;
    int nested_rc; /* M: what a command started from the callback returned */
    bool nest;
};

MAYBE_UNUSED static const char *const sleep_argv[] = {"DEBUG", "SLEEP", "0.5"};

MAYBE_UNUSED static void on_pcall(void *arg, int status, const struct nova_redis_reply *r)
{
    struct pcall *c = arg;
    const char *argv[] = {"PING"};
    c->calls++;
    c->status = status;
    ck_assert(status < 0 ? r == NULL : r != NULL);
    if (c->nest)
        c->nested_rc = H.ctx.host.redis->command(&H.ctx.host, 1, argv, NULL, on_pcall, c);
}

MAYBE_UNUSED static void on_penqueue(void *arg, int status, const char *id)
{
    struct pcall *c = arg;
    c->calls++;
    c->status = status;
    ck_assert(status < 0 ? id == NULL : id != NULL);
}

MAYBE_UNUSED static bool pcall_done(void *arg)
{
    return ((struct pcall *)arg)->calls > 0;
}

#ifndef QUEUE_FAULTS
START_TEST(release_owner_cancels_pending_commands)
{
    struct pcall *c = calloc(1, sizeof(*c)), *enq = calloc(1, sizeof(*enq));
    struct pcall other_c = {0};
    struct nova__host_ctx other = H.ctx; /* a second plugin, untouched */
    int64_t t0;
    qh_run_for(&H, 200);
    c->nest = true;
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 3, sleep_argv, NULL, on_pcall, c), 0);
    /* queued behind the sleep on the same connection */
    ck_assert_int_eq(H.ctx.host.enqueue(&H.ctx.host, "q", "n", "{}", NULL, on_penqueue, enq), 0);
    ck_assert_int_eq(
        other.host.redis->command(&other.host, 3, sleep_argv, NULL, on_pcall, &other_c), 0);
    t0 = qh_now_ms();
    ck_assert_uint_eq(nova__queue_release_owner(H.e, &H.ctx.host, true), 2);
    /* called back at once, exactly once, with -ECANCELED */
    ck_assert_int_eq(c->calls, 1);
    ck_assert_int_eq(c->status, -ECANCELED);
    ck_assert_int_eq(c->nested_rc, -ECANCELED); /* refused while being released */
    ck_assert_int_eq(enq->calls, 1);
    ck_assert_int_eq(enq->status, -ECANCELED);
    ck_assert_uint_eq(nova__queue_release_owner(H.e, &H.ctx.host, true), 0);
    free(c);
    free(enq);
    /* the replies come later and must not reach the released plugin */
    ck_assert(qh_run_until(&H, pcall_done, &other_c, 3000));
    ck_assert_int_ge(qh_now_ms() - t0, 900); /* both sleeps really ran */
    ck_assert_int_eq(other_c.calls, 1);
    ck_assert_int_eq(other_c.status, 0);
    qh_run_for(&H, 100);
    /* the released plugin may start new work afterwards (a later restart) */
    c = calloc(1, sizeof(*c));
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 3, sleep_argv, NULL, on_pcall, c), 0);
    ck_assert(qh_run_until(&H, pcall_done, c, 3000));
    ck_assert_int_eq(c->status, 0);
    qh_run_for(&H, 50);
    ck_assert_int_eq(c->calls, 1);
    free(c);
}
END_TEST

START_TEST(release_owner_after_shutdown_drops_callbacks)
{
    struct pcall *c = calloc(1, sizeof(*c));
    struct pcall probe = {0};
    const char *ping[] = {"PING"};
    qh_run_for(&H, 200);
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 3, sleep_argv, NULL, on_pcall, c), 0);
    ck_assert_uint_eq(nova__queue_release_owner(H.e, &H.ctx.host, false), 1);
    ck_assert_int_eq(c->calls, 0);
    free(c); /* the plugin's state is gone: a late callback would touch it */
    ck_assert_int_eq(nova__queue_release_owner(NULL, &H.ctx.host, true), 0);
    ck_assert_int_eq(nova__queue_release_owner(H.e, NULL, true), 0);
    /* the connection carries on: a PING sent after the sleep is answered */
    {
        struct nova__host_ctx other = H.ctx;
        ck_assert_int_eq(other.host.redis->command(&other.host, 1, ping, NULL, on_pcall, &probe),
                         0);
        ck_assert(qh_run_until(&H, pcall_done, &probe, 3000));
        ck_assert_int_eq(probe.status, 0);
    }
}
END_TEST

static void drained_flag(void *arg)
{
    struct pcall *c = arg;
    ck_assert_int_eq(c->calls, 1); /* cancelled before the drain reports */
    c->nested_rc = 1;
}

static bool flag_set(void *arg)
{
    return ((struct pcall *)arg)->nested_rc == 1;
}

START_TEST(drain_cancels_and_free_drops_plugin_commands)
{
    struct pcall c = {0};
    struct pcall *late = calloc(1, sizeof(*late));
    qh_run_for(&H, 200);
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 3, sleep_argv, NULL, on_pcall, &c), 0);
    nova__queue_engine_drain(H.e, 2000, drained_flag, &c);
    ck_assert(qh_run_until(&H, flag_set, &c, 300)); /* without waiting for the sleep */
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.status, -ECANCELED);
    /* started after the drain (e.g. from shutdown()): dropped at free */
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 3, sleep_argv, NULL, on_pcall, late),
                     0);
    nova__queue_engine_free(H.e);
    H.e = NULL;
    H.sv.queues = NULL;
    ck_assert_int_eq(late->calls, 0);
    free(late);
    uv_run(&H.loop, UV_RUN_DEFAULT);
}
END_TEST
#endif

#ifdef QUEUE_FAULTS
static bool disconnected(void *arg)
{
    (void)arg;
    return !nova__queue_engine_connected(H.e);
}

static bool connected(void *arg)
{
    (void)arg;
    return nova__queue_engine_connected(H.e);
}

START_TEST(plugin_command_while_redis_is_down)
{
    struct pcall c = {0}, enq = {0};
    const char *argv[] = {"GET", "k"};
    int64_t t0;
    qh_run_for(&H, 200);
    ck_assert(nova__queue_engine_connected(H.e));
    /* in flight when the server dies: called back promptly, retryable */
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 3, sleep_argv, NULL, on_pcall, &c), 0);
    qh_run_for(&H, 50);
    t0 = qh_now_ms();
    ck_assert_int_eq(kill(H.redis.pid, SIGKILL), 0);
    ck_assert(qh_run_until(&H, pcall_done, &c, 1000));
    ck_assert_int_lt(qh_now_ms() - t0, 400);
    ck_assert_int_eq(c.status, -ECONNRESET);
    redisFree(H.sync);
    ck_assert_int_eq(nova_test_redis_halt(&H.redis), 0); /* reaps it */
    ck_assert(qh_run_until(&H, disconnected, NULL, 1000));
    /* while it is down: refused at once, the callback never runs */
    memset(&c, 0, sizeof(c));
    t0 = qh_now_ms();
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 2, argv, NULL, on_pcall, &c),
                     -ENOTCONN);
    ck_assert_int_eq(H.ctx.host.enqueue(&H.ctx.host, "q", "n", "{}", NULL, on_penqueue, &enq),
                     -ENOTCONN);
    ck_assert_int_lt(qh_now_ms() - t0, 50);
    qh_run_for(&H, 300);
    ck_assert_int_eq(c.calls, 0);
    ck_assert_int_eq(enq.calls, 0);
    ck_assert_uint_eq(nova__queue_release_owner(H.e, &H.ctx.host, true), 0);
    /* and a retry once it is back succeeds */
    ck_assert_int_eq(nova_test_redis_resume(&H.redis), 0);
    H.sync = redisConnect("127.0.0.1", H.redis.port);
    ck_assert(qh_run_until(&H, connected, NULL, 8000));
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 2, argv, NULL, on_pcall, &c), 0);
    ck_assert(qh_run_until(&H, pcall_done, &c, 3000));
    ck_assert_int_eq(c.status, 0);
}
END_TEST
#endif

#ifdef QUEUE_FAULTS
/* A Redis that stops answering without closing the connection (frozen
 * process, silent network): the plugin hears -ETIMEDOUT, not nothing. */
START_TEST(plugin_command_times_out_when_redis_freezes)
{
    struct pcall *c = calloc(1, sizeof(*c)), *enq = calloc(1, sizeof(*enq));
    struct pcall after = {0};
    const char *argv[] = {"GET", "k"};
    int64_t t0, took;
    qh_run_for(&H, 200);
    ck_assert(nova__queue_engine_connected(H.e));
    ck_assert_int_eq(kill(H.redis.pid, SIGSTOP), 0);
    t0 = qh_now_ms();
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 2, argv, NULL, on_pcall, c), 0);
    ck_assert_int_eq(H.ctx.host.enqueue(&H.ctx.host, "q", "n", "{}", NULL, on_penqueue, enq), 0);
    ck_assert(qh_run_until(&H, pcall_done, c, 8000));
    took = qh_now_ms() - t0;
    ck_assert_int_eq(kill(H.redis.pid, SIGCONT), 0);
    /* connect timeout 2 s in the harness: 4 s, checked every 0.5 s */
    ck_assert_int_ge(took, 3900);
    ck_assert_int_le(took, 5500);
    ck_assert_int_eq(c->status, -ETIMEDOUT);
    ck_assert_int_eq(c->calls, 1);
    ck_assert_int_eq(enq->calls, 1);
    ck_assert_int_eq(enq->status, -ETIMEDOUT);
    free(c);
    free(enq);
    /* the late replies are dropped; the connection still works */
    ck_assert_int_eq(H.ctx.host.redis->command(&H.ctx.host, 2, argv, NULL, on_pcall, &after), 0);
    ck_assert(qh_run_until(&H, pcall_done, &after, 3000));
    ck_assert_int_eq(after.status, 0);
    ck_assert_uint_eq(nova__queue_release_owner(H.e, &H.ctx.host, true), 0);
}
END_TEST
#endif

/* Two programs share this file so make check runs them in parallel:
 * test_queue (behaviour) and test_queue_faults (-DQUEUE_FAULTS: Redis
 * restarts, stalls, lost locks, watchdog, drain). */
static Suite *suite(void)
{
    Suite *s = suite_create("queue");
    TCase *t = tcase_create("engine");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
#ifndef QUEUE_FAULTS
    tcase_add_test(t, complete_stores_result_and_events);
    tcase_add_test(t, null_result_and_remove_on_complete);
    tcase_add_test(t, batched_fetch_and_settle_keep_order_and_clean_up);
    tcase_add_test(t, settle_same_job_twice_in_one_call);
    tcase_add_test(t, count_prune_sees_jobs_kept_earlier_in_the_batch);
    tcase_add_test(t, mixed_opts_in_one_batch);
    tcase_add_test(t, retry_with_exponential_backoff_then_exhausted);
    tcase_add_test(t, immediate_retry_without_backoff);
    tcase_add_test(t, fail_is_permanent);
    tcase_add_test(t, bad_json_fails_and_unknown_name_is_given_back);
    tcase_add_test(t, priorities_wait_first_then_by_priority);
    tcase_add_test(t, delayed_job_runs_when_due);
    tcase_add_test(t, enqueue_from_c_and_duplicates);
    tcase_add_test(t, concurrency_and_set_concurrency);
    tcase_add_test(t, plugin_redis_command);
    tcase_add_test(t, rate_limiter_spreads_jobs);
    tcase_add_test(t, global_concurrency_from_meta);
    tcase_add_test(t, paused_queue_is_not_consumed);
    tcase_add_test(t, progress_and_version_warning);
    tcase_add_test(t, invalid_result_json_fails_job);
    tcase_add_test(t, far_delayed_job_does_not_hold_back_new_work);
    tcase_add_test(t, release_owner_cancels_pending_commands);
    tcase_add_test(t, release_owner_after_shutdown_drops_callbacks);
    tcase_add_test(t, drain_cancels_and_free_drops_plugin_commands);
    tcase_add_test(t, job_counts_per_queue_and_state);
    suite_add_tcase(s, t);
    t = tcase_create("math");
    tcase_add_test(t, backoff_math);
#else
    tcase_add_test(t, stalled_jobs_recovered_or_failed);
    tcase_add_test(t, lost_lock_drops_result);
    tcase_add_test(t, redis_restart_mid_run);
    tcase_add_test(t, drain_timeout_gives_jobs_back);
    tcase_add_test(t, drain_waits_for_running_jobs);
    tcase_add_test(t, unsubscribe_one_owner);
    tcase_add_test(t, watchdog_recovers_a_stuck_blocking_wait);
    tcase_add_test(t, starts_while_redis_is_down);
    tcase_add_test(t, plugin_command_while_redis_is_down);
    tcase_add_test(t, plugin_command_times_out_when_redis_freezes);
#endif
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
