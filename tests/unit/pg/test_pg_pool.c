/*
 * test_pg_pool - the libuv PostgreSQL pool against a real PostgreSQL 15.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/host.h"
#include "common/log.h"
#include "common/metrics.h"
#include "pg/pg_pool.h"
#include "lib/pg_server.h"
#include "unit/testutil.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static struct pg_server server;
/* Time budgets stretch under valgrind, where a SCRAM login alone takes
 * seconds; every wait and timeout in this file is multiplied by it. */
static unsigned slow = 1;

static void server_up(void)
{
    ck_assert_msg(pg_server_start(&server) == 0, "PostgreSQL 15 did not start");
    ck_assert_int_eq(pg_server_exec(&server, NULL,
                                    "CREATE TABLE items (id serial PRIMARY KEY, k text UNIQUE, "
                                    "n int NOT NULL DEFAULT 0)"),
                     0);
}

static void server_down(void)
{
    pg_server_destroy(&server);
}

/* ---- harness ------------------------------------------------------------ */

struct env {
    uv_loop_t loop;
    uv_timer_t tick;
    struct nova__pg_pool *pool;
    struct nova__services svc;
    struct nova__host_ctx ctx;
    const struct nova_host *host;
    const struct nova_pg_api *pg;
};

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static struct nova__postgres_config make_cfg(const char *dsn, int64_t min, int64_t max,
                                             int64_t stmt_timeout_ms)
{
    struct nova__postgres_config cfg = {
        .dsn = (char *)dsn,
        .pool_min = min,
        .pool_max = max,
        .connect_timeout_ms = 3000 * (int64_t)slow,
        .statement_timeout_ms = stmt_timeout_ms,
        .slow_query_ms = 0,
    };
    return cfg;
}

static void env_init_cfg(struct env *e, const struct nova__postgres_config *cfg)
{
    memset(e, 0, sizeof *e);
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->tick);
    uv_timer_start(&e->tick, on_tick, 20, 20);
    ck_assert_int_eq(nova__pg_pool_new(&e->loop, cfg, &e->pool), 0);
    e->svc.loop = &e->loop;
    e->svc.pg = e->pool;
    e->ctx.services = &e->svc;
    e->ctx.host.struct_size = sizeof(struct nova_host);
    e->ctx.host.plugin_name = "pgtest";
    e->ctx.host.pg = nova__host_pg_api();
    e->host = &e->ctx.host;
    e->pg = e->host->pg;
}

static void env_init(struct env *e, int64_t min, int64_t max, int64_t stmt_timeout_ms)
{
    char dsn[512];
    pg_server_dsn(&server, NULL, "application_name=pooltest", dsn, sizeof dsn);
    struct nova__postgres_config cfg = make_cfg(dsn, min, max, stmt_timeout_ms);
    env_init_cfg(e, &cfg);
}

/* Runs the loop until *counter reaches target; false on timeout. */
static bool run_until(struct env *e, const int *counter, int target, uint64_t timeout_ms)
{
    uv_update_time(&e->loop);
    uint64_t deadline = uv_now(&e->loop) + timeout_ms * slow;
    while (*counter < target) {
        if (uv_now(&e->loop) > deadline)
            return false;
        uv_run(&e->loop, UV_RUN_ONCE);
    }
    return true;
}

/* Runs the loop until n connections are in use (statements started). */
static bool run_until_in_use(struct env *e, unsigned n)
{
    struct nova__pg_pool_stats st;
    uv_update_time(&e->loop);
    uint64_t deadline = uv_now(&e->loop) + 10000 * slow;
    for (;;) {
        nova__pg_pool_stats(e->pool, &st);
        if (st.in_use >= n)
            return true;
        if (uv_now(&e->loop) > deadline)
            return false;
        uv_run(&e->loop, UV_RUN_ONCE);
    }
}

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

static void env_close(struct env *e)
{
    int closed = 0;
    nova__pg_pool_close(e->pool, on_closed, &closed);
    ck_assert(run_until(e, &closed, 1, 5000));
    uv_close((uv_handle_t *)&e->tick, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&e->loop), 0); /* every handle closed */
}

/* A callback record: status, SQLSTATE, message and the first value. */
struct rec {
    int *counter;
    int status;
    char sqlstate[8];
    char message[512];
    char value[128];
    bool value_null;
    const struct nova_pg_api *pg;
};

static void on_rec(void *arg, int status, const nova_pg_result *res)
{
    struct rec *r = arg;
    ck_assert_ptr_nonnull(res);
    r->status = status;
    snprintf(r->sqlstate, sizeof r->sqlstate, "%s", r->pg->sqlstate(res));
    snprintf(r->message, sizeof r->message, "%s", r->pg->error_message(res));
    const char *v = r->pg->get_text(res, 0, 0);
    r->value_null = v == NULL;
    snprintf(r->value, sizeof r->value, "%s", v != NULL ? v : "");
    (*r->counter)++;
}

static void rec_init(struct rec *r, struct env *e, int *counter)
{
    memset(r, 0, sizeof *r);
    r->counter = counter;
    r->status = 1; /* "not called" */
    r->pg = e->pg;
}

/* One query, run to completion. */
static struct rec query1(struct env *e, const char *sql, int n, const char *const *params)
{
    int done = 0;
    struct rec r;
    rec_init(&r, e, &done);
    ck_assert_int_eq(e->pg->query(e->host, sql, n, params, on_rec, &r), 0);
    ck_assert_int_eq(done, 0); /* never called back from inside the call */
    ck_assert_msg(run_until(e, &done, 1, 10000), "query hung: %s", sql);
    return r;
}

/* Captures log lines into a temp file. */
static FILE *log_capture(void)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    nova__log_set_fd(fileno(f));
    return f;
}

static char *log_read(FILE *f)
{
    nova__log_set_fd(-1);
    static char buf[16384];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ---- pool under load ---------------------------------------------------- */

struct load {
    int done, ok;
    int max_backends;
    const struct nova_pg_api *pg;
};

struct load_item {
    struct load *l;
    int i;
};

static void on_load(void *arg, int status, const nova_pg_result *res)
{
    struct load_item *it = arg;
    struct load *l = it->l;
    int64_t v = -1, backends = 0;
    if (status == 0 && l->pg->get_int64(res, 0, 0, &v) == 0 && v == it->i * 2 &&
        l->pg->get_int64(res, 0, 1, &backends) == 0)
        l->ok++;
    if (backends > l->max_backends)
        l->max_backends = (int)backends;
    l->done++;
}

START_TEST(test_200_concurrent_queries_pool_max_10)
{
    struct env e;
    env_init(&e, 2, 10, 0);
    struct load l = {.pg = e.pg};
    static struct load_item items[200];
    char num[200][12];
    for (int i = 0; i < 200; i++) {
        items[i] = (struct load_item){.l = &l, .i = i};
        snprintf(num[i], sizeof num[i], "%d", i);
        const char *params[1] = {num[i]};
        ck_assert_int_eq(e.pg->query(e.host,
                                     "SELECT $1::int * 2, (SELECT count(*) FROM pg_stat_activity "
                                     "WHERE application_name = 'pooltest'), pg_sleep(0.002)",
                                     1, params, on_load, &items[i]),
                         0);
    }
    struct nova__pg_pool_stats st;
    nova__pg_pool_stats(e.pool, &st);
    ck_assert_uint_gt(st.waiting, 150);
    ck_assert(run_until(&e, &l.done, 200, 20000));
    ck_assert_int_eq(l.ok, 200);
    nova__pg_pool_stats(e.pool, &st);
    ck_assert_uint_le(st.max_open, 10);
    ck_assert_uint_ge(st.max_open, 2);
    ck_assert_int_le(l.max_backends, 10);
    ck_assert_uint_eq(st.waiting, 0);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_msg(nova__pg_pool_ready(e.pool), "pool not ready");
    /* the burst is over: extra connections go, pool_min stay */
    ck_assert_uint_eq(st.open, 10);
    nova__pg_pool_set_idle_timeout(e.pool, 100);
    int never = 0;
    run_until(&e, &never, 1, 400);
    nova__pg_pool_stats(e.pool, &st);
    ck_assert_uint_eq(st.open, 2);
    struct rec r = query1(&e, "SELECT 'after reap'", 0, NULL);
    ck_assert_int_eq(r.status, 0);
    env_close(&e);
}
END_TEST

/* ---- server restart ----------------------------------------------------- */

struct restart {
    struct env *e;
    int inflight_done, down_done, after_done;
    int inflight_status[4], down_status[3], after_status[10];
    struct rec inflight[4], down[3], after[10];
    int phase;
};

static void on_phase_timer(uv_timer_t *t)
{
    struct restart *r = t->data;
    struct env *e = r->e;
    if (r->phase == 0) {
        /* 4 statements are running: take the server away under them. */
        ck_assert_int_eq(pg_server_stop(&server), 0);
        r->phase = 1;
        uv_timer_start(t, on_phase_timer, 300, 0);
    } else if (r->phase == 1) {
        for (int i = 0; i < 3; i++) {
            rec_init(&r->down[i], e, &r->down_done);
            ck_assert_int_eq(e->pg->query(e->host, "SELECT 1", 0, NULL, on_rec, &r->down[i]), 0);
        }
        r->phase = 2;
        uv_timer_start(t, on_phase_timer, 800, 0);
    } else if (r->phase == 2) {
        ck_assert_int_eq(pg_server_resume(&server), 0);
        r->phase = 3;
    }
}

START_TEST(test_server_restart)
{
    struct env e;
    env_init(&e, 2, 4, 0);
    struct restart *r = calloc(1, sizeof *r);
    r->e = &e;
    for (int i = 0; i < 4; i++) {
        rec_init(&r->inflight[i], &e, &r->inflight_done);
        ck_assert_int_eq(
            e.pg->query(e.host, "SELECT pg_sleep(30)", 0, NULL, on_rec, &r->inflight[i]), 0);
    }
    uv_timer_t phase;
    uv_timer_init(&e.loop, &phase);
    phase.data = r;
    ck_assert(run_until_in_use(&e, 4));
    uv_timer_start(&phase, on_phase_timer, 100, 0);

    ck_assert_msg(run_until(&e, &r->inflight_done, 4, 15000), "in-flight queries hung");
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(nova_pg_error_retryable(r->inflight[i].status),
                      "in-flight status %d (%s) not retryable", r->inflight[i].status,
                      r->inflight[i].message);
        ck_assert_int_eq(r->inflight[i].status, -ECONNRESET);
    }
    ck_assert_msg(run_until(&e, &r->down_done, 3, 15000), "queries while down hung");
    for (int i = 0; i < 3; i++)
        ck_assert_msg(r->down[i].status == 0 || nova_pg_error_retryable(r->down[i].status),
                      "status while down: %d %s", r->down[i].status, r->down[i].message);
    int three = 3;
    ck_assert(run_until(&e, &r->phase, three, 15000));

    /* Back up: once the pool reconnected, every query succeeds. */
    int ready = 0;
    uv_update_time(&e.loop);
    uint64_t deadline = uv_now(&e.loop) + 10000;
    while (!nova__pg_pool_ready(e.pool) && uv_now(&e.loop) < deadline)
        uv_run(&e.loop, UV_RUN_ONCE);
    ready = nova__pg_pool_ready(e.pool);
    ck_assert_msg(ready, "pool did not reconnect: %s", nova__pg_pool_last_error(e.pool));
    for (int i = 0; i < 10; i++) {
        rec_init(&r->after[i], &e, &r->after_done);
        ck_assert_int_eq(e.pg->query(e.host, "SELECT 42", 0, NULL, on_rec, &r->after[i]), 0);
    }
    ck_assert(run_until(&e, &r->after_done, 10, 10000));
    for (int i = 0; i < 10; i++) {
        ck_assert_msg(r->after[i].status == 0, "after restart: %s", r->after[i].message);
        ck_assert_str_eq(r->after[i].value, "42");
    }
    uv_close((uv_handle_t *)&phase, NULL);
    env_close(&e);
    free(r);
}
END_TEST

/* ---- timeouts and errors ------------------------------------------------ */

START_TEST(test_statement_timeout)
{
    struct env e;
    env_init(&e, 1, 2, 200);
    uint64_t t0 = uv_hrtime();
    struct rec r = query1(&e, "SELECT pg_sleep(5)", 0, NULL);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_int_eq(r.status, -ETIMEDOUT);
    ck_assert(nova_pg_error_retryable(r.status));
    ck_assert_str_eq(r.sqlstate, "57014");
    ck_assert_msg(strncmp(r.message, "57014: ", 7) == 0, "message: %s", r.message);
    ck_assert_uint_lt(ms, 2000 * slow);
    /* The connection (or its replacement) still works. */
    r = query1(&e, "SELECT 'still fine'", 0, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.value, "still fine");
    env_close(&e);
}
END_TEST

START_TEST(test_sql_errors)
{
    struct env e;
    env_init(&e, 1, 2, 0);
    const char *k[1] = {"dup-key"};
    struct rec r = query1(&e, "INSERT INTO items (k) VALUES ($1)", 1, k);
    ck_assert_int_eq(r.status, 0);
    r = query1(&e, "INSERT INTO items (k) VALUES ($1)", 1, k);
    ck_assert_int_eq(r.status, -EINVAL);
    ck_assert(!nova_pg_error_retryable(r.status));
    ck_assert_str_eq(r.sqlstate, "23505");
    ck_assert_msg(strncmp(r.message, "23505: duplicate key", 20) == 0, "message: %s", r.message);
    ck_assert_ptr_null(strchr(r.message, '\n'));
    r = query1(&e, "SELEC 1", 0, NULL);
    ck_assert_int_eq(r.status, -EINVAL);
    ck_assert_str_eq(r.sqlstate, "42601");
    r = query1(&e, "", 0, NULL);
    ck_assert_int_eq(r.status, -EINVAL);
    /* Argument errors return at once and never call back. */
    ck_assert_int_eq(e.pg->query(e.host, NULL, 0, NULL, on_rec, NULL), -EINVAL);
    ck_assert_int_eq(e.pg->query(e.host, "SELECT $1", 1, NULL, on_rec, NULL), -EINVAL);
    ck_assert_int_eq(e.pg->query(e.host, "SELECT 1", -1, NULL, on_rec, NULL), -EINVAL);
    env_close(&e);
}
END_TEST

START_TEST(test_bad_dsn_one_line)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct nova__pg_pool *p = NULL;
    FILE *f = log_capture();
    struct nova__postgres_config cfg =
        make_cfg("postgresql://u:hunter2secret@127.0.0.1:notaport/db", 0, 2, 0);
    ck_assert_int_eq(nova__pg_pool_new(&loop, &cfg, &p), -EINVAL);
    ck_assert_ptr_null(p);
    cfg = make_cfg("host=127.0.0.1 hunter3secret", 0, 2, 0);
    ck_assert_int_eq(nova__pg_pool_new(&loop, &cfg, &p), -EINVAL);
    char *out = log_read(f);
    ck_assert_msg(strstr(out, "hunter2secret") == NULL && strstr(out, "hunter3secret") == NULL,
                  "password leaked: %s", out);
    ck_assert_msg(strstr(out, "invalid dsn") != NULL, "log: %s", out);
    /* exactly two lines, one per failure */
    int lines = 0;
    for (char *s = out; *s != '\0'; s++)
        lines += *s == '\n';
    ck_assert_int_eq(lines, 2);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_wrong_password_one_line)
{
    char dsn[512];
    snprintf(dsn, sizeof dsn, "postgresql://postgres:wrong-Pa55word@127.0.0.1:%d/postgres",
             server.port);
    struct env e;
    struct nova__postgres_config cfg = make_cfg(dsn, 0, 2, 0);
    FILE *f = log_capture();
    env_init_cfg(&e, &cfg);
    struct rec r = query1(&e, "SELECT 1", 0, NULL);
    char *out = log_read(f);
    ck_assert_int_eq(r.status, -ECONNREFUSED);
    ck_assert(nova_pg_error_retryable(r.status));
    ck_assert_msg(strstr(r.message, "password authentication failed") != NULL, "msg: %s",
                  r.message);
    ck_assert_ptr_null(strchr(r.message, '\n'));
    ck_assert_ptr_null(strstr(r.message, "wrong-Pa55word"));
    ck_assert_ptr_null(strstr(out, "wrong-Pa55word"));
    ck_assert_msg(strstr(out, "password authentication failed") != NULL, "log: %s", out);
    ck_assert_str_eq(nova__pg_pool_last_error(e.pool), r.message + strlen("08001: "));
    ck_assert(!nova__pg_pool_ready(e.pool));
    env_close(&e);
}
END_TEST

/* ---- transactions ------------------------------------------------------- */

struct tx {
    struct env *e;
    int steps;
    int status[4];
    nova_pg_lease *lease;
    char k[32];
    bool commit;
};

static void on_tx_end(void *arg, int status, const nova_pg_result *res)
{
    struct tx *t = arg;
    (void)res;
    t->status[2] = status;
    t->steps++;
}

static void on_tx_insert(void *arg, int status, const nova_pg_result *res)
{
    struct tx *t = arg;
    t->status[1] = status;
    ck_assert_int_eq(t->e->pg->affected_rows(res), status == 0 ? 1 : 0);
    int rc = t->commit ? t->e->pg->commit(t->e->host, t->lease, on_tx_end, t)
                       : t->e->pg->rollback(t->e->host, t->lease, on_tx_end, t);
    ck_assert_int_eq(rc, 0);
    t->steps++;
}

static void on_tx_begin(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct tx *t = arg;
    (void)res;
    t->status[0] = status;
    t->lease = lease;
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_nonnull(lease);
    const char *p[1] = {t->k};
    ck_assert_int_eq(t->e->pg->lease_query(t->e->host, lease, "INSERT INTO items (k) VALUES ($1)",
                                           1, p, on_tx_insert, t),
                     0);
    /* one statement at a time per lease */
    ck_assert_int_eq(t->e->pg->lease_query(t->e->host, lease, "SELECT 1", 0, NULL, on_tx_insert, t),
                     -EBUSY);
    t->steps++;
}

static const char *count_of(struct env *e, const char *k)
{
    static char buf[128];
    const char *p[1] = {k};
    struct rec r = query1(e, "SELECT count(*) FROM items WHERE k = $1", 1, p);
    ck_assert_int_eq(r.status, 0);
    snprintf(buf, sizeof buf, "%s", r.value);
    return buf;
}

START_TEST(test_transaction_commit_rollback)
{
    struct env e;
    env_init(&e, 1, 3, 0);
    struct tx t = {.e = &e, .commit = true};
    snprintf(t.k, sizeof t.k, "tx-commit");
    ck_assert_int_eq(e.pg->begin(e.host, on_tx_begin, &t), 0);
    ck_assert(run_until(&e, &t.steps, 3, 10000));
    ck_assert_int_eq(t.status[0], 0);
    ck_assert_int_eq(t.status[1], 0);
    ck_assert_int_eq(t.status[2], 0);
    ck_assert_str_eq(count_of(&e, "tx-commit"), "1");

    struct tx u = {.e = &e, .commit = false};
    snprintf(u.k, sizeof u.k, "tx-rollback");
    ck_assert_int_eq(e.pg->begin(e.host, on_tx_begin, &u), 0);
    ck_assert(run_until(&e, &u.steps, 3, 10000));
    ck_assert_int_eq(u.status[2], 0);
    ck_assert_str_eq(count_of(&e, "tx-rollback"), "0");

    /* A failed statement aborts the transaction: COMMIT reports it. */
    struct tx v = {.e = &e, .commit = true};
    snprintf(v.k, sizeof v.k, "tx-commit"); /* duplicate key */
    ck_assert_int_eq(e.pg->begin(e.host, on_tx_begin, &v), 0);
    ck_assert(run_until(&e, &v.steps, 3, 10000));
    ck_assert_int_eq(v.status[1], -EINVAL);
    ck_assert_int_eq(v.status[2], -EINVAL);

    struct nova__pg_pool_stats st;
    nova__pg_pool_stats(e.pool, &st);
    ck_assert_uint_eq(st.in_use, 0);
    env_close(&e);
}
END_TEST

static void on_leak_begin(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct tx *t = arg;
    (void)res;
    ck_assert_int_eq(status, 0);
    t->lease = lease;
    const char *p[1] = {t->k};
    ck_assert_int_eq(t->e->pg->lease_query(t->e->host, lease, "INSERT INTO items (k) VALUES ($1)",
                                           1, p, on_tx_end, t),
                     0);
}

START_TEST(test_lease_leak_rolled_back)
{
    struct env e;
    env_init(&e, 1, 2, 0);
    struct tx t = {.e = &e};
    snprintf(t.k, sizeof t.k, "tx-leaked");
    ck_assert_int_eq(e.pg->begin(e.host, on_leak_begin, &t), 0);
    ck_assert(run_until(&e, &t.steps, 1, 10000));
    ck_assert_int_eq(t.status[2], 0);
    /* The plugin "shuts down" without commit or rollback. */
    FILE *f = log_capture();
    ck_assert_uint_eq(nova__pg_pool_release_owner(e.pool, e.host, false), 1);
    char *out = log_read(f);
    ck_assert_msg(strstr(out, "leaked") != NULL && strstr(out, "pgtest") != NULL, "log: %s", out);
    ck_assert_str_eq(count_of(&e, "tx-leaked"), "0");
    struct nova__pg_pool_stats st;
    nova__pg_pool_stats(e.pool, &st);
    ck_assert_uint_eq(st.in_use, 0);
    env_close(&e);
}
END_TEST

/* ---- connections killed under a lease or while idle --------------------- */

struct killed {
    struct env *e;
    int steps;
    nova_pg_lease *lease;
    char pid[16];
    int status;
};

static void on_killed_pid(void *arg, int status, const nova_pg_result *res)
{
    struct killed *k = arg;
    ck_assert_int_eq(status, 0);
    snprintf(k->pid, sizeof k->pid, "%s", k->e->pg->get_text(res, 0, 0));
    k->steps++;
}

static void on_killed_begin(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct killed *k = arg;
    (void)res;
    ck_assert_int_eq(status, 0);
    k->lease = lease;
    ck_assert_int_eq(k->e->pg->lease_query(k->e->host, lease, "SELECT pg_backend_pid()", 0, NULL,
                                           on_killed_pid, k),
                     0);
}

static void on_killed_status(void *arg, int status, const nova_pg_result *res)
{
    struct killed *k = arg;
    (void)res;
    k->status = status;
    k->steps++;
}

static void kill_backend(const char *pid)
{
    char sql[128], out[16];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s)", pid);
    ck_assert_int_eq(pg_server_query_value(&server, NULL, sql, out, sizeof out), 0);
    ck_assert_str_eq(out, "t");
}

START_TEST(test_lease_connection_killed)
{
    struct env e;
    env_init(&e, 1, 2, 0);

    /* rollback on a lease whose connection died: counts as rolled back */
    struct killed k = {.e = &e};
    ck_assert_int_eq(e.pg->begin(e.host, on_killed_begin, &k), 0);
    ck_assert(run_until(&e, &k.steps, 1, 10000));
    kill_backend(k.pid);
    int never = 0;
    run_until(&e, &never, 1, 200); /* let the pool see EOF */
    ck_assert_int_eq(e.pg->lease_query(e.host, k.lease, "SELECT 1", 0, NULL, on_killed_status, &k),
                     -ECONNRESET);
    k.status = 1;
    ck_assert_int_eq(e.pg->rollback(e.host, k.lease, on_killed_status, &k), 0);
    ck_assert_int_eq(k.steps, 1); /* not called back from inside the call */
    ck_assert(run_until(&e, &k.steps, 2, 10000));
    ck_assert_int_eq(k.status, 0);

    /* commit on such a lease: the outcome is reported as lost, retryable */
    struct killed c = {.e = &e};
    ck_assert_int_eq(e.pg->begin(e.host, on_killed_begin, &c), 0);
    ck_assert(run_until(&e, &c.steps, 1, 10000));
    kill_backend(c.pid);
    run_until(&e, &never, 1, 200);
    c.status = 1;
    ck_assert_int_eq(e.pg->commit(e.host, c.lease, on_killed_status, &c), 0);
    ck_assert(run_until(&e, &c.steps, 2, 10000));
    ck_assert_int_eq(c.status, -ECONNRESET);
    ck_assert(nova_pg_error_retryable(c.status));

    /* an idle connection killed behind the pool's back is replaced */
    struct rec r = query1(&e, "SELECT pg_backend_pid()", 0, NULL);
    ck_assert_int_eq(r.status, 0);
    kill_backend(r.value);
    usleep(100000);
    for (int i = 0; i < 3; i++) {
        r = query1(&e, "SELECT 'alive'", 0, NULL);
        ck_assert_msg(r.status == 0, "query after idle kill: %s", r.message);
    }
    struct nova__pg_pool_stats st;
    nova__pg_pool_stats(e.pool, &st);
    ck_assert_uint_eq(st.in_use, 0);
    env_close(&e);
}
END_TEST

START_TEST(test_release_owner_cancels_queued)
{
    struct env e;
    env_init(&e, 1, 1, 0);
    int done = 0;
    struct rec busy, queued[3];
    rec_init(&busy, &e, &done);
    ck_assert_int_eq(e.pg->query(e.host, "SELECT pg_sleep(0.3)", 0, NULL, on_rec, &busy), 0);
    ck_assert(run_until_in_use(&e, 1));
    for (int i = 0; i < 3; i++) {
        rec_init(&queued[i], &e, &done);
        ck_assert_int_eq(e.pg->query(e.host, "SELECT 1", 0, NULL, on_rec, &queued[i]), 0);
    }
    ck_assert_uint_eq(nova__pg_pool_release_owner(e.pool, e.host, true), 0);
    ck_assert_int_eq(done, 3); /* the queued ones, before the call returned */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(queued[i].status, -ECANCELED);
    ck_assert(run_until(&e, &done, 4, 5000));
    ck_assert_int_eq(busy.status, 0); /* the running one finished normally */
    env_close(&e);
}
END_TEST

static void on_never(void *arg, int status, const nova_pg_result *res)
{
    (void)arg;
    (void)status;
    (void)res;
    ck_abort_msg("a detached callback ran after its plugin was released");
}

static void on_hold_begin(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct tx *t = arg;
    (void)res;
    ck_assert_int_eq(status, 0);
    t->lease = lease;
    t->steps++;
}

START_TEST(test_release_owner_with_statements_running)
{
    struct env e;
    env_init(&e, 2, 3, 0);
    /* lease A runs a statement, lease B is committing, a one-shot runs */
    struct tx a = {.e = &e}, b = {.e = &e};
    ck_assert_int_eq(e.pg->begin(e.host, on_hold_begin, &a), 0);
    ck_assert_int_eq(e.pg->begin(e.host, on_hold_begin, &b), 0);
    ck_assert(run_until(&e, &a.steps, 1, 10000));
    ck_assert(run_until(&e, &b.steps, 1, 10000));
    ck_assert_int_eq(
        e.pg->lease_query(e.host, a.lease, "SELECT pg_sleep(0.3)", 0, NULL, on_never, NULL), 0);
    ck_assert_int_eq(e.pg->commit(e.host, b.lease, on_never, NULL), 0);
    ck_assert_int_eq(e.pg->query(e.host, "SELECT pg_sleep(0.2)", 0, NULL, on_never, NULL), 0);
    FILE *f = log_capture();
    ck_assert_uint_eq(nova__pg_pool_release_owner(e.pool, e.host, false), 1);
    char *out = log_read(f);
    ck_assert_ptr_nonnull(strstr(out, "leaked"));
    /* everything settles; the pool keeps serving other owners */
    int never = 0;
    run_until(&e, &never, 1, 600);
    struct rec r = query1(&e, "SELECT 7", 0, NULL);
    ck_assert_int_eq(r.status, 0);
    struct nova__pg_pool_stats st;
    nova__pg_pool_stats(e.pool, &st);
    ck_assert_uint_eq(st.in_use, 0);
    env_close(&e);
}
END_TEST

/* ---- through PgBouncer in transaction mode ------------------------------ */

struct btx {
    struct env *e;
    int *done;
    int i;
    char val[16];
    nova_pg_lease *lease;
    bool ok;
};

static void on_btx_commit(void *arg, int status, const nova_pg_result *res)
{
    struct btx *t = arg;
    (void)res;
    t->ok = t->ok && status == 0;
    (*t->done)++;
}

static void on_btx_read(void *arg, int status, const nova_pg_result *res)
{
    struct btx *t = arg;
    const char *v = t->e->pg->get_text(res, 0, 0);
    t->ok = status == 0 && v != NULL && strcmp(v, t->val) == 0;
    ck_assert_int_eq(t->e->pg->commit(t->e->host, t->lease, on_btx_commit, t), 0);
}

static void on_btx_set(void *arg, int status, const nova_pg_result *res)
{
    struct btx *t = arg;
    (void)res;
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(t->e->pg->lease_query(t->e->host, t->lease,
                                           "SELECT current_setting('nova.k'), pg_sleep(0.01)", 0,
                                           NULL, on_btx_read, t),
                     0);
}

static void on_btx_begin(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct btx *t = arg;
    ck_assert_msg(status == 0, "begin: %s", t->e->pg->error_message(res));
    t->lease = lease;
    const char *p[1] = {t->val};
    ck_assert_int_eq(t->e->pg->lease_query(t->e->host, lease,
                                           "SELECT set_config('nova.k', $1, true)", 1, p,
                                           on_btx_set, t),
                     0);
}

struct pids {
    int done, ok;
    char seen[16][16];
    int nseen;
    const struct nova_pg_api *pg;
};

static void on_pid(void *arg, int status, const nova_pg_result *res)
{
    struct pids *p = arg;
    const char *v = p->pg->get_text(res, 0, 0);
    if (status == 0 && v != NULL) {
        p->ok++;
        bool known = false;
        for (int i = 0; i < p->nseen; i++)
            known = known || strcmp(p->seen[i], v) == 0;
        if (!known && p->nseen < 16)
            snprintf(p->seen[p->nseen++], sizeof p->seen[0], "%s", v);
    }
    p->done++;
}

START_TEST(test_through_pgbouncer_transaction_mode)
{
    struct pg_bouncer b;
    ck_assert_msg(pg_bouncer_start(&b, &server, "transaction", 3) == 0, "pgbouncer did not start");
    char dsn[256];
    snprintf(dsn, sizeof dsn, "postgresql://postgres@127.0.0.1:%d/postgres", b.port);
    /* statement_timeout travels as a startup option, which PgBouncer drops */
    struct nova__postgres_config cfg = make_cfg(dsn, 2, 10, 5000);
    struct env e;
    env_init_cfg(&e, &cfg);

    struct pids p = {.pg = e.pg};
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(
            e.pg->query(e.host, "SELECT pg_backend_pid(), pg_sleep(0.005)", 0, NULL, on_pid, &p),
            0);
    int done = 0;
    static struct btx t[20];
    for (int i = 0; i < 20; i++) {
        t[i] = (struct btx){.e = &e, .done = &done, .i = i};
        snprintf(t[i].val, sizeof t[i].val, "v%d", i);
        ck_assert_int_eq(e.pg->begin(e.host, on_btx_begin, &t[i]), 0);
    }
    ck_assert(run_until(&e, &p.done, 60, 20000));
    ck_assert(run_until(&e, &done, 20, 20000));
    ck_assert_int_eq(p.ok, 60);
    /* 10 client connections shared 3 server connections */
    ck_assert_int_le(p.nseen, 3);
    for (int i = 0; i < 20; i++)
        ck_assert_msg(t[i].ok, "transaction %d saw another's state", i);
    /* nothing a lease did stays behind for the next user */
    struct rec r = query1(&e, "SELECT current_setting('nova.k', true)", 0, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert(r.value_null || r.value[0] == '\0');
    env_close(&e);
    pg_bouncer_stop(&b);
}
END_TEST

/* ---- an unresponsive server --------------------------------------------- */

static pid_t postmaster_pid(void)
{
    char path[256], line[32] = "";
    snprintf(path, sizeof path, "%s/postmaster.pid", server.datadir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    return (pid_t)atoi(line);
}

START_TEST(test_unresponsive_server)
{
    char dsn[512];
    pg_server_dsn(&server, NULL, "application_name=pooltest", dsn, sizeof dsn);
    struct nova__postgres_config cfg = make_cfg(dsn, 1, 1, 200);
    cfg.connect_timeout_ms = 500 * (int64_t)slow;
    struct env e;
    env_init_cfg(&e, &cfg);

    /* A frozen backend cannot even run its statement_timeout: the client
     * guard (timeout + max(connect timeout, 1 s)) gives up on it. */
    struct rec r = query1(&e, "SELECT pg_backend_pid()", 0, NULL);
    ck_assert_int_eq(r.status, 0);
    pid_t backend = (pid_t)atoi(r.value);
    ck_assert_int_eq(kill(backend, SIGSTOP), 0);
    uint64_t t0 = uv_hrtime();
    r = query1(&e, "SELECT 1", 0, NULL);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    kill(backend, SIGCONT);
    ck_assert_int_eq(r.status, -ETIMEDOUT);
    ck_assert_msg(strstr(r.message, "no answer") != NULL, "message: %s", r.message);
    ck_assert_uint_ge(ms, 1000);
    ck_assert_uint_lt(ms, 3000 * slow);
    r = query1(&e, "SELECT 'recovered'", 0, NULL);
    ck_assert_msg(r.status == 0, "after the guard: %s", r.message);

    /* A frozen postmaster accepts TCP but never answers the startup: the
     * connect timeout fails the attempt and the waiting query with it. */
    pid_t pm = postmaster_pid();
    r = query1(&e, "SELECT pg_backend_pid()", 0, NULL);
    ck_assert_int_eq(r.status, 0);
    kill_backend(r.value); /* force a reconnect */
    ck_assert_int_eq(kill(pm, SIGSTOP), 0);
    t0 = uv_hrtime();
    r = query1(&e, "SELECT 1", 0, NULL);
    ms = (uv_hrtime() - t0) / 1000000;
    kill(pm, SIGCONT);
    ck_assert_msg(r.status == -ECONNREFUSED || r.status == -ECONNRESET, "status %d: %s", r.status,
                  r.message);
    ck_assert(nova_pg_error_retryable(r.status));
    ck_assert_uint_lt(ms, 3000 * slow);
    env_close(&e);
}
END_TEST

/* ---- values ------------------------------------------------------------- */

struct vals {
    int done;
    const struct nova_pg_api *pg;
};

static void on_vals(void *arg, int status, const nova_pg_result *res)
{
    struct vals *v = arg;
    const struct nova_pg_api *pg = v->pg;
    int64_t i = 12345;
    const char *s = NULL;
    bool b = false;
    ck_assert_msg(status == 0, "status %d: %s", status, pg->error_message(res));
    ck_assert_int_eq(pg->ntuples(res), 1);
    ck_assert_int_eq(pg->nfields(res), 13);
#define COL(name) pg->field_index(res, name)
    ck_assert_int_eq(COL("missing"), -ENOENT);
    ck_assert(pg->is_null(res, 0, COL("n")));
    ck_assert_ptr_null(pg->get_text(res, 0, COL("n")));
    ck_assert_int_eq(pg->get_int64(res, 0, COL("n"), &i), -ENODATA);
    ck_assert_int_eq(i, 12345);
    ck_assert_int_eq(pg->get_int64(res, 0, COL("big"), &i), 0);
    ck_assert(i == 9007199254740993LL); /* beyond a double's exact range */
    ck_assert_int_eq(pg->get_int64(res, 0, COL("minv"), &i), 0);
    ck_assert(i == INT64_MIN);
    ck_assert_int_eq(pg->get_int64(res, 0, COL("over"), &i), -EOVERFLOW);
    ck_assert_int_eq(pg->get_int64(res, 0, COL("frac"), &i), -EINVAL);
    ck_assert_int_eq(pg->get_int64(res, 0, COL("two"), &i), 0);
    ck_assert(i == 2);
    ck_assert_int_eq(pg->get_int64(res, 0, COL("ptext"), &i), -EINVAL); /* text column */
    ck_assert_int_eq(pg->get_numeric(res, 0, COL("amt"), &s), 0);
    ck_assert_str_eq(s, "1234567890123.1234567");
    ck_assert_int_eq(pg->get_numeric(res, 0, COL("over"), &s), 0);
    ck_assert_str_eq(s, "9223372036854775808");
    ck_assert_int_eq(pg->get_numeric(res, 0, COL("f"), &s), -EINVAL); /* floats refused */
    ck_assert_int_eq(pg->get_numeric(res, 0, COL("nan"), &s), -EINVAL);
    ck_assert_int_eq(pg->get_numeric(res, 0, COL("n"), &s), -ENODATA);
    ck_assert_int_eq(pg->get_bool(res, 0, COL("b"), &b), 0);
    ck_assert(b);
    ck_assert_int_eq(pg->get_bool(res, 0, COL("pnull"), &b), 0);
    ck_assert(b); /* a NULL pointer param arrived as SQL NULL */
    ck_assert_int_eq(pg->get_bool(res, 0, COL("big"), &b), -EINVAL);
    ck_assert_str_eq(pg->get_text(res, 0, COL("ptext")), "it's \"quoted\"");
    ck_assert_int_eq(pg->get_int64(res, 1, 0, &i), -ERANGE);
    ck_assert_int_eq(pg->get_int64(res, 0, 99, &i), -ERANGE);
    ck_assert_int_eq(pg->get_int64(res, -1, 0, &i), -ERANGE);
    ck_assert(pg->is_null(res, 5, 5));
    ck_assert_ptr_null(pg->get_text(res, 0, -1));
    ck_assert_str_eq(pg->sqlstate(res), "");
    ck_assert_str_eq(pg->error_message(res), "");
#undef COL
    v->done++;
}

START_TEST(test_null_and_numeric)
{
    struct env e;
    env_init(&e, 1, 1, 0);
    struct vals v = {.pg = e.pg};
    const char *params[2] = {NULL, "it's \"quoted\""};
    ck_assert_int_eq(e.pg->query(e.host,
                                 "SELECT NULL::int AS n, 9007199254740993::bigint AS big, "
                                 "(-9223372036854775808)::bigint AS minv, "
                                 "9223372036854775808::numeric AS over, 1.5::numeric AS frac, "
                                 "2.000::numeric AS two, "
                                 "'1234567890123.1234567'::numeric(20,7) AS amt, "
                                 "1.5::float8 AS f, 'NaN'::numeric AS nan, true AS b, "
                                 "$1::text IS NULL AS pnull, $2::text AS ptext, 0 AS pad",
                                 2, params, on_vals, &v),
                     0);
    ck_assert(run_until(&e, &v.done, 1, 10000));
    env_close(&e);
}
END_TEST

/* ---- column check ------------------------------------------------------- */

struct colres {
    int done;
    int status;
    char missing[256];
    bool missing_null;
};

static void on_cols(void *arg, int status, const char *missing)
{
    struct colres *c = arg;
    c->status = status;
    c->missing_null = missing == NULL;
    snprintf(c->missing, sizeof c->missing, "%s", missing != NULL ? missing : "");
    c->done++;
}

START_TEST(test_check_columns)
{
    struct env e;
    env_init(&e, 1, 2, 0);
    const char *ok[] = {"items.id", "items.k", "items.n", NULL};
    const char *bad[] = {"items.id", "items.password_hash", "nosuch.col", NULL};
    const char *malformed[] = {"items", NULL};
    const char *injected[] = {"items.k;drop", NULL};
    struct colres a = {0}, b = {0};
    ck_assert_int_eq(nova__pg_check_columns(e.pool, ok, on_cols, &a), 0);
    ck_assert(run_until(&e, &a.done, 1, 10000));
    ck_assert_int_eq(a.status, 0);
    ck_assert(a.missing_null);
    ck_assert_int_eq(nova__pg_check_columns(e.pool, bad, on_cols, &b), 0);
    ck_assert(run_until(&e, &b.done, 1, 10000));
    ck_assert_int_eq(b.status, -ENOENT);
    ck_assert_str_eq(b.missing, "items.password_hash,nosuch.col");
    ck_assert_int_eq(nova__pg_check_columns(e.pool, malformed, on_cols, &b), -EINVAL);
    ck_assert_int_eq(nova__pg_check_columns(e.pool, injected, on_cols, &b), -EINVAL);
    env_close(&e);
}
END_TEST

/* ---- shutdown ----------------------------------------------------------- */

struct closing_tx {
    struct env *e;
    nova_pg_lease *lease;
    int stmt_status, rollback_status, rollbacks;
};

static void on_closing_rollback(void *arg, int status, const nova_pg_result *res)
{
    struct closing_tx *t = arg;
    (void)res;
    t->rollback_status = status;
    t->rollbacks++;
}

static void on_closing_stmt(void *arg, int status, const nova_pg_result *res)
{
    struct closing_tx *t = arg;
    (void)res;
    t->stmt_status = status;
    /* what a plugin does on any error: give the lease back */
    ck_assert_int_eq(t->e->pg->rollback(t->e->host, t->lease, on_closing_rollback, t), 0);
}

static void on_closing_begin(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct closing_tx *t = arg;
    (void)res;
    ck_assert_int_eq(status, 0);
    t->lease = lease;
    ck_assert_int_eq(t->e->pg->lease_query(t->e->host, lease, "SELECT pg_sleep(20)", 0, NULL,
                                           on_closing_stmt, t),
                     0);
}

START_TEST(test_close_cancels_everything)
{
    struct env e;
    env_init(&e, 2, 2, 0);
    struct closing_tx tx = {.e = &e, .stmt_status = 1, .rollback_status = 1};
    ck_assert_int_eq(e.pg->begin(e.host, on_closing_begin, &tx), 0);
    int done = 0;
    struct rec r[4];
    for (int i = 0; i < 4; i++) {
        rec_init(&r[i], &e, &done);
        ck_assert_int_eq(e.pg->query(e.host, "SELECT pg_sleep(20)", 0, NULL, on_rec, &r[i]), 0);
    }
    /* the lease's statement and the first query run, three wait */
    ck_assert(run_until_in_use(&e, 2));
    int never = 0;
    run_until(&e, &never, 1, 50);
    int closed = 0;
    nova__pg_pool_close(e.pool, on_closed, &closed);
    ck_assert_int_eq(done, 4); /* all called back before close returns */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(r[i].status, -ECANCELED);
    ck_assert_int_eq(tx.stmt_status, -ECANCELED);
    ck_assert_int_eq(tx.rollbacks, 1);
    ck_assert_int_eq(tx.rollback_status, 0);
    ck_assert(run_until(&e, &closed, 1, 5000));
    uv_close((uv_handle_t *)&e.tick, NULL);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);
}
END_TEST

START_TEST(test_metrics_and_slow_log)
{
    char dsn[512];
    pg_server_dsn(&server, NULL, "application_name=pooltest", dsn, sizeof dsn);
    struct nova__postgres_config cfg = make_cfg(dsn, 1, 3, 0);
    cfg.slow_query_ms = 50;
    struct env e;
    env_init_cfg(&e, &cfg);
    const char *secret[1] = {"do-not-log-me"};
    FILE *f = log_capture();
    struct rec r = query1(&e, "SELECT pg_sleep(0.1), $1::text", 1, secret);
    char *out = log_read(f);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(out, "slow query") != NULL && strstr(out, "pg_sleep") != NULL, "log: %s",
                  out);
    ck_assert_ptr_null(strstr(out, "do-not-log-me"));
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(nova__metrics_render(&text, &len), 0);
    ck_assert_ptr_nonnull(strstr(text, "nova_worker_pg_pool_size "));
    ck_assert_ptr_nonnull(strstr(text, "nova_worker_pg_pool_in_use 0"));
    ck_assert_ptr_nonnull(strstr(text, "nova_worker_pg_pool_waiting 0"));
    ck_assert_ptr_nonnull(strstr(text, "nova_worker_pg_query_duration_seconds_count"));
    free(text);
    env_close(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pg_pool");
    TCase *tc = tcase_create("pool");
    tcase_add_unchecked_fixture(tc, server_up, server_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_200_concurrent_queries_pool_max_10);
    tcase_add_test(tc, test_statement_timeout);
    tcase_add_test(tc, test_sql_errors);
    tcase_add_test(tc, test_bad_dsn_one_line);
    tcase_add_test(tc, test_wrong_password_one_line);
    tcase_add_test(tc, test_transaction_commit_rollback);
    tcase_add_test(tc, test_lease_leak_rolled_back);
    tcase_add_test(tc, test_lease_connection_killed);
    tcase_add_test(tc, test_release_owner_cancels_queued);
    tcase_add_test(tc, test_release_owner_with_statements_running);
    tcase_add_test(tc, test_null_and_numeric);
    tcase_add_test(tc, test_check_columns);
    tcase_add_test(tc, test_close_cancels_everything);
    tcase_add_test(tc, test_metrics_and_slow_log);
    tcase_add_test(tc, test_unresponsive_server);
    tcase_add_test(tc, test_through_pgbouncer_transaction_mode);
    /* last: it stops and restarts the shared server */
    tcase_add_test(tc, test_server_restart);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    slow = RUNNING_ON_VALGRIND ? 10 : 1;
    return tu_run(suite());
}
