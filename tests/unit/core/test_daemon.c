/*
 * The daemon as a real child process: systemd notifications through a
 * real NOTIFY_SOCKET, the HTTP endpoint, signals, reload and `check`.
 */
#include "config.h"
#include "unit/testutil.h"
#include "lib/pg_server.h"
#include "lib/redis_server.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

struct child {
    pid_t pid;
    const char *dir;
    char plugin_dir[PATH_MAX];
    struct nova_test_redis redis;
    char conf[PATH_MAX];
    char log[PATH_MAX];
    int notify_fd;
    int port;
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void write_conf(struct child *c, const char *plugins_section, const char *worker_extra)
{
    char text[8192];
    snprintf(text, sizeof text,
             "[worker]\nplugin_dir = %s\nshutdown_timeout = 5s\n%s"
             "[redis]\nurl = %s\n[http]\nlisten = 127.0.0.1:%d\n%s",
             c->plugin_dir, worker_extra ? worker_extra : "", c->redis.url, c->port,
             plugins_section);
    tu_write(c->dir, "nova.conf", text, c->conf, sizeof c->conf);
}

/* The plugins the tests use, linked into one directory. */
static void link_plugins(struct child *c)
{
    snprintf(c->plugin_dir, sizeof c->plugin_dir, "%s/plugins", c->dir);
    char cmd[PATH_MAX * 4];
    snprintf(
        cmd, sizeof cmd,
        "mkdir -p %s && ln -s %s/plugins/skeleton/.libs/skeleton.so %s/plugins/echo/.libs/echo.so "
        "%s/tests/fixtures/.libs/init_fails.so %s/tests/fixtures/.libs/needs_columns.so %s/",
        c->plugin_dir, tu_builddir(), tu_builddir(), tu_builddir(), tu_builddir(), c->plugin_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void start(struct child *c, const char *plugins_section, const char *extra)
{
    c->dir = strdup(tu_tempdir());
    c->port = free_port();
    link_plugins(c);
    ck_assert_msg(nova_test_redis_start(&c->redis) == 0, "cannot start redis-server");
    write_conf(c, plugins_section, extra);
    snprintf(c->log, sizeof c->log, "%s/stderr.log", c->dir);

    char sock[PATH_MAX];
    snprintf(sock, sizeof sock, "%s/notify.sock", c->dir);
    c->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    ck_assert_int_eq(bind(c->notify_fd, (struct sockaddr *)&a, sizeof a), 0);

    c->pid = fork();
    ck_assert_int_ge(c->pid, 0);
    if (c->pid == 0) {
        int fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        setenv("NOTIFY_SOCKET", sock, 1);
        setenv("WATCHDOG_USEC", "200000", 1);
        unsetenv("WATCHDOG_PID");
        char bin[PATH_MAX];
        snprintf(bin, sizeof bin, "%s/nova-worker", tu_builddir());
        execl(bin, bin, "run", "-c", c->conf, (char *)NULL);
        _exit(127);
    }
}

/* Waits for a notification datagram containing want; returns 1 if seen. */
static int wait_notify(struct child *c, const char *want, int timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = timeout_ms -
                    ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = c->notify_fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char buf[512];
        ssize_t n = recv(c->notify_fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strstr(buf, want) != NULL)
            return 1;
    }
}

/* The kernel queues only a few datagrams per socket (net.unix.max_dgram_qlen)
 * and the daemon drops what does not fit, as it must; so empty the queue
 * before an action whose notification the test waits for. */
static void drain_notify(struct child *c)
{
    char buf[512];
    while (recv(c->notify_fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
}

static int log_contains(struct child *c, const char *text)
{
    FILE *f = fopen(c->log, "r");
    if (f == NULL)
        return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static int wait_log(struct child *c, const char *text, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (log_contains(c, text))
            return 1;
        usleep(20000);
    }
    return 0;
}

static int stop(struct child *c, int sig)
{
    kill(c->pid, sig);
    int status = 0;
    ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
    close(c->notify_fd);
    nova_test_redis_stop(&c->redis);
    tu_rmtree(c->dir);
    free((void *)c->dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct body {
    char data[65536];
    size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t len = size * n;
    if (b->len + len >= sizeof b->data)
        len = sizeof b->data - b->len - 1;
    memcpy(b->data + b->len, ptr, len);
    b->len += len;
    b->data[b->len] = '\0';
    return size * n;
}

static long http_get(int port, const char *path, struct body *b)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    memset(b, 0, sizeof *b);
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    long code = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(curl);
    return code;
}

static const char skeleton_on[] = "[plugin skeleton]\nenabled = yes\ninterval = 50ms\n";

START_TEST(lifecycle_notify_http_and_sigterm)
{
    struct child c;
    start(&c, skeleton_on, NULL);
    ck_assert_msg(wait_notify(&c, "READY=1", 10000), "no READY=1");
    ck_assert_msg(wait_notify(&c, "WATCHDOG=1", 2000), "no WATCHDOG=1");

    struct body b;
    ck_assert_int_eq(http_get(c.port, "/healthz", &b), 200);
    ck_assert_int_eq(http_get(c.port, "/readyz", &b), 200);
    ck_assert_int_eq(http_get(c.port, "/nope", &b), 404);
    ck_assert_int_eq(http_get(c.port, "/metrics", &b), 200);
    ck_assert_ptr_nonnull(
        strstr(b.data, "nova_worker_build_info{version=\"" PACKAGE_VERSION "\"} 1"));
    ck_assert_ptr_nonnull(strstr(b.data, "nova_worker_plugin_info{plugin=\"skeleton\""));
    ck_assert_ptr_nonnull(strstr(b.data, "nova_worker_ready 1"));
    /* The plugin's timer runs and its counter reaches /metrics. */
    usleep(200000);
    http_get(c.port, "/metrics", &b);
    ck_assert_ptr_nonnull(strstr(b.data, "nova_skeleton_ticks_total "));
    ck_assert_ptr_null(strstr(b.data, "nova_skeleton_ticks_total 0\n"));

    ck_assert_msg(strcmp(PROMTOOL, "no") != 0, "promtool not found: apt-get install prometheus");
    char path[PATH_MAX], cmd[PATH_MAX * 2];
    tu_write(c.dir, "scrape.txt", b.data, path, sizeof path);
    snprintf(cmd, sizeof cmd, "%s check metrics < %s > /dev/null 2>&1", PROMTOOL, path);
    ck_assert_msg(system(cmd) == 0, "promtool rejected /metrics:\n%s", b.data);

    drain_notify(&c);
    kill(c.pid, SIGTERM);
    ck_assert_msg(wait_notify(&c, "STOPPING=1", 5000), "no STOPPING=1");
    ck_assert_int_eq(stop(&c, 0), 0);
}
END_TEST

START_TEST(sighup_applies_changes_and_keeps_old_config_when_invalid)
{
    struct child c;
    start(&c, skeleton_on, NULL);
    ck_assert(wait_notify(&c, "READY=1", 10000));
    ck_assert(!log_contains(&c, "\"level\":\"debug\""));

    /* Log level up, skeleton disabled. */
    write_conf(&c, "[plugin skeleton]\nenabled = no\n", "log_level = debug\n");
    drain_notify(&c);
    kill(c.pid, SIGHUP);
    ck_assert_msg(wait_notify(&c, "RELOADING=1", 5000), "no RELOADING=1");
    ck_assert_msg(wait_notify(&c, "READY=1", 5000), "no READY=1 after reload");
    ck_assert_msg(wait_log(&c, "skeleton stopped after", 2000), "skeleton was not stopped");
    ck_assert_msg(wait_log(&c, "reload: done, 0 plugin(s) running", 2000), "no reload summary");

    /* Re-enable it with new settings. */
    write_conf(&c, "[plugin skeleton]\nenabled = yes\ngreeting = bonjour\ninterval = 20ms\n",
               "log_level = debug\n");
    kill(c.pid, SIGHUP);
    ck_assert_msg(wait_log(&c, "bonjour (tick", 3000), "re-enabled plugin did not run");

    /* An invalid file is reported and the running config is kept. */
    tu_write(c.dir, "nova.conf", "[worker]\nlog_level = debug\nbogus_key = 1\n", NULL, 0);
    kill(c.pid, SIGHUP);
    ck_assert_msg(wait_log(&c, "keeping the running configuration", 3000), "no reload error");
    ck_assert_msg(wait_log(&c, "nova.conf:3: unknown key 'bogus_key' in [worker]", 100),
                  "reload error does not name file and line");
    struct body b;
    ck_assert_int_eq(http_get(c.port, "/readyz", &b), 200);
    ck_assert_ptr_nonnull(strstr(b.data, "ready"));
    ck_assert_int_eq(stop(&c, SIGINT), 0);
}
END_TEST

START_TEST(failing_plugin_does_not_stop_the_others)
{
    struct child c;
    start(&c,
          "[plugin init_fails]\nenabled = yes\n[plugin skeleton]\nenabled = yes\n"
          "interval = 20ms\n",
          NULL);
    ck_assert(wait_notify(&c, "READY=1", 10000));
    ck_assert(wait_log(&c, "plugin init_fails: init failed", 2000));
    ck_assert(wait_log(&c, "1 plugin(s) failed to start; the others keep running", 2000));
    ck_assert(wait_log(&c, "skeleton started", 2000));
    ck_assert_int_eq(stop(&c, SIGTERM), 0);
}
END_TEST

static int run_cmd(const char *args, char *out, size_t outlen)
{
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd, "%s/nova-worker %s 2>&1", tu_builddir(), args);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int queue_cmd(struct child *c, const char *args, char *out, size_t outlen)
{
    char full[PATH_MAX * 2];
    snprintf(full, sizeof full, "queue -c %s %s", c->conf, args);
    return run_cmd(full, out, outlen);
}

static int wait_stats(struct child *c, const char *want, int timeout_ms)
{
    char out[1024];
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        queue_cmd(c, "stats echo", out, sizeof out);
        if (strstr(out, want) != NULL)
            return 1;
        usleep(50000);
    }
    return 0;
}

static const char echo_on[] = "[plugin echo]\nenabled = yes\nqueue = echo\nconcurrency = 2\n";

START_TEST(jobs_flow_and_sigterm_waits_for_in_flight_jobs)
{
    struct child c;
    start(&c, echo_on, NULL);
    ck_assert(wait_notify(&c, "READY=1", 10000));
    char out[1024];
    ck_assert_int_eq(queue_cmd(&c, "add echo quick '{\"return\":{\"ok\":1}}'", out, sizeof out), 0);
    ck_assert_int_eq(queue_cmd(&c, "add echo broken '{\"fatal\":\"bad input\"}'", out, sizeof out),
                     0);
    ck_assert_msg(wait_stats(&c, "completed=1 failed=1", 5000), "jobs were not processed");
    ck_assert_int_eq(queue_cmd(&c, "failed echo", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "bad input") != NULL, "%s", out);

    /* A slow job in flight when SIGTERM arrives still completes. */
    ck_assert_int_eq(queue_cmd(&c, "add echo slow '{\"sleep_ms\":1500}'", out, sizeof out), 0);
    ck_assert_msg(wait_stats(&c, "active=1", 3000), "slow job never became active");
    drain_notify(&c);
    kill(c.pid, SIGTERM);
    ck_assert(wait_notify(&c, "STOPPING=1", 3000));
    int status;
    ck_assert_int_eq(waitpid(c.pid, &status, 0), c.pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(queue_cmd(&c, "stats echo", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "active=0") != NULL && strstr(out, "completed=2") != NULL, "%s", out);
    ck_assert(log_contains(&c, "in-flight jobs drained"));
    c.pid = getpid(); /* already reaped: stop() only cleans up */
    close(c.notify_fd);
    nova_test_redis_stop(&c.redis);
    tu_rmtree(c.dir);
    free((void *)c.dir);
}
END_TEST

START_TEST(sighup_changes_concurrency_live)
{
    struct child c;
    start(&c, "[plugin echo]\nenabled = yes\nqueue = echo\nconcurrency = 1\n", NULL);
    ck_assert(wait_notify(&c, "READY=1", 10000));
    char out[1024];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(queue_cmd(&c, "add echo slow '{\"sleep_ms\":1500}'", out, sizeof out), 0);
    ck_assert(wait_stats(&c, "active=1 ", 3000));
    usleep(300000);
    ck_assert_int_eq(queue_cmd(&c, "stats echo", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "active=1 ") != NULL, "concurrency 1 exceeded: %s", out);

    write_conf(&c, "[plugin echo]\nenabled = yes\nqueue = echo\nconcurrency = 4\n", NULL);
    kill(c.pid, SIGHUP);
    ck_assert_msg(wait_stats(&c, "active=4 ", 3000), "concurrency did not rise to 4");
    /* Nothing was lost or duplicated by the change. */
    ck_assert_msg(
        wait_stats(&c, "waiting=0 paused=0 active=0 prioritized=0 delayed=0 completed=8 ", 15000),
        "not every job completed exactly once");
    ck_assert_int_eq(stop(&c, SIGTERM), 0);
}
END_TEST

START_TEST(readyz_follows_redis)
{
    struct child c;
    start(&c, echo_on, NULL);
    ck_assert(wait_notify(&c, "READY=1", 10000));
    struct body b;
    ck_assert_int_eq(http_get(c.port, "/readyz", &b), 200);
    ck_assert_int_eq(nova_test_redis_halt(&c.redis), 0);
    int code = 0;
    for (int i = 0; i < 100 && code != 503; i++) {
        usleep(50000);
        code = (int)http_get(c.port, "/readyz", &b);
    }
    ck_assert_int_eq(code, 503);
    ck_assert_msg(strstr(b.data, "redis unreachable") != NULL, "%s", b.data);
    ck_assert_int_eq(http_get(c.port, "/healthz", &b), 200); /* alive all the same */
    ck_assert_int_eq(nova_test_redis_resume(&c.redis), 0);
    for (int i = 0; i < 200 && code != 200; i++) {
        usleep(50000);
        code = (int)http_get(c.port, "/readyz", &b);
    }
    ck_assert_int_eq(code, 200);
    ck_assert_int_eq(stop(&c, SIGTERM), 0);
}
END_TEST

START_TEST(postgres_column_check_and_readiness)
{
    struct pg_server pg;
    ck_assert_int_eq(pg_server_start(&pg), 0);
    ck_assert_int_eq(pg_server_exec(&pg, "postgres", "CREATE TABLE nova_fixture (present int)"), 0);
    char dsn[512], extra[700];
    pg_server_dsn(&pg, "postgres", NULL, dsn, sizeof dsn);
    snprintf(extra, sizeof extra, "[postgres]\ndsn = %s\n[plugin needs_columns]\nenabled = yes\n",
             dsn);
    struct child c;
    start(&c, extra, NULL);
    ck_assert(wait_notify(&c, "READY=1", 15000));
    ck_assert_msg(wait_log(&c, "plugin needs_columns: missing column(s) nova_fixture.absent", 5000),
                  "the missing column was not named");
    ck_assert(!log_contains(&c, "nova_fixture.present,"));
    ck_assert(!log_contains(&c, pg.password)); /* the DSN's password never reaches the log */

    /* The column appears; a reload starts the plugin. */
    ck_assert_int_eq(pg_server_exec(&pg, "postgres", "ALTER TABLE nova_fixture ADD absent int"), 0);
    char section[800];
    snprintf(section, sizeof section,
             "[postgres]\ndsn = %s\n[plugin needs_columns]\nenabled = yes\ncount = 4\n", dsn);
    write_conf(&c, section, NULL);
    drain_notify(&c);
    kill(c.pid, SIGHUP);
    ck_assert_msg(wait_log(&c, "plugin needs_columns 0.0.1 started", 5000), "plugin not started");

    /* PostgreSQL down: not ready; back: ready again. */
    struct body b;
    ck_assert_int_eq(pg_server_stop(&pg), 0);
    int code = 0;
    for (int i = 0; i < 200 && code != 503; i++) {
        usleep(50000);
        code = (int)http_get(c.port, "/readyz", &b);
    }
    ck_assert_int_eq(code, 503);
    ck_assert_msg(strstr(b.data, "postgres unreachable") != NULL, "%s", b.data);
    ck_assert_int_eq(pg_server_resume(&pg), 0);
    for (int i = 0; i < 300 && code != 200; i++) {
        usleep(50000);
        code = (int)http_get(c.port, "/readyz", &b);
    }
    ck_assert_int_eq(code, 200);
    ck_assert_int_eq(stop(&c, SIGTERM), 0);
    pg_server_destroy(&pg);
}
END_TEST

START_TEST(check_command)
{
    const char *dir = tu_tempdir();
    char path[PATH_MAX], text[PATH_MAX * 2], args[PATH_MAX * 2], out[4096];
    snprintf(text, sizeof text,
             "[worker]\nplugin_dir = %s/plugins/skeleton/.libs\n[plugin skeleton]\n"
             "enabled = yes\ninterval = 5s\n",
             tu_builddir());
    tu_write(dir, "ok.conf", text, path, sizeof path);
    snprintf(args, sizeof args, "check -c %s", path);
    ck_assert_int_eq(run_cmd(args, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "plugin skeleton 1.0.0: ok"));
    ck_assert_ptr_nonnull(strstr(out, "configuration ok (1 plugin(s) enabled)"));

    /* A bad plugin value is reported with file and line. */
    strcat(text, "interval = forever\n");
    tu_write(dir, "bad.conf", text, path, sizeof path);
    snprintf(args, sizeof args, "check -c %s", path);
    ck_assert_int_eq(run_cmd(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "bad.conf:6: interval: 'forever' is not a duration") != NULL, "%s",
                  out);

    /* A plugin that does not exist is named with the section's location. */
    snprintf(text, sizeof text,
             "[worker]\nplugin_dir = %s/plugins/skeleton/.libs\n[plugin ghost]\nenabled = yes\n",
             tu_builddir());
    tu_write(dir, "ghost.conf", text, path, sizeof path);
    snprintf(args, sizeof args, "check -c %s", path);
    ck_assert_int_eq(run_cmd(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "ghost.conf:3: plugin ghost:") != NULL, "%s", out);

    ck_assert_int_eq(run_cmd("--version", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "nova-worker " PACKAGE_VERSION));
    ck_assert_int_eq(run_cmd("check --help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "Usage: nova-worker check"));
    ck_assert_int_eq(run_cmd("frobnicate", out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown command 'frobnicate'"));
    tu_rmtree(dir);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lifecycle_notify_http_and_sigterm);
    tcase_add_test(tc, sighup_applies_changes_and_keeps_old_config_when_invalid);
    tcase_add_test(tc, failing_plugin_does_not_stop_the_others);
    tcase_add_test(tc, check_command);
    tcase_add_test(tc, jobs_flow_and_sigterm_waits_for_in_flight_jobs);
    tcase_add_test(tc, sighup_changes_concurrency_live);
    tcase_add_test(tc, readyz_follows_redis);
    tcase_add_test(tc, postgres_column_check_and_readiness);
    suite_add_tcase(s, tc);
    int rc = tu_run(s);
    curl_global_cleanup();
    return rc;
}
