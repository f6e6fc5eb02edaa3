/*
 * redis_conn - the connection the engine sees, and the requests it sends.
 *
 * A connection holds one link (redis_link.c) in the direct and Sentinel
 * modes, and one link per master it has talked to in Cluster mode. Each
 * request is routed when sent: to the only link, or to the master of the
 * slot of its first key (the engine passes keys first; one queue's keys
 * share a hash tag, so one queue is one slot). Answers that say the
 * request went to the wrong place are handled here, before the caller sees
 * them: NOSCRIPT (sent again as EVAL), MOVED (sent to the new owner, the
 * slot map refreshed), ASK (ASKING + the request on the named node, once),
 * TRYAGAIN/CLUSTERDOWN (sent again 100 ms later), READONLY (a demoted
 * master: the caller gets -ECONNRESET, the link reconnects to whoever is
 * master now).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "queue/redis_int.h"
#include "queue/resp.h"

#define SPARES_MAX    4
#define SPARE_CAP     (64 * 1024) /* larger buffers are not kept */
#define REDIRECTS_MAX 16
#define RETRIES_MAX   600 /* TRYAGAIN, CLUSTERDOWN, a script's ASK: 100 ms apart */
#define RETRY_MS      100

struct clink {
    struct nova__redis_conn *c;
    struct nova__redis_link *l;
    char *host; /* cluster node; NULL in the other modes */
    int port;
};

struct nova__redis_conn {
    uv_loop_t *loop;
    struct nova__redis_shared *sh;
    const struct nova__redis_target *t; /* the shared copy */
    char *client_name;
    char *what;
    int64_t connect_timeout_ms;
    void (*on_state)(void *arg, bool up);
    void *arg;

    bool up, closing, told_down;
    struct clink **links;
    size_t nlinks;
    struct nova__redis_cmd *deferred, *deferred_tail; /* TRYAGAIN: sent again later */
    uv_timer_t retry;
    bool recheck;                   /* the retry timer also re-evaluates the state */
    struct nova__redis_cmd *spares; /* finished requests kept for reuse */
    unsigned nspares;
    int open; /* links and the timer not yet closed */
    struct nova__redis_conn_stats stats;
    char err[256];
    void (*close_done)(void *arg);
    void *close_arg;
};

/* ---- requests ------------------------------------------------------------- */

static void request_free(struct nova__redis_cmd *r)
{
    free(r->buf);
    free(r);
}

void nova__redis_req_release(struct nova__redis_cmd *r)
{
    struct nova__redis_conn *c = r->conn;
    if (NOVA__RESP_REUSE && c && !c->closing && c->nspares < SPARES_MAX && r->cap <= SPARE_CAP) {
        r->next = c->spares;
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
        c->spares = r->next;
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

struct nova__redis_cmd *nova__redis_req_new(struct nova__redis_conn *c, size_t size_hint)
{
    struct nova__redis_cmd *r = c ? c->spares : NULL;
    if (r) {
        c->spares = r->next;
        c->nspares--;
    } else {
        r = calloc(1, sizeof(*r));
        if (!r)
            return NULL;
    }
    r->next = NULL;
    r->conn = c;
    r->cb = NULL;
    r->arg = NULL;
    r->script = NULL;
    r->nkeys = 0;
    r->oom = false;
    r->as_eval = false;
    r->handshake = false;
    r->any_node = false;
    r->redirects = 0;
    r->retries = 0;
    r->tmo_arg = -1;
    r->block_ms = 0;
    r->sent_ms = 0;
    r->node = 0;
    r->argc = 0;
    r->len = NOVA__REDIS_HEADROOM;
    r->start = NOVA__REDIS_HEADROOM;
    if (r->cap < NOVA__REDIS_HEADROOM + size_hint) {
        size_t cap = NOVA__REDIS_HEADROOM + (size_hint > 256 ? size_hint : 256);
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

struct nova__redis_cmd *nova__redis_cmd_new(struct nova__redis_conn *c, size_t size_hint)
{
    return nova__redis_req_new(c, size_hint);
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
        nova__redis_req_release(r);
}

bool nova__redis_req_arg(const struct nova__redis_cmd *r, size_t i, const char **p, size_t *n)
{
    const char *s = r->buf + NOVA__REDIS_HEADROOM, *end = r->buf + r->len;
    if (i >= r->argc)
        return false;
    for (;;) {
        size_t len = 0;
        if (s >= end || *s != '$')
            return false;
        s++;
        while (s < end && *s >= '0' && *s <= '9')
            len = len * 10 + (size_t)(*s++ - '0');
        s += 2; /* CRLF */
        if (s + len > end)
            return false;
        if (i == 0) {
            *p = s;
            *n = len;
            return true;
        }
        s += len + 2;
        i--;
    }
}

/* Bytes the arguments take, roughly (for the first allocation). */
static size_t args_size(int argc, const char *const *argv, const size_t *argvlen)
{
    size_t n = 0;
    for (int i = 0; i < argc; i++)
        n += (argvlen ? argvlen[i] : strlen(argv[i])) + 16;
    return n;
}

struct nova__redis_cmd *nova__redis_req_argv(struct nova__redis_conn *c, int argc,
                                             const char *const *argv, const size_t *argvlen)
{
    struct nova__redis_cmd *r = nova__redis_req_new(c, args_size(argc, argv, argvlen));
    if (!r)
        return NULL;
    for (int i = 0; i < argc; i++)
        nova__redis_cmd_arg(r, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    if (r->oom) {
        request_free(r);
        return NULL;
    }
    return r;
}

/* ---- routing --------------------------------------------------------------- */

static bool named(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

static bool named_any(const char *p, size_t n, const char *const *names)
{
    for (; *names; names++)
        if (named(p, n, *names))
            return true;
    return false;
}

/* The first key of r: what routes it in a cluster. false: none. */
static bool req_key(const struct nova__redis_cmd *r, const char **key, size_t *keylen)
{
    static const char *const keyless[] = {
        "PING",   "ECHO",      "INFO",         "TIME",    "SCRIPT",   "CLIENT",  "CLUSTER",
        "CONFIG", "DBSIZE",    "FLUSHALL",     "FLUSHDB", "COMMAND",  "DEBUG",   "SCAN",
        "KEYS",   "RANDOMKEY", "WAIT",         "PUBLISH", "LASTSAVE", "SLOWLOG", "LATENCY",
        "ROLE",   "READONLY",  "READWRITE",    "HELLO",   "AUTH",     "SELECT",  "FUNCTION",
        "ACL",    "MULTI",     "EXEC",         "DISCARD", "MEMORY",   "MONITOR", "SWAPDB",
        "SAVE",   "BGSAVE",    "BGREWRITEAOF", NULL};
    static const char *const scripts[] = {"EVAL",  "EVALSHA",  "EVAL_RO", "EVALSHA_RO",
                                          "FCALL", "FCALL_RO", NULL};
    static const char *const numkeys1[] = {"ZUNION",     "ZINTER", "ZDIFF", "SINTERCARD",
                                           "ZINTERCARD", "LMPOP",  "ZMPOP", NULL};
    const char *name, *p;
    size_t n, pn, idx = 1;
    if (r->script)
        return r->nkeys > 0 && nova__redis_req_arg(r, 0, key, keylen);
    if (!nova__redis_req_arg(r, 0, &name, &n))
        return false;
    if (named_any(name, n, keyless))
        return false;
    if (named_any(name, n, scripts)) {
        if (!nova__redis_req_arg(r, 2, &p, &pn) || (pn == 1 && p[0] == '0'))
            return false;
        idx = 3;
    } else if (named_any(name, n, numkeys1) || named(name, n, "OBJECT")) {
        idx = 2;
    } else if (named(name, n, "BLMPOP") || named(name, n, "BZMPOP")) {
        idx = 3;
    } else if (named(name, n, "XREAD") || named(name, n, "XREADGROUP")) {
        for (size_t i = 1; nova__redis_req_arg(r, i, &p, &pn); i++) {
            if (named(p, pn, "STREAMS")) {
                idx = i + 1;
                break;
            }
        }
    }
    return nova__redis_req_arg(r, idx, key, keylen);
}

static void detect_blocking(struct nova__redis_cmd *r)
{
    const char *name;
    size_t n;
    int tmo;
    r->tmo_arg = -1;
    if (!r->script && nova__redis_req_arg(r, 0, &name, &n) &&
        nova__redis_blocking_command(name, n, r->argc, &tmo))
        r->tmo_arg = tmo;
}

static const struct nova__redis_link_cbs conn_cbs;

static struct clink *clink_new(struct nova__redis_conn *c, const char *host, int port)
{
    struct clink *cl = calloc(1, sizeof(*cl)), **nl;
    struct nova__redis_link_opts o = {
        .target = c->t,
        .tls = nova__redis_shared_tls(c->sh),
        .client_name = c->client_name,
        .what = c->what,
        .connect_timeout_ms = c->connect_timeout_ms,
        .want_master = c->t->mode == NOVA__REDIS_SENTINEL,
        .no_select = c->t->mode == NOVA__REDIS_CLUSTER,
        .cbs = &conn_cbs,
    };
    if (!cl)
        return NULL;
    nl = realloc(c->links, (c->nlinks + 1) * sizeof(*nl));
    if (!nl) {
        free(cl);
        return NULL;
    }
    c->links = nl;
    cl->c = c;
    cl->port = port;
    if (host && !(cl->host = strdup(host))) {
        free(cl);
        return NULL;
    }
    o.arg = cl;
    c->links[c->nlinks++] = cl;
    if (nova__redis_link_new(c->loop, &o, &cl->l) < 0) {
        c->nlinks--;
        free(cl->host);
        free(cl);
        return NULL;
    }
    c->open++;
    return cl;
}

static struct clink *clink_for(struct nova__redis_conn *c, const char *host, int port)
{
    for (size_t i = 0; i < c->nlinks; i++)
        if (c->links[i]->port == port && c->links[i]->host && strcmp(c->links[i]->host, host) == 0)
            return c->links[i];
    return clink_new(c, host, port);
}

static void conn_finish(struct nova__redis_conn *c);

static void clink_closed(void *arg)
{
    struct nova__redis_conn *c = arg;
    if (--c->open == 0 && c->closing)
        conn_finish(c);
}

static void clink_remove(struct nova__redis_conn *c, size_t i, int status)
{
    struct clink *cl = c->links[i];
    c->links[i] = c->links[--c->nlinks];
    free(cl->host);
    nova__redis_link_close(cl->l, status, clink_closed, c);
    free(cl);
}

/* The cluster link a request goes to; NULL when no master is known for it. */
static struct clink *route(struct nova__redis_conn *c, struct nova__redis_cmd *r)
{
    const char *key, *host = NULL;
    size_t keylen;
    int port = 0;
    if (c->t->mode != NOVA__REDIS_CLUSTER)
        return c->nlinks ? c->links[0] : NULL;
    if (r->any_node) {
        if (!nova__redis_cluster_master(c->sh, r->node, &host, &port))
            return NULL;
    } else if (req_key(r, &key, &keylen)) {
        if (!nova__redis_cluster_owner(c->sh, nova__redis_key_slot(key, keylen), &host, &port))
            return NULL;
    } else {
        for (size_t i = 0; i < c->nlinks; i++)
            if (nova__redis_link_up(c->links[i]->l))
                return c->links[i];
        if (!nova__redis_cluster_master(c->sh, 0, &host, &port))
            return NULL;
    }
    return clink_for(c, host, port);
}

static void recompute(struct nova__redis_conn *c);

/* ---- sending ------------------------------------------------------------------ */

static void on_script_loaded(void *arg, int status, const redisReply *reply);

/* A script sent as EVAL: learn its sha with SCRIPT LOAD on the same link,
 * so that the next calls are EVALSHA. */
static void load_script(struct nova__redis_link *l, struct nova__redis_script *s)
{
    const char *load[3] = {"SCRIPT", "LOAD", s->source};
    struct nova__redis_cmd *sl;
    if (s->loading || !(sl = nova__redis_req_argv(NULL, 3, load, NULL)))
        return;
    sl->cb = on_script_loaded;
    sl->arg = s;
    s->loading = true;
    nova__redis_link_put(l, sl, false);
}

static int send_now(struct nova__redis_cmd *r)
{
    struct nova__redis_conn *c = r->conn;
    struct clink *cl;
    if (r->oom)
        return -ENOMEM;
    if (!c->up || c->closing)
        return -ENOTCONN;
    cl = route(c, r);
    if (!cl)
        return -ENOTCONN;
    if (c->t->mode != NOVA__REDIS_CLUSTER && !nova__redis_link_up(cl->l))
        return -ENOTCONN;
    nova__redis_link_put(cl->l, r, false);
    if (r->as_eval && !r->script->sha[0])
        load_script(cl->l, r->script);
    return 0;
}

int nova__redis_conn_send(struct nova__redis_cmd *r, nova__redis_cb cb, void *arg)
{
    int rc;
    r->cb = cb;
    r->arg = arg;
    detect_blocking(r);
    rc = send_now(r);
    if (rc < 0)
        nova__redis_req_release(r);
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
    r->as_eval = !script->sha[0];
    rc = send_now(r);
    if (rc < 0)
        nova__redis_req_release(r);
    return rc;
}

int nova__redis_conn_command(struct nova__redis_conn *c, nova__redis_cb cb, void *arg, int argc,
                             const char *const *argv, const size_t *argvlen)
{
    struct nova__redis_cmd *r;
    if (!c->up || c->closing)
        return -ENOTCONN;
    r = nova__redis_req_argv(c, argc, argv, argvlen);
    if (!r)
        return -ENOMEM;
    return nova__redis_conn_send(r, cb, arg);
}

int nova__redis_conn_command_at(struct nova__redis_conn *c, size_t master, nova__redis_cb cb,
                                void *arg, int argc, const char *const *argv, const size_t *argvlen)
{
    struct nova__redis_cmd *r;
    if (!c->up || c->closing)
        return -ENOTCONN;
    r = nova__redis_req_argv(c, argc, argv, argvlen);
    if (!r)
        return -ENOMEM;
    r->any_node = c->t->mode == NOVA__REDIS_CLUSTER;
    r->node = master;
    return nova__redis_conn_send(r, cb, arg);
}

int nova__redis_conn_eval(struct nova__redis_conn *c, struct nova__redis_script *script,
                          nova__redis_cb cb, void *arg, int nkeys, int argc,
                          const char *const *argv, const size_t *argvlen)
{
    struct nova__redis_cmd *r;
    if (!c->up || c->closing)
        return -ENOTCONN;
    r = nova__redis_req_argv(c, argc, argv, argvlen);
    if (!r)
        return -ENOMEM;
    return nova__redis_conn_send_eval(r, script, nkeys, cb, arg);
}

/* ---- answers ------------------------------------------------------------------- */

static void on_script_loaded(void *arg, int status, const redisReply *reply)
{
    struct nova__redis_script *s = arg;
    s->loading = false;
    if (status == 0 && reply->type == REDIS_REPLY_STRING && reply->len == 40)
        memcpy(s->sha, reply->str, 41);
}

static void finish(struct nova__redis_cmd *r, int status, const redisReply *reply)
{
    if (r->cb)
        r->cb(r->arg, status, reply);
    nova__redis_req_release(r);
}

static void on_retry(uv_timer_t *t);

static void defer(struct nova__redis_conn *c, struct nova__redis_cmd *r)
{
    r->next = NULL;
    if (c->deferred_tail)
        c->deferred_tail->next = r;
    else
        c->deferred = r;
    c->deferred_tail = r;
    if (!uv_is_active((uv_handle_t *)&c->retry))
        uv_timer_start(&c->retry, on_retry, RETRY_MS, 0);
}

/* MOVED / ASK <slot> <host:port> */
static bool redirect(struct nova__redis_conn *c, struct nova__redis_cmd *r, const char *msg,
                     bool ask)
{
    const char *p = msg + (ask ? 4 : 6), *sp;
    struct nova__redis_node node;
    struct clink *cl;
    unsigned long slot;
    char *end;
    slot = strtoul(p, &end, 10);
    if (end == p || *end != ' ' || slot >= NOVA__REDIS_SLOTS)
        return false;
    sp = end + 1;
    if (nova__redis_node_parse(sp, strlen(sp), &node) < 0)
        return false;
    if (ask) {
        c->stats.ask++;
    } else {
        c->stats.moved++;
        nova__redis_cluster_moved(c->sh, (unsigned)slot, node.host, node.port);
    }
    cl = clink_for(c, node.host, node.port);
    free(node.host);
    if (!cl)
        return false;
    r->redirects++;
    nova__redis_link_put(cl->l, r, ask);
    return true;
}

static void conn_reply(struct nova__redis_link *l, void *arg, struct nova__redis_cmd *r, int status,
                       redisReply *reply)
{
    struct clink *cl = arg;
    struct nova__redis_conn *c = cl->c;
    bool cluster = c->t->mode == NOVA__REDIS_CLUSTER;
    const char *e;
    if (status != 0 || reply->type != REDIS_REPLY_ERROR || !r->conn || c->closing) {
        finish(r, status, reply);
        return;
    }
    e = reply->str;
    if (r->script && strncmp(e, "NOSCRIPT", 8) == 0 && !r->as_eval) {
        r->script->sha[0] = '\0';
        r->as_eval = true;
        nova__redis_link_put(l, r, false);
        load_script(l, r->script);
        return;
    }
    if (cluster && r->redirects < REDIRECTS_MAX &&
        ((strncmp(e, "MOVED ", 6) == 0 && redirect(c, r, e, false)) ||
         (!r->script && strncmp(e, "ASK ", 4) == 0 && redirect(c, r, e, true))))
        return;
    /* A script names only its first key; the others of its queue would be
     * looked up on the importing node as they are, half moved. So a script
     * is not sent with ASKING: it waits, like a TRYAGAIN, until the slot has
     * moved (MOVED) or stays where it is. */
    if (cluster && r->retries < RETRIES_MAX &&
        (strncmp(e, "TRYAGAIN", 8) == 0 || strncmp(e, "CLUSTERDOWN", 11) == 0 ||
         (r->script && strncmp(e, "ASK ", 4) == 0))) {
        if (e[0] == 'A')
            c->stats.ask++;
        r->retries++;
        if (e[0] != 'A')
            c->stats.tryagain++;
        if (e[0] == 'C')
            nova__redis_cluster_refresh(c->sh);
        defer(c, r);
        return;
    }
    if (!cluster && (strncmp(e, "MOVED ", 6) == 0 || strncmp(e, "ASK ", 4) == 0)) {
        static bool told;
        if (!told)
            nova__log(NOVA_LOG_ERROR, NULL,
                      "redis %s connection %s is a Redis Cluster node: set [redis] cluster_nodes "
                      "(logged once)",
                      c->what, nova__redis_link_addr(l));
        told = true;
    }
    if (strncmp(e, "READONLY", 8) == 0 || strncmp(e, "MASTERDOWN", 10) == 0) {
        /* A demoted master: nothing was written; the caller tries again
         * once the connection is back on the real master. */
        c->stats.readonly++;
        finish(r, -ECONNRESET, NULL);
        if (c->closing)
            return;
        if (c->t->mode == NOVA__REDIS_SENTINEL)
            nova__redis_sentinel_suspect(c->sh);
        else if (cluster)
            nova__redis_cluster_refresh(c->sh);
        nova__redis_link_reset(l, "answers READONLY: no longer the master; reconnecting");
        return;
    }
    finish(r, status, reply);
}

static void on_retry(uv_timer_t *t)
{
    struct nova__redis_conn *c = t->data;
    struct nova__redis_cmd *list = c->deferred;
    c->deferred = c->deferred_tail = NULL;
    if (c->recheck) {
        c->recheck = false;
        recompute(c);
    }
    while (list) {
        struct nova__redis_cmd *r = list;
        struct clink *cl;
        list = r->next;
        r->next = NULL;
        cl = c->up && !c->closing ? route(c, r) : NULL;
        if (cl)
            nova__redis_link_put(cl->l, r, false);
        else
            finish(r, -ECONNRESET, NULL);
    }
}

/* ---- state ---------------------------------------------------------------------- */

static void set_up(struct nova__redis_conn *c, bool up)
{
    if (up == c->up)
        return;
    c->up = up;
    if (up)
        c->err[0] = '\0';
    if (c->on_state)
        c->on_state(c->arg, up);
}

static void recompute(struct nova__redis_conn *c)
{
    bool up;
    if (c->closing)
        return;
    if (c->t->mode != NOVA__REDIS_CLUSTER) {
        up = c->nlinks && nova__redis_link_up(c->links[0]->l);
    } else {
        up = nova__redis_cluster_known(c->sh);
        for (size_t i = 0; up && i < c->nlinks; i++)
            if (nova__redis_link_failed(c->links[i]->l))
                up = false;
    }
    set_up(c, up);
}

static int conn_address(struct nova__redis_link *l, void *arg, const char **host, int *port,
                        const char **unix_path)
{
    struct clink *cl = arg;
    struct nova__redis_conn *c = cl->c;
    (void)l;
    switch (c->t->mode) {
    case NOVA__REDIS_SENTINEL:
        return nova__redis_sentinel_master(c->sh, host, port) ? 0 : -EAGAIN;
    case NOVA__REDIS_CLUSTER:
        *host = cl->host;
        *port = cl->port;
        return 0;
    case NOVA__REDIS_DIRECT:
    default:
        *host = c->t->host;
        *port = c->t->port;
        *unix_path = c->t->unix_path;
        return 0;
    }
}

static void conn_up(struct nova__redis_link *l, void *arg)
{
    struct clink *cl = arg;
    (void)l;
    recompute(cl->c);
}

static void conn_down(struct nova__redis_link *l, void *arg, bool was_up)
{
    struct clink *cl = arg;
    struct nova__redis_conn *c = cl->c;
    (void)was_up;
    if (c->closing)
        return;
    snprintf(c->err, sizeof(c->err), "%s: %s", nova__redis_link_addr(l), nova__redis_link_error(l));
    if (c->t->mode == NOVA__REDIS_SENTINEL)
        nova__redis_sentinel_suspect(c->sh);
    else if (c->t->mode == NOVA__REDIS_CLUSTER)
        nova__redis_cluster_refresh(c->sh);
    recompute(c);
}

static const struct nova__redis_link_cbs conn_cbs = {
    .address = conn_address, .up = conn_up, .down = conn_down, .reply = conn_reply};

void nova__redis_conn_topology(struct nova__redis_conn *c)
{
    if (c->closing)
        return;
    if (c->t->mode == NOVA__REDIS_SENTINEL && c->nlinks) {
        struct nova__redis_link *l = c->links[0]->l;
        const char *host;
        int port;
        char want[300];
        if (!nova__redis_sentinel_master(c->sh, &host, &port))
            return;
        snprintf(want, sizeof(want), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
        if (strcmp(want, nova__redis_link_addr(l)) != 0)
            nova__redis_link_reset(
                l, nova__redis_link_up(l) ? "the sentinels name another master; moving" : NULL);
        else if (nova__redis_link_failed(l))
            nova__redis_link_kick(l);
        return;
    }
    if (c->t->mode == NOVA__REDIS_CLUSTER) {
        /* links to nodes that are no longer masters and cannot be reached */
        for (size_t i = c->nlinks; i-- > 0;) {
            struct clink *cl = c->links[i];
            if (nova__redis_link_failed(cl->l) &&
                !nova__redis_cluster_is_master(c->sh, cl->host, cl->port))
                clink_remove(c, i, -ECONNRESET);
        }
        recompute(c);
    }
}

/* ---- life cycle --------------------------------------------------------------- */

int nova__redis_conn_new(uv_loop_t *loop, const struct nova__redis_conn_opts *opts,
                         struct nova__redis_conn **out)
{
    struct nova__redis_conn *c = calloc(1, sizeof(*c));
    char err[256];
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->sh = nova__redis_shared_get(loop, opts->target, err, sizeof(err));
    if (!c->sh) {
        nova__log(NOVA_LOG_ERROR, NULL, "redis: %s", err);
        free(c);
        return -EINVAL;
    }
    c->t = nova__redis_shared_target(c->sh);
    c->client_name = opts->client_name ? strdup(opts->client_name) : NULL;
    c->what = strdup(opts->what ? opts->what : "redis");
    if ((opts->client_name && !c->client_name) || !c->what) {
        nova__redis_shared_put(c->sh);
        free(c->client_name);
        free(c->what);
        free(c);
        return -ENOMEM;
    }
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    c->on_state = opts->on_state;
    c->arg = opts->arg;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    c->open = 1;
    nova__redis_shared_attach(c->sh, c);
    if (c->t->mode != NOVA__REDIS_CLUSTER) {
        if (!clink_new(c, NULL, 0)) {
            nova__redis_conn_close(c, NULL, NULL);
            return -ENOMEM;
        }
    } else if (nova__redis_cluster_known(c->sh)) {
        /* up on the next turn: on_state must not run before *out is set */
        c->recheck = true;
        uv_timer_start(&c->retry, on_retry, 0, 0);
    } else {
        nova__redis_cluster_refresh(c->sh);
    }
    *out = c;
    return 0;
}

bool nova__redis_conn_up(const struct nova__redis_conn *c)
{
    return c && c->up && !c->closing;
}

void nova__redis_conn_reset(struct nova__redis_conn *c)
{
    if (c->closing)
        return;
    for (size_t i = 0; i < c->nlinks; i++)
        nova__redis_link_reset(c->links[i]->l, NULL);
}

enum nova__redis_mode nova__redis_conn_mode(const struct nova__redis_conn *c)
{
    return c->t->mode;
}

const char *nova__redis_conn_error(const struct nova__redis_conn *c)
{
    const char *e;
    if (c->err[0])
        return c->err;
    e = nova__redis_shared_error(c->sh);
    if (*e)
        return e;
    for (size_t i = 0; i < c->nlinks; i++)
        if (*nova__redis_link_error(c->links[i]->l))
            return nova__redis_link_error(c->links[i]->l);
    return "";
}

size_t nova__redis_conn_masters(const struct nova__redis_conn *c)
{
    if (c->t->mode == NOVA__REDIS_CLUSTER)
        return nova__redis_cluster_masters(c->sh);
    return 1;
}

int nova__redis_conn_version(const struct nova__redis_conn *c)
{
    for (size_t i = 0; i < c->nlinks; i++)
        if (nova__redis_link_version(c->links[i]->l))
            return nova__redis_link_version(c->links[i]->l);
    return 0;
}

static void conn_finish(struct nova__redis_conn *c)
{
    void (*done)(void *) = c->close_done;
    void *arg = c->close_arg;
    spares_free(c);
    free(c->links);
    nova__redis_shared_put(c->sh);
    free(c->client_name);
    free(c->what);
    free(c);
    if (done)
        done(arg);
}

static void retry_closed(uv_handle_t *h)
{
    struct nova__redis_conn *c = h->data;
    if (--c->open == 0)
        conn_finish(c);
}

void nova__redis_conn_close(struct nova__redis_conn *c, void (*done)(void *arg), void *arg)
{
    struct nova__redis_cmd *list;
    if (c->closing)
        return;
    c->closing = true;
    c->up = false;
    c->close_done = done;
    c->close_arg = arg;
    nova__redis_shared_detach(c->sh, c);
    list = c->deferred;
    c->deferred = c->deferred_tail = NULL;
    while (list) {
        struct nova__redis_cmd *r = list;
        list = r->next;
        finish(r, -ECANCELED, NULL);
    }
    while (c->nlinks)
        clink_remove(c, c->nlinks - 1, -ECANCELED);
    if (!uv_is_closing((uv_handle_t *)&c->retry))
        uv_close((uv_handle_t *)&c->retry, retry_closed);
}

void nova__redis_conn_stats(const struct nova__redis_conn *c, struct nova__redis_conn_stats *out)
{
    *out = c->stats;
}
