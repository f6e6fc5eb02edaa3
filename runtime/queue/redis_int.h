/*
 * redis_int - what the pieces behind struct nova__redis_conn share; not
 * for the engine (which includes redis_conn.h only).
 *
 *   redis_target.c  URLs, the [redis] section, hash slots, timeouts
 *   redis_tls.c     the OpenSSL client context and its error texts
 *   redis_link.c    one socket to one server: connect, TLS, handshake,
 *                   writes batched per loop turn, replies through
 *                   hiredis's reader, reply timeout, reconnect
 *   redis_topo.c    what connections to one target share: the TLS
 *                   context, the Sentinel monitor, the Cluster slot map
 *   redis_conn.c    requests, and the connection the engine sees, which
 *                   routes each request to a link
 */
#ifndef NOVA_RUNTIME_REDIS_INT_H
#define NOVA_RUNTIME_REDIS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "queue/redis_conn.h"

#define NOVA__REDIS_SLOTS          16384
#define NOVA__REDIS_HEADROOM       128 /* longest head: `*N EVALSHA <sha> <nkeys>`, ~110 bytes */
#define NOVA__REDIS_BACKOFF_MIN_MS 100
#define NOVA__REDIS_BACKOFF_MAX_MS 5000
#define NOVA__REDIS_REPLY_TIMEOUT  10000
#define NOVA__REDIS_UNBOUNDED      UINT32_MAX /* block_ms of a command that may block for ever */

/*
 * A request: its arguments as RESP text after NOVA__REDIS_HEADROOM bytes;
 * the head (`*N`, and `EVALSHA sha nkeys` for scripts) is written into the
 * headroom each time it is queued on a link, so the same buffer can be
 * sent again (NOSCRIPT as EVAL, MOVED/ASK to another node, TRYAGAIN).
 */
struct nova__redis_cmd {
    struct nova__redis_cmd *next;  /* spares, a link's queue, deferred list */
    struct nova__redis_conn *conn; /* the connection that made it; NULL: internal */
    nova__redis_cb cb;
    void *arg;
    struct nova__redis_script *script; /* set for EVALSHA */
    int nkeys;
    bool oom;          /* an append failed: the send reports -ENOMEM */
    bool as_eval;      /* sent as EVAL <source> (the server lacked the script) */
    bool handshake;    /* the link's own: its reply goes back to the link */
    bool any_node;     /* command_at: not routed by key */
    uint8_t redirects; /* MOVED and ASK followed so far */
    uint16_t retries;  /* TRYAGAIN, CLUSTERDOWN and a script's ASK waited out */
    int tmo_arg;       /* index of a blocking command's timeout argument, or -1 */
    uint32_t block_ms; /* how long the server may legitimately hold it */
    uint64_t sent_ms;  /* uv_now() when queued on a link */
    size_t node;       /* command_at's master */
    size_t argc;       /* arguments appended */
    char *buf;         /* HEADROOM bytes, then the arguments */
    size_t len;        /* end of the arguments in buf */
    size_t cap;        /* bytes allocated for buf */
    size_t start;      /* where the head begins once written */
};

/* Requests (redis_conn.c). conn NULL: not kept for reuse. */
struct nova__redis_cmd *nova__redis_req_new(struct nova__redis_conn *conn, size_t size_hint);
void nova__redis_req_release(struct nova__redis_cmd *r);
/* The i-th argument (0 = the command name), or false. */
bool nova__redis_req_arg(const struct nova__redis_cmd *r, size_t i, const char **p, size_t *n);
struct nova__redis_cmd *nova__redis_req_argv(struct nova__redis_conn *conn, int argc,
                                             const char *const *argv, const size_t *argvlen);

/* ---- TLS (redis_tls.c) ---------------------------------------------------- */

/* A client context for t (CA, client certificate, verification). NULL with
 * a message in err. */
SSL_CTX *nova__redis_tls_ctx(const struct nova__redis_target *t, char *err, size_t errlen);
/* An SSL object for a connection to host on fd, SNI and name check set. */
SSL *nova__redis_tls_new(SSL_CTX *ctx, const struct nova__redis_target *t, const char *host, int fd,
                         char *err, size_t errlen);
/* Why an SSL call failed (rc its return), in words, for logs. */
void nova__redis_tls_error(SSL *ssl, int rc, int ssl_error, char *out, size_t outlen);

/* ---- links (redis_link.c) ---------------------------------------------- */

struct nova__redis_link;

struct nova__redis_link_cbs {
    /* Address of the next connect attempt: 0 with *host and *port, or
     * *unix_path set (read before the call returns), or -EAGAIN when not
     * known yet (the link then waits for nova__redis_link_kick). */
    int (*address)(struct nova__redis_link *l, void *arg, const char **host, int *port,
                   const char **unix_path);
    void (*up)(struct nova__redis_link *l, void *arg);
    /* A connect attempt failed or an up link was lost; the queued
     * requests have had their replies (-ECONNRESET). */
    void (*down)(struct nova__redis_link *l, void *arg, bool was_up);
    /* The end of a request that is not the link's own: status 0 and the
     * reply, or a negative errno and NULL. The owner releases r. */
    void (*reply)(struct nova__redis_link *l, void *arg, struct nova__redis_cmd *r, int status,
                  redisReply *reply);
    /* A reply no request waits for (pub/sub messages). May be NULL. */
    void (*push)(struct nova__redis_link *l, void *arg, redisReply *reply);
};

struct nova__redis_link_opts {
    const struct nova__redis_target *target; /* borrowed; outlives the link */
    SSL_CTX *tls;                            /* NULL: plain */
    const char *client_name;                 /* copied; NULL: none */
    const char *what;                        /* copied; for logs */
    int64_t connect_timeout_ms;
    bool sentinel;    /* a sentinel: its own credentials, no SELECT */
    bool want_master; /* the handshake checks ROLE says master */
    bool no_select;   /* cluster nodes have only db 0 */
    bool once;        /* after a failure, wait for a kick instead of retrying */
    bool quiet;       /* connect failures are logged at debug level */
    const struct nova__redis_link_cbs *cbs;
    void *arg;
};

int nova__redis_link_new(uv_loop_t *loop, const struct nova__redis_link_opts *o,
                         struct nova__redis_link **out);
/* Handshake done and socket alive. */
bool nova__redis_link_up(const struct nova__redis_link *l);
/* True between a failure and the next attempt (backoff or waiting). */
bool nova__redis_link_failed(const struct nova__redis_link *l);
/* Queues r: written now when up, after the handshake otherwise; a failed
 * attempt ends it with -ECONNRESET. `asking` sends ASKING first. */
void nova__redis_link_put(struct nova__redis_link *l, struct nova__redis_cmd *r, bool asking);
/* Drops the socket (queued requests: -ECONNRESET) and connects again now. */
void nova__redis_link_reset(struct nova__redis_link *l, const char *why);
/* Connects now if waiting for an address, a kick or the backoff. */
void nova__redis_link_kick(struct nova__redis_link *l);
/* Queued requests end now with status (-ECANCELED when closing for good,
 * -ECONNRESET when the request may be sent elsewhere); done(arg) runs once
 * the handles are closed, after the link is freed. */
void nova__redis_link_close(struct nova__redis_link *l, int status, void (*done)(void *),
                            void *arg);
/* "host:port" (or the socket path) of the current or last attempt. */
const char *nova__redis_link_addr(const struct nova__redis_link *l);
int nova__redis_link_version(const struct nova__redis_link *l);
const char *nova__redis_link_error(const struct nova__redis_link *l);

/* ---- what connections to one target share (redis_topo.c) ----------------- */

struct nova__redis_shared;

/* The shared state for (loop, target), made on first use. NULL with a
 * message in err. */
struct nova__redis_shared *nova__redis_shared_get(uv_loop_t *loop,
                                                  const struct nova__redis_target *t, char *err,
                                                  size_t errlen);
void nova__redis_shared_put(struct nova__redis_shared *sh);
const struct nova__redis_target *nova__redis_shared_target(const struct nova__redis_shared *sh);
SSL_CTX *nova__redis_shared_tls(const struct nova__redis_shared *sh);
/* Connections register to hear of topology changes. */
void nova__redis_shared_attach(struct nova__redis_shared *sh, struct nova__redis_conn *c);
void nova__redis_shared_detach(struct nova__redis_shared *sh, struct nova__redis_conn *c);
/* Why the sentinels or the cluster map cannot be reached ("" if they can). */
const char *nova__redis_shared_error(const struct nova__redis_shared *sh);

/* Sentinel: the master's address (false: unknown, a query is started). */
bool nova__redis_sentinel_master(struct nova__redis_shared *sh, const char **host, int *port);
/* Something suggests the master moved: ask the sentinels again. */
void nova__redis_sentinel_suspect(struct nova__redis_shared *sh);

/* Cluster: the slot map. */
bool nova__redis_cluster_known(const struct nova__redis_shared *sh);
/* Master of a slot: false when unassigned or the map is not known. */
bool nova__redis_cluster_owner(const struct nova__redis_shared *sh, unsigned slot,
                               const char **host, int *port);
size_t nova__redis_cluster_masters(const struct nova__redis_shared *sh);
bool nova__redis_cluster_master(const struct nova__redis_shared *sh, size_t i, const char **host,
                                int *port);
bool nova__redis_cluster_is_master(const struct nova__redis_shared *sh, const char *host, int port);
/* A MOVED answer: the slot is host:port's now; a full refresh follows. */
void nova__redis_cluster_moved(struct nova__redis_shared *sh, unsigned slot, const char *host,
                               int port);
void nova__redis_cluster_refresh(struct nova__redis_shared *sh);

/* Topology news for each attached connection (redis_conn.c). */
void nova__redis_conn_topology(struct nova__redis_conn *c);

/* ---- helpers (redis_target.c) ---------------------------------------------- */

/* "host:port" into a node (IPv6 as [addr]:port or the last colon). */
int nova__redis_node_parse(const char *s, size_t n, struct nova__redis_node *out);
/* Names a blocking command whose timeout (seconds) is its argument
 * *tmo_arg (-1 when the command takes none). */
bool nova__redis_blocking_command(const char *name, size_t n, size_t argc, int *tmo_arg);
int64_t nova__redis_now_ms(uv_loop_t *loop);

#endif
