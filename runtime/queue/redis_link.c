/*
 * redis_link - one socket to one Redis server, owned by nova-worker
 * rather than by hiredis's async context, so that it can speak TLS.
 *
 * Connect: the owner names the address before each attempt (a fixed one,
 * Sentinel's master, a cluster node); names are resolved with
 * uv_getaddrinfo off the loop, each address tried in turn, the socket is
 * non-blocking with TCP_NODELAY and keepalive. With TLS, OpenSSL runs on
 * the socket itself (SSL_set_fd), driven by the poll handle: a handshake
 * step on each readiness, SSL_read until it wants more, SSL_write of the
 * output buffer. Plain sockets use recv() and send().
 *
 * Replies: the bytes read (decrypted) go to hiredis's redisReader, with
 * resp.c's arena functions; each reply ends the oldest queued request.
 *
 * Writes: a request's RESP text is appended to one output buffer; a
 * prepare handle (before the loop blocks) and a check handle (right after
 * the poll callbacks, where replies queue new commands) write everything
 * the turn queued at once; UV_WRITABLE is armed only when the socket
 * could not take it all.
 *
 * The handshake (AUTH, SELECT, CLIENT SETNAME, INFO server, ROLE, PING) is
 * pipelined before anything else; requests queued before it ends wait in
 * a backlog. A request with no reply for reply_timeout (plus the time a
 * blocking command may legitimately take) drops the socket: a server that
 * stops answering without closing is found in seconds.
 */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <openssl/err.h>

#include "common/log.h"
#include "queue/redis_int.h"
#include "queue/resp.h"

#define READ_CHUNK     (16 * 1024)
#define READS_PER_TURN 64
#define OBUF_KEEP      (1024 * 1024) /* a larger emptied buffer is freed */

enum lstate {
    L_IDLE,      /* between attempts: backoff, or waiting for an address or a kick */
    L_RESOLVING, /* uv_getaddrinfo */
    L_CONNECTING,
    L_TLS,
    L_HANDSHAKE,
    L_UP,
    L_CLOSED,
};

enum hs_kind { HS_AUTH = 1, HS_SELECT, HS_NAME, HS_INFO, HS_ROLE, HS_PING, HS_IGNORE };

struct sock {
    uv_poll_t poll;
    int fd;
};

struct gai {
    uv_getaddrinfo_t req;
    struct nova__redis_link *l; /* NULL once abandoned */
};

struct nova__redis_link {
    uv_loop_t *loop;
    const struct nova__redis_target *t;
    SSL_CTX *tls_ctx;
    char *client_name, *what;
    int64_t connect_timeout_ms;
    bool sentinel, want_master, no_select, once, quiet;
    const struct nova__redis_link_cbs *cbs;
    void *arg;

    enum lstate state;
    bool failed;  /* the last attempt failed (until one succeeds) */
    bool waiting; /* L_IDLE with no timer: until a kick */
    struct sock *sk;
    SSL *ssl;
    redisReader *reader;
    struct nova__resp_pool pool;
    struct addrinfo *ai, *ai_next;
    struct gai *gai;
    char host[256];
    int port;
    bool is_unix;
    char addr[300];

    char *obuf;
    size_t olen, ooff, ocap;
    bool obuf_oom;
    struct nova__redis_cmd *qhead, *qtail; /* awaiting replies, in order */
    struct nova__redis_cmd *bhead, *btail; /* waiting for the handshake */
    /* when bytes last came in (writes do not count: the kernel takes them
     * for a frozen server too) */
    uint64_t last_rx;
    int events;
    bool dirty;
    bool read_wants_write, write_wants_read;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_timer_t timer;
    int64_t backoff_ms;
    int version;
    unsigned gen; /* socket generation: callbacks of an old socket are ignored */
    char err[256];

    int open; /* handles not yet closed */
    void (*done)(void *);
    void *done_arg;
};

static void attempt(struct nova__redis_link *l);
static void set_events(struct nova__redis_link *l, int events);
static void do_write(struct nova__redis_link *l);
static void do_read(struct nova__redis_link *l);

/* ---- logging and failing ------------------------------------------------- */

static void log_link(struct nova__redis_link *l, enum nova_log_level lvl, const char *fmt, ...)
    NOVA_PRINTF(3, 4);
static void log_link(struct nova__redis_link *l, enum nova_log_level lvl, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    nova__log(lvl, NULL, "redis %s connection %s: %s", l->what, l->addr[0] ? l->addr : "(none)",
              msg);
}

static void close_sock_cb(uv_handle_t *h)
{
    struct sock *sk = (struct sock *)h; /* the poll handle is its first member */
    close(sk->fd);
    free(sk);
}

/* Forgets the socket and everything of this attempt; keeps the queues. */
static void drop_socket(struct nova__redis_link *l)
{
    l->gen++;
    if (l->ssl) {
        SSL_free(l->ssl);
        l->ssl = NULL;
        ERR_clear_error();
    }
    if (l->sk) {
        if (!uv_is_closing((uv_handle_t *)&l->sk->poll))
            uv_close((uv_handle_t *)&l->sk->poll, close_sock_cb);
        l->sk = NULL;
    }
    if (l->reader) {
        redisReaderFree(l->reader);
        l->reader = NULL;
    }
    if (l->gai) {
        l->gai->l = NULL;
        uv_cancel((uv_req_t *)&l->gai->req);
        l->gai = NULL;
    }
    if (l->ai) {
        freeaddrinfo(l->ai);
        l->ai = l->ai_next = NULL;
    }
    l->olen = l->ooff = 0;
    l->obuf_oom = false;
    l->events = 0;
    l->dirty = false;
    l->read_wants_write = l->write_wants_read = false;
    uv_prepare_stop(&l->prepare);
    uv_check_stop(&l->check);
}

/* Ends every queued request with status; new requests queued by the
 * callbacks wait for the next attempt. */
static void end_all(struct nova__redis_link *l, int status)
{
    struct nova__redis_cmd *list = l->qhead, *tail = l->qtail;
    if (tail)
        tail->next = l->bhead;
    else
        list = l->bhead;
    l->qhead = l->qtail = l->bhead = l->btail = NULL;
    while (list) {
        struct nova__redis_cmd *r = list;
        list = r->next;
        r->next = NULL;
        if (r->handshake)
            nova__redis_req_release(r);
        else
            l->cbs->reply(l, l->arg, r, status, NULL);
    }
}

static void on_timer(uv_timer_t *t);

static void schedule(struct nova__redis_link *l, int64_t delay_ms)
{
    l->state = L_IDLE;
    if (delay_ms < 0) {
        l->waiting = true;
        uv_timer_stop(&l->timer);
        return;
    }
    l->waiting = false;
    uv_timer_start(&l->timer, on_timer, (uint64_t)delay_ms, 0);
}

/* The attempt failed or the connection was lost: log why, end the queued
 * requests, retry (after the backoff, or at once for a reset). */
static void fail_now(struct nova__redis_link *l, int64_t retry_ms, bool log, const char *fmt, ...)
    NOVA_PRINTF(4, 5);
static void fail_now(struct nova__redis_link *l, int64_t retry_ms, bool log, const char *fmt, ...)
{
    bool was_up = l->state == L_UP;
    va_list ap;
    if (l->state == L_CLOSED)
        return;
    va_start(ap, fmt);
    vsnprintf(l->err, sizeof(l->err), fmt, ap);
    va_end(ap);
    if (log)
        log_link(l, l->quiet && !was_up ? NOVA_LOG_DEBUG : NOVA_LOG_WARN, "%s", l->err);
    drop_socket(l);
    l->failed = true;
    if (retry_ms == 0) {
        schedule(l, 0);
    } else if (l->once) {
        schedule(l, -1);
    } else {
        schedule(l, l->backoff_ms);
        l->backoff_ms *= 2;
        if (l->backoff_ms > NOVA__REDIS_BACKOFF_MAX_MS)
            l->backoff_ms = NOVA__REDIS_BACKOFF_MAX_MS;
    }
    end_all(l, -ECONNRESET);
    if (l->state != L_CLOSED && l->cbs->down)
        l->cbs->down(l, l->arg, was_up);
}

/* What a connection dropped during the handshake most likely means. */
static const char *handshake_hint(const struct nova__redis_link *l)
{
    if (l->state != L_HANDSHAKE)
        return "";
    if (!l->ssl)
        return " (a TLS port? then the url must be rediss://)";
    if (!l->t->tls_cert_file)
        return " (does the server want a client certificate? set tls_cert_file and "
               "tls_key_file)";
    return " (was the client certificate refused?)";
}

/* ---- output --------------------------------------------------------------- */

static char *obuf_room(struct nova__redis_link *l, size_t n)
{
    if (l->ocap - l->olen < n) {
        size_t cap = l->ocap ? l->ocap * 2 : 16384;
        char *nb;
        while (cap - l->olen < n)
            cap *= 2;
        nb = realloc(l->obuf, cap);
        if (!nb) {
            l->obuf_oom = true;
            return NULL;
        }
        l->obuf = nb;
        l->ocap = cap;
    }
    return l->obuf + l->olen;
}

static void obuf_put(struct nova__redis_link *l, const void *p, size_t n)
{
    char *dst = obuf_room(l, n);
    if (!dst)
        return;
    memcpy(dst, p, n);
    l->olen += n;
}

static void obuf_header(struct nova__redis_link *l, size_t argc)
{
    char *dst = obuf_room(l, NOVA__RESP_I64_MAX + 3);
    if (!dst)
        return;
    l->olen = (size_t)(nova__resp_put_header(dst, argc) - l->obuf);
}

static void obuf_arg(struct nova__redis_link *l, const void *p, size_t n)
{
    char *dst = obuf_room(l, nova__resp_arg_size(n));
    if (!dst)
        return;
    l->olen = (size_t)(nova__resp_put_arg(dst, p, n) - l->obuf);
}

static void on_prepare(uv_prepare_t *h);
static void on_check(uv_check_t *h);

static void mark_dirty(struct nova__redis_link *l)
{
    if (l->dirty || !l->sk || (l->events & UV_WRITABLE))
        return;
    l->dirty = true;
    uv_prepare_start(&l->prepare, on_prepare);
    uv_check_start(&l->check, on_check);
}

static void flush(struct nova__redis_link *l)
{
    l->dirty = false;
    uv_prepare_stop(&l->prepare);
    uv_check_stop(&l->check);
    /* While UV_WRITABLE is armed the poll callback writes: a write now
     * would only meet the same full buffer. */
    if (!l->sk || (l->events & UV_WRITABLE) || l->write_wants_read)
        return;
    do_write(l);
}

static void on_prepare(uv_prepare_t *h)
{
    flush(h->data);
}

static void on_check(uv_check_t *h)
{
    flush(h->data);
}

/* The head of r (`*N`, plus EVALSHA sha nkeys for scripts) into its
 * headroom; r->start then says where the command begins. */
static void seal(struct nova__redis_cmd *r)
{
    size_t argc = r->script ? r->argc + 3 : r->argc;
    char *p, head[NOVA__REDIS_HEADROOM];
    p = nova__resp_put_header(head, argc);
    if (r->script) {
        char nk[NOVA__RESP_I64_MAX];
        p = nova__resp_put_arg(p, "EVALSHA", 7);
        p = nova__resp_put_arg(p, r->script->sha, 40);
        p = nova__resp_put_arg(p, nk, nova__resp_i64(nk, r->nkeys));
    }
    r->start = NOVA__REDIS_HEADROOM - (size_t)(p - head);
    memcpy(r->buf + r->start, head, (size_t)(p - head));
}

/* The timeout of a blocking command as this server takes it, and how long
 * the server may then hold the command. */
static void put_blocking(struct nova__redis_link *l, struct nova__redis_cmd *r)
{
    const char *p;
    size_t n;
    char in[32], out[32];
    double secs;
    if (!nova__redis_req_arg(r, (size_t)r->tmo_arg, &p, &n) || n >= sizeof(in)) {
        seal(r);
        obuf_put(l, r->buf + r->start, r->len - r->start);
        return;
    }
    memcpy(in, p, n);
    in[n] = '\0';
    nova__redis_block_timeout(l->version, in, out, sizeof(out));
    secs = strtod(out, NULL);
    r->block_ms = secs <= 0    ? NOVA__REDIS_UNBOUNDED
                  : secs > 4e6 ? NOVA__REDIS_UNBOUNDED - 1
                               : (uint32_t)(secs * 1000.0 + 0.5);
    if (strcmp(in, out) == 0) {
        seal(r);
        obuf_put(l, r->buf + r->start, r->len - r->start);
        return;
    }
    obuf_header(l, r->argc);
    for (size_t i = 0; i < r->argc; i++) {
        if (i == (size_t)r->tmo_arg) {
            obuf_arg(l, out, strlen(out));
        } else if (nova__redis_req_arg(r, i, &p, &n)) {
            obuf_arg(l, p, n);
        }
    }
}

/* r's command text onto the output buffer. */
static void put_wire(struct nova__redis_link *l, struct nova__redis_cmd *r)
{
    r->sent_ms = uv_now(l->loop);
    if (r->as_eval) {
        /* EVAL both runs the script and caches it, so the next EVALSHA
         * succeeds without a separate round trip. */
        const char *src = r->script->source;
        char nk[NOVA__RESP_I64_MAX];
        obuf_header(l, r->argc + 3);
        obuf_arg(l, "EVAL", 4);
        obuf_arg(l, src, strlen(src));
        obuf_arg(l, nk, nova__resp_i64(nk, r->nkeys));
        obuf_put(l, r->buf + NOVA__REDIS_HEADROOM, r->len - NOVA__REDIS_HEADROOM);
    } else if (r->tmo_arg > 0) {
        put_blocking(l, r);
    } else {
        seal(r);
        obuf_put(l, r->buf + r->start, r->len - r->start);
    }
}

static void enqueue(struct nova__redis_link *l, struct nova__redis_cmd *r)
{
    r->next = NULL;
    if (l->qtail)
        l->qtail->next = r;
    else
        l->qhead = r;
    l->qtail = r;
}

/* Sends a request of the link's own (handshake, ASKING). */
static void put_own(struct nova__redis_link *l, enum hs_kind kind, int argc,
                    const char *const *argv)
{
    struct nova__redis_cmd *r = nova__redis_req_argv(NULL, argc, argv, NULL);
    if (!r) {
        l->obuf_oom = true;
        return;
    }
    r->handshake = true;
    r->arg = (void *)(intptr_t)kind;
    put_wire(l, r);
    enqueue(l, r);
}

static struct nova__redis_cmd *asking_req(void)
{
    static const char *const argv[] = {"ASKING"};
    struct nova__redis_cmd *r = nova__redis_req_argv(NULL, 1, argv, NULL);
    if (r) {
        r->handshake = true;
        r->arg = (void *)(intptr_t)HS_IGNORE;
    }
    return r;
}

static void backlog_add(struct nova__redis_link *l, struct nova__redis_cmd *r)
{
    r->next = NULL;
    if (l->btail)
        l->btail->next = r;
    else
        l->bhead = r;
    l->btail = r;
}

void nova__redis_link_put(struct nova__redis_link *l, struct nova__redis_cmd *r, bool asking)
{
    struct nova__redis_cmd *ask = asking ? asking_req() : NULL;
    if (l->state == L_CLOSED) {
        if (ask)
            nova__redis_req_release(ask);
        l->cbs->reply(l, l->arg, r, -ECANCELED, NULL);
        return;
    }
    if (l->state != L_UP) {
        if (ask)
            backlog_add(l, ask);
        backlog_add(l, r);
        if (l->state == L_IDLE && l->waiting && !l->once)
            attempt(l);
        return;
    }
    if (ask) {
        put_wire(l, ask);
        enqueue(l, ask);
    }
    put_wire(l, r);
    enqueue(l, r);
    if (l->obuf_oom) {
        fail_now(l, -1, true, "out of memory queueing a command");
        return;
    }
    mark_dirty(l);
}

/* ---- writing and reading ------------------------------------------------------ */

static void do_write(struct nova__redis_link *l)
{
    while (l->ooff < l->olen) {
        size_t left = l->olen - l->ooff;
        ssize_t n;
        if (l->ssl) {
            int rc, e;
            ERR_clear_error();
            rc = SSL_write(l->ssl, l->obuf + l->ooff, left > INT32_MAX ? INT32_MAX : (int)left);
            if (rc <= 0) {
                e = SSL_get_error(l->ssl, rc);
                if (e == SSL_ERROR_WANT_WRITE) {
                    set_events(l, l->events | UV_WRITABLE);
                    return;
                }
                if (e == SSL_ERROR_WANT_READ) {
                    l->write_wants_read = true;
                    return;
                }
                {
                    char why[256];
                    nova__redis_tls_error(l->ssl, rc, e, why, sizeof(why));
                    fail_now(l, 1, true, "write failed: %s%s", why, handshake_hint(l));
                }
                return;
            }
            n = rc;
        } else {
            n = send(l->sk->fd, l->obuf + l->ooff, left, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    set_events(l, l->events | UV_WRITABLE);
                    return;
                }
                fail_now(l, 1, true, "write failed: %s%s", strerror(errno), handshake_hint(l));
                return;
            }
        }
        l->ooff += (size_t)n;
    }
    l->olen = l->ooff = 0;
    if (l->ocap > OBUF_KEEP) {
        free(l->obuf);
        l->obuf = NULL;
        l->ocap = 0;
    }
    if ((l->events & UV_WRITABLE) && !l->read_wants_write)
        set_events(l, l->events & ~UV_WRITABLE);
}

static void hs_reply(struct nova__redis_link *l, struct nova__redis_cmd *r, redisReply *reply);

/* Hands one reply to the request it answers; false when the socket went
 * away meanwhile (the reader is gone: stop reading). */
static bool dispatch(struct nova__redis_link *l, redisReply *reply)
{
    struct nova__redis_cmd *r = l->qhead;
    unsigned gen = l->gen;
    if (r) {
        l->qhead = r->next;
        if (!l->qhead)
            l->qtail = NULL;
        r->next = NULL;
    }
    if (!r) {
        if (l->cbs->push)
            l->cbs->push(l, l->arg, reply);
    } else if (r->handshake) {
        hs_reply(l, r, reply);
    } else {
        l->cbs->reply(l, l->arg, r, 0, reply);
    }
    nova__resp_reply_fns.freeObject(reply);
    return gen == l->gen && (l->state == L_UP || l->state == L_HANDSHAKE);
}

static void do_read(struct nova__redis_link *l)
{
    char buf[READ_CHUNK];
    unsigned gen = l->gen;
    for (int i = 0; l->ssl || i < READS_PER_TURN; i++) {
        ssize_t n;
        if (l->ssl) {
            int rc, e;
            l->read_wants_write = false;
            ERR_clear_error();
            rc = SSL_read(l->ssl, buf, sizeof(buf));
            if (rc <= 0) {
                e = SSL_get_error(l->ssl, rc);
                if (e == SSL_ERROR_WANT_READ)
                    break;
                if (e == SSL_ERROR_WANT_WRITE) {
                    l->read_wants_write = true;
                    set_events(l, l->events | UV_WRITABLE);
                    break;
                }
                {
                    char why[256];
                    nova__redis_tls_error(l->ssl, rc, e, why, sizeof(why));
                    fail_now(l, 1, true, "%s%s", why, handshake_hint(l));
                }
                return;
            }
            n = rc;
        } else {
            n = recv(l->sk->fd, buf, sizeof(buf), 0);
            if (n == 0) {
                fail_now(l, 1, true, "closed by the server%s", handshake_hint(l));
                return;
            }
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                fail_now(l, 1, true, "read failed: %s%s", strerror(errno), handshake_hint(l));
                return;
            }
        }
        l->last_rx = uv_now(l->loop);
        if (redisReaderFeed(l->reader, buf, (size_t)n) != REDIS_OK) {
            fail_now(l, 1, true, "protocol error: %s", l->reader->errstr);
            return;
        }
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
                fail_now(l, 1, true, "protocol error: %s", l->reader->errstr);
                return;
            }
            if (!reply)
                break;
            if (!dispatch(l, reply))
                return;
        }
        if (gen != l->gen)
            return;
        if (!l->ssl && (size_t)n < sizeof(buf))
            break; /* drained */
    }
}

/* ---- handshake ------------------------------------------------------------------ */

static void became_up(struct nova__redis_link *l)
{
    struct nova__redis_cmd *b = l->bhead;
    int64_t tick = l->t->reply_timeout_ms > 0 ? l->t->reply_timeout_ms : NOVA__REDIS_REPLY_TIMEOUT;
    l->state = L_UP;
    l->failed = false;
    l->err[0] = '\0';
    l->backoff_ms = NOVA__REDIS_BACKOFF_MIN_MS;
    l->last_rx = uv_now(l->loop);
    tick /= 4;
    if (tick < 25)
        tick = 25;
    if (tick > 1000)
        tick = 1000;
    uv_timer_start(&l->timer, on_timer, (uint64_t)tick, (uint64_t)tick);
    log_link(l, NOVA_LOG_DEBUG, "ready");
    l->bhead = l->btail = NULL;
    while (b) {
        struct nova__redis_cmd *r = b;
        b = r->next;
        put_wire(l, r);
        enqueue(l, r);
    }
    if (l->obuf_oom) {
        fail_now(l, -1, true, "out of memory queueing a command");
        return;
    }
    mark_dirty(l);
    if (l->cbs->up)
        l->cbs->up(l, l->arg);
}

static int parse_version(const char *info)
{
    const char *p = strstr(info, "redis_version:");
    int a = 0, b = 0, c = 0;
    if (!p || sscanf(p + 14, "%d.%d.%d", &a, &b, &c) < 2)
        return 0;
    return a * 10000 + b * 100 + c;
}

static void hs_reply(struct nova__redis_link *l, struct nova__redis_cmd *r, redisReply *reply)
{
    enum hs_kind kind = (enum hs_kind)(intptr_t)r->arg;
    bool err = reply->type == REDIS_REPLY_ERROR;
    nova__redis_req_release(r);
    switch (kind) {
    case HS_AUTH:
        if (err)
            fail_now(l, -1, true, "AUTH failed: %s", reply->str);
        return;
    case HS_SELECT:
        if (err)
            fail_now(l, -1, true, "SELECT failed: %s", reply->str);
        return;
    case HS_NAME:
        if (err) {
            static bool told;
            if (!told)
                log_link(l, NOVA_LOG_WARN,
                         "CLIENT SETNAME refused (%s); working on, but Queue.getWorkers() will "
                         "not list this worker (logged once)",
                         reply->str);
            told = true;
        }
        return;
    case HS_INFO:
        l->version = reply->type == REDIS_REPLY_STRING ? parse_version(reply->str) : 0;
        return;
    case HS_ROLE:
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(reply->element[0]->str, "master") != 0) {
            fail_now(l, -1, true, "is not the master (ROLE says %s)",
                     reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                             reply->element[0]->type == REDIS_REPLY_STRING
                         ? reply->element[0]->str
                     : err ? reply->str
                           : "something else");
        }
        return;
    case HS_PING:
        if (err) {
            /* NOAUTH, LOADING after a restart, MASTERDOWN, ...: later. */
            fail_now(l, -1, true, "not ready: %s", reply->str);
            return;
        }
        became_up(l);
        return;
    case HS_IGNORE:
        return;
    }
}

static void start_handshake(struct nova__redis_link *l)
{
    const char *user = l->sentinel ? l->t->sentinel_username : l->t->username;
    const char *pass = l->sentinel ? l->t->sentinel_password : l->t->password;
    char db[16];
    l->state = L_HANDSHAKE;
    l->reader = redisReaderCreate();
    if (!l->reader) {
        fail_now(l, -1, true, "out of memory");
        return;
    }
    nova__resp_reader_use(l->reader, &l->pool);
    if (pass) {
        const char *auth[3] = {"AUTH", user ? user : pass, pass};
        put_own(l, HS_AUTH, user ? 3 : 2, auth);
    }
    if (!l->sentinel && !l->no_select && l->t->db) {
        const char *sel[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", l->t->db);
        put_own(l, HS_SELECT, 2, sel);
    }
    if (l->client_name) {
        const char *name[3] = {"CLIENT", "SETNAME", l->client_name};
        put_own(l, HS_NAME, 3, name);
    }
    if (!l->sentinel) {
        const char *info[2] = {"INFO", "server"};
        put_own(l, HS_INFO, 2, info);
    }
    if (l->want_master) {
        const char *role[1] = {"ROLE"};
        put_own(l, HS_ROLE, 1, role);
    }
    {
        const char *ping[1] = {"PING"};
        put_own(l, HS_PING, 1, ping);
    }
    if (l->obuf_oom) {
        fail_now(l, -1, true, "out of memory");
        return;
    }
    set_events(l, UV_READABLE);
    mark_dirty(l);
}

static void tls_step(struct nova__redis_link *l)
{
    int rc, e;
    ERR_clear_error();
    rc = SSL_connect(l->ssl);
    if (rc == 1) {
        start_handshake(l);
        return;
    }
    e = SSL_get_error(l->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        set_events(l, UV_READABLE);
    } else if (e == SSL_ERROR_WANT_WRITE) {
        set_events(l, UV_WRITABLE);
    } else {
        char why[256];
        nova__redis_tls_error(l->ssl, rc, e, why, sizeof(why));
        fail_now(l, -1, true, "%s", why);
    }
}

/* ---- connecting ----------------------------------------------------------------- */

static void connected(struct nova__redis_link *l)
{
    if (l->ai) {
        freeaddrinfo(l->ai);
        l->ai = l->ai_next = NULL;
    }
    if (l->tls_ctx) {
        char why[256];
        l->ssl = nova__redis_tls_new(l->tls_ctx, l->t, l->host, l->sk->fd, why, sizeof(why));
        if (!l->ssl) {
            fail_now(l, -1, true, "%s", why);
            return;
        }
        l->state = L_TLS;
        tls_step(l);
        return;
    }
    start_handshake(l);
}

static void try_next(struct nova__redis_link *l, int err);

static void on_io(uv_poll_t *h, int status, int events)
{
    struct nova__redis_link *l = h->data;
    unsigned gen;
    if (!l || !l->sk || h != &l->sk->poll)
        return;
    gen = l->gen;
    switch (l->state) {
    case L_CONNECTING: {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(l->sk->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            soerr = errno;
        if (soerr == 0 && status < 0)
            soerr = ECONNREFUSED;
        if (soerr) {
            try_next(l, soerr);
            return;
        }
        connected(l);
        return;
    }
    case L_TLS:
        tls_step(l);
        return;
    case L_HANDSHAKE:
    case L_UP:
        if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT)) ||
            (l->write_wants_read && (events & UV_READABLE))) {
            if (l->write_wants_read) {
                l->write_wants_read = false;
                do_write(l);
                if (gen != l->gen)
                    return;
            }
            do_read(l);
            if (gen != l->gen)
                return;
        }
        if (events & UV_WRITABLE) {
            if (l->read_wants_write) {
                do_read(l);
                if (gen != l->gen)
                    return;
            }
            do_write(l);
        }
        return;
    default:
        return;
    }
}

static void set_events(struct nova__redis_link *l, int events)
{
    if (!l->sk || events == l->events)
        return; /* re-arming an unchanged mask costs an epoll_ctl */
    l->events = events;
    if (events)
        uv_poll_start(&l->sk->poll, events, on_io);
    else
        uv_poll_stop(&l->sk->poll);
}

static void tune_socket(struct nova__redis_link *l, int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (l->t->keepalive_ms > 0) {
        int idle = (int)(l->t->keepalive_ms / 1000);
        int intvl, cnt = 3;
        unsigned user;
        if (idle < 1)
            idle = 1;
        intvl = idle / 3 > 0 ? idle / 3 : 1;
        user = (unsigned)(idle + intvl * cnt) * 1000u;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        /* written data unacknowledged this long also ends the connection */
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user));
    }
}

/* Starts a non-blocking connect to sa; 0, or -errno (nothing left open). */
static int open_socket(struct nova__redis_link *l, const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sock *sk;
    if (fd < 0)
        return -errno;
    if (sa->sa_family != AF_UNIX)
        tune_socket(l, fd);
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS && errno != EAGAIN) {
        int e = errno;
        close(fd);
        return -e;
    }
    sk = malloc(sizeof(*sk));
    if (!sk) {
        close(fd);
        return -ENOMEM;
    }
    if (uv_poll_init_socket(l->loop, &sk->poll, fd) != 0) {
        free(sk);
        close(fd);
        return -EIO;
    }
    sk->fd = fd;
    sk->poll.data = l;
    l->sk = sk;
    l->gen++;
    l->state = L_CONNECTING;
    l->events = 0;
    set_events(l, UV_WRITABLE);
    return 0;
}

/* The connect to the current address failed: the next one, or give up. */
static void try_next(struct nova__redis_link *l, int err)
{
    if (l->sk) {
        if (!uv_is_closing((uv_handle_t *)&l->sk->poll))
            uv_close((uv_handle_t *)&l->sk->poll, close_sock_cb);
        l->sk = NULL;
        l->gen++;
    }
    while (l->ai_next) {
        struct addrinfo *a = l->ai_next;
        l->ai_next = a->ai_next;
        err = -open_socket(l, a->ai_addr, a->ai_addrlen);
        if (err == 0)
            return;
    }
    fail_now(l, -1, true, "connect failed: %s", strerror(err));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct gai *g = (struct gai *)req;
    struct nova__redis_link *l = g->l;
    free(g);
    if (!l) {
        if (res)
            uv_freeaddrinfo(res);
        return;
    }
    l->gai = NULL;
    if (status != 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        fail_now(l, -1, true, "cannot resolve '%s': %s", l->host, uv_strerror(status));
        return;
    }
    l->ai = res;
    l->ai_next = res;
    try_next(l, EHOSTUNREACH);
}

static void attempt(struct nova__redis_link *l)
{
    const char *host = l->t->host, *unix_path = l->t->unix_path;
    int port = l->t->port, rc;
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
        struct sockaddr_un un;
    } a;
    memset(&a, 0, sizeof(a));
    l->waiting = false;
    uv_timer_stop(&l->timer);
    if (l->cbs->address) {
        host = NULL;
        unix_path = NULL;
        if (l->cbs->address(l, l->arg, &host, &port, &unix_path) < 0) {
            schedule(l, -1);
            return;
        }
    }
    l->is_unix = unix_path != NULL;
    if (unix_path) {
        snprintf(l->host, sizeof(l->host), "%s", unix_path);
        snprintf(l->addr, sizeof(l->addr), "%s", unix_path);
    } else {
        snprintf(l->host, sizeof(l->host), "%s", host ? host : "");
        l->port = port;
        snprintf(l->addr, sizeof(l->addr), strchr(l->host, ':') ? "[%s]:%d" : "%s:%d", l->host,
                 port);
    }
    uv_timer_start(&l->timer, on_timer, (uint64_t)l->connect_timeout_ms, 0);
    l->state = L_RESOLVING;
    if (unix_path) {
        if (strlen(unix_path) >= sizeof(a.un.sun_path)) {
            fail_now(l, -1, true, "socket path too long");
            return;
        }
        a.un.sun_family = AF_UNIX;
        strcpy(a.un.sun_path, unix_path);
        rc = open_socket(l, &a.sa, sizeof(a.un));
    } else if (inet_pton(AF_INET, l->host, &a.v4.sin_addr) == 1) {
        a.v4.sin_family = AF_INET;
        a.v4.sin_port = htons((uint16_t)port);
        rc = open_socket(l, &a.sa, sizeof(a.v4));
    } else if (inet_pton(AF_INET6, l->host, &a.v6.sin6_addr) == 1) {
        a.v6.sin6_family = AF_INET6;
        a.v6.sin6_port = htons((uint16_t)port);
        rc = open_socket(l, &a.sa, sizeof(a.v6));
    } else {
        struct addrinfo hints;
        char ports[16];
        struct gai *g = calloc(1, sizeof(*g));
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        snprintf(ports, sizeof(ports), "%d", port);
        if (!g) {
            fail_now(l, -1, true, "out of memory");
            return;
        }
        g->l = l;
        l->gai = g;
        rc = uv_getaddrinfo(l->loop, &g->req, on_resolved, l->host, ports, &hints);
        if (rc != 0) {
            l->gai = NULL;
            free(g);
            fail_now(l, -1, true, "cannot resolve '%s': %s", l->host, uv_strerror(rc));
        }
        return;
    }
    if (rc < 0)
        fail_now(l, -1, true, "connect failed: %s", strerror(-rc));
}

static void on_timer(uv_timer_t *t)
{
    struct nova__redis_link *l = t->data;
    switch (l->state) {
    case L_IDLE:
        attempt(l);
        return;
    case L_RESOLVING:
    case L_CONNECTING:
    case L_TLS:
    case L_HANDSHAKE:
        fail_now(l, -1, true, "connect timed out after %lld ms", (long long)l->connect_timeout_ms);
        return;
    case L_UP: {
        struct nova__redis_cmd *r = l->qhead;
        uint64_t now = uv_now(l->loop), since, allow;
        if (!r || r->block_ms == NOVA__REDIS_UNBOUNDED)
            return;
        since = r->sent_ms > l->last_rx ? r->sent_ms : l->last_rx;
        allow = (uint64_t)l->t->reply_timeout_ms + r->block_ms;
        if (l->t->reply_timeout_ms <= 0)
            allow = NOVA__REDIS_REPLY_TIMEOUT + (uint64_t)r->block_ms;
        if (now > since && now - since > allow)
            fail_now(l, 1, true, "no reply for %llu ms (reply_timeout); reconnecting",
                     (unsigned long long)(now - since));
        return;
    }
    case L_CLOSED:
        return;
    }
}

/* ---- life cycle ------------------------------------------------------------------ */

int nova__redis_link_new(uv_loop_t *loop, const struct nova__redis_link_opts *o,
                         struct nova__redis_link **out)
{
    struct nova__redis_link *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->loop = loop;
    l->t = o->target;
    l->tls_ctx = o->tls;
    l->client_name = o->client_name ? strdup(o->client_name) : NULL;
    l->what = strdup(o->what ? o->what : "redis");
    if ((o->client_name && !l->client_name) || !l->what) {
        free(l->client_name);
        free(l->what);
        free(l);
        return -ENOMEM;
    }
    l->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000;
    l->sentinel = o->sentinel;
    l->want_master = o->want_master;
    l->no_select = o->no_select;
    l->once = o->once;
    l->quiet = o->quiet;
    l->cbs = o->cbs;
    l->arg = o->arg;
    l->backoff_ms = NOVA__REDIS_BACKOFF_MIN_MS;
    l->state = L_IDLE;
    uv_prepare_init(loop, &l->prepare);
    uv_check_init(loop, &l->check);
    uv_timer_init(loop, &l->timer);
    l->prepare.data = l->check.data = l->timer.data = l;
    l->open = 3;
    *out = l;
    attempt(l);
    return 0;
}

bool nova__redis_link_up(const struct nova__redis_link *l)
{
    return l && l->state == L_UP;
}

bool nova__redis_link_failed(const struct nova__redis_link *l)
{
    return l && l->state == L_IDLE && l->failed;
}

void nova__redis_link_reset(struct nova__redis_link *l, const char *why)
{
    if (l->state == L_CLOSED)
        return;
    if (l->state == L_IDLE) {
        attempt(l);
        return;
    }
    fail_now(l, 0, why != NULL, "%s", why ? why : "reset");
}

void nova__redis_link_kick(struct nova__redis_link *l)
{
    if (l->state == L_IDLE)
        attempt(l);
}

static void handle_closed(uv_handle_t *h)
{
    struct nova__redis_link *l = h->data;
    void (*done)(void *);
    void *arg;
    if (--l->open > 0)
        return;
    done = l->done;
    arg = l->done_arg;
    nova__resp_pool_release(&l->pool);
    free(l->obuf);
    free(l->client_name);
    free(l->what);
    free(l);
    if (done)
        done(arg);
}

void nova__redis_link_close(struct nova__redis_link *l, int status, void (*done)(void *), void *arg)
{
    if (l->state == L_CLOSED)
        return;
    l->state = L_CLOSED;
    l->done = done;
    l->done_arg = arg;
    drop_socket(l);
    uv_timer_stop(&l->timer);
    end_all(l, status);
    if (!uv_is_closing((uv_handle_t *)&l->prepare))
        uv_close((uv_handle_t *)&l->prepare, handle_closed);
    if (!uv_is_closing((uv_handle_t *)&l->check))
        uv_close((uv_handle_t *)&l->check, handle_closed);
    if (!uv_is_closing((uv_handle_t *)&l->timer))
        uv_close((uv_handle_t *)&l->timer, handle_closed);
}

const char *nova__redis_link_addr(const struct nova__redis_link *l)
{
    return l->addr;
}

int nova__redis_link_version(const struct nova__redis_link *l)
{
    return l->version;
}

const char *nova__redis_link_error(const struct nova__redis_link *l)
{
    return l->err;
}
