#include "config.h"
#include "queue/redis_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/async.h>

#include "common/log.h"
#include "queue/resp.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct nova__redis_conn {
    uv_loop_t *loop;
    struct nova__redis_target target;
    char *client_name;
    char *what;
    int64_t connect_timeout_ms;
    void (*on_state)(void *arg, bool up);
    void *arg;

    redisAsyncContext *ac; /* NULL while disconnected */
    bool up;
    bool closing;
    int64_t backoff_ms;
    uv_timer_t timer; /* connect timeout, then reconnect delay */
    void (*close_done)(void *arg);
    void *close_arg;

    struct nova__redis_cmd *spares; /* finished requests kept for reuse */
    unsigned nspares;
    struct nova__resp_pool replies; /* arenas the replies are parsed into */
};

static void connect_now(struct nova__redis_conn *c);

/* ---- libuv glue ------------------------------------------------------------
 *
 * Our own version of <hiredis/adapters/libuv.h>, for two reasons.
 *
 * Errors: the stock adapter ignores poll errors, and libuv reports a refused
 * connect as exactly that (POLLERR -> status UV_EBADF), so a connect to a
 * port with nothing behind it would hang until the connect timeout. Here an
 * error hands the socket to hiredis, which reads the real error with
 * getsockopt() and fails the connect (or the connection) at once.
 *
 * Writes: hiredis calls addWrite for every command it queues. The stock
 * adapter arms UV_WRITABLE there, so each request costs epoll_ctl calls to
 * arm and disarm write interest and a whole loop iteration (an epoll_wait
 * that only says "writable") between deciding to send and sending. Here
 * addWrite only marks the connection dirty; a prepare handle (before the
 * loop blocks) and a check handle (right after the poll callbacks, where
 * replies trigger new commands) write whatever the turn queued with one
 * write(). UV_WRITABLE is armed only when that write could not take
 * everything (a full socket buffer), and while connecting, where
 * writability is how a non-blocking connect reports success.
 *
 * The write never happens inside the addWrite hook itself: a failed write
 * makes hiredis disconnect and free the context, and the hook runs inside
 * redisAsyncCommand, which still uses the context after it returns.
 *
 * The three handles share one struct, freed when the last of them is closed.
 */
struct uv_glue {
    redisAsyncContext *ac; /* NULL once hiredis dropped the context */
    uv_poll_t poll;
    uv_prepare_t prepare;
    uv_check_t check;
    int events;    /* what poll is armed for */
    bool dirty;    /* hiredis has output that no write has been tried for */
    bool flushing; /* inside glue_flush: addWrite means "could not finish" */
    int open;      /* handles not yet closed */
};

static void glue_io(uv_poll_t *h, int status, int events)
{
    struct uv_glue *g = h->data;
    if (!g->ac)
        return;
    if (status < 0) {
        if (!(g->ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(g->ac);
        else
            redisAsyncHandleRead(g->ac);
        return;
    }
    if (g->ac && (events & UV_READABLE))
        redisAsyncHandleRead(g->ac);
    if (g->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(g->ac);
}

static void glue_update(struct uv_glue *g, int add, int del)
{
    int events = (g->events | add) & ~del;
    if (events == g->events)
        return; /* re-arming an unchanged mask costs an epoll_ctl per hook */
    g->events = events;
    if (g->events)
        uv_poll_start(&g->poll, g->events, glue_io);
    else
        uv_poll_stop(&g->poll);
}

static void glue_clean(struct uv_glue *g)
{
    g->dirty = false;
    uv_prepare_stop(&g->prepare);
    uv_check_stop(&g->check);
}

/* One write of everything hiredis queued since the last one. */
static void glue_flush(struct uv_glue *g)
{
    glue_clean(g);
    /* While UV_WRITABLE is armed the poll callback writes: a write now
     * would only meet the same full buffer. */
    if (!g->ac || (g->events & UV_WRITABLE))
        return;
    g->flushing = true;
    redisAsyncHandleWrite(g->ac); /* may drop g->ac; g stays valid */
    g->flushing = false;
}

static void glue_on_prepare(uv_prepare_t *h)
{
    glue_flush(h->data);
}

static void glue_on_check(uv_check_t *h)
{
    glue_flush(h->data);
}

static void glue_add_read(void *p)
{
    glue_update(p, UV_READABLE, 0);
}

static void glue_del_read(void *p)
{
    glue_update(p, 0, UV_READABLE);
}

static void glue_add_write(void *p)
{
    struct uv_glue *g = p;
    if (!g->ac)
        return;
    if (g->flushing || !(g->ac->c.flags & REDIS_CONNECTED)) {
        /* The flush could not write everything, or a connect is in
         * progress: wait for the socket. */
        glue_update(g, UV_WRITABLE, 0);
        return;
    }
    if (g->dirty || (g->events & UV_WRITABLE))
        return;
    g->dirty = true;
    uv_prepare_start(&g->prepare, glue_on_prepare);
    uv_check_start(&g->check, glue_on_check);
}

static void glue_del_write(void *p)
{
    struct uv_glue *g = p;
    glue_update(g, 0, UV_WRITABLE);
    if (!g->flushing && g->dirty)
        glue_clean(g); /* written from the poll callback: nothing left */
}

static void glue_closed(uv_handle_t *h)
{
    struct uv_glue *g = h->data;
    if (--g->open == 0)
        free(g);
}

static void glue_cleanup(void *p)
{
    struct uv_glue *g = p;
    g->ac = NULL; /* hiredis frees the context right after this */
    g->dirty = false;
    /* Closing stops the handles, so a dirty connection leaves no pending
     * flush behind. */
    uv_close((uv_handle_t *)&g->poll, glue_closed);
    uv_close((uv_handle_t *)&g->prepare, glue_closed);
    uv_close((uv_handle_t *)&g->check, glue_closed);
}

static int glue_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct uv_glue *g;
    if (ac->ev.data)
        return REDIS_ERR;
    g = calloc(1, sizeof(*g));
    if (!g)
        return REDIS_ERR;
    if (uv_poll_init_socket(loop, &g->poll, ac->c.fd) != 0) {
        free(g);
        return REDIS_ERR;
    }
    /* Neither init can fail on Unix; after the poll's, every handle is
     * open and only close callbacks may free g. */
    uv_prepare_init(loop, &g->prepare);
    uv_check_init(loop, &g->check);
    g->open = 3;
    g->ac = ac;
    g->poll.data = g;
    g->prepare.data = g;
    g->check.data = g;
    ac->ev.addRead = glue_add_read;
    ac->ev.delRead = glue_del_read;
    ac->ev.addWrite = glue_add_write;
    ac->ev.delWrite = glue_del_write;
    ac->ev.cleanup = glue_cleanup;
    ac->ev.data = g;
    return REDIS_OK;
}

/* ---- URL parsing -------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v;
    if (*s == '\0')
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < 0 || v > 65535)
        return -EINVAL;
    *db = (int)v;
    return 0;
}

int nova__redis_url_parse(const char *url, struct nova__redis_target *out, char *err, size_t errlen)
{
    const char *p, *at, *hostend, *slash;
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || !*url) {
        snprintf(err, errlen, "redis url is empty");
        return -EINVAL;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        const char *q = strchr(url + 7, '?');
        size_t n = q ? (size_t)(q - (url + 7)) : strlen(url + 7);
        if (n == 0 || url[7] != '/') {
            snprintf(err, errlen, "redis url: unix:// needs an absolute socket path");
            return -EINVAL;
        }
        out->unix_path = strndup(url + 7, n);
        if (q && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &out->db) < 0)) {
            snprintf(err, errlen, "redis url: bad query '%s' (only ?db=N)", q);
            nova__redis_target_free(out);
            return -EINVAL;
        }
        return out->unix_path ? 0 : -ENOMEM;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen,
                 "redis url must start with redis:// or unix:// (rediss:// needs "
                 "TLS, not available with hiredis 0.14)");
        return -EINVAL;
    }
    p = url + 8;
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                out->username = pct_decode(p, (size_t)(colon - p));
            out->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        } else {
            out->password = pct_decode(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    {
        const char *colon = NULL;
        if (*p == '[') { /* [ipv6]:port */
            const char *rb = memchr(p, ']', (size_t)(hostend - p));
            if (!rb) {
                snprintf(err, errlen, "redis url: unterminated [ipv6] host");
                nova__redis_target_free(out);
                return -EINVAL;
            }
            out->host = strndup(p + 1, (size_t)(rb - p - 1));
            if (rb + 1 < hostend && rb[1] == ':')
                colon = rb + 1;
        } else {
            colon = memchr(p, ':', (size_t)(hostend - p));
            out->host = strndup(p, (size_t)((colon ? colon : hostend) - p));
        }
        if (!out->host || !*out->host) {
            snprintf(err, errlen, "redis url: missing host");
            nova__redis_target_free(out);
            return -EINVAL;
        }
        if (colon) {
            char buf[8];
            size_t n = (size_t)(hostend - colon - 1);
            char *end;
            long port;
            if (n == 0 || n >= sizeof(buf)) {
                snprintf(err, errlen, "redis url: bad port");
                nova__redis_target_free(out);
                return -EINVAL;
            }
            memcpy(buf, colon + 1, n);
            buf[n] = '\0';
            port = strtol(buf, &end, 10);
            if (*end != '\0' || port < 1 || port > 65535) {
                snprintf(err, errlen, "redis url: bad port '%s'", buf);
                nova__redis_target_free(out);
                return -EINVAL;
            }
            out->port = (int)port;
        }
    }
    if (slash && parse_db(slash + 1, &out->db) < 0) {
        snprintf(err, errlen, "redis url: bad database number '%s'", slash + 1);
        nova__redis_target_free(out);
        return -EINVAL;
    }
    return 0;
}

void nova__redis_target_free(struct nova__redis_target *t)
{
    free(t->host);
    free(t->unix_path);
    free(t->username);
    free(t->password);
    memset(t, 0, sizeof(*t));
}

static int target_copy(struct nova__redis_target *dst, const struct nova__redis_target *src)
{
    *dst = *src;
    dst->host = src->host ? strdup(src->host) : NULL;
    dst->unix_path = src->unix_path ? strdup(src->unix_path) : NULL;
    dst->username = src->username ? strdup(src->username) : NULL;
    dst->password = src->password ? strdup(src->password) : NULL;
    if ((src->host && !dst->host) || (src->unix_path && !dst->unix_path) ||
        (src->username && !dst->username) || (src->password && !dst->password)) {
        nova__redis_target_free(dst);
        return -ENOMEM;
    }
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

/*
 * A request is built in place as RESP text (struct nova__redis_cmd is the
 * caller's name for it): the arguments are appended after HEADROOM bytes,
 * and at send time the head (`*N`, and `EVALSHA sha nkeys` for scripts)
 * is written right-aligned into the headroom, so the whole command goes to
 * hiredis as one formatted buffer. The buffer is kept until the reply, so
 * a NOSCRIPT answer can be replayed as EVAL from the same arguments.
 * Finished requests are kept (up to SPARES_MAX) for the next command.
 */
#define HEADROOM   128 /* longest head: `*N EVALSHA <sha> <nkeys>`, ~110 bytes */
#define SPARES_MAX 4
#define SPARE_CAP  (64 * 1024) /* larger buffers are not kept */

struct nova__redis_cmd {
    struct nova__redis_cmd *next_spare;
    struct nova__redis_conn *conn;
    nova__redis_cb cb;
    void *arg;
    struct nova__redis_script *script; /* set for EVALSHA */
    int nkeys;
    bool oom;     /* an append failed: the send reports -ENOMEM */
    size_t argc;  /* arguments appended */
    char *buf;    /* HEADROOM bytes, then the arguments */
    size_t len;   /* end of the arguments in buf */
    size_t cap;   /* bytes allocated for buf */
    size_t start; /* where the head begins once written */
};

static void request_free(struct nova__redis_cmd *r)
{
    free(r->buf);
    free(r);
}

/* Back to the connection's spares, or freed. */
static void request_release(struct nova__redis_cmd *r)
{
    struct nova__redis_conn *c = r->conn;
    if (NOVA__RESP_REUSE && c->nspares < SPARES_MAX && r->cap <= SPARE_CAP) {
        r->next_spare = c->spares;
        c->spares = r;
        c->nspares++;
        return;
    }
    request_free(r);
}

static void spares_free(struct nova__redis_conn *c)
{
    while (c->spares) {
        struct nova__redis_cmd *r = c->spares;
        c->spares = r->next_spare;
        request_free(r);
    }
    c->nspares = 0;
}

static bool request_reserve(struct nova__redis_cmd *r, size_t more)
{
    size_t cap;
    char *nb;
    if (r->oom)
        return false;
    if (r->cap - r->len >= more)
        return true;
    cap = r->cap * 2;
    if (cap < r->len + more)
        cap = r->len + more;
    nb = realloc(r->buf, cap);
    if (!nb) {
        r->oom = true;
        return false;
    }
    r->buf = nb;
    r->cap = cap;
    return true;
}

struct nova__redis_cmd *nova__redis_cmd_new(struct nova__redis_conn *c, size_t size_hint)
{
    struct nova__redis_cmd *r = c->spares;
    if (r) {
        c->spares = r->next_spare;
        c->nspares--;
    } else {
        r = calloc(1, sizeof(*r));
        if (!r)
            return NULL;
    }
    r->next_spare = NULL;
    r->conn = c;
    r->cb = NULL;
    r->arg = NULL;
    r->script = NULL;
    r->nkeys = 0;
    r->oom = false;
    r->argc = 0;
    r->len = HEADROOM;
    r->start = HEADROOM;
    if (r->cap < HEADROOM + size_hint) {
        size_t cap = HEADROOM + (size_hint > 256 ? size_hint : 256);
        char *nb = realloc(r->buf, cap);
        if (!nb) {
            request_free(r);
            return NULL;
        }
        r->buf = nb;
        r->cap = cap;
    }
    return r;
}

void nova__redis_cmd_arg(struct nova__redis_cmd *r, const void *s, size_t len)
{
    /* `$` + up to 20 digits + CRLF + bytes + CRLF */
    if (!request_reserve(r, len + 25))
        return;
    r->len = (size_t)(nova__resp_put_arg(r->buf + r->len, s, len) - r->buf);
    r->argc++;
}

void nova__redis_cmd_str(struct nova__redis_cmd *r, const char *s)
{
    nova__redis_cmd_arg(r, s, strlen(s));
}

void nova__redis_cmd_i64(struct nova__redis_cmd *r, int64_t v)
{
    char num[NOVA__RESP_I64_MAX];
    nova__redis_cmd_arg(r, num, nova__resp_i64(num, v));
}

char *nova__redis_cmd_room(struct nova__redis_cmd *r, size_t bytes)
{
    if (!request_reserve(r, bytes))
        return NULL;
    return r->buf + r->len;
}

void nova__redis_cmd_wrote(struct nova__redis_cmd *r, char *end, size_t nargs)
{
    r->len = (size_t)(end - r->buf);
    r->argc += nargs;
}

void nova__redis_cmd_drop(struct nova__redis_cmd *r)
{
    if (r)
        request_release(r);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Writes the head into the headroom; false if the arguments overflowed. */
static bool request_seal(struct nova__redis_cmd *r)
{
    size_t argc = r->script ? r->argc + 3 : r->argc;
    char *p, head[HEADROOM];
    /* hiredis reads the command as a C string (strchr for the first
     * argument, and one byte past it): end it with a NUL, as its sds do. */
    if (!request_reserve(r, 1))
        return false;
    r->buf[r->len] = '\0';
    p = nova__resp_put_header(head, argc);
    if (r->script) {
        char nk[NOVA__RESP_I64_MAX];
        p = nova__resp_put_arg(p, "EVALSHA", 7);
        p = nova__resp_put_arg(p, r->script->sha, 40);
        p = nova__resp_put_arg(p, nk, nova__resp_i64(nk, r->nkeys));
    }
    r->start = HEADROOM - (size_t)(p - head);
    memcpy(r->buf + r->start, head, (size_t)(p - head));
    return true;
}

/* Hands the sealed command to hiredis (which copies it), up or not:
 * the handshake sends before the connection counts as up. */
static int request_send_raw(struct nova__redis_cmd *r)
{
    struct nova__redis_conn *c = r->conn;
    if (!c->ac)
        return -ENOTCONN;
    if (redisAsyncFormattedCommand(c->ac, on_reply, r, r->buf + r->start, r->len - r->start) !=
        REDIS_OK)
        return -ENOTCONN;
    return 0;
}

static int request_send(struct nova__redis_cmd *r)
{
    if (!r->conn->ac || !r->conn->up)
        return -ENOTCONN;
    return request_send_raw(r);
}

static void on_script_loaded(void *arg, int status, const redisReply *reply)
{
    struct nova__redis_script *s = arg;
    s->loading = false;
    if (status == 0 && reply->type == REDIS_REPLY_STRING && reply->len == 40)
        memcpy(s->sha, reply->str, 41);
}

/* EVAL of the full source both runs the script and caches it, so the
 * next EVALSHA succeeds without a separate round trip. The arguments are
 * the request's own, after its headroom. */
static int send_as_eval(struct nova__redis_cmd *r)
{
    struct nova__redis_conn *c = r->conn;
    struct nova__redis_script *s = r->script;
    size_t srclen = strlen(s->source), args = r->len - HEADROOM;
    char nk[NOVA__RESP_I64_MAX];
    size_t nklen = nova__resp_i64(nk, r->nkeys);
    size_t size = nova__resp_header_size(r->argc + 3) + nova__resp_arg_size(4) +
                  nova__resp_arg_size(srclen) + nova__resp_arg_size(nklen) + args;
    char *text, *p;
    const char *load[3] = {"SCRIPT", "LOAD", s->source};
    int rc;
    if (!c->ac || !c->up)
        return -ENOTCONN;
    text = malloc(size + 1); /* + NUL, see request_seal */
    if (!text)
        return -ENOMEM;
    p = nova__resp_put_header(text, r->argc + 3);
    p = nova__resp_put_arg(p, "EVAL", 4);
    p = nova__resp_put_arg(p, s->source, srclen);
    p = nova__resp_put_arg(p, nk, nklen);
    memcpy(p, r->buf + HEADROOM, args);
    p[args] = '\0';
    rc = redisAsyncFormattedCommand(c->ac, on_reply, r, text, size) == REDIS_OK ? 0 : -ENOTCONN;
    free(text);
    if (rc == 0 && s->sha[0] == '\0' && !s->loading &&
        nova__redis_conn_command(c, on_script_loaded, s, 3, load, NULL) == 0)
        s->loading = true;
    return rc;
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct nova__redis_cmd *r = privdata;
    redisReply *reply = reply_;
    struct nova__redis_conn *c = r->conn;
    if (!reply) {
        /* The context is going away: make nested calls fail fast. */
        if (ac == c->ac)
            c->up = false;
        r->cb(r->arg, c->closing ? -ECANCELED : -ECONNRESET, NULL);
        request_release(r);
        return;
    }
    if (r->script && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        r->script->sha[0] = '\0';
        if (send_as_eval(r) == 0)
            return;
        r->cb(r->arg, -ECONNRESET, NULL);
        request_release(r);
        return;
    }
    r->cb(r->arg, 0, reply);
    request_release(r);
}

int nova__redis_conn_send(struct nova__redis_cmd *r, nova__redis_cb cb, void *arg)
{
    int rc;
    r->cb = cb;
    r->arg = arg;
    if (!request_seal(r))
        rc = -ENOMEM;
    else
        rc = request_send(r);
    if (rc < 0)
        request_release(r);
    return rc;
}

int nova__redis_conn_send_eval(struct nova__redis_cmd *r, struct nova__redis_script *script,
                               int nkeys, nova__redis_cb cb, void *arg)
{
    int rc;
    r->cb = cb;
    r->arg = arg;
    r->script = script;
    r->nkeys = nkeys;
    if (r->oom)
        rc = -ENOMEM;
    else if (!script->sha[0])
        rc = send_as_eval(r);
    else if (!request_seal(r))
        rc = -ENOMEM;
    else
        rc = request_send(r);
    if (rc < 0)
        request_release(r);
    return rc;
}

/* Bytes the arguments take, roughly (for the first allocation). */
static size_t args_size(int argc, const char *const *argv, const size_t *argvlen)
{
    size_t n = 0;
    for (int i = 0; i < argc; i++)
        n += (argvlen ? argvlen[i] : strlen(argv[i])) + 16;
    return n;
}

static struct nova__redis_cmd *cmd_from_argv(struct nova__redis_conn *c, int argc,
                                             const char *const *argv, const size_t *argvlen)
{
    struct nova__redis_cmd *r = nova__redis_cmd_new(c, args_size(argc, argv, argvlen));
    if (!r)
        return NULL;
    for (int i = 0; i < argc; i++)
        nova__redis_cmd_arg(r, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    return r;
}

int nova__redis_conn_command(struct nova__redis_conn *c, nova__redis_cb cb, void *arg, int argc,
                             const char *const *argv, const size_t *argvlen)
{
    struct nova__redis_cmd *r;
    if (!c->up || !c->ac)
        return -ENOTCONN;
    r = cmd_from_argv(c, argc, argv, argvlen);
    if (!r)
        return -ENOMEM;
    return nova__redis_conn_send(r, cb, arg);
}

int nova__redis_conn_eval(struct nova__redis_conn *c, struct nova__redis_script *script,
                          nova__redis_cb cb, void *arg, int nkeys, int argc,
                          const char *const *argv, const size_t *argvlen)
{
    struct nova__redis_cmd *r;
    if (!c->up || !c->ac)
        return -ENOTCONN;
    r = cmd_from_argv(c, argc, argv, argvlen);
    if (!r)
        return -ENOMEM;
    return nova__redis_conn_send_eval(r, script, nkeys, cb, arg);
}

/* ---- connection life cycle ----------------------------------------------- */

static void log_conn(struct nova__redis_conn *c, enum nova_log_level lvl, const char *msg,
                     const char *detail)
{
    if (c->target.unix_path)
        nova__log(lvl, NULL, "redis %s connection %s: %s %s", c->what, c->target.unix_path, msg,
                  detail ? detail : "");
    else
        nova__log(lvl, NULL, "redis %s connection %s:%d: %s %s", c->what, c->target.host,
                  c->target.port, msg, detail ? detail : "");
}

static void on_timer(uv_timer_t *t)
{
    struct nova__redis_conn *c = t->data;
    if (c->ac && !c->up) {
        log_conn(c, NOVA_LOG_WARN, "connect timed out", NULL);
        nova__redis_conn_reset(c);
    } else if (!c->ac && !c->closing) {
        connect_now(c);
    }
}

static void schedule_reconnect(struct nova__redis_conn *c)
{
    if (c->closing)
        return;
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->backoff_ms, 0);
    c->backoff_ms *= 2;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
}

/* Forgets the context (callbacks of the old one are ignored) and frees it. */
static void drop(struct nova__redis_conn *c)
{
    redisAsyncContext *ac = c->ac;
    bool was_up = c->up;
    c->ac = NULL;
    c->up = false;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    if (was_up && c->on_state && !c->closing)
        c->on_state(c->arg, false);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct nova__redis_conn *c = ac->data;
    bool was_up;
    if (!c || c->ac != ac)
        return;
    was_up = c->up;
    c->ac = NULL;
    c->up = false;
    if (!c->closing)
        log_conn(c, NOVA_LOG_WARN, "lost", status != REDIS_OK ? ac->errstr : NULL);
    if (was_up && c->on_state && !c->closing)
        c->on_state(c->arg, false);
    schedule_reconnect(c);
}

static void on_handshake(void *arg, int status, const redisReply *reply)
{
    struct nova__redis_conn *c = arg;
    if (status < 0)
        return; /* the disconnect path handles it */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_conn(c, NOVA_LOG_ERROR, "handshake failed:", reply->str);
        nova__redis_conn_reset(c);
        return;
    }
}

static void on_ready(void *arg, int status, const redisReply *reply)
{
    struct nova__redis_conn *c = arg;
    if (status < 0 || !c->ac)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* NOAUTH, LOADING after a restart, ...: try again later. */
        log_conn(c, NOVA_LOG_WARN, "not ready:", reply->str);
        drop(c);
        schedule_reconnect(c);
        return;
    }
    uv_timer_stop(&c->timer);
    c->up = true;
    c->backoff_ms = BACKOFF_MIN_MS;
    log_conn(c, NOVA_LOG_DEBUG, "ready", NULL);
    if (c->on_state)
        c->on_state(c->arg, true);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct nova__redis_conn *c = ac->data;
    if (!c || c->ac != ac)
        return;
    if (status != REDIS_OK) {
        log_conn(c, NOVA_LOG_WARN, "connect failed:", ac->errstr);
        c->ac = NULL; /* hiredis frees it after this callback */
        schedule_reconnect(c);
        return;
    }
    /* Pipeline the handshake; commands are answered in order, so the
     * final PING tells that everything before it succeeded. */
    c->up = true;
    {
        char db[16];
        const char *auth[3] = {"AUTH", c->target.username, c->target.password};
        const char *sel[2] = {"SELECT", db};
        const char *name[3] = {"CLIENT", "SETNAME", c->client_name};
        const char *ping[1] = {"PING"};
        snprintf(db, sizeof(db), "%d", c->target.db);
        if (c->target.password) {
            if (c->target.username)
                nova__redis_conn_command(c, on_handshake, c, 3, auth, NULL);
            else {
                auth[1] = c->target.password;
                nova__redis_conn_command(c, on_handshake, c, 2, auth, NULL);
            }
        }
        if (c->target.db)
            nova__redis_conn_command(c, on_handshake, c, 2, sel, NULL);
        if (c->client_name)
            nova__redis_conn_command(c, on_handshake, c, 3, name, NULL);
        c->up = false;
        /* Sent while not yet "up" so user commands cannot slip in first. */
        {
            struct nova__redis_cmd *r = cmd_from_argv(c, 1, ping, NULL);
            if (r) {
                r->cb = on_ready;
                r->arg = c;
            }
            if (!r || !request_seal(r) || request_send_raw(r) < 0) {
                nova__redis_cmd_drop(r);
                nova__redis_conn_reset(c);
                return;
            }
        }
    }
}

static void connect_now(struct nova__redis_conn *c)
{
    redisAsyncContext *ac;
    if (c->target.unix_path)
        ac = redisAsyncConnectUnix(c->target.unix_path);
    else
        ac = redisAsyncConnect(c->target.host, c->target.port);
    if (!ac || ac->err) {
        log_conn(c, NOVA_LOG_WARN, "connect failed:", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    ac->data = c;
    if (glue_attach(ac, c->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    nova__resp_reader_use(ac->c.reader, &c->replies);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->connect_timeout_ms, 0);
}

int nova__redis_conn_new(uv_loop_t *loop, const struct nova__redis_conn_opts *opts,
                         struct nova__redis_conn **out)
{
    struct nova__redis_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    if (target_copy(&c->target, opts->target) < 0) {
        free(c);
        return -ENOMEM;
    }
    c->client_name = opts->client_name ? strdup(opts->client_name) : NULL;
    c->what = strdup(opts->what ? opts->what : "redis");
    if ((opts->client_name && !c->client_name) || !c->what) {
        nova__redis_target_free(&c->target);
        free(c->client_name);
        free(c->what);
        free(c);
        return -ENOMEM;
    }
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    c->on_state = opts->on_state;
    c->arg = opts->arg;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    connect_now(c);
    *out = c;
    return 0;
}

bool nova__redis_conn_up(const struct nova__redis_conn *c)
{
    return c && c->up && c->ac;
}

void nova__redis_conn_reset(struct nova__redis_conn *c)
{
    if (c->closing)
        return;
    drop(c);
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void on_closed(uv_handle_t *h)
{
    struct nova__redis_conn *c = h->data;
    void (*done)(void *) = c->close_done;
    void *arg = c->close_arg;
    spares_free(c);
    nova__resp_pool_release(&c->replies);
    nova__redis_target_free(&c->target);
    free(c->client_name);
    free(c->what);
    free(c);
    if (done)
        done(arg);
}

void nova__redis_conn_close(struct nova__redis_conn *c, void (*done)(void *arg), void *arg)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_done = done;
    c->close_arg = arg;
    uv_timer_stop(&c->timer);
    drop(c);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}
