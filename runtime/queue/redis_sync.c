#include "config.h"
#include "queue/redis_sync.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/conf.h"
#include "queue/redis_conn.h"

struct nova__redis_sync {
    uv_loop_t loop;
    uv_timer_t deadline;
    bool expired;
    struct nova__redis_target t;
    struct nova__redis_conn *c;
    int64_t wait_ms;
    bool up;
    char err[512];
};

struct wait {
    bool done;
    int status;
    redisReply *reply;
};

static void on_state(void *arg, bool up)
{
    ((struct nova__redis_sync *)arg)->up = up;
}

static void on_deadline(uv_timer_t *t)
{
    ((struct nova__redis_sync *)t->data)->expired = true;
}

/* Runs the loop until *flag or wait_ms passed; the value of *flag. */
static bool run_until(struct nova__redis_sync *s, const bool *flag, int64_t ms)
{
    s->expired = false;
    uv_timer_start(&s->deadline, on_deadline, (uint64_t)ms, 0);
    while (!*flag && !s->expired) {
        uv_run(&s->loop, UV_RUN_ONCE);
        /* one server: its first refusal is the answer (Sentinel and
         * Cluster have other nodes to try) */
        if (s->t.mode == NOVA__REDIS_DIRECT && !*flag && *nova__redis_conn_error(s->c))
            break;
    }
    uv_timer_stop(&s->deadline);
    return *flag;
}

static void describe(const struct nova__redis_target *t, char *out, size_t outlen)
{
    if (t->mode == NOVA__REDIS_SENTINEL)
        snprintf(out, outlen, "master %s via the sentinels", t->sentinel_master);
    else if (t->mode == NOVA__REDIS_CLUSTER)
        snprintf(out, outlen, "the cluster");
    else if (t->unix_path)
        snprintf(out, outlen, "%s", t->unix_path);
    else
        snprintf(out, outlen, strchr(t->host, ':') ? "[%s]:%d" : "%s:%d", t->host, t->port);
}

static bool wait_up(struct nova__redis_sync *s)
{
    char where[300];
    const char *why;
    if (s->up || run_until(s, &s->up, s->wait_ms))
        return true;
    describe(&s->t, where, sizeof(where));
    why = nova__redis_conn_error(s->c);
    if (*why && s->t.mode == NOVA__REDIS_DIRECT)
        snprintf(s->err, sizeof(s->err), "cannot connect to Redis at %s", why);
    else
        snprintf(s->err, sizeof(s->err), "cannot connect to Redis (%s): %s", where,
                 *why ? why : "no answer in time");
    return false;
}

struct nova__redis_sync *nova__redis_sync_open(const struct nova__redis_config *cfg, char *err,
                                               size_t errlen)
{
    struct nova__redis_sync *s = calloc(1, sizeof(*s));
    struct nova__redis_conn_opts o = {0};
    struct nova__redis_config empty = {0};
    int64_t ms;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (nova__redis_target_from_config(cfg ? cfg : &empty, &s->t, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    ms = cfg && cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    s->wait_ms = s->t.mode == NOVA__REDIS_DIRECT ? ms + 500 : 2 * ms + 500;
    uv_loop_init(&s->loop);
    uv_timer_init(&s->loop, &s->deadline);
    s->deadline.data = s;
    o.target = &s->t;
    o.what = "cli";
    o.connect_timeout_ms = ms;
    o.on_state = on_state;
    o.arg = s;
    if (nova__redis_conn_new(&s->loop, &o, &s->c) < 0) {
        snprintf(err, errlen, "cannot set up the Redis connection (see the log above)");
        s->c = NULL;
        nova__redis_sync_close(s);
        return NULL;
    }
    if (!wait_up(s)) {
        snprintf(err, errlen, "%s", s->err);
        nova__redis_sync_close(s);
        return NULL;
    }
    return s;
}

void nova__redis_sync_close(struct nova__redis_sync *s)
{
    if (!s)
        return;
    if (s->c)
        nova__redis_conn_close(s->c, NULL, NULL);
    uv_close((uv_handle_t *)&s->deadline, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    nova__redis_target_free(&s->t);
    free(s);
}

/* A copy freeReplyObject() can free. */
static redisReply *copy_reply(const redisReply *r)
{
    redisReply *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->type = r->type;
    d->integer = r->integer;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_ERROR) {
        d->str = malloc(r->len + 1);
        if (!d->str) {
            free(d);
            return NULL;
        }
        memcpy(d->str, r->str, r->len);
        d->str[r->len] = '\0';
        d->len = r->len;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        d->element = calloc(r->elements, sizeof(*d->element));
        if (!d->element) {
            free(d);
            return NULL;
        }
        d->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++) {
            d->element[i] = copy_reply(r->element[i]);
            if (!d->element[i]) {
                freeReplyObject(d);
                return NULL;
            }
        }
    }
    return d;
}

static void on_reply(void *arg, int status, const redisReply *r)
{
    struct wait *w = arg;
    w->done = true;
    w->status = status;
    if (status == 0)
        w->reply = copy_reply(r);
}

static redisReply *run_command(struct nova__redis_sync *s, bool at, size_t master, int argc,
                               const char **argv, const size_t *argvlen)
{
    struct wait w = {0};
    int rc = -ENOTCONN;
    for (int attempt = 0; attempt < 2 && rc == -ENOTCONN; attempt++) {
        if (!wait_up(s))
            return NULL;
        rc = at ? nova__redis_conn_command_at(s->c, master, on_reply, &w, argc, argv, argvlen)
                : nova__redis_conn_command(s->c, on_reply, &w, argc, argv, argvlen);
    }
    if (rc < 0) {
        snprintf(s->err, sizeof(s->err), "cannot send: %s", strerror(-rc));
        return NULL;
    }
    /* the connection's reply timeout ends it if Redis says nothing */
    while (!w.done)
        uv_run(&s->loop, UV_RUN_ONCE);
    if (w.status < 0) {
        const char *why = nova__redis_conn_error(s->c);
        snprintf(s->err, sizeof(s->err), "no reply from Redis: %s",
                 *why ? why : strerror(-w.status));
        return NULL;
    }
    if (!w.reply)
        snprintf(s->err, sizeof(s->err), "out of memory");
    return w.reply;
}

redisReply *nova__redis_sync_argv(struct nova__redis_sync *s, int argc, const char **argv,
                                  const size_t *argvlen)
{
    return run_command(s, false, 0, argc, argv, argvlen);
}

/* hiredis's formatter, then its RESP text back into arguments. */
static redisReply *formatted(struct nova__redis_sync *s, bool at, size_t master, const char *fmt,
                             va_list ap)
{
    char *cmd = NULL, *p;
    int len = redisvFormatCommand(&cmd, fmt, ap), argc;
    const char **argv = NULL;
    size_t *argvlen = NULL;
    redisReply *r = NULL;
    if (len < 0 || !cmd || cmd[0] != '*') {
        snprintf(s->err, sizeof(s->err), "bad command format");
        free(cmd);
        return NULL;
    }
    argc = atoi(cmd + 1);
    argv = calloc((size_t)argc + 1, sizeof(*argv));
    argvlen = calloc((size_t)argc + 1, sizeof(*argvlen));
    p = strchr(cmd, '\n');
    for (int i = 0; argv && argvlen && p && i < argc; i++) {
        size_t n;
        p++; /* '$' */
        n = (size_t)strtoul(p + 1, &p, 10);
        p += 2; /* CRLF */
        argv[i] = p;
        argvlen[i] = n;
        p += n + 1; /* the data, CR; the loop's p++ skips LF */
    }
    if (argv && argvlen)
        r = run_command(s, at, master, argc, argv, argvlen);
    free(argv);
    free(argvlen);
    redisFreeCommand(cmd);
    return r;
}

redisReply *nova__redis_sync_command(struct nova__redis_sync *s, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = formatted(s, false, 0, fmt, ap);
    va_end(ap);
    return r;
}

redisReply *nova__redis_sync_command_at(struct nova__redis_sync *s, size_t master, const char *fmt,
                                        ...)
{
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = formatted(s, true, master, fmt, ap);
    va_end(ap);
    return r;
}

size_t nova__redis_sync_masters(struct nova__redis_sync *s)
{
    return nova__redis_conn_masters(s->c);
}

const char *nova__redis_sync_error(const struct nova__redis_sync *s)
{
    return s->err;
}
