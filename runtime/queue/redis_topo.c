/*
 * redis_topo - what every connection to one target shares, per loop:
 *
 * - the TLS client context (loaded once);
 * - Sentinel: one query link to a sentinel (SENTINEL
 *   get-master-addr-by-name; on failure the next sentinel is asked) and
 *   one watch link subscribed to +switch-master, so a failover reaches
 *   every connection at once;
 * - Cluster: the slot map (CLUSTER SLOTS, asked of a known master or a
 *   seed node), updated by MOVED answers and refreshed after them and
 *   after a node is lost.
 *
 * Connections attach to hear of changes (nova__redis_conn_topology).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "queue/redis_int.h"

#define NO_NODE 0xffff

struct nova__redis_shared {
    struct nova__redis_shared *next;
    uv_loop_t *loop;
    char *key;
    int refs;
    struct nova__redis_target t;
    SSL_CTX *tls;
    struct nova__redis_conn **conns;
    size_t nconns, capconns;
    uv_timer_t timer; /* retry of a failed refresh */
    int open;         /* handles and links not yet closed */

    /* Sentinel */
    struct nova__redis_link *sq, *sw; /* query, watch */
    size_t sqi, swi;                  /* which sentinel each talks to */
    char *mhost;                      /* the master, NULL while unknown */
    int mport;
    bool querying, query_again, query_sent;

    /* Cluster */
    uint16_t *slots;
    struct nova__redis_node *masters;
    size_t nmasters;
    bool known;
    struct nova__redis_link *cq;
    size_t cqi;
    bool refreshing, refresh_again, refresh_sent;
    bool told_no_cluster;
};

static struct nova__redis_shared *registry;

/* ---- helpers -------------------------------------------------------------------- */

static void notify(struct nova__redis_shared *sh)
{
    /* a connection may detach (close) from its callback: walk a copy */
    size_t n = sh->nconns;
    struct nova__redis_conn **copy = n ? malloc(n * sizeof(*copy)) : NULL;
    if (!copy)
        return;
    memcpy(copy, sh->conns, n * sizeof(*copy));
    for (size_t i = 0; i < n; i++) {
        bool still = false;
        for (size_t j = 0; j < sh->nconns && !still; j++)
            still = sh->conns[j] == copy[i];
        if (still)
            nova__redis_conn_topology(copy[i]);
    }
    free(copy);
}

static void put_internal(struct nova__redis_link *l, nova__redis_cb cb, void *arg, int argc,
                         const char *const *argv)
{
    struct nova__redis_cmd *r = nova__redis_req_argv(NULL, argc, argv, NULL);
    if (!r)
        return;
    r->cb = cb;
    r->arg = arg;
    nova__redis_link_put(l, r, false);
}

/* Internal requests end here: their own callback, then freed. */
static void on_reply(struct nova__redis_link *l, void *arg, struct nova__redis_cmd *r, int status,
                     redisReply *reply)
{
    (void)l;
    (void)arg;
    if (r->cb)
        r->cb(r->arg, status, reply);
    nova__redis_req_release(r);
}

static bool same_addr(const char *h1, int p1, const char *h2, int p2)
{
    return p1 == p2 && h1 && h2 && strcmp(h1, h2) == 0;
}

/* ---- Sentinel ------------------------------------------------------------------------ */

static void set_master(struct nova__redis_shared *sh, const char *host, int port, const char *why)
{
    char *h;
    if (same_addr(sh->mhost, sh->mport, host, port))
        return;
    h = strdup(host);
    if (!h)
        return;
    nova__log(NOVA_LOG_INFO, NULL, "redis sentinel: master %s is %s%s%s:%d (%s)",
              sh->t.sentinel_master, strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", port,
              why);
    free(sh->mhost);
    sh->mhost = h;
    sh->mport = port;
    notify(sh);
}

static void query_send(struct nova__redis_shared *sh);

static void on_master_answer(void *arg, int status, const redisReply *r)
{
    struct nova__redis_shared *sh = arg;
    sh->query_sent = false;
    if (status < 0)
        return; /* the link's down callback moves on to the next sentinel */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        int port = atoi(r->element[1]->str);
        sh->querying = false;
        if (port > 0 && port < 65536)
            set_master(sh, r->element[0]->str, port, "asked the sentinels");
        if (sh->query_again) {
            sh->query_again = false;
            sh->querying = true;
            query_send(sh);
        }
        return;
    }
    nova__log(NOVA_LOG_WARN, NULL, "redis sentinel %s does not name master %s: %s; asking another",
              nova__redis_link_addr(sh->sq), sh->t.sentinel_master,
              r->type == REDIS_REPLY_ERROR ? r->str : "no such master");
    nova__redis_link_reset(sh->sq, NULL); /* the down callback picks the next sentinel */
}

static void query_send(struct nova__redis_shared *sh)
{
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", sh->t.sentinel_master};
    if (!nova__redis_link_up(sh->sq) || sh->query_sent)
        return; /* sent once the link is up */
    sh->query_sent = true;
    put_internal(sh->sq, on_master_answer, sh, 3, argv);
}

static void query(struct nova__redis_shared *sh)
{
    if (!sh->sq)
        return;
    if (sh->querying) {
        sh->query_again = true;
        return;
    }
    sh->querying = true;
    if (nova__redis_link_up(sh->sq))
        query_send(sh);
    else
        nova__redis_link_kick(sh->sq);
}

static int sq_address(struct nova__redis_link *l, void *arg, const char **host, int *port,
                      const char **unix_path)
{
    struct nova__redis_shared *sh = arg;
    (void)l;
    (void)unix_path;
    *host = sh->t.nodes[sh->sqi].host;
    *port = sh->t.nodes[sh->sqi].port;
    return 0;
}

static void sq_up(struct nova__redis_link *l, void *arg)
{
    struct nova__redis_shared *sh = arg;
    (void)l;
    if (sh->querying)
        query_send(sh);
}

static void sq_down(struct nova__redis_link *l, void *arg, bool was_up)
{
    struct nova__redis_shared *sh = arg;
    (void)l;
    (void)was_up;
    sh->query_sent = false;
    sh->sqi = (sh->sqi + 1) % sh->t.nnodes;
}

static const struct nova__redis_link_cbs sq_cbs = {
    .address = sq_address, .up = sq_up, .down = sq_down, .reply = on_reply};

static int sw_address(struct nova__redis_link *l, void *arg, const char **host, int *port,
                      const char **unix_path)
{
    struct nova__redis_shared *sh = arg;
    (void)l;
    (void)unix_path;
    *host = sh->t.nodes[sh->swi].host;
    *port = sh->t.nodes[sh->swi].port;
    return 0;
}

static void sw_up(struct nova__redis_link *l, void *arg)
{
    struct nova__redis_shared *sh = arg;
    const char *argv[2] = {"SUBSCRIBE", "+switch-master"};
    put_internal(l, NULL, NULL, 2, argv);
    query(sh); /* a switch may have happened while nobody listened */
}

static void sw_down(struct nova__redis_link *l, void *arg, bool was_up)
{
    struct nova__redis_shared *sh = arg;
    (void)l;
    (void)was_up;
    sh->swi = (sh->swi + 1) % sh->t.nnodes;
}

/* +switch-master <name> <old-ip> <old-port> <new-ip> <new-port> */
static void sw_push(struct nova__redis_link *l, void *arg, redisReply *r)
{
    struct nova__redis_shared *sh = arg;
    char name[256], oldh[256], newh[256];
    int oldp, newp;
    (void)l;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    if (sscanf(r->element[2]->str, "%255s %255s %d %255s %d", name, oldh, &oldp, newh, &newp) != 5)
        return;
    if (strcmp(name, sh->t.sentinel_master) != 0)
        return;
    set_master(sh, newh, newp, "+switch-master");
}

static const struct nova__redis_link_cbs sw_cbs = {
    .address = sw_address, .up = sw_up, .down = sw_down, .reply = on_reply, .push = sw_push};

bool nova__redis_sentinel_master(struct nova__redis_shared *sh, const char **host, int *port)
{
    if (sh->mhost) {
        *host = sh->mhost;
        *port = sh->mport;
        return true;
    }
    query(sh);
    return false;
}

void nova__redis_sentinel_suspect(struct nova__redis_shared *sh)
{
    query(sh);
}

/* ---- Cluster ----------------------------------------------------------------------- */

static void refresh_send(struct nova__redis_shared *sh);

static int add_master(struct nova__redis_node **list, size_t *n, const char *host, int port)
{
    struct nova__redis_node *nl;
    for (size_t i = 0; i < *n; i++)
        if (same_addr((*list)[i].host, (*list)[i].port, host, port))
            return (int)i;
    if (*n >= NO_NODE)
        return -ENOSPC;
    nl = realloc(*list, (*n + 1) * sizeof(*nl));
    if (!nl)
        return -ENOMEM;
    *list = nl;
    nl[*n].host = strdup(host);
    nl[*n].port = port;
    if (!nl[*n].host)
        return -ENOMEM;
    return (int)(*n)++;
}

static void free_nodes(struct nova__redis_node *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].host);
    free(list);
}

static void on_retry_timer(uv_timer_t *t);

static void refresh_done(struct nova__redis_shared *sh, bool ok)
{
    sh->refreshing = false;
    if (!ok) {
        uv_timer_start(&sh->timer, on_retry_timer, 1000, 0);
        return;
    }
    if (sh->refresh_again) {
        sh->refresh_again = false;
        uv_timer_start(&sh->timer, on_retry_timer, 100, 0);
    }
}

/* CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...] */
static void on_slots(void *arg, int status, const redisReply *r)
{
    struct nova__redis_shared *sh = arg;
    struct nova__redis_node *masters = NULL;
    size_t n = 0;
    uint16_t *slots;
    const char *asked = sh->cq ? nova__redis_link_addr(sh->cq) : "";
    char askedhost[256];
    sh->refresh_sent = false;
    if (status < 0)
        return; /* the down callback tries the next node */
    {
        /* the host a node announces as "" is the one we asked */
        const char *colon = strrchr(asked, ':');
        size_t hn = colon ? (size_t)(colon - asked) : strlen(asked);
        if (hn && asked[0] == '[') {
            asked++;
            hn -= 2;
        }
        snprintf(askedhost, sizeof(askedhost), "%.*s", (int)hn, asked);
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        if (!sh->told_no_cluster)
            nova__log(NOVA_LOG_ERROR, NULL, "redis cluster: %s answers CLUSTER SLOTS with %s",
                      nova__redis_link_addr(sh->cq),
                      r->type == REDIS_REPLY_ERROR ? r->str : "something else");
        sh->told_no_cluster = true;
        nova__redis_link_reset(sh->cq, NULL);
        refresh_done(sh, false);
        return;
    }
    slots = malloc(NOVA__REDIS_SLOTS * sizeof(*slots));
    if (!slots) {
        refresh_done(sh, false);
        return;
    }
    for (size_t i = 0; i < NOVA__REDIS_SLOTS; i++)
        slots[i] = NO_NODE;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i], *node;
        long long a, b;
        int idx;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            continue;
        a = e->element[0]->integer;
        b = e->element[1]->integer;
        node = e->element[2];
        if (a < 0 || b >= NOVA__REDIS_SLOTS || a > b ||
            node->element[0]->type != REDIS_REPLY_STRING ||
            node->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        idx = add_master(&masters, &n,
                         node->element[0]->len == 0 || strcmp(node->element[0]->str, "?") == 0
                             ? askedhost
                             : node->element[0]->str,
                         (int)node->element[1]->integer);
        if (idx < 0)
            continue;
        for (long long s = a; s <= b; s++)
            slots[s] = (uint16_t)idx;
    }
    if (n == 0) {
        nova__log(NOVA_LOG_WARN, NULL, "redis cluster: %s knows no slot owner yet",
                  nova__redis_link_addr(sh->cq));
        free(slots);
        free_nodes(masters, n);
        nova__redis_link_reset(sh->cq, NULL);
        refresh_done(sh, false);
        return;
    }
    if (!sh->known)
        nova__log(NOVA_LOG_INFO, NULL, "redis cluster: %zu master(s), slot map from %s", n,
                  nova__redis_link_addr(sh->cq));
    free(sh->slots);
    free_nodes(sh->masters, sh->nmasters);
    sh->slots = slots;
    sh->masters = masters;
    sh->nmasters = n;
    sh->known = true;
    refresh_done(sh, true);
    notify(sh);
}

static void refresh_send(struct nova__redis_shared *sh)
{
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    if (!nova__redis_link_up(sh->cq) || sh->refresh_sent)
        return;
    sh->refresh_sent = true;
    put_internal(sh->cq, on_slots, sh, 2, argv);
}

void nova__redis_cluster_refresh(struct nova__redis_shared *sh)
{
    if (!sh->cq)
        return;
    if (sh->refreshing) {
        sh->refresh_again = true;
        return;
    }
    if (uv_is_active((uv_handle_t *)&sh->timer))
        return; /* one is due soon anyway */
    sh->refreshing = true;
    if (nova__redis_link_up(sh->cq))
        refresh_send(sh);
    else
        nova__redis_link_kick(sh->cq);
}

static void on_retry_timer(uv_timer_t *t)
{
    struct nova__redis_shared *sh = t->data;
    nova__redis_cluster_refresh(sh);
}

/* The nodes asked for the map: known masters first, then the seeds. */
static int cq_address(struct nova__redis_link *l, void *arg, const char **host, int *port,
                      const char **unix_path)
{
    struct nova__redis_shared *sh = arg;
    size_t total = sh->nmasters + sh->t.nnodes, i = sh->cqi % total;
    (void)l;
    (void)unix_path;
    if (i < sh->nmasters) {
        *host = sh->masters[i].host;
        *port = sh->masters[i].port;
    } else {
        *host = sh->t.nodes[i - sh->nmasters].host;
        *port = sh->t.nodes[i - sh->nmasters].port;
    }
    return 0;
}

static void cq_up(struct nova__redis_link *l, void *arg)
{
    struct nova__redis_shared *sh = arg;
    (void)l;
    if (sh->refreshing)
        refresh_send(sh);
}

static void cq_down(struct nova__redis_link *l, void *arg, bool was_up)
{
    struct nova__redis_shared *sh = arg;
    (void)l;
    (void)was_up;
    sh->refresh_sent = false;
    sh->cqi++;
}

static const struct nova__redis_link_cbs cq_cbs = {
    .address = cq_address, .up = cq_up, .down = cq_down, .reply = on_reply};

bool nova__redis_cluster_known(const struct nova__redis_shared *sh)
{
    return sh->known;
}

bool nova__redis_cluster_owner(const struct nova__redis_shared *sh, unsigned slot,
                               const char **host, int *port)
{
    uint16_t i;
    if (!sh->known || slot >= NOVA__REDIS_SLOTS)
        return false;
    i = sh->slots[slot];
    if (i == NO_NODE || i >= sh->nmasters)
        return false;
    *host = sh->masters[i].host;
    *port = sh->masters[i].port;
    return true;
}

size_t nova__redis_cluster_masters(const struct nova__redis_shared *sh)
{
    return sh->known ? sh->nmasters : 0;
}

bool nova__redis_cluster_master(const struct nova__redis_shared *sh, size_t i, const char **host,
                                int *port)
{
    if (!sh->known || i >= sh->nmasters)
        return false;
    *host = sh->masters[i].host;
    *port = sh->masters[i].port;
    return true;
}

bool nova__redis_cluster_is_master(const struct nova__redis_shared *sh, const char *host, int port)
{
    for (size_t i = 0; i < sh->nmasters; i++)
        if (same_addr(sh->masters[i].host, sh->masters[i].port, host, port))
            return true;
    return false;
}

void nova__redis_cluster_moved(struct nova__redis_shared *sh, unsigned slot, const char *host,
                               int port)
{
    int idx;
    if (!sh->known || slot >= NOVA__REDIS_SLOTS)
        return;
    idx = add_master(&sh->masters, &sh->nmasters, host, port);
    if (idx >= 0)
        sh->slots[slot] = (uint16_t)idx;
    nova__redis_cluster_refresh(sh);
}

/* ---- the registry --------------------------------------------------------------------- */

static void keyput(char **p, size_t *left, const char *s)
{
    int n = snprintf(*p, *left, "%s\x1f", s ? s : "\x1e");
    if (n < 0 || (size_t)n >= *left) {
        *left = 0;
        return;
    }
    *p += n;
    *left -= (size_t)n;
}

static char *target_key(const struct nova__redis_target *t)
{
    size_t cap = 1024;
    for (size_t i = 0; i < t->nnodes; i++)
        cap += strlen(t->nodes[i].host) + 16;
    cap += (t->host ? strlen(t->host) : 0) + (t->unix_path ? strlen(t->unix_path) : 0) +
           (t->username ? strlen(t->username) : 0) + (t->password ? strlen(t->password) : 0) +
           (t->tls_ca_file ? strlen(t->tls_ca_file) : 0) +
           (t->tls_cert_file ? strlen(t->tls_cert_file) : 0) +
           (t->tls_key_file ? strlen(t->tls_key_file) : 0) +
           (t->tls_server_name ? strlen(t->tls_server_name) : 0) +
           (t->sentinel_master ? strlen(t->sentinel_master) : 0) +
           (t->sentinel_username ? strlen(t->sentinel_username) : 0) +
           (t->sentinel_password ? strlen(t->sentinel_password) : 0);
    char *key = malloc(cap), *p = key, num[128];
    size_t left = cap;
    if (!key)
        return NULL;
    snprintf(num, sizeof(num), "%d %d %d %d %d %lld %lld", t->port, t->db, t->tls,
             t->tls_skip_verify, (int)t->mode, (long long)t->reply_timeout_ms,
             (long long)t->keepalive_ms);
    keyput(&p, &left, num);
    keyput(&p, &left, t->host);
    keyput(&p, &left, t->unix_path);
    keyput(&p, &left, t->username);
    keyput(&p, &left, t->password);
    keyput(&p, &left, t->tls_ca_file);
    keyput(&p, &left, t->tls_cert_file);
    keyput(&p, &left, t->tls_key_file);
    keyput(&p, &left, t->tls_server_name);
    keyput(&p, &left, t->sentinel_master);
    keyput(&p, &left, t->sentinel_username);
    keyput(&p, &left, t->sentinel_password);
    for (size_t i = 0; i < t->nnodes; i++) {
        snprintf(num, sizeof(num), "%d", t->nodes[i].port);
        keyput(&p, &left, t->nodes[i].host);
        keyput(&p, &left, num);
    }
    return key;
}

static void shared_free(struct nova__redis_shared *sh)
{
    if (sh->tls)
        SSL_CTX_free(sh->tls);
    free(sh->mhost);
    free(sh->slots);
    free_nodes(sh->masters, sh->nmasters);
    free(sh->conns);
    nova__redis_target_free(&sh->t);
    free(sh->key);
    free(sh);
}

static void shared_closed(void *arg)
{
    struct nova__redis_shared *sh = arg;
    if (--sh->open == 0)
        shared_free(sh);
}

static void timer_closed(uv_handle_t *h)
{
    shared_closed(h->data);
}

static int make_link(struct nova__redis_shared *sh, struct nova__redis_link **out,
                     const struct nova__redis_link_cbs *cbs, const char *what, bool sentinel)
{
    struct nova__redis_link_opts o = {.target = &sh->t,
                                      .tls = sh->tls,
                                      .what = what,
                                      .connect_timeout_ms = 5000,
                                      .sentinel = sentinel,
                                      .no_select = true,
                                      .cbs = cbs,
                                      .arg = sh};
    int rc = nova__redis_link_new(sh->loop, &o, out);
    if (rc == 0)
        sh->open++;
    return rc;
}

struct nova__redis_shared *nova__redis_shared_get(uv_loop_t *loop,
                                                  const struct nova__redis_target *t, char *err,
                                                  size_t errlen)
{
    char *key = target_key(t);
    struct nova__redis_shared *sh;
    if (!key) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (sh = registry; sh; sh = sh->next) {
        if (sh->loop == loop && strcmp(sh->key, key) == 0) {
            free(key);
            sh->refs++;
            return sh;
        }
    }
    sh = calloc(1, sizeof(*sh));
    if (!sh || nova__redis_target_copy(&sh->t, t) < 0) {
        free(sh);
        free(key);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sh->key = key;
    sh->loop = loop;
    sh->refs = 1;
    if (sh->t.tls) {
        sh->tls = nova__redis_tls_ctx(&sh->t, err, errlen);
        if (!sh->tls) {
            nova__redis_target_free(&sh->t);
            free(sh->key);
            free(sh);
            return NULL;
        }
    }
    uv_timer_init(loop, &sh->timer);
    sh->timer.data = sh;
    sh->open = 1;
    sh->next = registry;
    registry = sh;
    if (sh->t.mode == NOVA__REDIS_SENTINEL && sh->t.nnodes > 0) {
        sh->swi = sh->t.nnodes > 1 ? 1 : 0;
        make_link(sh, &sh->sq, &sq_cbs, "sentinel", true);
        make_link(sh, &sh->sw, &sw_cbs, "sentinel watch", true);
        query(sh);
    } else if (sh->t.mode == NOVA__REDIS_CLUSTER && sh->t.nnodes > 0) {
        make_link(sh, &sh->cq, &cq_cbs, "cluster map", false);
        nova__redis_cluster_refresh(sh);
    }
    return sh;
}

void nova__redis_shared_put(struct nova__redis_shared *sh)
{
    struct nova__redis_shared **pp;
    if (!sh || --sh->refs > 0)
        return;
    for (pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == sh) {
            *pp = sh->next;
            break;
        }
    }
    if (sh->sq)
        nova__redis_link_close(sh->sq, -ECANCELED, shared_closed, sh);
    if (sh->sw)
        nova__redis_link_close(sh->sw, -ECANCELED, shared_closed, sh);
    if (sh->cq)
        nova__redis_link_close(sh->cq, -ECANCELED, shared_closed, sh);
    sh->sq = sh->sw = sh->cq = NULL;
    if (!uv_is_closing((uv_handle_t *)&sh->timer))
        uv_close((uv_handle_t *)&sh->timer, timer_closed);
}

const struct nova__redis_target *nova__redis_shared_target(const struct nova__redis_shared *sh)
{
    return &sh->t;
}

SSL_CTX *nova__redis_shared_tls(const struct nova__redis_shared *sh)
{
    return sh->tls;
}

void nova__redis_shared_attach(struct nova__redis_shared *sh, struct nova__redis_conn *c)
{
    if (sh->nconns == sh->capconns) {
        size_t cap = sh->capconns ? sh->capconns * 2 : 8;
        struct nova__redis_conn **n = realloc(sh->conns, cap * sizeof(*n));
        if (!n)
            return;
        sh->conns = n;
        sh->capconns = cap;
    }
    sh->conns[sh->nconns++] = c;
}

void nova__redis_shared_detach(struct nova__redis_shared *sh, struct nova__redis_conn *c)
{
    for (size_t i = 0; i < sh->nconns; i++) {
        if (sh->conns[i] == c) {
            sh->conns[i] = sh->conns[--sh->nconns];
            return;
        }
    }
}

const char *nova__redis_shared_error(const struct nova__redis_shared *sh)
{
    if (sh->sq && !nova__redis_link_up(sh->sq) && *nova__redis_link_error(sh->sq))
        return nova__redis_link_error(sh->sq);
    if (sh->cq && !nova__redis_link_up(sh->cq) && *nova__redis_link_error(sh->cq))
        return nova__redis_link_error(sh->cq);
    return "";
}
