#include "config.h"
#include "queue_harness.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue/queue_scripts.h"

int64_t qh_drain_delay_ms = 5000;

int64_t qh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void qh_setup(struct qh *h, int64_t lock_ms, int64_t stalled_ms)
{
    memset(h, 0, sizeof(*h));
    ck_assert_int_eq(nova_test_redis_start(&h->redis), 0);
    snprintf(h->url, sizeof(h->url), "%s", h->redis.url);
    ck_assert_int_eq(uv_loop_init(&h->loop), 0);
    h->cfg.url = h->url;
    h->cfg.prefix = (char *)"bull";
    h->cfg.connect_timeout_ms = 2000;
    h->cfg.lock_duration_ms = lock_ms;
    h->cfg.stalled_interval_ms = stalled_ms;
    h->cfg.max_stalled_count = 1;
    h->cfg.drain_delay_ms = qh_drain_delay_ms;
    ck_assert_int_eq(nova__queue_engine_new(&h->loop, &h->cfg, "ctest", &h->e), 0);
    h->sv.loop = &h->loop;
    h->sv.queues = h->e;
    /* The daemon's own host table, as a plugin named "test" gets it. */
    nova__host_init(&h->ctx, &h->sv, "test", NULL);
    h->sync = redisConnect("127.0.0.1", h->redis.port);
    ck_assert_ptr_nonnull(h->sync);
    ck_assert_int_eq(h->sync->err, 0);
}

static void drained(void *arg)
{
    *(bool *)arg = true;
}

static bool is_true(void *arg)
{
    return *(bool *)arg;
}

void qh_teardown(struct qh *h)
{
    if (h->e) {
        bool done = false;
        nova__queue_engine_drain(h->e, 2000, drained, &done);
        qh_run_until(h, is_true, &done, 5000);
        ck_assert(done);
        /* The daemon's order around the plugin's shutdown(). */
        nova__host_release(&h->ctx);
        nova__host_after_shutdown(&h->ctx);
        nova__queue_engine_free(h->e);
        h->e = NULL;
        h->sv.queues = NULL;
    }
    uv_run(&h->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&h->loop), 0);
    redisFree(h->sync);
    nova_test_redis_stop(&h->redis);
    qh_drain_delay_ms = 5000; /* CK_FORK=no runs every test in one process */
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void tick_closed(uv_handle_t *h)
{
    (void)h;
}

bool qh_run_until(struct qh *h, bool (*pred)(void *arg), void *arg, int timeout_ms)
{
    uv_timer_t tick;
    int64_t end = qh_now_ms() + timeout_ms;
    bool ok = false;
    uv_timer_init(&h->loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    while (qh_now_ms() < end) {
        if (pred(arg)) {
            ok = true;
            break;
        }
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    if (!ok)
        ok = pred(arg);
    uv_close((uv_handle_t *)&tick, tick_closed);
    uv_run(&h->loop, UV_RUN_NOWAIT);
    return ok;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

void qh_run_for(struct qh *h, int ms)
{
    qh_run_until(h, never, NULL, ms);
}

const char *qh_add(struct qh *h, const char *queue, const char *name, const char *data,
                   const struct nova_job_options *opts)
{
    static char id[256];
    char base[512], meta[600], now[24], delay[24], prio[16], err[256];
    char *ojson = nova__queue_opts_json(opts, err, sizeof(err));
    redisReply *r;
    ck_assert_msg(ojson != NULL, "%s", err);
    nova__queue_key_base("bull", queue, base, sizeof(base));
    snprintf(meta, sizeof(meta), "%smeta", base);
    snprintf(now, sizeof(now), "%lld", (long long)qh_now_ms());
    snprintf(delay, sizeof(delay), "%lld", (long long)(opts ? opts->delay_ms : 0));
    snprintf(prio, sizeof(prio), "%d", opts ? opts->priority : 0);
    const char *av[] = {"EVAL",
                        nova__lua_add,
                        "1",
                        meta,
                        base,
                        now,
                        name,
                        data,
                        ojson,
                        opts && opts->job_id ? opts->job_id : "",
                        delay,
                        prio,
                        opts && opts->lifo ? "1" : "0"};
    r = redisCommandArgv(h->sync, 13, av, NULL);
    free(ojson);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "add failed: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "?");
    snprintf(id, sizeof(id), "%s", r->element[0]->str);
    freeReplyObject(r);
    return id;
}

static redisReply *vcmd(struct qh *h, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(h->sync, fmt, ap);
    ck_assert_msg(r != NULL, "redis: %s", h->sync->errstr);
    return r;
}

redisReply *qh_cmd(struct qh *h, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = vcmd(h, fmt, ap);
    va_end(ap);
    return r;
}

long long qh_int(struct qh *h, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = -1;
    va_start(ap, fmt);
    r = vcmd(h, fmt, ap);
    va_end(ap);
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    return v;
}

const char *qh_str(struct qh *h, const char *fmt, ...)
{
    static char buf[8192];
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = vcmd(h, fmt, ap);
    va_end(ap);
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_ERROR)
        snprintf(buf, sizeof(buf), "%s", r->str);
    else
        buf[0] = '\0';
    freeReplyObject(r);
    return buf;
}

int qh_events(struct qh *h, const char *queue, const char *event)
{
    redisReply *r = qh_cmd(h, "XRANGE bull:%s:events - +", queue);
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *fields = r->element[i]->element[1];
        if (fields->elements >= 2 && strcmp(fields->element[1]->str, event) == 0)
            n++;
    }
    freeReplyObject(r);
    return n;
}
