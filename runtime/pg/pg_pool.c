/*
 * pg_pool - see pg_pool.h for the behaviour; this file is the machinery.
 *
 * Each connection (struct conn) owns a PGconn, a uv_timer_t (connect
 * timeout, then the per-statement guard) and a uv_poll_t on the libpq
 * socket. The poll handle is allocated apart from the connection because
 * libpq may swap sockets while connecting; an old poll handle then closes
 * on its own while the connection goes on. A connection is freed from the
 * close callback of its timer, which is always closed after its poll.
 *
 * Requests (struct req) carry a private copy of the SQL and parameters,
 * so the plugin's buffers are free the moment a call returns. A request
 * waits in the pool's FIFO until a connection is idle, runs there, and is
 * completed exactly once: by its result, by its connection's death, by a
 * deferred completion (a pool-level zero timer, used when an answer is
 * known inside an API call that must not call back synchronously) or by
 * the pool shutting down.
 *
 * Before a callback runs, the connection is already back in a consistent
 * state, so callbacks may issue new requests, commit, or close nothing.
 */
#include "config.h"
#include "pg/pg_pool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "common/metrics.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   5000
#define IDLE_TIMEOUT_MS  30000 /* extra connections above pool_min close after this */
#define ERRLEN           512
#define SLOW_SQL_MAX     200

/* Type OIDs from pg_type.h (stable since forever; the header is server-side). */
#define OID_BOOL    16
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_OID     26
#define OID_FLOAT4  700
#define OID_FLOAT8  701
#define OID_NUMERIC 1700

/* ---- intrusive lists ---------------------------------------------------- */

struct link {
    struct link *prev, *next;
};

static void list_init(struct link *head)
{
    head->prev = head->next = head;
}

static bool list_empty(const struct link *head)
{
    return head->next == head;
}

static void list_push_back(struct link *head, struct link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void list_push_front(struct link *head, struct link *l)
{
    l->next = head->next;
    l->prev = head;
    head->next->prev = l;
    head->next = l;
}

static void list_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

/* Moves every element of from to the (empty) to. */
static void list_move_all(struct link *from, struct link *to)
{
    list_init(to);
    if (list_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- types -------------------------------------------------------------- */

enum req_kind { REQ_QUERY, REQ_BEGIN, REQ_LEASE_QUERY, REQ_COMMIT, REQ_ROLLBACK };

struct conn;

struct req {
    struct link link; /* waiters or deferred */
    enum req_kind kind;
    const struct nova_host *owner; /* NULL for the runtime's own requests */
    nova_pg_cb cb;
    nova_pg_lease_cb lease_cb;
    void *arg;
    struct nova_pg_lease *lease; /* lease ops */
    char *sql;
    int nparams;
    const char **params;
    uint64_t start_ns;
    bool detached; /* owner gone: complete silently */
    /* deferred completion */
    int status;
    char sqlstate[6];
    char message[ERRLEN];
};

enum conn_state { C_CONNECTING, C_IDLE, C_BUSY, C_LEASED, C_CLOSING };

struct conn {
    struct link link;      /* pool->conns */
    struct link idle_link; /* pool->idle while C_IDLE */
    struct nova__pg_pool *pool;
    PGconn *pg;
    uv_poll_t *poll;
    int poll_fd;
    int poll_events;
    uv_timer_t timer;
    enum conn_state state;
    struct req *req;             /* running statement */
    struct nova_pg_lease *lease; /* while C_LEASED */
    bool flushing;
    bool doomed;         /* the server sent FATAL while idle: EOF follows */
    uint64_t idle_since; /* uv_hrtime() when it last became idle */
    PGresult *result;    /* first error, else last result */
};

struct nova_pg_lease {
    struct link link; /* pool->leases */
    struct nova__pg_pool *pool;
    struct conn *conn; /* NULL once the connection died */
    const struct nova_host *owner;
};

struct nova_pg_result {
    PGresult *res; /* NULL for client-side errors */
    const char *sqlstate;
    const char *message;
};

struct nova__pg_pool {
    uv_loop_t *loop;
    struct nova__postgres_config cfg;
    char *dsn;
    char *password; /* scrubbed from messages */
    char options[256];
    const char *keys[10];
    const char *vals[10];

    struct link conns, idle, waiters, deferred, leases;
    unsigned open, connecting, in_use, waiting, max_open;
    unsigned shown_open, shown_in_use, shown_waiting; /* last published */

    uv_timer_t backoff_timer;
    uv_timer_t reap_timer;
    uint64_t idle_timeout_ms;
    uv_timer_t defer_timer;
    uint64_t backoff_ms;
    uint64_t next_connect_ms; /* uv_now() before which no new attempt starts */
    unsigned failures;        /* consecutive failed attempts */
    char last_error[ERRLEN];
    char logged_error[ERRLEN];
    uint64_t logged_at_ms;

    bool closing;
    unsigned live_conns; /* allocated, not yet freed */
    unsigned live_handles;
    void (*done)(void *arg);
    void *done_arg;
};

static nova_metric *m_size, *m_in_use, *m_waiting, *m_duration;

static void dispatch(struct nova__pg_pool *p);
static void maintain(struct nova__pg_pool *p);
static void drop_conn(struct conn *c, int status, const char *sqlstate, const char *msg);
static void on_poll(uv_poll_t *h, int status, int events);

/* ---- small helpers ------------------------------------------------------ */

static void register_metrics(void)
{
    static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    m_size = nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_pg_pool_size",
                              "Open PostgreSQL connections.", NULL, NULL, 0);
    m_in_use =
        nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_pg_pool_in_use",
                         "PostgreSQL connections running a statement or leased.", NULL, NULL, 0);
    m_waiting = nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_pg_pool_waiting",
                                 "Requests waiting for a PostgreSQL connection.", NULL, NULL, 0);
    m_duration = nova__metric_new(NOVA_METRIC_HISTOGRAM, "nova_worker_pg_query_duration_seconds",
                                  "PostgreSQL statement duration, send to last result.", NULL,
                                  buckets, sizeof buckets / sizeof buckets[0]);
}

/* Publishes the gauges; only changed values, since each set takes the
 * registry's mutex and this runs several times per statement. */
static void update_gauges(struct nova__pg_pool *p)
{
    if (p->open + p->connecting > p->max_open)
        p->max_open = p->open + p->connecting;
    if (m_size != NULL && p->shown_open != p->open)
        nova__metric_set(m_size, NULL, p->shown_open = p->open);
    if (m_in_use != NULL && p->shown_in_use != p->in_use)
        nova__metric_set(m_in_use, NULL, p->shown_in_use = p->in_use);
    if (m_waiting != NULL && p->shown_waiting != p->waiting)
        nova__metric_set(m_waiting, NULL, p->shown_waiting = p->waiting);
}

void nova__pg_one_line(char *dst, size_t len, const char *src, const char *password)
{
    size_t o = 0;
    bool space = true; /* also trims leading blanks */
    size_t plen = password != NULL ? strlen(password) : 0;

    if (len == 0)
        return;
    for (const char *s = src != NULL ? src : ""; *s != '\0' && o + 1 < len; s++) {
        if (plen >= 3 && strncmp(s, password, plen) == 0) {
            for (const char *m = "***"; *m != '\0' && o + 1 < len; m++)
                dst[o++] = *m;
            s += plen - 1;
            space = false;
            continue;
        }
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f || ch == ' ') {
            if (!space)
                dst[o++] = ' ';
            space = true;
            continue;
        }
        dst[o++] = (char)ch;
        space = false;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

static uint64_t now_ms(const struct nova__pg_pool *p)
{
    return uv_now(p->loop);
}

static struct nova__log_ctx owner_ctx(const struct nova_host *owner)
{
    struct nova__log_ctx ctx = {.plugin = owner != NULL ? owner->plugin_name : NULL};
    return ctx;
}

/* Maps a server error to the status passed to callbacks (see nova/pg.h). */
static int status_of_sqlstate(const char *st)
{
    if (st == NULL || strlen(st) != 5)
        return -EINVAL;
    if (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0)
        return -ECONNRESET;
    if (strcmp(st, "57P03") == 0)
        return -ECONNREFUSED;
    if (strcmp(st, "57014") == 0)
        return -ETIMEDOUT;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strncmp(st, "53", 2) == 0)
        return -EAGAIN;
    return -EINVAL;
}

/* ---- requests ----------------------------------------------------------- */

static struct req *req_new(enum req_kind kind, const struct nova_host *owner, const char *sql,
                           int nparams, const char *const *params)
{
    size_t size = sizeof(struct req) + strlen(sql) + 1 + (size_t)nparams * sizeof(char *);
    for (int i = 0; i < nparams; i++)
        size += params[i] != NULL ? strlen(params[i]) + 1 : 0;
    struct req *r = calloc(1, size);
    if (r == NULL)
        return NULL;
    char *mem = (char *)(r + 1);
    r->params = (const char **)(void *)mem;
    mem += (size_t)nparams * sizeof(char *);
    r->sql = mem;
    mem = stpcpy(mem, sql) + 1;
    for (int i = 0; i < nparams; i++) {
        if (params[i] == NULL) {
            r->params[i] = NULL;
            continue;
        }
        r->params[i] = mem;
        mem = stpcpy(mem, params[i]) + 1;
    }
    list_init(&r->link);
    r->kind = kind;
    r->owner = owner;
    r->nparams = nparams;
    return r;
}

static void lease_free(struct nova_pg_lease *l)
{
    list_remove(&l->link);
    free(l);
}

/*
 * Runs a request's callback once and frees it. For a lease op the lease
 * must already be settled by the caller. res may be NULL for client-side
 * failures, described by status/sqlstate/message.
 */
static void req_complete(struct req *r, int status, PGresult *pgres, const char *sqlstate,
                         const char *message, struct nova_pg_lease *new_lease)
{
    char msg[ERRLEN];
    struct nova_pg_result res = {.res = pgres, .sqlstate = "", .message = ""};

    if (status != 0) {
        if (pgres != NULL && PQresultStatus(pgres) == PGRES_FATAL_ERROR) {
            const char *st = PQresultErrorField(pgres, PG_DIAG_SQLSTATE);
            const char *prim = PQresultErrorField(pgres, PG_DIAG_MESSAGE_PRIMARY);
            char line[ERRLEN - 8];
            nova__pg_one_line(line, sizeof line, prim != NULL ? prim : PQresultErrorMessage(pgres),
                              NULL);
            res.sqlstate = st != NULL ? st : "XX000";
            snprintf(msg, sizeof msg, "%s: %s", res.sqlstate, line);
        } else {
            res.sqlstate = sqlstate != NULL ? sqlstate : "XX000";
            snprintf(msg, sizeof msg, "%s: %s", res.sqlstate, message != NULL ? message : "");
        }
        res.message = msg;
    }
    if (!r->detached) {
        if (r->kind == REQ_BEGIN) {
            if (r->lease_cb != NULL)
                r->lease_cb(r->arg, status, status == 0 ? new_lease : NULL, &res);
        } else if (r->cb != NULL) {
            r->cb(r->arg, status, &res);
        }
    }
    free(r);
}

/* ---- deferred completions ----------------------------------------------- */

static void on_defer(uv_timer_t *t)
{
    struct nova__pg_pool *p = t->data;
    struct link batch;

    list_move_all(&p->deferred, &batch);
    while (!list_empty(&batch)) {
        struct req *r = container_of(batch.next, struct req, link);
        list_remove(&r->link);
        req_complete(r, r->status, NULL, r->sqlstate, r->message, NULL);
    }
}

/* Completes r from the loop, soon, never from inside the current call. */
static void defer(struct nova__pg_pool *p, struct req *r, int status, const char *sqlstate,
                  const char *message)
{
    r->status = status;
    snprintf(r->sqlstate, sizeof r->sqlstate, "%s", sqlstate != NULL ? sqlstate : "");
    snprintf(r->message, sizeof r->message, "%s", message != NULL ? message : "");
    list_push_back(&p->deferred, &r->link);
    uv_timer_start(&p->defer_timer, on_defer, 0, 0);
}

/* ---- connection handles ------------------------------------------------- */

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void close_poll(struct conn *c)
{
    if (c->poll != NULL) {
        uv_close((uv_handle_t *)c->poll, on_poll_closed);
        c->poll = NULL;
        c->poll_events = 0;
    }
}

static void maybe_finish_close(struct nova__pg_pool *p)
{
    if (!p->closing || p->live_conns > 0 || p->live_handles > 0)
        return;
    void (*done)(void *) = p->done;
    void *arg = p->done_arg;
    free(p->dsn);
    free(p->password);
    free(p);
    if (done != NULL)
        done(arg);
}

static void on_conn_freed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct nova__pg_pool *p = c->pool;
    free(c);
    p->live_conns--;
    maybe_finish_close(p);
}

/*
 * Watches the socket for events. force re-registers even when nothing
 * changed: while connecting, libpq may close a socket and open another
 * that reuses the same number, which epoll would otherwise not see.
 */
static int conn_watch(struct conn *c, int events, bool force)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -EBADF;
    if (c->poll != NULL && (force || c->poll_fd != fd))
        close_poll(c);
    if (c->poll == NULL) {
        c->poll = malloc(sizeof *c->poll);
        if (c->poll == NULL)
            return -ENOMEM;
        int rc = uv_poll_init_socket(c->pool->loop, c->poll, fd);
        if (rc != 0) {
            free(c->poll);
            c->poll = NULL;
            return rc;
        }
        c->poll->data = c;
        c->poll_fd = fd;
    }
    if (events != c->poll_events) {
        int rc = uv_poll_start(c->poll, events, on_poll);
        if (rc != 0)
            return rc;
        c->poll_events = events;
    }
    return 0;
}

/* Unlinks c from every list and counter and closes it. Does not touch
 * c->req or c->lease: callers settle those first. */
static void conn_close(struct conn *c)
{
    struct nova__pg_pool *p = c->pool;
    if (c->state == C_CLOSING)
        return;
    if (c->state == C_CONNECTING)
        p->connecting--;
    else
        p->open--;
    if (c->state == C_IDLE)
        list_remove(&c->idle_link);
    if (c->state == C_BUSY || c->state == C_LEASED)
        p->in_use--;
    c->state = C_CLOSING;
    list_remove(&c->link);
    close_poll(c); /* before PQfinish closes the socket under it */
    if (c->result != NULL) {
        PQclear(c->result);
        c->result = NULL;
    }
    PQfinish(c->pg);
    c->pg = NULL;
    uv_close((uv_handle_t *)&c->timer, on_conn_freed);
    update_gauges(p);
}

/* ---- connecting --------------------------------------------------------- */

static void log_connect_error(struct nova__pg_pool *p)
{
    uint64_t now = now_ms(p);
    /* One line per distinct error, repeated at most once a minute. */
    if (strcmp(p->logged_error, p->last_error) == 0 && now - p->logged_at_ms < 60000)
        return;
    snprintf(p->logged_error, sizeof p->logged_error, "%s", p->last_error);
    p->logged_at_ms = now;
    nova__log(NOVA_LOG_ERROR, NULL, "postgres: connection failed: %s", p->last_error);
}

static void fail_waiters(struct nova__pg_pool *p, int status, const char *sqlstate,
                         const char *message)
{
    struct link batch;
    list_move_all(&p->waiters, &batch);
    p->waiting = 0;
    update_gauges(p);
    while (!list_empty(&batch)) {
        struct req *r = container_of(batch.next, struct req, link);
        list_remove(&r->link);
        req_complete(r, status, NULL, sqlstate, message, NULL);
    }
}

static void connect_failed(struct conn *c, const char *why)
{
    struct nova__pg_pool *p = c->pool;

    nova__pg_one_line(p->last_error, sizeof p->last_error, why, p->password);
    if (p->last_error[0] == '\0')
        snprintf(p->last_error, sizeof p->last_error, "connection failed");
    conn_close(c);
    p->failures++;
    p->backoff_ms = p->backoff_ms == 0 ? BACKOFF_FIRST_MS : p->backoff_ms * 2;
    if (p->backoff_ms > BACKOFF_MAX_MS)
        p->backoff_ms = BACKOFF_MAX_MS;
    p->next_connect_ms = now_ms(p) + p->backoff_ms;
    if (p->closing)
        return;
    log_connect_error(p);
    /* Nobody can serve the queue: fail it rather than let it wait for a
     * database that may stay down. */
    if (p->open == 0 && p->connecting == 0 && !list_empty(&p->waiters)) {
        char msg[ERRLEN];
        snprintf(msg, sizeof msg, "%s", p->last_error);
        fail_waiters(p, -ECONNREFUSED, "08001", msg);
    }
    maintain(p);
}

static void connected(struct conn *c)
{
    struct nova__pg_pool *p = c->pool;

    uv_timer_stop(&c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0 || conn_watch(c, UV_READABLE, true) != 0) {
        connect_failed(c, "cannot watch the connection socket");
        return;
    }
    p->connecting--;
    p->open++;
    c->state = C_IDLE;
    list_push_back(&p->idle, &c->idle_link);
    if (p->failures > 0)
        nova__log(NOVA_LOG_INFO, NULL, "postgres: connected again after %u failed attempts",
                  p->failures);
    p->failures = 0;
    p->backoff_ms = 0;
    p->next_connect_ms = 0;
    p->logged_error[0] = '\0';
    update_gauges(p);
    dispatch(p);
}

static void connect_step(struct conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (conn_watch(c, UV_READABLE, true) != 0)
            connect_failed(c, "cannot watch the connection socket");
        break;
    case PGRES_POLLING_WRITING:
        if (conn_watch(c, UV_WRITABLE, true) != 0)
            connect_failed(c, "cannot watch the connection socket");
        break;
    case PGRES_POLLING_OK:
        connected(c);
        break;
    default:
        connect_failed(c, PQerrorMessage(c->pg));
        break;
    }
}

static void on_conn_timer(uv_timer_t *t);

/*
 * Server notices. libpq reports an error that arrives between statements
 * (a FATAL from pg_terminate_backend or a shutdown) as a notice, and
 * reads the EOF behind it only later; remembering it keeps the next
 * statement off a connection that is already gone. Other notices are
 * the server's chatter ("already exists, skipping") and are dropped.
 */
static void on_notice(void *arg, const PGresult *res)
{
    struct conn *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        c->doomed = true;
}

static void start_connect(struct nova__pg_pool *p)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->pool = p;
    list_init(&c->idle_link);
    c->pg = PQconnectStartParams(p->keys, p->vals, 1);
    if (c->pg == NULL) {
        free(c);
        return;
    }
    PQsetNoticeReceiver(c->pg, on_notice, c);
    uv_timer_init(p->loop, &c->timer);
    c->timer.data = c;
    c->state = C_CONNECTING;
    list_push_back(&p->conns, &c->link);
    p->live_conns++;
    p->connecting++;
    update_gauges(p);

    /* A failure known right away is reported from the loop like any other. */
    if (PQstatus(c->pg) == CONNECTION_BAD || conn_watch(c, UV_WRITABLE, true) != 0) {
        uv_timer_start(&c->timer, on_conn_timer, 0, 0);
        return;
    }
    uint64_t timeout = p->cfg.connect_timeout_ms > 0 ? (uint64_t)p->cfg.connect_timeout_ms : 5000;
    uv_timer_start(&c->timer, on_conn_timer, timeout, 0);
}

static void on_backoff(uv_timer_t *t)
{
    maintain(t->data);
}

/* Opens connections until min are there and waiting requests have one
 * each (up to max). After failures, only one probe at a time. */
static void maintain(struct nova__pg_pool *p)
{
    if (p->closing)
        return;
    uint64_t want = (uint64_t)p->cfg.pool_min;
    uint64_t demand = (uint64_t)p->in_use + p->waiting;
    if (demand > want)
        want = demand;
    if (want > (uint64_t)p->cfg.pool_max)
        want = (uint64_t)p->cfg.pool_max;
    /* idle connections that exist already count as supply */
    while ((uint64_t)p->open + p->connecting < want) {
        if (p->failures > 0 && p->connecting > 0)
            return;
        uint64_t now = now_ms(p);
        if (now < p->next_connect_ms) {
            uv_timer_start(&p->backoff_timer, on_backoff, p->next_connect_ms - now, 0);
            return;
        }
        unsigned before = p->connecting;
        start_connect(p);
        if (p->connecting == before)
            return; /* out of memory: try again on the next event */
        if (p->failures > 0)
            return;
    }
}

/* ---- statements --------------------------------------------------------- */

static uint64_t guard_ms(const struct nova__pg_pool *p)
{
    if (p->cfg.statement_timeout_ms <= 0)
        return 0;
    uint64_t slack = p->cfg.connect_timeout_ms > 1000 ? (uint64_t)p->cfg.connect_timeout_ms : 1000;
    return (uint64_t)p->cfg.statement_timeout_ms + slack;
}

/* Reads and parses whatever arrived on an idle connection (PQisBusy runs
 * libpq's parser, which hands an idle-time FATAL to on_notice). */
static bool idle_alive(struct conn *c)
{
    if (!PQconsumeInput(c->pg))
        return false;
    (void)PQisBusy(c->pg);
    return !c->doomed && PQstatus(c->pg) == CONNECTION_OK;
}

/*
 * Sends r on c (idle or leased, nothing running). Returns 0, or -ECONNRESET
 * when the connection turned out dead before anything was sent: then c is
 * closed, r untouched, and the caller decides what r becomes.
 */
static int conn_send(struct conn *c, struct req *r)
{
    struct nova__pg_pool *p = c->pool;

    /* A connection that went away while idle usually says so with EOF;
     * reading now catches that before the statement is sent. Skipped when
     * it was in use a moment ago (the hot path under load). */
    bool stale = c->state == C_IDLE && uv_hrtime() - c->idle_since > 1000000;
    if ((stale && !idle_alive(c)) || c->doomed ||
        !PQsendQueryParams(c->pg, r->sql, r->nparams, NULL, r->params, NULL, NULL, 0)) {
        if (c->lease != NULL) {
            c->lease->conn = NULL;
            c->lease = NULL;
        }
        conn_close(c);
        return -ECONNRESET;
    }
    if (c->state == C_IDLE) {
        list_remove(&c->idle_link);
        c->state = C_BUSY;
        p->in_use++;
    }
    c->req = r;
    r->start_ns = uv_hrtime();
    int f = PQflush(c->pg);
    c->flushing = f == 1;
    if (f < 0 || conn_watch(c, f == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, false) != 0) {
        /* Part of the statement may be out: its fate is unknown. We may be
         * inside an API call, so the callback comes from the loop. */
        int status = -ECONNRESET;
        c->req = NULL;
        if (c->lease != NULL) {
            c->lease->conn = NULL;
            c->lease = NULL;
        }
        if (r->kind == REQ_COMMIT || r->kind == REQ_ROLLBACK) {
            lease_free(r->lease);
            r->lease = NULL;
            if (r->kind == REQ_ROLLBACK)
                status = 0;
        }
        conn_close(c);
        defer(p, r, status, "08006", "connection lost while sending the statement");
        maintain(p);
        return 0;
    }
    uint64_t g = guard_ms(p);
    if (g > 0)
        uv_timer_start(&c->timer, on_conn_timer, g, 0);
    update_gauges(p);
    return 0;
}

/* Hands idle connections to waiting requests, oldest first. */
static void dispatch(struct nova__pg_pool *p)
{
    while (!p->closing && !list_empty(&p->waiters) && !list_empty(&p->idle)) {
        /* Most recently used first: busy periods reuse warm connections
         * and the extras age at the front of the list until reaped. */
        struct conn *c = container_of(p->idle.prev, struct conn, idle_link);
        struct req *r = container_of(p->waiters.next, struct req, link);
        list_remove(&r->link);
        p->waiting--;
        if (conn_send(c, r) != 0) {
            /* Nothing reached the server: the request keeps its turn. */
            list_push_front(&p->waiters, &r->link);
            p->waiting++;
        }
    }
    update_gauges(p);
    if (!list_empty(&p->waiters))
        maintain(p);
}

/* Returns a connection whose statement (if any) is settled to the idle
 * list, unless it is inside a transaction, which only a lease may be. */
static void conn_release(struct conn *c)
{
    struct nova__pg_pool *p = c->pool;
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        /* Never hand a connection with an open transaction to someone
         * else: closing it makes the server roll back. */
        conn_close(c);
        maintain(p);
        return;
    }
    if (c->state == C_BUSY || c->state == C_LEASED)
        p->in_use--;
    c->state = C_IDLE;
    c->lease = NULL;
    c->idle_since = uv_hrtime();
    list_push_back(&p->idle, &c->idle_link);
    update_gauges(p);
    dispatch(p);
}

static void observe(struct nova__pg_pool *p, struct req *r)
{
    uint64_t ns = uv_hrtime() - r->start_ns;
    if (m_duration != NULL)
        nova__metric_observe(m_duration, NULL, (double)ns / 1e9);
    int64_t ms = (int64_t)(ns / 1000000);
    if (p->cfg.slow_query_ms > 0 && ms > p->cfg.slow_query_ms) {
        char sql[SLOW_SQL_MAX + 1];
        struct nova__log_ctx ctx = owner_ctx(r->owner);
        nova__pg_one_line(sql, sizeof sql, r->sql, NULL);
        nova__log(NOVA_LOG_WARN, &ctx, "postgres: slow query (%lld ms): %s", (long long)ms, sql);
    }
}

/*
 * The connection died (or must be dropped) with r possibly running on it.
 * Closes it, settles its lease and completes its request with status.
 */
static void drop_conn(struct conn *c, int status, const char *sqlstate, const char *msg)
{
    struct nova__pg_pool *p = c->pool;
    struct req *r = c->req;
    PGresult *res = c->result;
    char line[ERRLEN];

    c->req = NULL;
    c->result = NULL;
    if (c->lease != NULL) {
        c->lease->conn = NULL;
        c->lease = NULL;
    }
    nova__pg_one_line(line, sizeof line, msg, p->password);
    conn_close(c);
    if (r != NULL) {
        observe(p, r);
        if (r->kind == REQ_COMMIT || r->kind == REQ_ROLLBACK) {
            lease_free(r->lease);
            r->lease = NULL;
        }
        if (r->kind == REQ_ROLLBACK)
            status = 0; /* a dead connection rolled the transaction back */
        /* The server's own reason (57P01 on a restart, say) beats ours. */
        if (status != 0 && res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
            req_complete(r, status, res, NULL, NULL, NULL);
        else
            req_complete(r, status, NULL, sqlstate, line, NULL);
    }
    if (res != NULL)
        PQclear(res);
    maintain(p);
}

/* The last result of the running statement arrived. */
static void finish(struct conn *c)
{
    struct nova__pg_pool *p = c->pool;
    struct req *r = c->req;
    PGresult *res = c->result;
    int status = 0;
    const char *sqlstate = NULL, *message = NULL;

    uv_timer_stop(&c->timer);
    c->req = NULL;
    c->result = NULL;
    observe(p, r);

    switch (res != NULL ? PQresultStatus(res) : PGRES_EMPTY_QUERY) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        break;
    case PGRES_FATAL_ERROR:
        status = status_of_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
        break;
    case PGRES_EMPTY_QUERY:
        status = -EINVAL;
        sqlstate = "42601";
        message = "empty statement";
        break;
    default:
        /* COPY and friends would leave the connection in a protocol
         * state this pool does not drive. */
        status = -EINVAL;
        sqlstate = "0A000";
        message = "statement kind not supported (COPY?)";
        PQclear(res);
        res = NULL;
        if (c->lease != NULL) {
            c->lease->conn = NULL;
            c->lease = NULL;
        }
        conn_close(c);
        maintain(p);
        c = NULL;
        break;
    }
    if (c != NULL && PQstatus(c->pg) != CONNECTION_OK) {
        if (c->lease != NULL) {
            c->lease->conn = NULL;
            c->lease = NULL;
        }
        conn_close(c);
        maintain(p);
        c = NULL;
        /* A complete answer stands (a COMMIT that said COMMIT committed),
         * but a transaction that lost its connection is gone. */
        if (status == 0 && (r->kind == REQ_BEGIN || r->kind == REQ_LEASE_QUERY)) {
            status = -ECONNRESET;
            sqlstate = "08006";
            message = "connection lost; the transaction was rolled back";
        }
    }

    struct nova_pg_lease *lease = NULL;
    switch (r->kind) {
    case REQ_QUERY:
        if (c != NULL)
            conn_release(c);
        break;
    case REQ_BEGIN:
        if (status == 0 && c != NULL) {
            lease = calloc(1, sizeof *lease);
            if (lease == NULL) {
                status = -ENOMEM;
                sqlstate = "53200";
                message = "out of memory";
                conn_close(c);
                maintain(p);
                break;
            }
            lease->pool = p;
            lease->conn = c;
            lease->owner = r->owner;
            list_push_back(&p->leases, &lease->link);
            c->lease = lease;
            c->state = C_LEASED;
        } else if (c != NULL) {
            conn_release(c);
        }
        break;
    case REQ_LEASE_QUERY:
        break; /* the connection stays with its lease */
    case REQ_COMMIT:
    case REQ_ROLLBACK: {
        struct nova_pg_lease *l = r->lease;
        if (r->kind == REQ_COMMIT && status == 0 && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
            status = -EINVAL;
            sqlstate = "25P02";
            message = "the transaction had failed and was rolled back";
            PQclear(res);
            res = NULL;
        }
        if (r->kind == REQ_ROLLBACK && c == NULL)
            status = 0;
        if (l != NULL) {
            if (l->conn != NULL)
                l->conn->lease = NULL;
            lease_free(l);
        }
        if (c != NULL)
            conn_release(c);
        break;
    }
    }
    req_complete(r, status, res, sqlstate, message, lease);
    if (res != NULL)
        PQclear(res);
}

/* Reads what arrived; completes the statement once libpq has it all. */
static void read_results(struct conn *c)
{
    while (c->req != NULL && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL) {
            finish(c);
            return;
        }
        /* Keep the first error; otherwise the last result. */
        if (c->result != NULL && PQresultStatus(c->result) == PGRES_FATAL_ERROR) {
            PQclear(res);
        } else {
            if (c->result != NULL)
                PQclear(c->result);
            c->result = res;
        }
        if (PQresultStatus(res) == PGRES_COPY_IN || PQresultStatus(res) == PGRES_COPY_OUT ||
            PQresultStatus(res) == PGRES_COPY_BOTH) {
            finish(c); /* closes the connection, see finish() */
            return;
        }
    }
}

/* Before dropping a busy connection: keep an error result the server sent
 * before it closed (57P01 on shutdown), so the caller sees its reason. */
static void harvest(struct conn *c)
{
    if (c->req == NULL)
        return;
    (void)PQconsumeInput(c->pg);
    while (!PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL)
            break;
        /* libpq's own "connection lost" result has no SQLSTATE: ours is better */
        if (c->result == NULL && PQresultStatus(res) == PGRES_FATAL_ERROR &&
            PQresultErrorField(res, PG_DIAG_SQLSTATE) != NULL)
            c->result = res;
        else
            PQclear(res);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct conn *c = h->data;

    if (c->state == C_CONNECTING) {
        connect_step(c);
        return;
    }
    if (status < 0) {
        /* libuv reports a socket error (EPOLLERR) as UV_EBADF: the peer
         * reset. Keep the server's last words if they arrived first. */
        harvest(c);
        drop_conn(c, -ECONNRESET, "08006", "connection reset by the server");
        return;
    }
    if (c->req == NULL) {
        /* Idle (or leased, between statements): only EOF or a notice can
         * arrive. Any failure here means the connection is gone. */
        if (!idle_alive(c)) {
            drop_conn(c, -ECONNRESET, "08006", "connection closed by the server");
            return;
        }
        PGnotify *n;
        while ((n = PQnotifies(c->pg)) != NULL)
            PQfreemem(n);
        return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->pg)) {
            harvest(c);
            drop_conn(c, -ECONNRESET, "08006", PQerrorMessage(c->pg));
            return;
        }
    }
    if (c->flushing) {
        int f = PQflush(c->pg);
        if (f < 0) {
            drop_conn(c, -ECONNRESET, "08006", PQerrorMessage(c->pg));
            return;
        }
        if (f == 0) {
            c->flushing = false;
            if (conn_watch(c, UV_READABLE, false) != 0) {
                drop_conn(c, -ECONNRESET, "08006", "cannot watch the connection socket");
                return;
            }
        }
    }
    read_results(c);
}

static void on_conn_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct nova__pg_pool *p = c->pool;
    char msg[ERRLEN];

    if (c->state == C_CONNECTING) {
        if (PQstatus(c->pg) == CONNECTION_BAD)
            connect_failed(c, PQerrorMessage(c->pg));
        else {
            snprintf(msg, sizeof msg, "timeout expired after %lld ms",
                     (long long)p->cfg.connect_timeout_ms);
            connect_failed(c, msg);
        }
        return;
    }
    if (c->req != NULL) {
        snprintf(msg, sizeof msg, "no answer within %llu ms; connection dropped",
                 (unsigned long long)guard_ms(p));
        drop_conn(c, -ETIMEDOUT, "57014", msg);
    }
}

/* ---- pool lifecycle ----------------------------------------------------- */

/* Closes connections idle longer than idle_timeout_ms while more than
 * pool_min are open; the least recently used sit at the idle list's front. */
static void on_reap(uv_timer_t *t)
{
    struct nova__pg_pool *p = t->data;
    uint64_t now = uv_hrtime();
    while (!list_empty(&p->idle) && p->open > (unsigned)p->cfg.pool_min) {
        struct conn *c = container_of(p->idle.next, struct conn, idle_link);
        if (now - c->idle_since < p->idle_timeout_ms * 1000000)
            break;
        conn_close(c);
    }
}

void nova__pg_pool_set_idle_timeout(struct nova__pg_pool *p, uint64_t ms)
{
    p->idle_timeout_ms = ms;
    uint64_t every = ms / 4 > 0 ? ms / 4 : 1;
    uv_timer_start(&p->reap_timer, on_reap, every, every);
}

/* Best effort for a DSN libpq cannot parse: the text after "password="
 * or between "user:" and "@" in a URI, so an error quoting it is scrubbed. */
static char *guess_password(const char *dsn)
{
    const char *s = strstr(dsn, "password=");
    size_t n = 0;
    if (s != NULL) {
        s += strlen("password=");
        n = strcspn(s, " &");
    } else if ((s = strstr(dsn, "://")) != NULL) {
        const char *at = strchr(s + 3, '@');
        const char *colon = strchr(s + 3, ':');
        if (at != NULL && colon != NULL && colon < at) {
            s = colon + 1;
            n = (size_t)(at - s);
        }
    }
    return n > 0 ? strndup(s, n) : NULL;
}

/* libpq's DSN parse errors quote the fragment they choked on, which may
 * be a password ('missing "=" after "s3cret"'). Keeps a quoted fragment
 * only when it is a connection option name; masks the rest. */
static void mask_quoted(char *dst, size_t len, const char *src)
{
    PQconninfoOption *known = PQconndefaults();
    size_t o = 0;
    while (*src != '\0' && o + 1 < len) {
        const char *end = *src == '"' ? strchr(src + 1, '"') : NULL;
        if (end == NULL) {
            dst[o++] = *src++;
            continue;
        }
        size_t n = (size_t)(end - src - 1);
        bool keyword = false;
        for (PQconninfoOption *k = known; k != NULL && k->keyword != NULL; k++)
            keyword = keyword || (strlen(k->keyword) == n && strncmp(k->keyword, src + 1, n) == 0);
        int w = keyword ? snprintf(dst + o, len - o, "\"%.*s\"", (int)n, src + 1)
                        : snprintf(dst + o, len - o, "\"***\"");
        o += (size_t)w < len - o ? (size_t)w : len - o - 1;
        src = end + 1;
    }
    dst[o] = '\0';
    PQconninfoFree(known);
}

void nova__pg_clean_error(char *dst, size_t len, const char *msg, const char *dsn)
{
    char masked[ERRLEN];
    char *pw = NULL;
    PQconninfoOption *opts = dsn != NULL ? PQconninfoParse(dsn, NULL) : NULL;
    if (opts != NULL) {
        for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
            if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
                pw = strdup(o->val);
        PQconninfoFree(opts);
        snprintf(masked, sizeof masked, "%s", msg != NULL ? msg : "");
    } else {
        pw = dsn != NULL ? guess_password(dsn) : NULL;
        mask_quoted(masked, sizeof masked, msg != NULL ? msg : "");
    }
    nova__pg_one_line(dst, len, masked, pw);
    free(pw);
}

/* libpq checks ports only when it connects; a typo should stop startup. */
static bool valid_ports(const char *s)
{
    do {
        long v = 0;
        size_t digits = 0;
        for (; *s >= '0' && *s <= '9' && digits < 6; s++, digits++)
            v = v * 10 + (*s - '0');
        if (digits == 0 || v < 1 || v > 65535 || (*s != ',' && *s != '\0'))
            return false;
    } while (*s++ == ',');
    return true;
}

int nova__pg_pool_new(uv_loop_t *loop, const struct nova__postgres_config *cfg,
                      struct nova__pg_pool **out)
{
    char *err = NULL;
    char line[ERRLEN];

    if (loop == NULL || cfg == NULL || out == NULL)
        return -EINVAL;
    if (cfg->dsn == NULL || cfg->dsn[0] == '\0') {
        nova__log(NOVA_LOG_ERROR, NULL, "postgres: no dsn configured");
        return -EINVAL;
    }
    if (cfg->pool_max < 1 || cfg->pool_min < 0 || cfg->pool_min > cfg->pool_max) {
        nova__log(NOVA_LOG_ERROR, NULL,
                  "postgres: pool_min %lld / pool_max %lld: need 0 <= min <= max and max >= 1",
                  (long long)cfg->pool_min, (long long)cfg->pool_max);
        return -EINVAL;
    }
    PQconninfoOption *opts = PQconninfoParse(cfg->dsn, &err);
    if (opts == NULL) {
        /* libpq may quote the DSN fragment it choked on: scrub it. */
        nova__pg_clean_error(line, sizeof line, err != NULL ? err : "out of memory", cfg->dsn);
        nova__log_add_secret(cfg->dsn);
        nova__log(NOVA_LOG_ERROR, NULL, "postgres: invalid dsn: %s", line);
        PQfreemem(err);
        return err != NULL ? -EINVAL : -ENOMEM;
    }

    struct nova__pg_pool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        PQconninfoFree(opts);
        return -ENOMEM;
    }
    const char *dsn_options = NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "port") == 0 && !valid_ports(o->val)) {
            nova__log(NOVA_LOG_ERROR, NULL,
                      "postgres: invalid dsn: port must be a number from 1 to 65535");
            PQconninfoFree(opts);
            free(p->password);
            free(p);
            return -EINVAL;
        }
        if (strcmp(o->keyword, "password") == 0 && o->val[0] != '\0')
            p->password = strdup(o->val);
        if (strcmp(o->keyword, "options") == 0)
            dsn_options = o->val;
    }
    if (p->password != NULL)
        nova__log_add_secret(p->password);
    if (cfg->statement_timeout_ms > 0)
        snprintf(p->options, sizeof p->options, "%s%s-c statement_timeout=%lld",
                 dsn_options != NULL ? dsn_options : "", dsn_options != NULL ? " " : "",
                 (long long)cfg->statement_timeout_ms);
    else if (dsn_options != NULL)
        snprintf(p->options, sizeof p->options, "%s", dsn_options);
    PQconninfoFree(opts);

    p->loop = loop;
    p->cfg = *cfg;
    p->dsn = strdup(cfg->dsn);
    p->cfg.dsn = p->dsn;
    if (p->dsn == NULL) {
        free(p->password);
        free(p);
        return -ENOMEM;
    }
    /* Later keywords win over what the expanded DSN says; earlier ones
     * are defaults the DSN may override. */
    size_t k = 0;
    p->keys[k] = "fallback_application_name", p->vals[k++] = "nova-worker";
    p->keys[k] = "keepalives", p->vals[k++] = "1";
    p->keys[k] = "keepalives_idle", p->vals[k++] = "30";
    p->keys[k] = "keepalives_interval", p->vals[k++] = "10";
    p->keys[k] = "keepalives_count", p->vals[k++] = "3";
    p->keys[k] = "dbname", p->vals[k++] = p->dsn;
    if (p->options[0] != '\0')
        p->keys[k] = "options", p->vals[k++] = p->options;
    p->keys[k] = NULL, p->vals[k] = NULL;

    list_init(&p->conns);
    list_init(&p->idle);
    list_init(&p->waiters);
    list_init(&p->deferred);
    list_init(&p->leases);
    uv_timer_init(loop, &p->backoff_timer);
    uv_timer_init(loop, &p->reap_timer);
    p->reap_timer.data = p;
    p->idle_timeout_ms = IDLE_TIMEOUT_MS;
    uv_timer_start(&p->reap_timer, on_reap, IDLE_TIMEOUT_MS / 4, IDLE_TIMEOUT_MS / 4);
    uv_timer_init(loop, &p->defer_timer);
    p->backoff_timer.data = p;
    p->defer_timer.data = p;
    p->live_handles = 3;
    p->shown_open = p->shown_in_use = p->shown_waiting = UINT_MAX; /* publish at once */
    if (m_size == NULL)
        register_metrics();
    update_gauges(p);
    maintain(p);
    *out = p;
    return 0;
}

static void on_pool_timer_closed(uv_handle_t *h)
{
    struct nova__pg_pool *p = h->data;
    p->live_handles--;
    maybe_finish_close(p);
}

void nova__pg_pool_close(struct nova__pg_pool *p, void (*done)(void *arg), void *arg)
{
    if (p == NULL) {
        if (done != NULL)
            done(arg);
        return;
    }
    p->closing = true;
    p->done = done;
    p->done_arg = arg;

    fail_waiters(p, -ECANCELED, "57P01", "the pool is shutting down");
    /* Running statements first, leases still valid: their callbacks may
     * well roll the lease back, which then completes from the deferred
     * list below. */
    while (!list_empty(&p->conns)) {
        struct conn *c = container_of(p->conns.next, struct conn, link);
        struct req *r = c->req;
        c->req = NULL;
        if (c->lease != NULL) {
            c->lease->conn = NULL;
            c->lease = NULL;
        }
        conn_close(c);
        if (r == NULL)
            continue;
        if (r->kind == REQ_COMMIT || r->kind == REQ_ROLLBACK) {
            lease_free(r->lease);
            r->lease = NULL;
        }
        req_complete(r, -ECANCELED, NULL, "57P01", "the pool is shutting down", NULL);
    }
    while (!list_empty(&p->leases)) {
        struct nova_pg_lease *l = container_of(p->leases.next, struct nova_pg_lease, link);
        struct nova__log_ctx ctx = owner_ctx(l->owner);
        nova__log(NOVA_LOG_WARN, &ctx, "postgres: lease still held at shutdown; rolled back");
        lease_free(l);
    }
    while (!list_empty(&p->deferred))
        on_defer(&p->defer_timer);
    uv_close((uv_handle_t *)&p->backoff_timer, on_pool_timer_closed);
    uv_close((uv_handle_t *)&p->reap_timer, on_pool_timer_closed);
    uv_close((uv_handle_t *)&p->defer_timer, on_pool_timer_closed);
}

bool nova__pg_pool_ready(const struct nova__pg_pool *p)
{
    return p != NULL && !p->closing && (p->open > 0 || (p->cfg.pool_min == 0 && p->failures == 0));
}

void nova__pg_pool_stats(const struct nova__pg_pool *p, struct nova__pg_pool_stats *out)
{
    out->open = p->open;
    out->connecting = p->connecting;
    out->in_use = p->in_use;
    out->waiting = p->waiting;
    out->max_open = p->max_open;
}

const char *nova__pg_pool_last_error(const struct nova__pg_pool *p)
{
    return p->last_error;
}

static void owner_rollback_done(void *arg, int status, const nova_pg_result *res)
{
    (void)arg;
    (void)status;
    (void)res;
}

unsigned nova__pg_pool_release_owner(struct nova__pg_pool *p, const struct nova_host *owner,
                                     bool cancel)
{
    unsigned leaked = 0;
    struct link *l, *next;

    if (p == NULL || owner == NULL)
        return 0;
    /* Queued requests: cancelled now (callbacks run before this returns),
     * or dropped silently when the owner is already gone. */
    struct link batch;
    list_init(&batch);
    for (l = p->waiters.next; l != &p->waiters; l = next) {
        next = l->next;
        struct req *r = container_of(l, struct req, link);
        if (r->owner != owner)
            continue;
        list_remove(&r->link);
        p->waiting--;
        r->detached = !cancel;
        list_push_back(&batch, &r->link);
    }
    update_gauges(p);
    while (!list_empty(&batch)) {
        struct req *r = container_of(batch.next, struct req, link);
        list_remove(&r->link);
        req_complete(r, -ECANCELED, NULL, "57P01", "the plugin is stopping", NULL);
    }
    if (cancel)
        return 0;
    for (l = p->deferred.next; l != &p->deferred; l = l->next) {
        struct req *r = container_of(l, struct req, link);
        if (r->owner == owner)
            r->detached = true;
    }
    for (l = p->conns.next; l != &p->conns; l = l->next) {
        struct conn *c = container_of(l, struct conn, link);
        if (c->req != NULL && c->req->owner == owner)
            c->req->detached = true;
    }
    for (l = p->leases.next; l != &p->leases; l = next) {
        next = l->next;
        struct nova_pg_lease *lease = container_of(l, struct nova_pg_lease, link);
        if (lease->owner != owner)
            continue;
        struct conn *c = lease->conn;
        if (c != NULL && c->req != NULL &&
            (c->req->kind == REQ_COMMIT || c->req->kind == REQ_ROLLBACK))
            continue; /* being returned already; its callback was detached above */
        leaked++;
        struct nova__log_ctx ctx = owner_ctx(owner);
        nova__log(NOVA_LOG_WARN, &ctx,
                  "postgres: leaked transaction lease (neither committed nor rolled back); "
                  "rolling it back");
        lease->owner = NULL;
        if (c == NULL) {
            lease_free(lease);
            continue;
        }
        if (c->req != NULL) {
            /* A statement still runs on it: closing the connection is the
             * only rollback that does not wait for it. */
            c->lease = NULL;
            lease_free(lease);
            drop_conn(c, -ECANCELED, "57P01", "the plugin is stopping");
            continue;
        }
        struct req *r = req_new(REQ_ROLLBACK, NULL, "ROLLBACK", 0, NULL);
        if (r == NULL) {
            c->lease = NULL;
            lease_free(lease);
            conn_close(c);
            continue;
        }
        r->cb = owner_rollback_done;
        r->lease = lease;
        if (conn_send(c, r) != 0) {
            free(r);
            lease_free(lease); /* conn_send closed the connection */
        }
    }
    maintain(p);
    return leaked;
}

/* ---- the calls behind host->pg ---------------------------------------- */

static int check_args(const char *sql, int nparams, const char *const *params)
{
    if (sql == NULL || nparams < 0 || nparams > NOVA_PG_MAX_PARAMS ||
        (nparams > 0 && params == NULL))
        return -EINVAL;
    return 0;
}

static int enqueue(struct nova__pg_pool *p, struct req *r)
{
    list_push_back(&p->waiters, &r->link);
    p->waiting++;
    update_gauges(p);
    /* Never call back from inside the API call: dispatching only sends. */
    dispatch(p);
    return 0;
}

int nova__pg_query(struct nova__pg_pool *p, const struct nova_host *host, const char *sql,
                   int nparams, const char *const *params, nova_pg_cb cb, void *arg)
{
    if (p == NULL)
        return -ENOTSUP;
    if (check_args(sql, nparams, params) != 0)
        return -EINVAL;
    if (p->closing)
        return -ECANCELED;
    struct req *r = req_new(REQ_QUERY, host, sql, nparams, params);
    if (r == NULL)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;
    return enqueue(p, r);
}

int nova__pg_begin(struct nova__pg_pool *p, const struct nova_host *host, nova_pg_lease_cb cb,
                   void *arg)
{
    if (p == NULL)
        return -ENOTSUP;
    if (p->closing)
        return -ECANCELED;
    struct req *r = req_new(REQ_BEGIN, host, "BEGIN", 0, NULL);
    if (r == NULL)
        return -ENOMEM;
    r->lease_cb = cb;
    r->arg = arg;
    return enqueue(p, r);
}

static int lease_check(struct nova__pg_pool *p, const struct nova_host *host, nova_pg_lease *lease)
{
    if (p == NULL)
        return -ENOTSUP;
    if (lease == NULL || lease->pool != p || lease->owner != host)
        return -EINVAL;
    if (lease->conn != NULL && lease->conn->req != NULL)
        return -EBUSY;
    return 0;
}

int nova__pg_lease_query(struct nova__pg_pool *p, const struct nova_host *host,
                         nova_pg_lease *lease, const char *sql, int nparams,
                         const char *const *params, nova_pg_cb cb, void *arg)
{
    int rc = lease_check(p, host, lease);
    if (rc != 0)
        return rc;
    if (check_args(sql, nparams, params) != 0)
        return -EINVAL;
    if (lease->conn == NULL)
        return -ECONNRESET;
    struct req *r = req_new(REQ_LEASE_QUERY, host, sql, nparams, params);
    if (r == NULL)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;
    r->lease = lease;
    if (conn_send(lease->conn, r) != 0) {
        free(r);
        maintain(p);
        return -ECONNRESET;
    }
    return 0;
}

int nova__pg_lease_end(struct nova__pg_pool *p, const struct nova_host *host, nova_pg_lease *lease,
                       bool commit, nova_pg_cb cb, void *arg)
{
    int rc = lease_check(p, host, lease);
    if (rc != 0)
        return rc;
    enum req_kind kind = commit ? REQ_COMMIT : REQ_ROLLBACK;
    struct req *r = req_new(kind, host, commit ? "COMMIT" : "ROLLBACK", 0, NULL);
    if (r == NULL)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;
    r->lease = lease;
    if (lease->conn != NULL && conn_send(lease->conn, r) == 0)
        return 0;
    /* The connection is gone: the server already rolled back. */
    lease_free(lease);
    r->lease = NULL;
    if (commit)
        defer(p, r, -ECONNRESET, "08006", "connection lost before COMMIT; nothing was committed");
    else
        defer(p, r, 0, "", "");
    maintain(p);
    return 0;
}

/* ---- result accessors --------------------------------------------------- */

static int api_ntuples(const nova_pg_result *res)
{
    return res != NULL && res->res != NULL ? PQntuples(res->res) : 0;
}

static int api_nfields(const nova_pg_result *res)
{
    return res != NULL && res->res != NULL ? PQnfields(res->res) : 0;
}

static int64_t api_affected_rows(const nova_pg_result *res)
{
    if (res == NULL || res->res == NULL)
        return 0;
    const char *t = PQcmdTuples(res->res);
    return t != NULL && t[0] != '\0' ? strtoll(t, NULL, 10) : 0;
}

static int api_field_index(const nova_pg_result *res, const char *name)
{
    if (res == NULL || res->res == NULL || name == NULL)
        return -ENOENT;
    /* PQfnumber folds case and parses quotes; plugins ask for exact names. */
    for (int i = 0; i < PQnfields(res->res); i++)
        if (strcmp(PQfname(res->res, i), name) == 0)
            return i;
    return -ENOENT;
}

static bool in_range(const nova_pg_result *res, int row, int col)
{
    return res != NULL && res->res != NULL && row >= 0 && col >= 0 && row < PQntuples(res->res) &&
           col < PQnfields(res->res);
}

static bool api_is_null(const nova_pg_result *res, int row, int col)
{
    return !in_range(res, row, col) || PQgetisnull(res->res, row, col);
}

static const char *api_get_text(const nova_pg_result *res, int row, int col)
{
    if (api_is_null(res, row, col))
        return NULL;
    return PQgetvalue(res->res, row, col);
}

static int typed_value(const nova_pg_result *res, int row, int col, const char **text, Oid *type)
{
    if (!in_range(res, row, col))
        return -ERANGE;
    if (PQgetisnull(res->res, row, col))
        return -ENODATA;
    *text = PQgetvalue(res->res, row, col);
    *type = PQftype(res->res, col);
    return 0;
}

/* True when s is [-]digits[.digits], the finite text form of numeric. */
static bool is_decimal(const char *s)
{
    size_t i = 0, digits = 0;
    if (s[i] == '-')
        i++;
    while (s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    return digits > 0 && s[i] == '\0';
}

static int api_get_int64(const nova_pg_result *res, int row, int col, int64_t *out)
{
    const char *s;
    Oid type;
    int rc = typed_value(res, row, col, &s, &type);
    if (rc != 0)
        return rc;
    if (type != OID_INT2 && type != OID_INT4 && type != OID_INT8 && type != OID_OID &&
        type != OID_NUMERIC)
        return -EINVAL;
    if (!is_decimal(s))
        return -EINVAL;
    bool neg = s[0] == '-';
    const char *d = neg ? s + 1 : s;
    uint64_t v = 0;
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *d >= '0' && *d <= '9'; d++) {
        unsigned digit = (unsigned)(*d - '0');
        if (v > (limit - digit) / 10)
            return -EOVERFLOW;
        v = v * 10 + digit;
    }
    if (*d == '.')
        for (d++; *d != '\0'; d++)
            if (*d != '0')
                return -EINVAL;
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

static int api_get_numeric(const nova_pg_result *res, int row, int col, const char **out)
{
    const char *s;
    Oid type;
    int rc = typed_value(res, row, col, &s, &type);
    if (rc != 0)
        return rc;
    if (type != OID_INT2 && type != OID_INT4 && type != OID_INT8 && type != OID_NUMERIC)
        return -EINVAL;
    if (!is_decimal(s))
        return -EINVAL; /* NaN, Infinity */
    *out = s;
    return 0;
}

static int api_get_bool(const nova_pg_result *res, int row, int col, bool *out)
{
    const char *s;
    Oid type;
    int rc = typed_value(res, row, col, &s, &type);
    if (rc != 0)
        return rc;
    if (type != OID_BOOL || (s[0] != 't' && s[0] != 'f') || s[1] != '\0')
        return -EINVAL;
    *out = s[0] == 't';
    return 0;
}

static const char *api_sqlstate(const nova_pg_result *res)
{
    return res != NULL && res->sqlstate != NULL ? res->sqlstate : "";
}

static const char *api_error_message(const nova_pg_result *res)
{
    return res != NULL && res->message != NULL ? res->message : "";
}

const struct nova_pg_api nova__pg_result_api = {
    .struct_size = sizeof(struct nova_pg_api),
    .ntuples = api_ntuples,
    .nfields = api_nfields,
    .affected_rows = api_affected_rows,
    .field_index = api_field_index,
    .is_null = api_is_null,
    .get_text = api_get_text,
    .get_int64 = api_get_int64,
    .get_numeric = api_get_numeric,
    .get_bool = api_get_bool,
    .sqlstate = api_sqlstate,
    .error_message = api_error_message,
};

/* ---- column check ------------------------------------------------------- */

struct colcheck {
    void (*cb)(void *arg, int status, const char *missing);
    void *arg;
};

static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return false;
    }
    return true;
}

static void on_colcheck(void *arg, int status, const nova_pg_result *res)
{
    struct colcheck *cc = arg;
    if (status != 0) {
        cc->cb(cc->arg, status, api_error_message(res));
        free(cc);
        return;
    }
    int n = api_ntuples(res);
    if (n == 0) {
        cc->cb(cc->arg, 0, NULL);
        free(cc);
        return;
    }
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(PQgetvalue(res->res, i, 0)) + 1;
    char *missing = malloc(len);
    if (missing == NULL) {
        cc->cb(cc->arg, -ENOMEM, "out of memory");
        free(cc);
        return;
    }
    char *o = missing;
    for (int i = 0; i < n; i++) {
        if (i > 0)
            *o++ = ',';
        o = stpcpy(o, PQgetvalue(res->res, i, 0));
    }
    cc->cb(cc->arg, -ENOENT, missing);
    free(missing);
    free(cc);
}

int nova__pg_check_columns(struct nova__pg_pool *p, const char *const *columns,
                           void (*cb)(void *arg, int status, const char *missing), void *arg)
{
    static const char sql[] =
        "SELECT t.c FROM unnest(string_to_array($1, ',')) WITH ORDINALITY AS t(c, n) "
        "WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns ic "
        "WHERE ic.table_schema = ANY (current_schemas(false)) "
        "AND ic.table_name = split_part(t.c, '.', 1) "
        "AND ic.column_name = split_part(t.c, '.', 2)) ORDER BY t.n";

    if (p == NULL || columns == NULL || cb == NULL)
        return -EINVAL;
    if (p->closing)
        return -ECANCELED;
    size_t len = 1;
    for (size_t i = 0; columns[i] != NULL; i++) {
        const char *dot = strchr(columns[i], '.');
        if (dot == NULL || !is_ident(columns[i], (size_t)(dot - columns[i])) ||
            !is_ident(dot + 1, strlen(dot + 1)))
            return -EINVAL;
        len += strlen(columns[i]) + 1;
    }
    char *list = malloc(len);
    struct colcheck *cc = calloc(1, sizeof *cc);
    if (list == NULL || cc == NULL) {
        free(list);
        free(cc);
        return -ENOMEM;
    }
    char *o = list;
    *o = '\0';
    for (size_t i = 0; columns[i] != NULL; i++) {
        if (i > 0)
            *o++ = ',';
        o = stpcpy(o, columns[i]);
    }
    cc->cb = cb;
    cc->arg = arg;
    const char *params[1] = {list};
    struct req *r = req_new(REQ_QUERY, NULL, sql, 1, params);
    free(list);
    if (r == NULL) {
        free(cc);
        return -ENOMEM;
    }
    r->cb = on_colcheck;
    r->arg = cc;
    return enqueue(p, r);
}
