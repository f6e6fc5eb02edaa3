/*
 * test_redis_modes - every way of reaching Redis, against real servers
 * started here on 127.0.0.1:
 *
 *   offline:  [redis] section checks, hash slots, the blocking timeout
 *             each server version takes;
 *   tls:      rediss:// with a CA and a client certificate made by openssl
 *             here; a wrong CA, a missing client certificate and a wrong
 *             server name refused with clear errors; an ACL user; a
 *             password given apart (an auth token); CLIENT SETNAME refused
 *             by an ACL (logged once, not fatal); jobs through the engine;
 *   frozen:   SIGSTOP and DEBUG SLEEP on the command connection found
 *             within the reply timeout, and the connection back after;
 *   sentinel: a master, a replica, three sentinels; jobs flowing, the
 *             master SIGKILLed: every job run once, the worker on the new
 *             master within seconds;
 *   cluster:  three masters, queues with hash tags on every node, a slot
 *             moved (MIGRATING/IMPORTING + MIGRATE) while jobs run: every
 *             job completed once; a queue without a hash tag refused.
 *
 * A missing redis-server, redis-sentinel, redis-cli or openssl fails the
 * test (it never skips).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "common/conf.h"
#include "common/log.h"
#include "core/host.h"
#include "lib/redis_server.h"
#include "queue/cmd_queue.h"
#include "queue/queue.h"
#include "queue/queue_host.h"
#include "queue/queue_scripts.h"
#include "queue/redis_conn.h"
#include "queue/redis_sync.h"
#include "unit/testutil.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs loop until pred(arg) or timeout_ms; pred's last value. */
static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, int timeout_ms)
{
    uv_timer_t tick;
    int64_t end = now_ms() + timeout_ms;
    bool ok = false;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    while (!(ok = pred(arg)) && now_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static redisReply *cmd(int port, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    redisContext *c = redisConnect("127.0.0.1", port);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->err, 0);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

static void cmd_ok(int port, const char *fmt, const char *a, const char *b)
{
    redisReply *r = cmd(port, fmt, a, b);
    ck_assert_msg(r && r->type != REDIS_REPLY_ERROR, "%s: %s", fmt, r ? r->str : "no reply");
    freeReplyObject(r);
}

/* ---- an engine with a counting handler ------------------------------------------ */

#define MAXQ    4
#define MAXJOBS 1200

struct eng {
    uv_loop_t loop;
    struct nova__redis_config cfg;
    struct nova__queue_engine *e;
    struct nova__services sv;
    struct nova__host_ctx ctx;
    char queues[MAXQ][32];
    int nq;
    int runs[MAXQ][MAXJOBS + 1];
    int calls, dups, done;
    int delay_ms;
    int64_t last_done_ms;
};

static struct eng *G;

struct later {
    nova_job *job;
};

static void finish(nova_job *job)
{
    G->ctx.host.job_done(job, "\"ok\"");
    G->done++;
    G->last_done_ms = now_ms();
}

static void on_later(void *arg)
{
    struct later *l = arg;
    finish(l->job);
    free(l);
}

static void handler(void *arg, nova_job *job)
{
    int q = (int)(intptr_t)arg;
    const struct nova_host *h = &G->ctx.host;
    long n = strtol(h->job_id(job), NULL, 10);
    G->calls++;
    if (n > 0 && n <= MAXJOBS && ++G->runs[q][n] > 1)
        G->dups++;
    if (G->delay_ms > 0) {
        struct later *l = malloc(sizeof(*l));
        ck_assert_ptr_nonnull(l);
        l->job = job;
        ck_assert_ptr_nonnull(h->timer_start(h, (uint64_t)G->delay_ms, 0, on_later, l));
    } else {
        finish(job);
    }
}

static void eng_init(struct eng *g)
{
    memset(g, 0, sizeof(*g));
    G = g;
    ck_assert_int_eq(uv_loop_init(&g->loop), 0);
    g->cfg.prefix = (char *)"bull";
    g->cfg.connect_timeout_ms = 1000;
    g->cfg.reply_timeout_ms = 2000;
    g->cfg.lock_duration_ms = 5000;
    g->cfg.stalled_interval_ms = 2000;
    g->cfg.max_stalled_count = 1;
    g->cfg.drain_delay_ms = 1000;
    g->cfg.tcp_keepalive_ms = 5000;
}

static void eng_start(struct eng *g)
{
    ck_assert_int_eq(nova__queue_engine_new(&g->loop, &g->cfg, "modes", &g->e), 0);
    g->sv.loop = &g->loop;
    g->sv.queues = g->e;
    nova__host_init(&g->ctx, &g->sv, "test", NULL);
}

static int eng_subscribe(struct eng *g, const char *queue, unsigned conc)
{
    struct nova_subscription sub = {
        .struct_size = sizeof(sub),
        .queue = queue,
        .concurrency = conc,
        .handle = handler,
        .arg = (void *)(intptr_t)g->nq,
    };
    int rc = g->ctx.host.subscribe(&g->ctx.host, &sub);
    if (rc == 0)
        snprintf(g->queues[g->nq++], sizeof(g->queues[0]), "%s", queue);
    return rc;
}

static void drained(void *arg)
{
    *(bool *)arg = true;
}

static bool is_true(void *arg)
{
    return *(bool *)arg;
}

static void eng_stop(struct eng *g)
{
    bool done = false;
    nova__queue_engine_drain(g->e, 2000, drained, &done);
    ck_assert(run_until(&g->loop, is_true, &done, 10000));
    nova__host_release(&g->ctx);
    nova__host_after_shutdown(&g->ctx);
    nova__queue_engine_free(g->e);
    g->e = NULL;
    uv_run(&g->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&g->loop), 0);
    G = NULL;
}

/* n jobs on queue through the CLI's client (so: in every mode). */
static void add_jobs(const struct nova__redis_config *cfg, const char *queue, int n)
{
    char err[600], base[256], meta[300], now[24];
    struct nova_job_options o = {
        .struct_size = sizeof(o), .remove_on_complete = -1, .remove_on_fail = -1};
    char *ojson = nova__queue_opts_json(&o, err, sizeof(err));
    struct nova__redis_sync *s = nova__redis_sync_open(cfg, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_ptr_nonnull(ojson);
    ck_assert_int_ge(nova__queue_key_base(cfg->prefix, queue, base, sizeof(base)), 0);
    snprintf(meta, sizeof(meta), "%smeta", base);
    for (int i = 0; i < n; i++) {
        const char *av[] = {"EVAL",      nova__lua_add, "1", meta, base, now, "job",
                            "{\"n\":1}", ojson,         "",  "0",  "0",  "0"};
        redisReply *r;
        snprintf(now, sizeof(now), "%lld", (long long)wall_ms());
        r = nova__redis_sync_argv(s, 13, av, NULL);
        ck_assert_msg(r && r->type == REDIS_REPLY_ARRAY, "add: %s",
                      r ? r->str : nova__redis_sync_error(s));
        freeReplyObject(r);
    }
    free(ojson);
    nova__redis_sync_close(s);
}

struct want {
    struct eng *g;
    int n;
};

static bool done_reaches(void *arg)
{
    struct want *w = arg;
    return w->g->done >= w->n;
}

/* Every job 1..n of every queue ran exactly once. */
static void assert_once(struct eng *g, int n)
{
    for (int q = 0; q < g->nq; q++)
        for (int i = 1; i <= n; i++)
            ck_assert_msg(g->runs[q][i] == 1, "queue %s job %d ran %d time(s)", g->queues[q], i,
                          g->runs[q][i]);
    ck_assert_int_eq(g->dups, 0);
}

/* Runs `nova-worker queue ...` with stdout captured. */
static int capture(const struct nova__config *cfg, int argc, const char **argv, char *out,
                   size_t outlen)
{
    char path[] = "/tmp/nova-modes-XXXXXX";
    int fd = mkstemp(path), saved, rc;
    ssize_t n;
    ck_assert_int_ge(fd, 0);
    unlink(path);
    fflush(stdout);
    saved = dup(1);
    dup2(fd, 1);
    rc = nova__cmd_queue(cfg, argc, (char **)argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

/* ---- offline ---------------------------------------------------------------------- */

static int from(struct nova__redis_config *c, char *err, size_t errlen)
{
    struct nova__redis_target t;
    int rc = nova__redis_target_from_config(c, &t, err, errlen);
    if (rc == 0)
        nova__redis_target_free(&t);
    return rc;
}

START_TEST(config_and_slots)
{
    struct nova__redis_config c = {0};
    struct nova__redis_target t;
    char err[512], out[32];
    /* URLs */
    c.url = (char *)"rediss://nova:p%40ss@redis.example:6380/2";
    ck_assert_int_eq(nova__redis_target_from_config(&c, &t, err, sizeof(err)), 0);
    ck_assert(t.tls);
    ck_assert_str_eq(t.username, "nova");
    ck_assert_str_eq(t.password, "p@ss");
    ck_assert_int_eq(t.port, 6380);
    ck_assert_int_eq(t.db, 2);
    ck_assert_int_eq(t.reply_timeout_ms, 10000);
    nova__redis_target_free(&t);
    /* a password (auth token) and user given apart */
    c.url = (char *)"redis://10.0.0.1";
    c.password = (char *)"tok";
    c.username = (char *)"app";
    ck_assert_int_eq(nova__redis_target_from_config(&c, &t, err, sizeof(err)), 0);
    ck_assert_str_eq(t.password, "tok");
    ck_assert_str_eq(t.username, "app");
    nova__redis_target_free(&t);
    c.password = c.username = NULL;
    /* TLS files without rediss:// */
    c.tls_ca_file = (char *)"/etc/hostname";
    ck_assert_int_eq(from(&c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "rediss://"));
    c.url = (char *)"rediss://h";
    c.tls_ca_file = (char *)"/nonexistent/ca.pem";
    ck_assert_int_lt(from(&c, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "tls_ca_file"));
    c.tls_ca_file = (char *)"/etc/hostname"; /* readable, not a certificate */
    ck_assert_int_lt(from(&c, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "no usable CA"));
    c.tls_ca_file = NULL;
    c.tls_cert_file = (char *)"/etc/hostname";
    ck_assert_int_lt(from(&c, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "tls_key_file"));
    c.tls_cert_file = NULL;
    c.url = NULL;
    /* Sentinel */
    c.sentinels = (char *)"127.0.0.1:26379, [::1]:26380,s3";
    ck_assert_int_eq(from(&c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "sentinel_master"));
    c.sentinel_master = (char *)"mymaster";
    ck_assert_int_eq(nova__redis_target_from_config(&c, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.mode, NOVA__REDIS_SENTINEL);
    ck_assert_int_eq((int)t.nnodes, 3);
    ck_assert_str_eq(t.nodes[1].host, "::1");
    ck_assert_int_eq(t.nodes[1].port, 26380);
    ck_assert_int_eq(t.nodes[2].port, 26379);
    nova__redis_target_free(&t);
    c.cluster_nodes = (char *)"127.0.0.1:7000";
    ck_assert_int_eq(from(&c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "exclude"));
    c.sentinels = c.sentinel_master = NULL;
    /* Cluster */
    c.url = (char *)"redis://h/3";
    ck_assert_int_eq(from(&c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "database 0"));
    c.url = (char *)"unix:///run/redis.sock";
    ck_assert_int_eq(from(&c, err, sizeof(err)), -EINVAL);
    c.url = NULL;
    c.cluster_nodes = (char *)"a:1,,b:x";
    ck_assert_int_eq(from(&c, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "b:x"));
    c.cluster_nodes = (char *)"a:7000 b:7001";
    ck_assert_int_eq(nova__redis_target_from_config(&c, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(t.mode, NOVA__REDIS_CLUSTER);
    ck_assert_int_eq((int)t.nnodes, 2);
    nova__redis_target_free(&t);

    /* slots: the specification's examples */
    ck_assert_uint_eq(nova__redis_key_slot("123456789", 9), 0x31C3 & 16383);
    ck_assert_uint_eq(nova__redis_key_slot("foo", 3), 12182);
    ck_assert_uint_eq(nova__redis_key_slot("{user1000}.following", 20),
                      nova__redis_key_slot("{user1000}.followers", 20));
    ck_assert_uint_eq(nova__redis_key_slot("foo{}{bar}", 10),
                      nova__redis_key_slot("foo{}{bar}", 10)); /* whole key hashed */
    ck_assert_uint_ne(nova__redis_key_slot("foo{}{bar}", 10), nova__redis_key_slot("bar", 3));
    ck_assert_uint_eq(nova__redis_key_slot("foo{{bar}}zap", 13), nova__redis_key_slot("{bar", 4));
    ck_assert(nova__redis_base_one_slot("{bull}:q:", 9));
    ck_assert(nova__redis_base_one_slot("bull:{q}:", 9));
    ck_assert(!nova__redis_base_one_slot("bull:q:", 7));
    ck_assert(!nova__redis_base_one_slot("bull:{}q:", 9));
    ck_assert(!nova__redis_base_one_slot("bull:{q:", 8));

    /* the blocking timeout for each server version */
    nova__redis_block_timeout(50008, "0.500", out, sizeof(out));
    ck_assert_str_eq(out, "1");
    nova__redis_block_timeout(50008, "10.000", out, sizeof(out));
    ck_assert_str_eq(out, "10");
    nova__redis_block_timeout(60200, "0.001", out, sizeof(out));
    ck_assert_str_eq(out, "0.002");
    nova__redis_block_timeout(70007, "0.001", out, sizeof(out));
    ck_assert_str_eq(out, "0.002");
    nova__redis_block_timeout(70007, "2.500", out, sizeof(out));
    ck_assert_str_eq(out, "2.500");
    nova__redis_block_timeout(70008, "0.001", out, sizeof(out));
    ck_assert_str_eq(out, "0.001");
    nova__redis_block_timeout(0, "0.250", out, sizeof(out));
    ck_assert_str_eq(out, "1");
    nova__redis_block_timeout(70015, "0", out, sizeof(out));
    ck_assert_str_eq(out, "0");
}
END_TEST

/* ---- TLS -------------------------------------------------------------------------- */

struct tls_env {
    char dir[256];
    char ca[300], cert[300], key[300], other_ca[300];
    struct nova_test_redis rs;
    char url[128];
};

static void tls_env_start(struct tls_env *t, int auth_clients)
{
    char scert[300], skey[300];
    snprintf(t->dir, sizeof(t->dir), "%s", tu_tempdir());
    ck_assert_int_eq(nova_test_make_certs(t->dir, ""), 0);
    ck_assert_int_eq(nova_test_make_certs(t->dir, "other-"), 0);
    snprintf(t->ca, sizeof(t->ca), "%s/ca.crt", t->dir);
    snprintf(t->other_ca, sizeof(t->other_ca), "%s/other-ca.crt", t->dir);
    snprintf(t->cert, sizeof(t->cert), "%s/client.crt", t->dir);
    snprintf(t->key, sizeof(t->key), "%s/client.key", t->dir);
    snprintf(scert, sizeof(scert), "%s/server.crt", t->dir);
    snprintf(skey, sizeof(skey), "%s/server.key", t->dir);
    ck_assert_int_eq(nova_test_redis_start_tls(&t->rs, scert, skey, t->ca, auth_clients), 0);
    snprintf(t->url, sizeof(t->url), "rediss://127.0.0.1:%d", t->rs.tls_port);
}

static void tls_env_stop(struct tls_env *t)
{
    nova_test_redis_stop(&t->rs);
    tu_rmtree(t->dir);
}

/* Opens the CLI's client with cfg; NULL and err filled on failure. */
static struct nova__redis_sync *try_open(const struct nova__redis_config *cfg, char *err,
                                         size_t errlen)
{
    return nova__redis_sync_open(cfg, err, errlen);
}

static void expect_get(struct nova__redis_sync *s, const char *key, const char *want)
{
    redisReply *r = nova__redis_sync_command(s, "GET %s", key);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(r->str, want);
    freeReplyObject(r);
}

START_TEST(tls_certificates_and_acl)
{
    struct tls_env t;
    struct nova__redis_config c = {0};
    struct nova__redis_sync *s;
    redisReply *r;
    char err[600], url[200];
    tls_env_start(&t, 1);
    c.url = t.url;
    c.connect_timeout_ms = 2000;
    c.tls_ca_file = t.ca;
    c.tls_cert_file = t.cert;
    c.tls_key_file = t.key;
    /* the right CA and a client certificate */
    s = try_open(&c, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    r = nova__redis_sync_command(s, "SET %s %s", "k", "over tls");
    ck_assert_ptr_nonnull(r);
    freeReplyObject(r);
    expect_get(s, "k", "over tls");
    nova__redis_sync_close(s);
    /* a name the certificate has (DNS:localhost) */
    c.tls_server_name = (char *)"localhost";
    s = try_open(&c, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    nova__redis_sync_close(s);
    /* ... and one it has not */
    c.tls_server_name = (char *)"redis.example.org";
    ck_assert_ptr_null(try_open(&c, err, sizeof(err)));
    ck_assert_msg(strstr(err, "certificate was refused") && strstr(err, "tls_server_name"), "%s",
                  err);
    c.tls_server_name = NULL;
    /* a CA that did not sign the server's certificate */
    c.tls_ca_file = t.other_ca;
    ck_assert_ptr_null(try_open(&c, err, sizeof(err)));
    ck_assert_msg(strstr(err, "certificate was refused") && strstr(err, "tls_ca_file"), "%s", err);
    /* verification off accepts it (tests only) */
    c.tls_skip_verify = true;
    s = try_open(&c, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    nova__redis_sync_close(s);
    c.tls_skip_verify = false;
    c.tls_ca_file = t.ca;
    /* no client certificate while the server wants one */
    c.tls_cert_file = c.tls_key_file = NULL;
    ck_assert_ptr_null(try_open(&c, err, sizeof(err)));
    ck_assert_msg(strstr(err, "TLS"), "%s", err);
    c.tls_cert_file = t.cert;
    c.tls_key_file = t.key;
    /* plain redis:// to the TLS port: refused, not hung */
    {
        struct nova__redis_config p = {0};
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", t.rs.tls_port);
        p.url = url;
        p.connect_timeout_ms = 1000;
        p.reply_timeout_ms = 1000;
        ck_assert_ptr_null(try_open(&p, err, sizeof(err)));
    }
    /* an ACL user with a password */
    cmd_ok(t.rs.port, "ACL SETUSER %s on >%s ~* &* +@all", "worker", "s3cret");
    snprintf(url, sizeof(url), "rediss://worker:s3cret@127.0.0.1:%d", t.rs.tls_port);
    c.url = url;
    s = try_open(&c, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    r = nova__redis_sync_command(s, "ACL WHOAMI");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->str, "worker");
    freeReplyObject(r);
    nova__redis_sync_close(s);
    snprintf(url, sizeof(url), "rediss://worker:wrong@127.0.0.1:%d", t.rs.tls_port);
    ck_assert_ptr_null(try_open(&c, err, sizeof(err)));
    ck_assert_msg(strstr(err, "AUTH failed") && strstr(err, "WRONGPASS"), "%s", err);
    ck_assert_msg(!strstr(err, "wrong"), "the password is quoted: %s", err);
    /* an auth token (default user's password) given apart from the url */
    cmd_ok(t.rs.port, "CONFIG SET %s %s", "requirepass", "t0ken");
    c.url = t.url;
    c.password = (char *)"t0ken";
    s = try_open(&c, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    nova__redis_sync_close(s);
    c.password = NULL;
    ck_assert_ptr_null(try_open(&c, err, sizeof(err)));
    ck_assert_msg(strstr(err, "NOAUTH"), "%s", err);
    tls_env_stop(&t);
}
END_TEST

START_TEST(tls_engine_jobs_and_setname_refused)
{
    struct tls_env t;
    struct eng g;
    struct want w = {.g = &g, .n = 60};
    char url[200];
    tls_env_start(&t, 1);
    /* a user that may not CLIENT SETNAME: logged once, not fatal */
    cmd_ok(t.rs.port, "ACL SETUSER %s on >%s ~* &* +@all -client", "limited", "pw");
    eng_init(&g);
    snprintf(url, sizeof(url), "rediss://limited:pw@127.0.0.1:%d", t.rs.tls_port);
    g.cfg.url = url;
    g.cfg.tls_ca_file = t.ca;
    g.cfg.tls_cert_file = t.cert;
    g.cfg.tls_key_file = t.key;
    add_jobs(&g.cfg, "tq", 60);
    eng_start(&g);
    ck_assert_int_eq(eng_subscribe(&g, "tq", 5), 0);
    ck_assert_int_eq(nova__queue_engine_start(g.e), 0);
    ck_assert_msg(run_until(&g.loop, done_reaches, &w, 20000), "done %d of 60", g.done);
    assert_once(&g, 60);
    eng_stop(&g);
    {
        redisReply *r = cmd(t.rs.port, "ZCARD bull:tq:completed");
        ck_assert_int_eq(r->integer, 60);
        freeReplyObject(r);
    }
    tls_env_stop(&t);
}
END_TEST

/* ---- a frozen server ------------------------------------------------------------ */

struct st {
    int ups, downs, replies, status;
};

static void on_state(void *arg, bool up)
{
    struct st *s = arg;
    if (up)
        s->ups++;
    else
        s->downs++;
}

static void on_reply(void *arg, int status, const redisReply *r)
{
    struct st *s = arg;
    (void)r;
    s->replies++;
    s->status = status;
}

struct cnt {
    int *v;
    int want;
};

static bool reaches(void *arg)
{
    struct cnt *c = arg;
    return *c->v >= c->want;
}

static void frozen_once(bool sigstop)
{
    struct nova_test_redis rs;
    struct nova__redis_config cfg = {0};
    struct nova__redis_target t;
    struct nova__redis_conn *c;
    struct st st = {0};
    uv_loop_t loop;
    char err[256];
    const char *ping[] = {"PING"};
    int64_t t0, took;
    ck_assert_int_eq(nova_test_redis_start(&rs), 0);
    cfg.url = rs.url;
    cfg.reply_timeout_ms = 1000;
    cfg.tcp_keepalive_ms = 2000;
    ck_assert_int_eq(nova__redis_target_from_config(&cfg, &t, err, sizeof(err)), 0);
    uv_loop_init(&loop);
    struct nova__redis_conn_opts o = {.target = &t,
                                      .what = "frozen",
                                      .connect_timeout_ms = 8000,
                                      .on_state = on_state,
                                      .arg = &st};
    ck_assert_int_eq(nova__redis_conn_new(&loop, &o, &c), 0);
    nova__redis_target_free(&t);
    ck_assert(run_until(&loop, reaches, &(struct cnt){&st.ups, 1}, 3000));
    if (sigstop) {
        kill(rs.pid, SIGSTOP);
    } else {
        redisContext *x = redisConnect("127.0.0.1", rs.port);
        ck_assert_int_eq(redisAppendCommand(x, "DEBUG SLEEP 3"), REDIS_OK);
        int done = 0;
        redisBufferWrite(x, &done);
        usleep(100 * 1000);
        redisFree(x);
    }
    t0 = now_ms();
    ck_assert_int_eq(nova__redis_conn_command(c, on_reply, &st, 1, ping, NULL), 0);
    ck_assert(run_until(&loop, reaches, &(struct cnt){&st.replies, 1}, 5000));
    took = now_ms() - t0;
    ck_assert_int_eq(st.status, -ECONNRESET);
    ck_assert_msg(took >= 900 && took <= 1800, "found after %lld ms (reply_timeout 1000)",
                  (long long)took);
    ck_assert_int_eq(st.downs, 1);
    if (sigstop) {
        run_until(&loop, never, NULL, 1000);
        kill(rs.pid, SIGCONT);
    }
    /* back once the server answers again */
    ck_assert(run_until(&loop, reaches, &(struct cnt){&st.ups, 2}, 8000));
    ck_assert_int_eq(nova__redis_conn_command(c, on_reply, &st, 1, ping, NULL), 0);
    ck_assert(run_until(&loop, reaches, &(struct cnt){&st.replies, 2}, 3000));
    ck_assert_int_eq(st.status, 0);
    nova__redis_conn_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    nova_test_redis_stop(&rs);
}

START_TEST(frozen_server_sigstop)
{
    frozen_once(true);
}
END_TEST

START_TEST(frozen_server_debug_sleep)
{
    frozen_once(false);
}
END_TEST

/* The engine through a frozen command connection: no job lost or doubled. */
START_TEST(frozen_engine_jobs)
{
    struct nova_test_redis rs;
    struct eng g;
    struct want w = {.g = &g, .n = 20};
    ck_assert_int_eq(nova_test_redis_start(&rs), 0);
    eng_init(&g);
    g.cfg.url = rs.url;
    g.cfg.reply_timeout_ms = 1000;
    g.delay_ms = 20;
    add_jobs(&g.cfg, "fq", 200);
    eng_start(&g);
    ck_assert_int_eq(eng_subscribe(&g, "fq", 4), 0);
    ck_assert_int_eq(nova__queue_engine_start(g.e), 0);
    ck_assert(run_until(&g.loop, done_reaches, &w, 10000));
    kill(rs.pid, SIGSTOP);
    run_until(&g.loop, never, NULL, 2500);
    ck_assert(!nova__queue_engine_connected(g.e)); /* found frozen */
    kill(rs.pid, SIGCONT);
    w.n = 200;
    ck_assert_msg(run_until(&g.loop, done_reaches, &w, 30000), "done %d of 200", g.done);
    run_until(&g.loop, never, NULL, 500);
    assert_once(&g, 200);
    eng_stop(&g);
    nova_test_redis_stop(&rs);
}
END_TEST

/* ---- Sentinel ---------------------------------------------------------------------- */

static long long info_field(int port, const char *section, const char *field)
{
    redisReply *r = cmd(port, "INFO %s", section);
    const char *p;
    long long v = -1;
    if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, field)))
        v = strtoll(p + strlen(field), NULL, 10);
    freeReplyObject(r);
    return v;
}

/* The replica has everything the master wrote. */
static void wait_replicated(int master, int replica)
{
    for (int i = 0; i < 200; i++) {
        long long m = info_field(master, "replication", "master_repl_offset:");
        long long s = info_field(replica, "replication", "slave_repl_offset:");
        if (m > 0 && s >= m)
            return;
        usleep(50 * 1000);
    }
    ck_abort_msg("the replica did not catch up");
}

START_TEST(sentinel_failover)
{
    struct nova_test_redis m, rep, s[3];
    struct eng g;
    struct want w = {.g = &g};
    char replicaof[32], sentinels[128];
    const char *extra[] = {"--replicaof", "127.0.0.1", replicaof, NULL};
    int64_t killed, resumed;
    const int N = 400;
    ck_assert_int_eq(nova_test_redis_start(&m), 0);
    snprintf(replicaof, sizeof(replicaof), "%d", m.port);
    ck_assert_int_eq(nova_test_redis_start_with(&rep, extra), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(nova_test_sentinel_start(&s[i], "nova", m.port), 0);
    /* the sentinels know the replica and each other */
    for (int i = 0; i < 300; i++) {
        int ok = 0;
        for (int k = 0; k < 3; k++) {
            redisReply *a = cmd(s[k].port, "SENTINEL REPLICAS nova");
            redisReply *b = cmd(s[k].port, "SENTINEL SENTINELS nova");
            if (a && a->type == REDIS_REPLY_ARRAY && a->elements == 1 && b &&
                b->type == REDIS_REPLY_ARRAY && b->elements == 2)
                ok++;
            freeReplyObject(a);
            freeReplyObject(b);
        }
        if (ok == 3)
            break;
        ck_assert_int_lt(i, 299);
        usleep(100 * 1000);
    }
    eng_init(&g);
    snprintf(sentinels, sizeof(sentinels), "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", s[0].port,
             s[1].port, s[2].port);
    g.cfg.sentinels = sentinels;
    g.cfg.sentinel_master = (char *)"nova";
    g.delay_ms = 5;
    add_jobs(&g.cfg, "sq", N);
    wait_replicated(m.port, rep.port);
    eng_start(&g);
    ck_assert_int_eq(eng_subscribe(&g, "sq", 8), 0);
    ck_assert_int_eq(nova__queue_engine_start(g.e), 0);
    w.n = 100;
    ck_assert(run_until(&g.loop, done_reaches, &w, 20000));
    /* the master dies mid-run */
    kill(m.pid, SIGKILL);
    killed = now_ms();
    w.n = g.done + 1;
    ck_assert_msg(run_until(&g.loop, done_reaches, &w, 30000),
                  "no job finished after the failover");
    resumed = now_ms();
    w.n = N;
    ck_assert_msg(run_until(&g.loop, done_reaches, &w, 60000), "done %d of %d", g.done, N);
    run_until(&g.loop, never, NULL, 500);
    assert_once(&g, N);
    ck_assert_msg(resumed - killed < 15000, "back after %lld ms", (long long)(resumed - killed));
    fprintf(stderr, "sentinel: jobs flowing again %lld ms after the master was killed\n",
            (long long)(resumed - killed));
    {
        /* the old replica is the master now and holds every completion */
        redisReply *r = cmd(rep.port, "ROLE");
        ck_assert_str_eq(r->element[0]->str, "master");
        freeReplyObject(r);
        r = cmd(rep.port, "ZCARD bull:sq:completed");
        ck_assert_int_eq(r->integer, N);
        freeReplyObject(r);
    }
    eng_stop(&g);
    for (int i = 0; i < 3; i++)
        nova_test_redis_stop(&s[i]);
    nova_test_redis_stop(&rep);
    m.pid = 0;
    nova_test_redis_stop(&m);
}
END_TEST

/* ---- Cluster ------------------------------------------------------------------------ */

START_TEST(cluster_routing_and_migration)
{
    struct nova_test_redis n[3];
    struct eng g;
    struct want w = {.g = &g};
    char seeds[128], names[3][16], base[64];
    unsigned slots[3];
    bool have[3] = {false, false, false};
    int found = 0, status;
    pid_t mover;
    struct nova__redis_conn_stats st;
    const int N = 250;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(nova_test_cluster_node_start(&n[i]), 0);
    ck_assert_int_eq(nova_test_cluster_create(n, 3), 0);
    /* one queue on each master: names with a hash tag */
    for (int k = 0; found < 3 && k < 200; k++) {
        char q[16];
        int owner;
        unsigned slot;
        snprintf(q, sizeof(q), "{q%d}", k);
        snprintf(base, sizeof(base), "bull:%s:", q);
        slot = nova__redis_key_slot(base, strlen(base));
        owner = nova_test_cluster_owner(n, 3, slot);
        if (owner >= 0 && !have[owner]) {
            have[owner] = true;
            snprintf(names[found], sizeof(names[0]), "%s", q);
            slots[found++] = slot;
        }
    }
    ck_assert_int_eq(found, 3);
    eng_init(&g);
    snprintf(seeds, sizeof(seeds), "127.0.0.1:%d, 127.0.0.1:%d", n[1].port, n[2].port);
    g.cfg.cluster_nodes = seeds;
    g.delay_ms = 2;
    for (int i = 0; i < 3; i++)
        add_jobs(&g.cfg, names[i], N);
    eng_start(&g);
    /* keys of a queue without a hash tag would span slots: refused */
    ck_assert_int_eq(eng_subscribe(&g, "plain", 1), -EINVAL);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(eng_subscribe(&g, names[i], 4), 0);
    ck_assert_int_eq(nova__queue_engine_start(g.e), 0);
    w.n = 60;
    ck_assert(run_until(&g.loop, done_reaches, &w, 20000));
    /* the first queue's slot moves to another master while jobs run */
    {
        int from = nova_test_cluster_owner(n, 3, slots[0]);
        int to = (from + 1) % 3;
        mover = fork();
        ck_assert_int_ge(mover, 0);
        if (mover == 0)
            _exit(nova_test_cluster_move_slot(
                      n, 3, slots[0], to,
                      getenv("NOVA_TEST_MOVE_BATCH") ? atoi(getenv("NOVA_TEST_MOVE_BATCH")) : 1024,
                      300) == 0
                      ? 0
                      : 1);
    }
    w.n = 3 * N;
    ck_assert_msg(run_until(&g.loop, done_reaches, &w, 60000), "done %d of %d", g.done, 3 * N);
    ck_assert_int_eq(waitpid(mover, &status, 0), mover);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the slot move failed");
    run_until(&g.loop, never, NULL, 500);
    assert_once(&g, N);
    nova__redis_conn_stats(nova__queue_cmd_conn(g.e), &st);
    fprintf(stderr, "cluster: MOVED %llu, ASK %llu, TRYAGAIN %llu\n", (unsigned long long)st.moved,
            (unsigned long long)st.ask, (unsigned long long)st.tryagain);
    ck_assert_uint_gt(st.moved + st.ask, 0);
    /* after the move, the new owner holds the queue */
    {
        int owner = nova_test_cluster_owner(n, 3, slots[0]);
        redisReply *r;
        char key[64];
        snprintf(key, sizeof(key), "bull:%s:completed", names[0]);
        r = cmd(n[owner].port, "ZCARD %s", key);
        ck_assert_int_eq(r->integer, N);
        freeReplyObject(r);
    }
    eng_stop(&g);
    /* the CLI finds the queues on every master */
    {
        struct nova__config full;
        const char *argv[] = {"queue", "stats"};
        char out[4096];
        memset(&full, 0, sizeof(full));
        full.redis = g.cfg;
        ck_assert_int_eq(capture(&full, 2, argv, out, sizeof(out)), 0);
        for (int i = 0; i < 3; i++)
            ck_assert_msg(strstr(out, names[i]), "stats lacks %s: %s", names[i], out);
        ck_assert_msg(strstr(out, "completed=250"), "%s", out);
    }
    for (int i = 0; i < 3; i++)
        nova_test_redis_stop(&n[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_modes");
    TCase *off = tcase_create("offline");
    TCase *tls = tcase_create("tls");
    TCase *fz = tcase_create("frozen");
    TCase *sen = tcase_create("sentinel");
    TCase *clu = tcase_create("cluster");
    nova__log_set_level(NOVA_LOG_WARN);
    tcase_add_test(off, config_and_slots);
    tcase_set_timeout(tls, 60);
    tcase_add_test(tls, tls_certificates_and_acl);
    tcase_add_test(tls, tls_engine_jobs_and_setname_refused);
    tcase_set_timeout(fz, 60);
    tcase_add_test(fz, frozen_server_sigstop);
    tcase_add_test(fz, frozen_server_debug_sleep);
    tcase_add_test(fz, frozen_engine_jobs);
    tcase_set_timeout(sen, 120);
    tcase_add_test(sen, sentinel_failover);
    tcase_set_timeout(clu, 120);
    tcase_add_test(clu, cluster_routing_and_migration);
    suite_add_tcase(s, off);
    suite_add_tcase(s, tls);
    suite_add_tcase(s, fz);
    suite_add_tcase(s, sen);
    suite_add_tcase(s, clu);
    return tu_run(s);
}
