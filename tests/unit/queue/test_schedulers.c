/*
 * test_schedulers - schedules as BullMQ job schedulers (queue/schedulers.h)
 * against a private redis-server: the layout Node's upsertJobScheduler
 * writes, idempotent syncs from many workers, replacement and removal, the
 * advance a worker makes when it takes a slot's job, and catch-up after
 * downtime (one run, no backlog).
 */
#include "config.h"
#include <check.h>
#include "unit/testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "queue_harness.h"
#include "queue/schedulers.h"
#include "sched/sched.h"

/* A command whose reply the test does not need. */
#define RUN(...) freeReplyObject(qh_cmd(&H, __VA_ARGS__))

static struct qh H;
static int synced, sync_failures;

static bool connected(void *arg)
{
    (void)arg;
    return nova__queue_engine_connected(H.e);
}

static void setup(void)
{
    qh_setup(&H, 5000, 30000);
    synced = sync_failures = 0;
    ck_assert_int_eq(nova__queue_engine_start(H.e), 0);
    ck_assert(qh_run_until(&H, connected, NULL, 5000));
}

static void teardown(void)
{
    qh_teardown(&H);
}

static void on_synced(void *arg, int failures)
{
    (void)arg;
    synced++;
    sync_failures += failures;
}

static bool sync_done(void *arg)
{
    return synced >= *(int *)arg;
}

static void sync_one(const char *owner, const char *id, const char *queue, const char *spec,
                     const char *tz, const char *data)
{
    struct nova__sched sc;
    char err[256];
    ck_assert_msg(nova__sched_parse(spec, tz, &sc, err, sizeof err) == 0, "%s", err);
    struct nova__sched_entry en = {
        .id = id, .queue = queue, .job_name = "run", .data_json = data, .sched = &sc};
    const char *queues[] = {queue};
    int want = synced + 1;
    ck_assert_int_eq(nova__queue_sched_sync(H.e, owner, &en, 1, queues, 1, on_synced, NULL), 0);
    ck_assert(qh_run_until(&H, sync_done, &want, 5000));
    nova__sched_free(&sc);
}

static void sync_none(const char *owner, const char *queue)
{
    const char *queues[] = {queue};
    int want = synced + 1;
    ck_assert_int_eq(nova__queue_sched_sync(H.e, owner, NULL, 0, queues, 1, on_synced, NULL), 0);
    ck_assert(qh_run_until(&H, sync_done, &want, 5000));
}

static long long next_slot(const char *queue, const char *id)
{
    const char *v = qh_str(&H, "ZSCORE bull:%s:repeat %s", queue, id);
    return v[0] ? strtoll(v, NULL, 10) : -1;
}

/* The layout Node writes (shared/reference/bullmq-protocol.md §6). */
START_TEST(sync_writes_a_job_scheduler)
{
    RUN("PING");
    int64_t before = qh_now_ms();
    sync_one("lb", "board", "q", "*/5 * * * *", "Europe/Paris", "{\"a\":1}");
    ck_assert_int_eq(sync_failures, 0);
    long long slot = next_slot("q", "board");
    ck_assert_int_gt(slot, before);
    ck_assert_int_eq(slot % 300000, 0);
    ck_assert_int_le(slot - before, 300000);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:repeat:board name"), "run");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:repeat:board pattern"), "*/5 * * * *");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:repeat:board tz"), "Europe/Paris");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:repeat:board data"), "{\"a\":1}");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:repeat:board nova"), "lb");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:repeat:board ic"), "1");
    /* one delayed job for the slot, with Node's fields */
    char jid[96];
    snprintf(jid, sizeof jid, "repeat:board:%lld", slot);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:delayed"), 1);
    redisReply *r = qh_cmd(&H, "ZRANGE bull:q:delayed 0 0");
    ck_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    ck_assert_str_eq(r->element[0]->str, jid);
    freeReplyObject(r);
    ck_assert_int_eq(strtoll(qh_str(&H, "ZSCORE bull:q:delayed %s", jid), NULL, 10), slot * 4096);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:%s rjk", jid), "board");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:%s name", jid), "run");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:%s data", jid), "{\"a\":1}");
    cJSON *opts = cJSON_Parse(qh_str(&H, "HGET bull:q:%s opts", jid));
    ck_assert_ptr_nonnull(opts);
    const cJSON *rep = cJSON_GetObjectItem(opts, "repeat");
    ck_assert_str_eq(cJSON_GetObjectItem(rep, "pattern")->valuestring, "*/5 * * * *");
    ck_assert_str_eq(cJSON_GetObjectItem(rep, "tz")->valuestring, "Europe/Paris");
    ck_assert_int_eq(cJSON_GetObjectItem(rep, "count")->valueint, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(opts, "jobId")->valuestring, jid);
    ck_assert_str_eq(cJSON_GetObjectItem(opts, "repeatJobKey")->valuestring, "board");
    ck_assert_int_eq(cJSON_GetObjectItem(opts, "attempts")->valueint, 3);
    ck_assert((long long)cJSON_GetObjectItem(opts, "prevMillis")->valuedouble == slot);
    cJSON_Delete(opts);
    ck_assert_int_ge(qh_events(&H, "q", "delayed"), 1);
}
END_TEST

/* Many workers syncing the same schedule leave one scheduler, one job. */
START_TEST(sync_is_idempotent_across_a_fleet)
{
    for (int i = 0; i < 5; i++)
        sync_one("lb", "board", "q", "every 1h", NULL, "{}");
    ck_assert_int_eq(sync_failures, 0);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:repeat"), 1);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:delayed"), 1);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:repeat:board ic"), "1");
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:repeat:board every"), "3600000");
    long long slot = next_slot("q", "board");
    ck_assert_int_eq(slot % 3600000, 0);
    /* data {} is not stored in the template, like Node */
    ck_assert_int_eq(qh_int(&H, "HEXISTS bull:q:repeat:board data"), 0);
}
END_TEST

/* A changed schedule replaces the pending job; a dropped one goes, with
 * its job; others' schedulers stay. */
START_TEST(changed_and_dropped_schedules)
{
    sync_one("lb", "board", "q", "every 1h", NULL, "{}");
    long long first = next_slot("q", "board");
    /* a scheduler of someone else on the same queue (Node's) */
    RUN("HSET bull:q:repeat:node-one name x every 60000");
    RUN("ZADD bull:q:repeat 99999999999999 node-one");
    sync_one("lb", "board", "q", "0 3 * * *", "UTC", "{}");
    long long second = next_slot("q", "board");
    ck_assert_int_ne(first, second);
    ck_assert_int_eq(second % 86400000, 3 * 3600000);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:delayed"), 1);
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:repeat:board:%lld", first), 0);
    ck_assert_int_eq(qh_int(&H, "HEXISTS bull:q:repeat:board every"), 0);
    sync_none("lb", "q");
    ck_assert_str_eq(qh_str(&H, "ZSCORE bull:q:repeat board"), "");
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:repeat:board"), 0);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:delayed"), 0);
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:repeat:board:%lld", second), 0);
    /* Node's scheduler is untouched */
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:repeat:node-one"), 1);
    ck_assert_str_eq(qh_str(&H, "ZSCORE bull:q:repeat node-one"), "99999999999999");
}
END_TEST

static int ran;
static char ran_ids[16][96];

static void on_job(void *arg, nova_job *job)
{
    (void)arg;
    if (ran < 16)
        snprintf(ran_ids[ran], sizeof ran_ids[0], "%s", H.ctx.host.job_id(job));
    ran++;
    H.ctx.host.job_done(job, NULL);
}

static bool ran_n(void *arg)
{
    return ran >= *(int *)arg;
}

/* The scheduler moved past slot *arg (it advances in its own script,
 * which may finish after the job was handed out). */
static bool slot_moved(void *arg)
{
    return next_slot("q", "tick") > *(long long *)arg;
}

static void subscribe(const char *queue)
{
    struct nova_subscription sub = {
        .struct_size = sizeof sub, .queue = queue, .concurrency = 4, .handle = on_job};
    ck_assert_int_eq(H.ctx.host.subscribe(&H.ctx.host, &sub), 0);
}

/* Taking a slot's job makes the next slot's job first (every 1s). */
START_TEST(a_run_makes_the_next_slot)
{
    ran = 0;
    sync_one("lb", "tick", "q", "every 1s", NULL, "{\"x\":true}");
    long long first = next_slot("q", "tick");
    subscribe("q");
    int want = 3;
    ck_assert(qh_run_until(&H, ran_n, &want, 6000));
    for (int i = 0; i < 3; i++) {
        char jid[96];
        snprintf(jid, sizeof jid, "repeat:tick:%lld", first + 1000LL * i);
        ck_assert_str_eq(ran_ids[i], jid);
    }
    long long third = first + 2000;
    ck_assert(qh_run_until(&H, slot_moved, &third, 3000));
    ck_assert_int_ge(next_slot("q", "tick"), first + 3000);
    ck_assert_int_ge(strtoll(qh_str(&H, "HGET bull:q:repeat:tick ic"), NULL, 10), 4);
    /* the producer points at the next job, as Node's v5 worker writes */
    char jid[96], nxt[96];
    snprintf(jid, sizeof jid, "repeat:tick:%lld", first);
    snprintf(nxt, sizeof nxt, "repeat:tick:%lld", first + 1000);
    ck_assert_str_eq(qh_str(&H, "HGET bull:q:%s nrjid", jid), nxt);
}
END_TEST

/* After downtime the overdue job runs once and the schedule goes on from
 * the next slot after now: missed slots are not replayed. */
START_TEST(catch_up_runs_once)
{
    ran = 0;
    /* An overdue slot 10 minutes ago, as left by a fleet that was down.
     * Slots a minute apart: the next one is never due while the test
     * looks, however slow the machine. */
    int64_t now = qh_now_ms();
    long long old = (now / 60000 - 10) * 60000;
    RUN("HSET bull:q:repeat:tick name run every 60000 offset 0 nova lb ic 1");
    RUN("ZADD bull:q:repeat %lld tick", old);
    RUN("HSET bull:q:repeat:tick:%lld name run data {} opts "
        "{\"repeat\":{\"every\":60000,\"count\":1},\"jobId\":\"repeat:tick:%lld\"} "
        "timestamp %lld delay 0 priority 0 rjk tick",
        old, old, old - 60000);
    RUN("ZADD bull:q:delayed %lld repeat:tick:%lld", old * 4096, old);
    subscribe("q");
    int want = 1;
    ck_assert(qh_run_until(&H, ran_n, &want, 3000));
    int64_t after = qh_now_ms();
    char jid[96];
    snprintf(jid, sizeof jid, "repeat:tick:%lld", old);
    ck_assert_str_eq(ran_ids[0], jid);
    /* the schedule goes on from the first slot after the run, not from the
     * missed ones */
    ck_assert(qh_run_until(&H, slot_moved, &old, 3000));
    long long nxt = next_slot("q", "tick");
    ck_assert_int_gt(nxt, now);
    ck_assert_int_le(nxt, after + 60000);
    ck_assert_int_eq(nxt % 60000, 0);
    /* nothing of the 9 slots in between */
    qh_run_for(&H, 300);
    ck_assert_int_eq(ran, 1);
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:delayed") + qh_int(&H, "LLEN bull:q:wait"), 1);
}
END_TEST

/* A run whose next slot was never made (a crash) is healed by a sync. */
START_TEST(sync_restores_a_lost_next_job)
{
    sync_one("lb", "tick", "q", "every 1h", NULL, "{}");
    long long slot = next_slot("q", "tick");
    /* the job of the previous slot ran and finished, and the worker died
     * before making the next one: the scheduler still points at it */
    long long prev = slot - 3600000;
    RUN("ZREM bull:q:delayed repeat:tick:%lld", slot);
    RUN("DEL bull:q:repeat:tick:%lld", slot);
    RUN("ZADD bull:q:repeat %lld tick", prev);
    RUN("HSET bull:q:repeat:tick:%lld name run finishedOn 1 rjk tick", prev);
    sync_one("lb", "tick", "q", "every 1h", NULL, "{}");
    ck_assert_int_eq(qh_int(&H, "ZCARD bull:q:delayed"), 1);
    ck_assert_int_eq(next_slot("q", "tick"), slot);
    ck_assert_int_eq(qh_int(&H, "EXISTS bull:q:repeat:tick:%lld", slot), 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("schedulers");
    TCase *t = tcase_create("redis");
    tcase_set_timeout(t, 30);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, sync_writes_a_job_scheduler);
    tcase_add_test(t, sync_is_idempotent_across_a_fleet);
    tcase_add_test(t, changed_and_dropped_schedules);
    tcase_add_test(t, a_run_makes_the_next_slot);
    tcase_add_test(t, catch_up_runs_once);
    tcase_add_test(t, sync_restores_a_lost_next_job);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
