/*
 * httpd - the operations endpoint on the loop (see httpd.h).
 *
 * A connection is one allocation: its two handles, its requests' bytes
 * (NOVA__HTTPD_HEAD_MAX, so a request head is never copied or grown) and
 * the head of its answer. It is always in one of three states:
 *
 *   reading     waiting for a request head; the timer, armed when the
 *               connection opened or its last answer went out, is never
 *               re-armed by a read, so a head must arrive whole in time;
 *   writing     an answer is being written and nothing is read; the
 *               timer closes the connection when the write stops moving;
 *   lingering   the last answer is out and our side is shut down; what
 *               the client still sends is read and dropped until it
 *               closes (or the timer), so that closing with unread bytes
 *               does not reset the connection under the answer.
 */
#include "config.h"
#include "common/sigpipe.h"
#include "httpd/httpd.h"
#include "httpd/httpd_parse.h"
#include "common/log.h"
#include "common/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

#define DEFAULT_MAX_CONNECTIONS  64
#define DEFAULT_TIMEOUT_MS       10000
#define DEFAULT_HEARTBEAT_MS     1000
#define DEFAULT_UNHEALTHY_LAG_MS 5000
/* How long a closing connection drains what the client still sends. */
#define LINGER_MS 2000
/* A /readyz reason longer than this is cut. */
#define REASON_MAX 256
/* The head of an answer and, for the small ones, their body. */
#define OUT_MAX 1024
/* The longest small body: a reason and a few words around it. */
#define SMALL_BODY_MAX (REASON_MAX + 64)
/* Rejected connections are logged at most this often. */
#define REJECT_LOG_MS 60000

static const char text_type[] = "text/plain; charset=utf-8";
static const char metrics_type[] = "text/plain; version=0.0.4; charset=utf-8";

enum conn_state { CONN_READING, CONN_WRITING, CONN_LINGERING };

struct conn {
    struct nova__httpd *h;
    struct conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    uv_shutdown_t shutdown;
    enum conn_state state;
    int open_handles; /* of tcp and timer; the conn is freed when both closed */
    bool reading;
    bool closing;
    bool close_after;  /* the answer being written is the connection's last */
    size_t write_left; /* unsent(c) when the write timer was last armed */
    char *body;        /* the malloc'ed body being written (/metrics), or NULL */
    size_t consumed;   /* bytes of in[] the request being answered took */
    size_t in_len;
    size_t scanned; /* nova__httpd_parse()'s progress in in[] */
    char out[OUT_MAX];
    char in[NOVA__HTTPD_HEAD_MAX];
};

struct nova__httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t heartbeat;
    struct nova__httpd_limits limits;
    struct conn *conns;
    unsigned conn_count;
    int open_handles; /* of listener and heartbeat */
    bool stopping;
    bool ready;
    char reason[REASON_MAX];
    int port;
    uint64_t last_beat; /* uv_hrtime() of the heartbeat's last run */
    uint64_t lag_ns;    /* how late that run was */
    nova_metric *m_lag;
    bool warned;            /* a refused connection was logged ... */
    uint64_t warned_at;     /* ... at this uv_now() */
    unsigned long rejected; /* connections refused since */
    time_t date_at;         /* the second date[] shows */
    char date[40];
};

/* ---- time ----------------------------------------------------------------- */

static uint64_t ms_to_ns(unsigned ms)
{
    return (uint64_t)ms * 1000000u;
}

/* A repeating timer measures how late the loop runs it: when the loop is
 * blocked, the next run comes late by as long as the block lasted. (The
 * daemon starts the endpoint just before it runs the loop, so the first
 * run also counts the plugins' loading; that takes milliseconds.) */
static void on_heartbeat(uv_timer_t *t)
{
    struct nova__httpd *h = t->data;
    uint64_t now = uv_hrtime(), period = ms_to_ns(h->limits.heartbeat_ms);
    uint64_t since = now - h->last_beat;
    h->lag_ns = since > period ? since - period : 0;
    h->last_beat = now;
    nova__metric_set(h->m_lag, NULL, (double)h->lag_ns / 1e9);
}

/* The last measured delay, or more when the next heartbeat is already
 * overdue: a request read right after a block in the same loop turn sees
 * the block before the heartbeat has run again. */
static uint64_t lag_now(const struct nova__httpd *h)
{
    uint64_t since = uv_hrtime() - h->last_beat, period = ms_to_ns(h->limits.heartbeat_ms);
    uint64_t overdue = since > period ? since - period : 0;
    return overdue > h->lag_ns ? overdue : h->lag_ns;
}

/* RFC 9110's IMF-fixdate, formatted once a second. Names are spelled out
 * here because strftime's follow the locale. */
static const char *http_date(struct nova__httpd *h)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    if (now != h->date_at && gmtime_r(&now, &tm) != NULL) {
        snprintf(h->date, sizeof h->date, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        h->date_at = now;
    }
    return h->date;
}

/* ---- connections ---------------------------------------------------------- */

static void maybe_free_server(struct nova__httpd *h)
{
    if (h->stopping && h->open_handles == 0 && h->conns == NULL)
        free(h);
}

static void on_conn_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    if (--c->open_handles > 0)
        return;
    struct nova__httpd *h = c->h;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    h->conn_count--;
    free(c->body);
    free(c);
    maybe_free_server(h);
}

/* Closes at once; a write in progress is cancelled (its callback runs
 * first, with UV_ECANCELED). */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_timeout(uv_timer_t *t);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Timers count from the loop's cached time, which is as old as this loop
 * turn: after a long render (or a blocked loop) a deadline would start in
 * the past, so the clock is read first. */
static void arm(struct conn *c, unsigned ms)
{
    uv_update_time(c->h->loop);
    uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static void start_reading(struct conn *c)
{
    if (c->reading)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void stop_reading(struct conn *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* Bytes of a request beyond the empty lines that may precede one. */
static const char *request_start(const struct conn *c)
{
    size_t i = 0;
    while (i < c->in_len && (c->in[i] == '\r' || c->in[i] == '\n'))
        i++;
    return i < c->in_len ? c->in + i : NULL;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0 && status != UV_ECANCELED)
        conn_close(c);
}

/* After the last answer: shut our side down and drop what still comes. */
static void linger(struct conn *c)
{
    c->state = CONN_LINGERING;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    arm(c, c->h->limits.timeout_ms < LINGER_MS ? c->h->limits.timeout_ms : LINGER_MS);
    start_reading(c);
}

/* ---- answers -------------------------------------------------------------- */

struct answer {
    int status;
    const char *type;
    const char *text; /* a small body, copied; or */
    char *big;        /* a malloc'ed one, owned from here on */
    size_t big_len;
    bool head_only; /* HEAD: the head of what GET would answer */
    bool allow;     /* 405: name the methods there are */
};

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static void on_written(uv_write_t *w, int status);

/* Bytes of the answer the client has not taken yet: libuv's queue, and
 * where the system tells, what sits unacknowledged in the socket. libuv's
 * queue alone only moves when the socket buffer has room for a large
 * piece, which a slow but steady reader may take longer than the timeout
 * to make. */
static size_t unsent(struct conn *c)
{
    size_t left = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
#ifdef SIOCOUTQ
    uv_os_fd_t fd;
    int queued = 0;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &queued) == 0 &&
        queued > 0)
        left += (size_t)queued;
#endif
    return left;
}

static void send_answer(struct conn *c, const struct answer *a)
{
    size_t text_len = a->text != NULL ? strnlen(a->text, SMALL_BODY_MAX) : 0;
    size_t body_len = a->text != NULL ? text_len : a->big_len;
    int n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s%s\r\n",
                     a->status, status_text(a->status), http_date(c->h), a->type, body_len,
                     a->allow ? "Allow: GET, HEAD\r\n" : "",
                     c->close_after ? "Connection: close\r\n" : "");
    /* Its parts are bounded, so this is only a guard. */
    if (n < 0 || (size_t)n + text_len > sizeof c->out) {
        free(a->big);
        conn_close(c);
        return;
    }
    size_t len = (size_t)n;
    if (!a->head_only && a->text != NULL) {
        memcpy(c->out + len, a->text, text_len);
        len += text_len;
    }
    uv_buf_t bufs[2] = {uv_buf_init(c->out, (unsigned)len), uv_buf_init(a->big, 0)};
    unsigned nbufs = 1;
    if (a->big != NULL && !a->head_only) {
        c->body = a->big;
        bufs[1] = uv_buf_init(a->big, (unsigned)a->big_len);
        nbufs = 2;
    } else {
        free(a->big);
    }
    stop_reading(c);
    c->state = CONN_WRITING;
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, bufs, nbufs, on_written) != 0) {
        conn_close(c);
        return;
    }
    c->write_left = unsent(c);
    arm(c, c->h->limits.timeout_ms);
}

/* A request that cannot be served: say why and close. */
static void fail(struct conn *c, int status, const char *why)
{
    nova__log_debug("http: answering %d %s", status, status_text(status));
    c->close_after = true;
    struct answer a = {.status = status, .type = text_type, .text = why};
    send_answer(c, &a);
}

enum route { ROUTE_NONE, ROUTE_METRICS, ROUTE_HEALTHZ, ROUTE_LIVEZ, ROUTE_READYZ };

static enum route find_route(const char *path, size_t len)
{
    static const struct {
        const char *path;
        enum route route;
    } routes[] = {
        {"/metrics", ROUTE_METRICS},
        {"/healthz", ROUTE_HEALTHZ},
        {"/livez", ROUTE_LIVEZ},
        {"/readyz", ROUTE_READYZ},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strlen(routes[i].path) == len && memcmp(routes[i].path, path, len) == 0)
            return routes[i].route;
    }
    return ROUTE_NONE;
}

static void answer(struct conn *c, const struct nova__httpd_request *r)
{
    struct nova__httpd *h = c->h;
    char text[SMALL_BODY_MAX];
    struct answer a = {
        .status = 200, .type = text_type, .head_only = r->method == NOVA__HTTPD_HEAD};
    enum route route = find_route(r->path, r->path_len);
    if (route == ROUTE_NONE) {
        a.status = 404;
        a.text = "not found\n";
    } else if (r->method == NOVA__HTTPD_OTHER) {
        a.status = 405;
        a.text = "method not allowed\n";
        a.allow = true;
    } else if (route == ROUTE_METRICS) {
        /* The gauge as of now, not as of the last heartbeat. */
        nova__metric_set(h->m_lag, NULL, (double)lag_now(h) / 1e9);
        if (nova__metrics_render(&a.big, &a.big_len) == 0) {
            a.type = metrics_type;
        } else {
            a.status = 500;
            a.text = "out of memory\n";
        }
    } else if (route == ROUTE_HEALTHZ) {
        uint64_t lag = lag_now(h);
        if (lag > ms_to_ns(h->limits.unhealthy_lag_ms)) {
            a.status = 503;
            snprintf(text, sizeof text, "event loop heartbeat %.3f s late (limit %.3f s)\n",
                     (double)lag / 1e9, h->limits.unhealthy_lag_ms / 1e3);
            a.text = text;
        } else {
            a.text = "ok\n";
        }
    } else if (route == ROUTE_LIVEZ) {
        a.text = "ok\n";
    } else {
        a.status = h->ready ? 200 : 503;
        snprintf(text, sizeof text, "%s\n",
                 h->ready ? "ready" : (h->reason[0] != '\0' ? h->reason : "not ready"));
        a.text = text;
    }
    send_answer(c, &a);
}

/* Answers the request at the start of in[] when it is all there. */
static void serve(struct conn *c)
{
    struct nova__httpd_request req;
    int rc = nova__httpd_parse(c->in, c->in_len, &c->scanned, &req);
    if (rc == -EAGAIN) {
        if (c->in_len == sizeof c->in) {
            const char *start = request_start(c);
            if (start != NULL && memchr(start, '\n', (size_t)(c->in + c->in_len - start)) == NULL)
                fail(c, 414, "request line too long\n");
            else
                fail(c, 431, "request header fields too large\n");
        }
        return;
    }
    if (rc != 0) {
        if (rc == -EPROTONOSUPPORT)
            fail(c, 505, "HTTP/1.x only\n");
        else
            fail(c, 400, "bad request\n");
        return;
    }
    c->consumed = req.head_len;
    /* A body is never read, so nothing after it could be parsed. */
    c->close_after = !req.keep_alive || req.has_body || c->h->stopping;
    answer(c, &req);
}

static void on_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    free(c->body);
    c->body = NULL;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after) {
        linger(c);
        return;
    }
    /* What follows the answered request was pipelined behind it. */
    memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
    c->in_len -= c->consumed;
    c->consumed = 0;
    c->scanned = 0;
    c->state = CONN_READING;
    arm(c, c->h->limits.timeout_ms);
    serve(c);
    if (c->state == CONN_READING && !c->closing)
        start_reading(c);
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->state == CONN_READING && request_start(c) != NULL) {
        fail(c, 408, "request not received in time\n");
        return;
    }
    if (c->state == CONN_WRITING) {
        /* Still moving: a big answer to a slow reader gets another round. */
        size_t left = unsent(c);
        if (left < c->write_left) {
            c->write_left = left;
            arm(c, c->h->limits.timeout_ms);
            return;
        }
    }
    conn_close(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    /* Lingering bytes are dropped: one scratch buffer for all (one thread). */
    static char drop[4096];
    struct conn *c = handle->data;
    (void)suggested;
    if (c->state == CONN_LINGERING)
        *buf = uv_buf_init(drop, sizeof drop);
    else
        *buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof c->in - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        /* The client closed (or failed); an unfinished request dies with it. */
        conn_close(c);
        return;
    }
    if (nread == 0 || c->state != CONN_READING)
        return;
    c->in_len += (size_t)nread;
    serve(c);
}

/* Over the limit: accept (libuv stops listening until we do) and close. */
static void on_rejected_closed(uv_handle_t *handle)
{
    free(handle);
}

/* Refused connections come in floods: one warning a minute, counting. */
static void refused(struct nova__httpd *h, const char *why)
{
    h->rejected++;
    uint64_t now = uv_now(h->loop);
    if (!h->warned || now - h->warned_at >= REJECT_LOG_MS) {
        nova__log_warn("http: %s; %lu connection(s) refused since the last warning", why,
                       h->rejected);
        h->warned = true;
        h->warned_at = now;
        h->rejected = 0;
    }
}

static void reject(struct nova__httpd *h)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (t == NULL) {
        nova__log_error("http: out of memory refusing a connection");
        return;
    }
    uv_tcp_init(h->loop, t);
    uv_accept((uv_stream_t *)&h->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_rejected_closed);
    char why[96];
    snprintf(why, sizeof why, "%u connections open, the most allowed", h->conn_count);
    refused(h, why);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct nova__httpd *h = server->data;
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof why, "accept: %s", uv_strerror(status));
        refused(h, why);
        return;
    }
    if (h->conn_count >= h->limits.max_connections) {
        reject(h);
        return;
    }
    struct conn *c = malloc(sizeof *c);
    if (c == NULL) {
        reject(h);
        return;
    }
    /* Only the bookkeeping is cleared: in[] and out[] are written before
     * they are read, and clearing 9 KiB per connection buys nothing. */
    memset(c, 0, offsetof(struct conn, out));
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    uv_unref((uv_handle_t *)&c->tcp);
    uv_unref((uv_handle_t *)&c->timer);
    c->next = h->conns;
    if (h->conns != NULL)
        h->conns->prev = c;
    h->conns = c;
    h->conn_count++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = CONN_READING;
    arm(c, h->limits.timeout_ms);
    start_reading(c);
}

/* ---- the server ----------------------------------------------------------- */

/* "host:port" into an address: IPv4, "localhost", or [IPv6]. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen || (size_t)(colon - listen) >= sizeof host) {
        snprintf(err, errlen, "listen '%s': expected host:port", listen);
        return -EINVAL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port > 65535) {
        snprintf(err, errlen, "listen '%s': bad port", listen);
        return -EINVAL;
    }
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            goto bad;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        goto bad;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return 0;
bad:
    snprintf(err, errlen, "listen '%s': '%s' is not an IP address", listen, host);
    return -EINVAL;
}

/* The listening socket, made without libuv so that a failure needs no
 * loop turn to clean up. Returns the descriptor or -errno. */
static int open_listener(const struct sockaddr_storage *ss, int *port)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    /* SO_REUSEADDR: a restart must not wait for the old TIME_WAITs. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

static void on_server_closed(uv_handle_t *handle)
{
    struct nova__httpd *h = handle->data;
    h->open_handles--;
    maybe_free_server(h);
}

int nova__httpd_check_listen(const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (listen == NULL || listen[0] == '\0')
        return 0;
    return parse_listen(listen, &ss, err, errlen);
}

int nova__httpd_start(uv_loop_t *loop, const char *listen, const struct nova__httpd_limits *limits,
                      struct nova__httpd **out, char *err, size_t errlen)
{
    *out = NULL;
    if (listen == NULL || listen[0] == '\0')
        return 0;
    struct sockaddr_storage ss;
    int rc = parse_listen(listen, &ss, err, errlen);
    if (rc != 0)
        return rc;
    struct nova__httpd *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "listen %s: out of memory", listen);
        return -ENOMEM;
    }
    int fd = open_listener(&ss, &h->port);
    if (fd < 0) {
        snprintf(err, errlen, "listen %s: %s", listen, strerror(-fd));
        free(h);
        return fd;
    }
    h->loop = loop;
    if (limits != NULL)
        h->limits = *limits;
    if (h->limits.max_connections == 0)
        h->limits.max_connections = DEFAULT_MAX_CONNECTIONS;
    if (h->limits.timeout_ms == 0)
        h->limits.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (h->limits.heartbeat_ms == 0)
        h->limits.heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    if (h->limits.unhealthy_lag_ms == 0)
        h->limits.unhealthy_lag_ms = DEFAULT_UNHEALTHY_LAG_MS;
    snprintf(h->reason, sizeof h->reason, "starting");
    h->m_lag = nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_loop_lag_seconds",
                                "How late the event loop ran its heartbeat timer last time "
                                "(/healthz fails above 5 s)",
                                NULL, NULL, 0);
    nova__metric_set(h->m_lag, NULL, 0);
    nova__ignore_sigpipe();

    uv_tcp_init(loop, &h->listener);
    uv_timer_init(loop, &h->heartbeat);
    h->listener.data = h->heartbeat.data = h;
    h->open_handles = 2;
    rc = uv_tcp_open(&h->listener, fd);
    if (rc != 0)
        close(fd); /* not the handle's yet */
    else
        rc = uv_listen((uv_stream_t *)&h->listener, SOMAXCONN, on_connection);
    if (rc != 0) {
        /* Not expected of a socket that is already listening; the handles
         * are closed by the loop's next turn, which frees h. */
        snprintf(err, errlen, "listen %s: %s", listen, uv_strerror(rc));
        h->stopping = true;
        uv_close((uv_handle_t *)&h->listener, on_server_closed);
        uv_close((uv_handle_t *)&h->heartbeat, on_server_closed);
        return rc;
    }
    h->last_beat = uv_hrtime();
    uv_timer_start(&h->heartbeat, on_heartbeat, h->limits.heartbeat_ms, h->limits.heartbeat_ms);
    uv_unref((uv_handle_t *)&h->listener);
    uv_unref((uv_handle_t *)&h->heartbeat);

    char addr[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
    nova__log_info("http: listening on %s%s%s:%d (/metrics, /healthz, /livez, /readyz)",
                   ss.ss_family == AF_INET6 ? "[" : "", addr, ss.ss_family == AF_INET6 ? "]" : "",
                   h->port);
    *out = h;
    return 0;
}

void nova__httpd_set_ready(struct nova__httpd *h, bool ready, const char *reason)
{
    if (h == NULL)
        return;
    h->ready = ready;
    snprintf(h->reason, sizeof h->reason, "%s", reason != NULL ? reason : "");
}

int nova__httpd_port(const struct nova__httpd *h)
{
    return h != NULL ? h->port : 0;
}

double nova__httpd_loop_lag(const struct nova__httpd *h)
{
    return h != NULL ? (double)lag_now(h) / 1e9 : 0;
}

void nova__httpd_stop(struct nova__httpd *h)
{
    if (h == NULL || h->stopping)
        return;
    h->stopping = true;
    uv_close((uv_handle_t *)&h->listener, on_server_closed);
    uv_close((uv_handle_t *)&h->heartbeat, on_server_closed);
    /* conn_close() unlinks nothing: that waits for the close callbacks. */
    for (struct conn *c = h->conns; c != NULL; c = c->next)
        conn_close(c);
}
