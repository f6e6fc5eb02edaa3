#define _GNU_SOURCE
/*
 * The operations endpoint on a private loop run by a thread, driven by
 * real TCP clients (blocking sockets) from the test's thread; and its
 * request parser on its own.
 *
 * The endpoint is not thread-safe, so everything the test does to it or to
 * the metrics registry once the loop runs goes through on_loop().
 */
#include "config.h"
#include "httpd/httpd.h"
#include "httpd/httpd_parse.h"
#include "common/metrics.h"
#include "unit/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/socket.h>
#include <time.h>

/* ---- the server on its thread -------------------------------------------- */

struct server {
    uv_loop_t loop;
    uv_async_t async;
    pthread_t thread;
    struct nova__httpd *h;
    int port;
    void (*fn)(struct server *s, void *arg);
    void *arg;
    sem_t done;
};

static struct server srv;

static void on_async(uv_async_t *a)
{
    struct server *s = a->data;
    s->fn(s, s->arg);
    sem_post(&s->done);
}

static void *loop_thread(void *arg)
{
    struct server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Runs fn on the loop's thread; waits for it unless wait is false (then
 * on_loop_wait() collects it). */
static void on_loop_post(void (*fn)(struct server *, void *), void *arg)
{
    srv.fn = fn;
    srv.arg = arg;
    uv_async_send(&srv.async);
}

static void on_loop_wait(void)
{
    while (sem_wait(&srv.done) != 0 && errno == EINTR)
        ;
}

static void on_loop(void (*fn)(struct server *, void *), void *arg)
{
    on_loop_post(fn, arg);
    on_loop_wait();
}

static void server_start(const struct nova__httpd_limits *limits)
{
    memset(&srv, 0, sizeof srv);
    ck_assert_int_eq(uv_loop_init(&srv.loop), 0);
    /* The async handle keeps the loop running: the endpoint never does. */
    ck_assert_int_eq(uv_async_init(&srv.loop, &srv.async, on_async), 0);
    srv.async.data = &srv;
    sem_init(&srv.done, 0, 0);
    char err[256] = "";
    int rc = nova__httpd_start(&srv.loop, "127.0.0.1:0", limits, &srv.h, err, sizeof err);
    ck_assert_msg(rc == 0, "start: %s", err);
    ck_assert_ptr_nonnull(srv.h);
    srv.port = nova__httpd_port(srv.h);
    ck_assert_int_gt(srv.port, 0);
    ck_assert_int_eq(pthread_create(&srv.thread, NULL, loop_thread, &srv), 0);
}

static void do_stop(struct server *s, void *arg)
{
    (void)arg;
    nova__httpd_stop(s->h);
    uv_close((uv_handle_t *)&s->async, NULL);
}

/* Stops the endpoint with whatever connections are still open; the loop
 * must then end with every handle closed and everything freed. */
static void server_stop(void)
{
    on_loop(do_stop, NULL);
    pthread_join(srv.thread, NULL);
    ck_assert_int_eq(uv_loop_close(&srv.loop), 0);
    sem_destroy(&srv.done);
    nova__metrics_reset();
}

struct ready_arg {
    bool ready;
    const char *reason;
};

static void do_set_ready(struct server *s, void *arg)
{
    struct ready_arg *r = arg;
    nova__httpd_set_ready(s->h, r->ready, r->reason);
}

static void set_ready(bool ready, const char *reason)
{
    struct ready_arg r = {ready, reason};
    on_loop(do_set_ready, &r);
}

/* Blocks the loop, as a wedged job handler would. */
static void do_block(struct server *s, void *arg)
{
    (void)s;
    usleep((useconds_t)(intptr_t)arg * 1000);
}

static void do_lag(struct server *s, void *arg)
{
    *(double *)arg = nova__httpd_loop_lag(s->h);
}

/* ---- clients ------------------------------------------------------------- */

struct client {
    int fd;
    char *buf; /* what was read and not yet taken by read_response */
    size_t len, cap;
};

struct response {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
};

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void client_open_rcvbuf(struct client *c, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(c->fd, 0);
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
}

static void client_open(struct client *c)
{
    client_open_rcvbuf(c, 0);
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

static void send_text(struct client *c, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
        ck_assert_msg(n > 0, "send: %s", strerror(errno));
        off += (size_t)n;
    }
}

/* Reads more into c->buf: the byte count, 0 at EOF, -1 on error/timeout. */
static ssize_t fill(struct client *c)
{
    if (c->len == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

static size_t header_value(const char *head, const char *name, char *out, size_t outlen)
{
    char key[128];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strcasestr(head, key);
    if (p == NULL)
        return 0;
    p += strlen(key);
    size_t n = strcspn(p, "\r");
    snprintf(out, outlen, "%.*s", (int)n, p);
    return n;
}

/* Reads one response; head_only when it answers a HEAD. Returns 0, or -1
 * when the connection ended (or timed out) first. */
static int read_response(struct client *c, bool head_only, struct response *r)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (c->len < 4 || (end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (fill(c) <= 0)
            return -1;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    ck_assert_uint_lt(head_len, sizeof r->head);
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    ck_assert_int_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    char v[64];
    ck_assert_msg(header_value(r->head, "Content-Length", v, sizeof v) > 0, "%s", r->head);
    size_t want = head_only ? 0 : strtoul(v, NULL, 10);
    while (c->len < head_len + want) {
        if (fill(c) <= 0)
            return -1;
    }
    r->body = malloc(want + 1);
    memcpy(r->body, c->buf + head_len, want);
    r->body[want] = '\0';
    r->body_len = want;
    memmove(c->buf, c->buf + head_len + want, c->len - head_len - want);
    c->len -= head_len + want;
    return 0;
}

static void response_free(struct response *r)
{
    free(r->body);
    r->body = NULL;
}

/* One request on a fresh connection; the status, the body into body. */
static int get(const char *request, bool head_only, struct response *r)
{
    struct client c;
    client_open(&c);
    send_text(&c, request);
    ck_assert_int_eq(read_response(&c, head_only, r), 0);
    client_close(&c);
    return r->status;
}

/* Whether the server closed the connection within ms (EOF or reset), with
 * nothing more than what is already buffered. */
static bool closed_within(struct client *c, int ms)
{
    long until = now_ms() + ms;
    for (;;) {
        long left = until - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char b[4096];
        ssize_t n = recv(c->fd, b, sizeof b, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false;
    }
}

#define GET_REQ(path) "GET " path " HTTP/1.1\r\nHost: test\r\n\r\n"

/* ---- endpoints ------------------------------------------------------------ */

START_TEST(endpoints_answer)
{
    server_start(NULL);
    struct response r;
    char v[128];

    ck_assert_int_eq(get(GET_REQ("/metrics"), false, &r), 200);
    header_value(r.head, "Content-Type", v, sizeof v);
    ck_assert_str_eq(v, "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_msg(header_value(r.head, "Date", v, sizeof v) > 0, "no Date: %s", r.head);
    ck_assert(strstr(v, " GMT") != NULL);
    header_value(r.head, "Cache-Control", v, sizeof v);
    ck_assert_str_eq(v, "no-store");
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE nova_worker_loop_lag_seconds gauge\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "process_resident_memory_bytes "));
    ck_assert_msg(strcmp(PROMTOOL, "no") != 0, "promtool not found: apt-get install prometheus");
    char path[PATH_MAX], cmd[PATH_MAX * 2];
    const char *dir = tu_tempdir();
    tu_write(dir, "scrape.txt", r.body, path, sizeof path);
    snprintf(cmd, sizeof cmd, "%s check metrics < %s > /dev/null 2>&1", PROMTOOL, path);
    ck_assert_msg(system(cmd) == 0, "promtool rejected /metrics:\n%s", r.body);
    tu_rmtree(dir);
    response_free(&r);

    ck_assert_int_eq(get(GET_REQ("/healthz"), false, &r), 200);
    ck_assert_str_eq(r.body, "ok\n");
    header_value(r.head, "Content-Type", v, sizeof v);
    ck_assert_str_eq(v, "text/plain; charset=utf-8");
    response_free(&r);
    ck_assert_int_eq(get(GET_REQ("/livez"), false, &r), 200);
    ck_assert_str_eq(r.body, "ok\n");
    response_free(&r);

    /* /readyz: "starting" until told, then whatever the daemon says. */
    ck_assert_int_eq(get(GET_REQ("/readyz"), false, &r), 503);
    ck_assert_str_eq(r.body, "starting\n");
    response_free(&r);
    set_ready(true, NULL);
    ck_assert_int_eq(get(GET_REQ("/readyz"), false, &r), 200);
    ck_assert_str_eq(r.body, "ready\n");
    response_free(&r);
    set_ready(false, "redis unreachable");
    ck_assert_int_eq(get(GET_REQ("/readyz"), false, &r), 503);
    ck_assert_str_eq(r.body, "redis unreachable\n");
    response_free(&r);
    set_ready(false, "draining");
    ck_assert_int_eq(get(GET_REQ("/readyz"), false, &r), 503);
    ck_assert_str_eq(r.body, "draining\n");
    response_free(&r);
    set_ready(false, NULL);
    ck_assert_int_eq(get(GET_REQ("/readyz"), false, &r), 503);
    ck_assert_str_eq(r.body, "not ready\n");
    response_free(&r);

    /* The query is not part of the path; the absolute form is understood. */
    ck_assert_int_eq(get(GET_REQ("/healthz?verbose=1"), false, &r), 200);
    response_free(&r);
    ck_assert_int_eq(get(GET_REQ("http://localhost:9464/livez"), false, &r), 200);
    response_free(&r);
    server_stop();
}
END_TEST

START_TEST(head_not_found_and_methods)
{
    server_start(NULL);
    struct response r, g;
    char v[128], w[128];

    /* HEAD: GET's head, no body; the next answer on the connection starts
     * right after it. */
    struct client c;
    client_open(&c);
    send_text(&c, "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(read_response(&c, true, &r), 0);
    ck_assert_int_eq(r.status, 200);
    header_value(r.head, "Content-Length", v, sizeof v);
    ck_assert_int_gt(atoi(v), 100);
    send_text(&c, GET_REQ("/livez"));
    ck_assert_int_eq(read_response(&c, false, &g), 0);
    ck_assert_int_eq(g.status, 200);
    ck_assert_str_eq(g.body, "ok\n");
    response_free(&r);
    response_free(&g);
    send_text(&c, "HEAD /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(read_response(&c, true, &r), 0);
    ck_assert_int_eq(r.status, 503);
    header_value(r.head, "Content-Length", v, sizeof v);
    ck_assert_str_eq(v, "9"); /* "starting\n" */
    response_free(&r);
    client_close(&c);

    ck_assert_int_eq(get(GET_REQ("/nope"), false, &r), 404);
    ck_assert_str_eq(r.body, "not found\n");
    response_free(&r);
    ck_assert_int_eq(get(GET_REQ("/metrics/"), false, &r), 404);
    response_free(&r);
    ck_assert_int_eq(get(GET_REQ("/METRICS"), false, &r), 404);
    response_free(&r);

    ck_assert_int_eq(
        get("POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", false, &r), 405);
    header_value(r.head, "Allow", w, sizeof w);
    ck_assert_str_eq(w, "GET, HEAD");
    response_free(&r);
    ck_assert_int_eq(get("DELETE /readyz HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 405);
    response_free(&r);
    /* Methods are case-sensitive. */
    ck_assert_int_eq(get("get /healthz HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 405);
    response_free(&r);
    ck_assert_int_eq(get("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", false, &r), 404);
    response_free(&r);

    /* A request with a body is answered and its connection closed (the
     * body is never read). */
    client_open(&c);
    send_text(&c, "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 405);
    header_value(r.head, "Connection", v, sizeof v);
    ck_assert_str_eq(v, "close");
    ck_assert(closed_within(&c, 3000));
    response_free(&r);
    client_close(&c);
    server_stop();
}
END_TEST

/* ---- connections ----------------------------------------------------------- */

START_TEST(keep_alive_pipelining_and_close)
{
    server_start(NULL);
    struct response r;
    char v[64];
    struct client c;

    /* Two requests, one after the other, on one connection. */
    client_open(&c);
    send_text(&c, GET_REQ("/livez"));
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(header_value(r.head, "Connection", v, sizeof v), 0);
    response_free(&r);
    send_text(&c, GET_REQ("/healthz"));
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    response_free(&r);

    /* Three pipelined in one write: answered in order. */
    send_text(&c, GET_REQ("/readyz") GET_REQ("/nope") GET_REQ("/livez"));
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 503);
    response_free(&r);
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 404);
    response_free(&r);
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok\n");
    response_free(&r);

    /* Connection: close is honoured, and what follows it is not answered. */
    send_text(&c, "GET /livez HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, Close\r\n\r\n" GET_REQ(
                      "/livez"));
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    header_value(r.head, "Connection", v, sizeof v);
    ck_assert_str_eq(v, "close");
    response_free(&r);
    ck_assert(closed_within(&c, 3000));
    ck_assert_uint_eq(c.len, 0);
    client_close(&c);

    /* HTTP/1.0 closes after its answer, Host or not. */
    client_open(&c);
    send_text(&c, "GET /healthz HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    header_value(r.head, "Connection", v, sizeof v);
    ck_assert_str_eq(v, "close");
    response_free(&r);
    ck_assert(closed_within(&c, 3000));
    client_close(&c);

    /* A request split across writes, even inside the CRLFs, and LF-only
     * lines, after empty lines. */
    client_open(&c);
    const char *parts[] = {"\r\nGET /li", "vez HTTP/1.1\r", "\nHo", "st: x\r\n", "\r", "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        send_text(&c, parts[i]);
        usleep(30000);
    }
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    response_free(&r);
    send_text(&c, "GET /healthz HTTP/1.1\nHost: x\n\n");
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    response_free(&r);
    client_close(&c);
    server_stop();
}
END_TEST

START_TEST(malformed_and_oversize_requests)
{
    server_start(NULL);
    struct response r;
    struct client c;
    static const struct {
        const char *request;
        int status;
    } bad[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET /livez\r\n\r\n", 400}, /* HTTP/0.9 */
        {"GET /livez HTTP/2.0\r\nHost: t\r\n\r\n", 505},
        {"GET /livez HTTP/1.1\r\n\r\n", 400},                       /* no Host */
        {"GET /livez HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400}, /* two */
        {"GET /livez HTTP/1.1\r\nHost : t\r\n\r\n", 400},           /* space before : */
        {"GET /livez HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400},
        {"GET /livez HTTP/1.1\r\nHost: t\rX: y\r\n\r\n", 400}, /* bare CR */
        {"GET  /livez HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /li vez HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         400},
        {"GET /livez HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        client_open(&c);
        send_text(&c, bad[i].request);
        ck_assert_msg(read_response(&c, false, &r) == 0, "no answer to %s", bad[i].request);
        ck_assert_msg(r.status == bad[i].status, "%s: %d", bad[i].request, r.status);
        ck_assert_ptr_nonnull(strstr(r.head, "\r\nConnection: close\r\n"));
        ck_assert(closed_within(&c, 3000));
        response_free(&r);
        client_close(&c);
    }

    /* Header fields beyond 8 KiB: 431, closed, even with the client still
     * sending. */
    size_t big = NOVA__HTTPD_HEAD_MAX + 4096;
    char *text = malloc(big + 64);
    int n = snprintf(text, big + 64, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(text + n, 'a', big - (size_t)n);
    text[big] = '\0';
    client_open(&c);
    send_text(&c, text);
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 431);
    ck_assert(closed_within(&c, 3000));
    response_free(&r);
    client_close(&c);

    /* A request line alone beyond it: 414. */
    n = snprintf(text, big + 64, "GET /");
    memset(text + n, 'a', big - (size_t)n);
    client_open(&c);
    send_text(&c, text);
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 414);
    ck_assert(closed_within(&c, 3000));
    response_free(&r);
    client_close(&c);

    /* Just under the limit is fine. */
    n = snprintf(text, big + 64, "GET /livez HTTP/1.1\r\nHost: t\r\nX-Big: ");
    size_t fill_to = NOVA__HTTPD_HEAD_MAX - 4;
    memset(text + n, 'a', fill_to - (size_t)n);
    memcpy(text + fill_to, "\r\n\r\n", 5);
    ck_assert_uint_eq(strlen(text), NOVA__HTTPD_HEAD_MAX);
    ck_assert_int_eq(get(text, false, &r), 200);
    response_free(&r);
    free(text);
    server_stop();
}
END_TEST

START_TEST(slow_and_idle_clients_time_out)
{
    struct nova__httpd_limits limits = {.timeout_ms = 400};
    server_start(&limits);
    struct response r;
    struct client c;

    /* A client trickling its head a byte at a time gains nothing: the head
     * must be complete within the timeout from its first byte. */
    client_open(&c);
    const char *req = GET_REQ("/livez");
    long start = now_ms();
    size_t i = 0;
    for (; req[i] != '\0' && now_ms() - start < 2000; i++) {
        char one[2] = {req[i], '\0'};
        if (send(c.fd, one, 1, MSG_NOSIGNAL) != 1)
            break;
        struct pollfd p = {.fd = c.fd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0)
            break;
    }
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    long took = now_ms() - start;
    ck_assert_int_eq(r.status, 408);
    ck_assert_msg(took >= 350 && took < 1500, "408 after %ld ms", took);
    ck_assert(closed_within(&c, 3000));
    response_free(&r);
    client_close(&c);

    /* An idle connection is closed without a word. */
    client_open(&c);
    start = now_ms();
    ck_assert(closed_within(&c, 3000));
    took = now_ms() - start;
    ck_assert_msg(took >= 350 && took < 1500, "closed after %ld ms", took);
    ck_assert_uint_eq(c.len, 0);
    client_close(&c);

    /* An idle keep-alive connection too, after its last answer. */
    client_open(&c);
    send_text(&c, GET_REQ("/livez"));
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    response_free(&r);
    ck_assert(closed_within(&c, 3000));
    client_close(&c);
    server_stop();
}
END_TEST

START_TEST(connection_limit)
{
    struct nova__httpd_limits limits = {.max_connections = 4};
    server_start(&limits);
    struct response r;
    struct client c[5];

    for (int i = 0; i < 4; i++) {
        client_open(&c[i]);
        send_text(&c[i], GET_REQ("/livez"));
        ck_assert_int_eq(read_response(&c[i], false, &r), 0);
        ck_assert_int_eq(r.status, 200);
        response_free(&r);
    }
    /* The fifth is accepted and closed at once. */
    client_open(&c[4]);
    ck_assert(closed_within(&c[4], 1000));
    client_close(&c[4]);
    /* The four still work. */
    send_text(&c[0], GET_REQ("/healthz"));
    ck_assert_int_eq(read_response(&c[0], false, &r), 0);
    response_free(&r);
    /* One leaves: a new one is served (once the server saw it go). */
    client_close(&c[3]);
    bool served = false;
    for (int attempt = 0; attempt < 50 && !served; attempt++) {
        client_open(&c[3]);
        send(c[3].fd, GET_REQ("/livez"), strlen(GET_REQ("/livez")), MSG_NOSIGNAL);
        served = read_response(&c[3], false, &r) == 0;
        if (served)
            response_free(&r);
        else
            usleep(20000);
        client_close(&c[3]);
    }
    ck_assert(served);
    for (int i = 0; i < 3; i++)
        client_close(&c[i]);
    server_stop();
}
END_TEST

/* ---- the loop heartbeat --------------------------------------------------- */

static double metric_in(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    ck_assert_msg(p != NULL, "no %s in:\n%s", name, text);
    return strtod(p + strlen(key), NULL);
}

START_TEST(healthz_fails_after_a_blocked_loop)
{
    struct nova__httpd_limits limits = {.heartbeat_ms = 50, .unhealthy_lag_ms = 200};
    server_start(&limits);
    struct response r;
    struct client c;

    ck_assert_int_eq(get(GET_REQ("/healthz"), false, &r), 200);
    response_free(&r);

    /* Block the loop for 600 ms; the requests sent meanwhile are answered
     * after it, and see it. */
    client_open(&c);
    on_loop_post(do_block, (void *)(intptr_t)600);
    usleep(100000);
    send_text(&c, GET_REQ("/healthz") GET_REQ("/metrics") GET_REQ("/livez"));
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(strstr(r.body, "event loop heartbeat") != NULL, "%s", r.body);
    response_free(&r);
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    double lag = metric_in(r.body, "nova_worker_loop_lag_seconds");
    ck_assert_msg(lag > 0.3 && lag < 5, "lag %g", lag);
    response_free(&r);
    /* Alive all the same. */
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    response_free(&r);
    on_loop_wait();

    /* A few heartbeats later the loop is healthy again. */
    usleep(300000);
    send_text(&c, GET_REQ("/healthz") GET_REQ("/metrics"));
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok\n");
    response_free(&r);
    ck_assert_int_eq(read_response(&c, false, &r), 0);
    lag = metric_in(r.body, "nova_worker_loop_lag_seconds");
    ck_assert_msg(lag < 0.2, "lag %g", lag);
    response_free(&r);
    on_loop(do_lag, &lag);
    ck_assert_msg(lag < 0.2, "lag %g", lag);
    client_close(&c);
    server_stop();
}
END_TEST

/* ---- big answers ---------------------------------------------------------- */

/* arg series of some 600 bytes each; their label values differ early, as
 * the registry finds a series by comparing them in a list. */
static void do_big_metrics(struct server *s, void *arg)
{
    (void)s;
    static const char *const labels[] = {"series", NULL};
    nova_metric *m = nova__metric_new(NOVA_METRIC_GAUGE, "nova_test_big",
                                      "Many series, to make /metrics big.", labels, NULL, 0);
    char pad[600];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < (int)(intptr_t)arg; i++) {
        char v[640];
        snprintf(v, sizeof v, "s%07d-%s", i, pad);
        const char *values[] = {v};
        nova__metric_set(m, values, i);
    }
}

START_TEST(big_metrics_under_backpressure)
{
    struct nova__httpd_limits limits = {.timeout_ms = 600};
    server_start(&limits);
    on_loop(do_big_metrics, (void *)(intptr_t)10000); /* about 6 MB */
    struct response r;

    /* A slow reader: the loop keeps answering others while the answer is
     * written (once it is rendered: that is done on the loop, at once),
     * and the answer arrives whole. */
    struct client slow;
    client_open_rcvbuf(&slow, 4096);
    struct timeval render_time = {.tv_sec = 120}; /* valgrind renders slowly */
    setsockopt(slow.fd, SOL_SOCKET, SO_RCVTIMEO, &render_time, sizeof render_time);
    send_text(&slow, GET_REQ("/metrics"));
    long began = now_ms();
    while (slow.len < 4 || memmem(slow.buf, slow.len, "\r\n\r\n", 4) == NULL)
        ck_assert_int_gt(fill(&slow), 0);
    long start = now_ms();
    ck_assert_int_eq(get(GET_REQ("/livez"), false, &r), 200);
    ck_assert_msg(now_ms() - start < 300, "/livez waited %ld ms", now_ms() - start);
    response_free(&r);
    /* Reads in pieces with pauses shorter than the timeout: progress keeps
     * the write alive past the timeout. */
    for (int i = 0; i < 4; i++) {
        usleep(250000);
        ck_assert_int_gt(fill(&slow), 0);
    }
    int rc = read_response(&slow, false, &r);
    ck_assert_msg(rc == 0, "the answer ended after %ld ms, %zu bytes in", now_ms() - began,
                  slow.len);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(now_ms() - began > 600, "read too fast to test progress");
    ck_assert_uint_gt(r.body_len, 5000000);
    ck_assert_ptr_nonnull(strstr(r.body, "pp\"} 9999\n"));
    response_free(&r);
    client_close(&slow);

    /* A reader that stops: the write stops moving and the connection is
     * closed after the timeout, the loop unharmed. */
    struct client stuck;
    client_open_rcvbuf(&stuck, 4096);
    send_text(&stuck, GET_REQ("/metrics"));
    struct pollfd rendered = {.fd = stuck.fd, .events = POLLIN};
    ck_assert_int_eq(poll(&rendered, 1, 120000), 1); /* the answer has begun */
    usleep(2500000);
    ck_assert_int_eq(get(GET_REQ("/healthz"), false, &r), 200);
    response_free(&r);
    /* Now reading, it finds the answer cut short. */
    struct timeval tv = {.tv_sec = 2};
    setsockopt(stuck.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ck_assert_int_ne(read_response(&stuck, false, &r), 0);
    client_close(&stuck);
    server_stop();
}
END_TEST

/* ---- start and stop ------------------------------------------------------- */

START_TEST(listen_forms_and_errors)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct nova__httpd *h = (struct nova__httpd *)&loop;
    char err[256];
    ck_assert_int_eq(nova__httpd_start(&loop, "", NULL, &h, err, sizeof err), 0);
    ck_assert_ptr_null(h);
    ck_assert_int_eq(nova__httpd_start(&loop, NULL, NULL, &h, err, sizeof err), 0);
    static const struct {
        const char *listen, *message;
    } bad[] = {
        {"9464", "expected host:port"},
        {":9464", "expected host:port"},
        {"127.0.0.1:", "bad port"},
        {"127.0.0.1:x", "bad port"},
        {"127.0.0.1:-1", "bad port"},
        {"127.0.0.1:65536", "bad port"},
        {"example.com:9464", "'example.com' is not an IP address"},
        {"::1:9464", "is not an IP address"},
        {"[::1:9464", "is not an IP address"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_int_eq(nova__httpd_start(&loop, bad[i].listen, NULL, &h, err, sizeof err),
                         -EINVAL);
        ck_assert_msg(strstr(err, bad[i].message) != NULL, "%s: %s", bad[i].listen, err);
        ck_assert_int_eq(nova__httpd_check_listen(bad[i].listen, err, sizeof err), -EINVAL);
    }
    ck_assert_int_eq(nova__httpd_check_listen("[::]:9464", err, sizeof err), 0);
    ck_assert_int_eq(nova__httpd_check_listen("", err, sizeof err), 0);

    /* localhost, port 0; the same port again is in use. */
    struct nova__httpd *a = NULL, *b = NULL;
    ck_assert_int_eq(nova__httpd_start(&loop, "localhost:0", NULL, &a, err, sizeof err), 0);
    int port = nova__httpd_port(a);
    ck_assert_int_gt(port, 0);
    char again[64];
    snprintf(again, sizeof again, "127.0.0.1:%d", port);
    ck_assert_int_eq(nova__httpd_start(&loop, again, NULL, &b, err, sizeof err), -EADDRINUSE);
    ck_assert_msg(strstr(err, "Address already in use") != NULL, "%s", err);
    ck_assert_ptr_null(b);

    /* IPv6, where the host has it. */
    int fd6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have6 = fd6 >= 0 && bind(fd6, (struct sockaddr *)&a6, sizeof a6) == 0;
    if (fd6 >= 0)
        close(fd6);
    if (have6) {
        ck_assert_int_eq(nova__httpd_start(&loop, "[::1]:0", NULL, &b, err, sizeof err), 0);
        ck_assert_int_gt(nova__httpd_port(b), 0);
        nova__httpd_stop(b);
    }
    nova__httpd_stop(a);
    nova__httpd_stop(NULL);
    /* Stopped endpoints hold the loop only until their handles close. */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    nova__metrics_reset();
}
END_TEST

START_TEST(stop_with_connections_open)
{
    server_start(NULL);
    struct client idle, partial, keep;
    struct response r;
    client_open(&idle);
    client_open(&partial);
    send_text(&partial, "GET /metrics HTTP/1.1\r\nHo");
    client_open(&keep);
    send_text(&keep, GET_REQ("/livez"));
    ck_assert_int_eq(read_response(&keep, false, &r), 0);
    response_free(&r);
    usleep(50000);
    server_stop(); /* asserts the loop closes: every handle and conn freed */
    ck_assert(closed_within(&idle, 1000));
    ck_assert(closed_within(&partial, 1000));
    ck_assert(closed_within(&keep, 1000));
    client_close(&idle);
    client_close(&partial);
    client_close(&keep);
}
END_TEST

/* ---- the parser alone ----------------------------------------------------- */

static int parse_all(const char *text, struct nova__httpd_request *req)
{
    size_t scanned = 0;
    return nova__httpd_parse(text, strlen(text), &scanned, req);
}

START_TEST(parser_reads_what_the_endpoint_needs)
{
    struct nova__httpd_request q;
    ck_assert_int_eq(parse_all("GET /metrics?a=b HTTP/1.1\r\nHost: x\r\n\r\nGET", &q), 0);
    ck_assert_int_eq(q.method, NOVA__HTTPD_GET);
    ck_assert_uint_eq(q.path_len, 8);
    ck_assert(memcmp(q.path, "/metrics", 8) == 0);
    ck_assert_uint_eq(q.minor, 1);
    ck_assert(q.keep_alive);
    ck_assert(!q.has_body);
    ck_assert_uint_eq(q.head_len, strlen("GET /metrics?a=b HTTP/1.1\r\nHost: x\r\n\r\n"));

    ck_assert_int_eq(parse_all("HEAD / HTTP/1.0\r\n\r\n", &q), 0);
    ck_assert_int_eq(q.method, NOVA__HTTPD_HEAD);
    ck_assert(!q.keep_alive);
    ck_assert_int_eq(
        parse_all("GET / HTTP/1.1\r\nhOsT: x\r\nCONNECTION: Upgrade,close\r\n\r\n", &q), 0);
    ck_assert(!q.keep_alive);
    ck_assert_int_eq(parse_all("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", &q), 0);
    ck_assert_int_eq(q.method, NOVA__HTTPD_OTHER);
    ck_assert(q.has_body);
    ck_assert_int_eq(
        parse_all("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
                  &q),
        0);
    ck_assert(!q.has_body);
    ck_assert_int_eq(
        parse_all("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &q), 0);
    ck_assert(q.has_body);
    ck_assert_int_eq(parse_all("GET https://h:1 HTTP/1.1\r\nHost: x\r\n\r\n", &q), 0);
    ck_assert_uint_eq(q.path_len, 1);
    ck_assert_int_eq(q.path[0], '/');
    ck_assert_int_eq(parse_all("GET /x HTTP/1.9\r\nHost: x\r\nEmpty:\r\nTab:\tv \t\r\n\r\n", &q),
                     0);
    ck_assert_uint_eq(q.minor, 9);

    ck_assert_int_eq(parse_all("GET / HTTP/1.1\r\nHost: x\r\n", &q), -EAGAIN);
    ck_assert_int_eq(parse_all("\r\n\r\n\r\n", &q), -EAGAIN);
    ck_assert_int_eq(parse_all("GET / HTTP/3.0\r\n\r\n", &q), -EPROTONOSUPPORT);
    ck_assert_int_eq(parse_all("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n", &q), -EBADMSG);
    ck_assert_int_eq(parse_all("GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n", &q), -EBADMSG);
    ck_assert_int_eq(parse_all("GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", &q), -EBADMSG);
    ck_assert_int_eq(parse_all("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", &q), -EBADMSG);
    ck_assert_int_eq(parse_all("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", &q), -EBADMSG);
    ck_assert_int_eq(parse_all("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", &q), -EBADMSG);
    ck_assert_int_eq(parse_all("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999"
                               "\r\n\r\n",
                               &q),
                     -EBADMSG);
    ck_assert_int_eq(parse_all("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n", &q),
                     -EBADMSG);

    /* Byte by byte, resuming the scan: the same result, found once. */
    const char *text = "\r\nGET /readyz HTTP/1.1\nHost: y\r\nConnection: close\n\r\nrest";
    size_t scanned = 0, whole = strlen(text);
    int rc = -EAGAIN;
    size_t n = 0;
    while (rc == -EAGAIN && n < whole)
        rc = nova__httpd_parse(text, ++n, &scanned, &q);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(n, whole - 4);
    ck_assert_uint_eq(q.head_len, whole - 4);
    ck_assert_uint_eq(q.path_len, 7);
    ck_assert(!q.keep_alive);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("httpd");
    TCase *tc = tcase_create("httpd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, endpoints_answer);
    tcase_add_test(tc, head_not_found_and_methods);
    tcase_add_test(tc, keep_alive_pipelining_and_close);
    tcase_add_test(tc, malformed_and_oversize_requests);
    tcase_add_test(tc, slow_and_idle_clients_time_out);
    tcase_add_test(tc, connection_limit);
    tcase_add_test(tc, healthz_fails_after_a_blocked_loop);
    tcase_add_test(tc, big_metrics_under_backpressure);
    tcase_add_test(tc, listen_forms_and_errors);
    tcase_add_test(tc, stop_with_connections_open);
    tcase_add_test(tc, parser_reads_what_the_endpoint_needs);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
