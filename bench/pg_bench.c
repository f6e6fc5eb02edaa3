/*
 * pg_bench - throughput of the runtime's PostgreSQL pool.
 *
 * Keeps --inflight point SELECTs outstanding on a pool of --pool
 * connections for --seconds and prints queries per second. The statement
 * is pgbench's select-only one, so bench/pg_bench.sh can compare it with
 * pgbench on the same server.
 *
 *   pg_bench --dsn DSN [--pool 10] [--inflight 64] [--seconds 10] [--rows 500000]
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/host.h"
#include "pg/pg_pool.h"

struct bench {
    uv_loop_t *loop;
    const struct nova_host *host;
    uint64_t deadline_ns;
    long rows;
    unsigned seed;
    long done, failed;
    int outstanding;
};

static void issue(struct bench *b);

static void on_result(void *arg, int status, const nova_pg_result *res)
{
    struct bench *b = arg;
    (void)res;
    b->outstanding--;
    if (status == 0)
        b->done++;
    else if (b->failed++ == 0)
        fprintf(stderr, "pg_bench: query failed: %s\n", b->host->pg->error_message(res));
    if (uv_hrtime() < b->deadline_ns)
        issue(b);
}

static void issue(struct bench *b)
{
    char aid[24];
    snprintf(aid, sizeof aid, "%ld", 1 + (long)(rand_r(&b->seed) % b->rows));
    const char *params[1] = {aid};
    if (b->host->pg->query(b->host, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 1,
                           params, on_result, b) == 0)
        b->outstanding++;
}

static void on_closed(void *arg)
{
    (void)arg;
}

int main(int argc, char **argv)
{
    const char *dsn = NULL;
    long pool = 10, inflight = 64, seconds = 10, rows = 500000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dsn") == 0)
            dsn = argv[i + 1];
        else if (strcmp(argv[i], "--pool") == 0)
            pool = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--rows") == 0)
            rows = atol(argv[i + 1]);
        else {
            fprintf(stderr, "pg_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (dsn == NULL || pool < 1 || inflight < 1 || seconds < 1 || rows < 1) {
        fprintf(stderr, "usage: pg_bench --dsn DSN [--pool N] [--inflight N] [--seconds N] "
                        "[--rows N]\n");
        return 2;
    }

    uv_loop_t *loop = uv_default_loop();
    struct nova__postgres_config cfg = {
        .dsn = (char *)dsn, .pool_min = pool, .pool_max = pool, .connect_timeout_ms = 5000};
    struct nova__pg_pool *p;
    if (nova__pg_pool_new(loop, &cfg, &p) != 0)
        return 1;
    struct nova__services svc = {.loop = loop, .pg = p};
    struct nova__host_ctx ctx = {.services = &svc};
    ctx.host.struct_size = sizeof ctx.host;
    ctx.host.plugin_name = "pg_bench";
    ctx.host.pg = nova__host_pg_api();

    /* Warm up: let every connection open before the clock starts. */
    struct nova__pg_pool_stats st;
    do {
        uv_run(loop, UV_RUN_ONCE);
        nova__pg_pool_stats(p, &st);
    } while (st.open < (unsigned)pool && (st.connecting > 0 || st.open > 0));
    if (st.open < (unsigned)pool) {
        fprintf(stderr, "pg_bench: cannot connect: %s\n", nova__pg_pool_last_error(p));
        return 1;
    }

    struct bench b = {.loop = loop, .host = &ctx.host, .rows = rows, .seed = 42};
    uint64_t t0 = uv_hrtime();
    b.deadline_ns = t0 + (uint64_t)seconds * 1000000000ull;
    for (long i = 0; i < inflight; i++)
        issue(&b);
    while (b.outstanding > 0)
        uv_run(loop, UV_RUN_ONCE);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    printf("pool=%ld inflight=%ld queries=%ld failed=%ld seconds=%.2f qps=%.0f\n", pool, inflight,
           b.done, b.failed, secs, (double)b.done / secs);
    nova__pg_pool_close(p, on_closed, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return b.failed == 0 ? 0 : 1;
}
