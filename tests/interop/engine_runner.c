/*
 * engine_runner - drives the queue engine outside the daemon, for the
 * interop tests (tests/interop/interop.js) and quick throughput numbers.
 *
 *   engine_runner work URL PLUGIN.so QUEUE CONCURRENCY [--name W] [--count N]
 *                 [--lock-ms MS] [--stalled-ms MS]
 *       Loads the plugin (the echo plugin), gives it a host table wired to
 *       the engine, prints "READY" once connected, and runs until SIGTERM
 *       or SIGINT (then drains for 5 s), or until N outcomes were reported
 *       (then prints "DONE <n> <seconds> <jobs/s>").
 *   engine_runner enqueue URL QUEUE NAME JSON [--job-id ID] [--delay MS]
 *                 [--attempts N] [--backoff TYPE MS] [--priority P]
 *       Adds one job through the host's enqueue() and prints its id.
 *   engine_runner seed URL QUEUE N JSON
 *       Adds N jobs named "n" (pipelined) for throughput runs.
 */
#include "config.h"

#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <hiredis/hiredis.h>

#include "core/host.h"
#include "queue/queue.h"
#include "queue/queue_host.h"
#include "queue/queue_scripts.h"
#include "queue/redis_conn.h"

static uv_loop_t loop;
static struct nova__queue_engine *engine;
static struct nova__services services;
static struct nova__host_ctx ctx;
static long want_count, outcomes;
static uint64_t first_ns, last_ns;
static int exit_code;

static uv_signal_t sigterm, sigint;
static uv_timer_t ready_timer;
static bool working;

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void drained(void *arg)
{
    (void)arg;
    nova__queue_engine_free(engine);
    engine = NULL;
    services.queues = NULL;
    if (working) {
        close_if_open((uv_handle_t *)&sigterm);
        close_if_open((uv_handle_t *)&sigint);
        close_if_open((uv_handle_t *)&ready_timer);
    }
}

static void stop_now(void)
{
    static bool stopping;
    if (stopping)
        return;
    stopping = true;
    nova__queue_engine_drain(engine, 5000, drained, NULL);
}

static void count_outcome(void)
{
    uint64_t now = uv_hrtime();
    if (!first_ns)
        first_ns = now;
    last_ns = now;
    if (want_count > 0 && ++outcomes == want_count) {
        double secs = (double)(last_ns - first_ns) / 1e9;
        printf("DONE %ld %.3f %.0f\n", outcomes, secs, secs > 0 ? outcomes / secs : 0.0);
        fflush(stdout);
        stop_now();
    }
}

static void r_done(nova_job *job, const char *result)
{
    nova__qh_job_done(job, result);
    count_outcome();
}

static void r_retry(nova_job *job, const char *reason, int64_t delay)
{
    nova__qh_job_retry(job, reason, delay);
    count_outcome();
}

static void r_fail(nova_job *job, const char *reason)
{
    nova__qh_job_fail(job, reason);
    count_outcome();
}

/* The daemon's host table for the plugin, with the outcome functions
 * wrapped to count them. */
static void host_init(void)
{
    services.loop = &loop;
    services.queues = engine;
    nova__host_init(&ctx, &services, "echo", NULL);
    ctx.host.job_done = r_done;
    ctx.host.job_retry = r_retry;
    ctx.host.job_fail = r_fail;
}

static int make_engine(const char *url, const char *name, int64_t lock_ms, int64_t stalled_ms)
{
    struct nova__redis_config cfg = {0};
    cfg.url = (char *)url;
    cfg.prefix = (char *)"bull";
    cfg.connect_timeout_ms = 3000;
    cfg.lock_duration_ms = lock_ms;
    cfg.stalled_interval_ms = stalled_ms;
    cfg.max_stalled_count = 1;
    cfg.drain_delay_ms = 5000;
    if (uv_loop_init(&loop) != 0)
        return -1;
    if (nova__queue_engine_new(&loop, &cfg, name, &engine) < 0)
        return -1;
    host_init();
    return 0;
}

/* Fills a plugin config from its table: defaults, then key=value overrides. */
static void *fill_config(const struct nova_plugin *p, const char *const *kv)
{
    char *cfg = calloc(1, p->config_size ? p->config_size : 1);
    for (const struct nova_config_entry *e = p->config; e && e->key; e++) {
        const char *v = e->default_value;
        for (const char *const *o = kv; o && *o; o += 2)
            if (strcmp(o[0], e->key) == 0)
                v = o[1];
        if (!v)
            continue;
        if (e->type == NOVA_CONFIG_STRING || e->type == NOVA_CONFIG_SECRET)
            *(char **)(void *)(cfg + e->offset) = strdup(v);
        else if (e->type == NOVA_CONFIG_INT || e->type == NOVA_CONFIG_DURATION)
            *(int64_t *)(void *)(cfg + e->offset) = strtoll(v, NULL, 10);
        else if (e->type == NOVA_CONFIG_BOOL)
            *(bool *)(void *)(cfg + e->offset) = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
    }
    return cfg;
}

static void free_config(const struct nova_plugin *p, void *cfg)
{
    for (const struct nova_config_entry *e = p->config; e && e->key; e++)
        if (e->type == NOVA_CONFIG_STRING || e->type == NOVA_CONFIG_SECRET)
            free(*(char **)(void *)((char *)cfg + e->offset));
    free(cfg);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    (void)s;
    stop_now();
}

static void on_ready_check(uv_timer_t *t)
{
    if (nova__queue_engine_connected(engine)) {
        printf("READY\n");
        fflush(stdout);
        uv_timer_stop(t);
    }
}

static int cmd_work(int argc, char **argv)
{
    const char *url, *so, *queue, *conc, *name = NULL, *names = "";
    int64_t lock_ms = 30000, stalled_ms = 30000;
    void *dl, *cfg, *state = NULL;
    nova_plugin_entry_fn entry;
    const struct nova_plugin *p;
    if (argc < 6) {
        fprintf(stderr, "usage: engine_runner work URL PLUGIN.so QUEUE CONCURRENCY ...\n");
        return 2;
    }
    url = argv[2];
    so = argv[3];
    queue = argv[4];
    conc = argv[5];
    for (int i = 6; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0)
            want_count = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--lock-ms") == 0)
            lock_ms = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--stalled-ms") == 0)
            stalled_ms = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--names") == 0)
            names = argv[i + 1];
    }
    dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "engine_runner: %s\n", dlerror());
        return 1;
    }
    entry = (nova_plugin_entry_fn)(uintptr_t)dlsym(dl, NOVA_PLUGIN_ENTRY_SYMBOL);
    if (!entry || !(p = entry())) {
        fprintf(stderr, "engine_runner: %s has no plugin entry\n", so);
        return 1;
    }
    if (make_engine(url, name, lock_ms, stalled_ms) < 0)
        return 1;
    {
        const char *kv[] = {"queue", queue, "concurrency", conc, "names", names, NULL};
        cfg = fill_config(p, kv);
    }
    if (p->init(&ctx.host, cfg, &state) < 0) {
        fprintf(stderr, "engine_runner: plugin init failed\n");
        return 1;
    }
    nova__queue_engine_start(engine);
    uv_signal_init(&loop, &sigterm);
    uv_signal_init(&loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_timer_init(&loop, &ready_timer);
    uv_timer_start(&ready_timer, on_ready_check, 10, 10);
    working = true;
    uv_run(&loop, UV_RUN_DEFAULT);
    /* The daemon's order: release, shutdown(), after_shutdown(). */
    nova__host_release(&ctx);
    p->shutdown(state);
    nova__host_after_shutdown(&ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    free_config(p, cfg);
    uv_loop_close(&loop);
    dlclose(dl);
    return exit_code;
}

static void on_enqueued(void *arg, int status, const char *id)
{
    (void)arg;
    if (status < 0) {
        fprintf(stderr, "engine_runner: enqueue failed (%d)\n", status);
        exit_code = 1;
    } else {
        printf("%s\n", id);
        fflush(stdout);
    }
    nova__queue_engine_drain(engine, 0, drained, NULL);
}

struct enq {
    const char *queue, *name, *data;
    struct nova_job_options o;
};

static void on_enqueue_ready(uv_timer_t *t)
{
    struct enq *q = t->data;
    if (!nova__queue_engine_connected(engine))
        return;
    uv_close((uv_handle_t *)t, NULL);
    if (ctx.host.enqueue(&ctx.host, q->queue, q->name, q->data, &q->o, on_enqueued, NULL) < 0) {
        fprintf(stderr, "engine_runner: enqueue refused\n");
        exit_code = 1;
        nova__queue_engine_drain(engine, 0, drained, NULL);
    }
}

static int cmd_enqueue(int argc, char **argv)
{
    struct enq q = {0};
    if (argc < 6) {
        fprintf(stderr, "usage: engine_runner enqueue URL QUEUE NAME JSON [options]\n");
        return 2;
    }
    q.queue = argv[3];
    q.name = argv[4];
    q.data = argv[5];
    q.o.struct_size = sizeof(q.o);
    q.o.remove_on_complete = q.o.remove_on_fail = -1;
    for (int i = 6; i < argc; i++) {
        if (strcmp(argv[i], "--job-id") == 0 && i + 1 < argc)
            q.o.job_id = argv[++i];
        else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc)
            q.o.delay_ms = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--attempts") == 0 && i + 1 < argc)
            q.o.attempts = atoi(argv[++i]);
        else if (strcmp(argv[i], "--priority") == 0 && i + 1 < argc)
            q.o.priority = atoi(argv[++i]);
        else if (strcmp(argv[i], "--backoff") == 0 && i + 2 < argc) {
            q.o.backoff_type = argv[++i];
            q.o.backoff_delay_ms = strtoll(argv[++i], NULL, 10);
        }
    }
    if (make_engine(argv[2], NULL, 30000, 30000) < 0)
        return 1;
    {
        uv_timer_t t;
        uv_timer_init(&loop, &t);
        t.data = &q;
        uv_timer_start(&t, on_enqueue_ready, 5, 5);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    return exit_code;
}

static int cmd_seed(int argc, char **argv)
{
    struct nova__redis_target t;
    char err[256], base[512], meta[600], now[24];
    redisContext *c;
    long n;
    if (argc < 6 || nova__redis_url_parse(argv[2], &t, err, sizeof(err)) < 0) {
        fprintf(stderr, "usage: engine_runner seed URL QUEUE N JSON\n");
        return 2;
    }
    c = t.unix_path ? redisConnectUnix(t.unix_path) : redisConnect(t.host, t.port);
    nova__redis_target_free(&t);
    if (!c || c->err)
        return 1;
    n = strtol(argv[4], NULL, 10);
    nova__queue_key_base("bull", argv[3], base, sizeof(base));
    snprintf(meta, sizeof(meta), "%smeta", base);
    for (long i = 0; i < n; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(now, sizeof(now), "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        const char *av[] = {"EVAL",  nova__lua_add,      "1", meta, base, now, "n",
                            argv[5], "{\"attempts\":0}", "",  "0",  "0",  "0"};
        redisAppendCommandArgv(c, 13, av, NULL);
    }
    for (long i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK) {
            redisFree(c);
            return 1;
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return 0;
}

int main(int argc, char **argv)
{
    /* A killed test driver must not leave a worker behind: SIGTERM drains
     * and exits. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (argc >= 2 && strcmp(argv[1], "work") == 0)
        return cmd_work(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "enqueue") == 0)
        return cmd_enqueue(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "seed") == 0)
        return cmd_seed(argc, argv);
    fprintf(stderr, "usage: engine_runner work|enqueue|seed ...\n");
    return 2;
}
