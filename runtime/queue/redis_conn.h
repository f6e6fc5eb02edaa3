/*
 * redis_conn - asynchronous Redis connections on the libuv loop.
 *
 * A nova__redis_conn is what the engine talks to. Behind it, the
 * connection finds its server by itself:
 *
 * - a plain URL: one socket (TCP, unix, or TLS for rediss://);
 * - Sentinel: the master the sentinels name, followed through failovers
 *   (+switch-master, asked again on disconnect, on -READONLY and when a
 *   server answers ROLE as a replica);
 * - Cluster: one socket per master; each command goes to the master of
 *   the slot of its first key, MOVED and ASK are followed, the slot map is
 *   refreshed when it changes.
 *
 * Each socket is nova-worker's own transport (redis_link.c): non-blocking
 * connect, TCP keepalive, OpenSSL for TLS, hiredis's reader for replies,
 * a handshake (AUTH, SELECT, CLIENT SETNAME, INFO for the version, ROLE
 * under Sentinel), a reply timeout, reconnect with backoff, EVALSHA with
 * transparent NOSCRIPT recovery.
 *
 * Callback rule (libuv's): when a call returns an error the callback never
 * runs; otherwise it runs exactly once, with status 0 and the reply (which
 * may be an error reply), or with a negative errno and a NULL reply when
 * the connection went away (-ECONNRESET; also after no reply within the
 * reply timeout, or a -READONLY answer from a demoted master) or was closed
 * (-ECANCELED). Replies are borrowed: valid only during the callback (they
 * live in an arena reused for the next reply, see resp.h; never pass them
 * to freeReplyObject).
 */
#ifndef NOVA_RUNTIME_REDIS_CONN_H
#define NOVA_RUNTIME_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <uv.h>

struct nova__redis_config;

enum nova__redis_mode {
    NOVA__REDIS_DIRECT = 0, /* the URL's server */
    NOVA__REDIS_SENTINEL,   /* the master named by sentinels */
    NOVA__REDIS_CLUSTER,    /* the masters of a Redis Cluster */
};

struct nova__redis_node {
    char *host;
    int port;
};

/* Everything needed to reach Redis. Strings are owned by the struct. */
struct nova__redis_target {
    char *host;      /* NULL for unix sockets */
    int port;        /* default 6379 */
    char *unix_path; /* NULL for TCP */
    char *username;  /* ACL user, NULL = default */
    char *password;  /* NULL = no AUTH */
    int db;          /* SELECT index, 0 = default */
    bool tls;        /* rediss:// */
    bool tls_skip_verify;
    char *tls_ca_file, *tls_cert_file, *tls_key_file, *tls_server_name;
    enum nova__redis_mode mode;
    struct nova__redis_node *nodes; /* the sentinels, or the cluster seeds */
    size_t nnodes;
    char *sentinel_master;
    char *sentinel_username, *sentinel_password;
    int64_t reply_timeout_ms; /* 0 = 10 s */
    int64_t keepalive_ms;     /* 0 = no TCP keepalive */
};

/* Accepts redis://[[user]:password@]host[:port][/db], the same with
 * rediss:// (TLS) and unix:///path[?db=N]; percent-escapes in user and
 * password are decoded. Returns 0 or -EINVAL with a message in err (the
 * password is never quoted). Free with nova__redis_target_free(). */
int nova__redis_url_parse(const char *url, struct nova__redis_target *out, char *err,
                          size_t errlen);

/* The whole [redis] section: the URL (default redis://127.0.0.1:6379),
 * username/password, TLS files, sentinels or cluster nodes, timeouts.
 * Checks what can be checked offline (files readable, the key matching
 * the certificate, modes not mixed). `check` and `run` both use it. */
int nova__redis_target_from_config(const struct nova__redis_config *cfg,
                                   struct nova__redis_target *out, char *err, size_t errlen);
int nova__redis_target_copy(struct nova__redis_target *dst, const struct nova__redis_target *src);
void nova__redis_target_free(struct nova__redis_target *t);

/* Redis Cluster's hash slot of a key (CRC16 of its hash tag, or of the key). */
unsigned nova__redis_key_slot(const char *key, size_t len);

/* True when every key "<base><anything>" hashes to the slot of base: base
 * holds a complete, non-empty hash tag ({...}) as its first '{'. */
bool nova__redis_base_one_slot(const char *base, size_t len);

typedef void (*nova__redis_cb)(void *arg, int status, const redisReply *reply);

/* A script known by its source; sha is learnt with SCRIPT LOAD on first
 * use and shared by every connection (static storage is fine). */
struct nova__redis_script {
    const char *name;
    const char *source;
    char sha[41]; /* "" until loaded */
    bool loading; /* a SCRIPT LOAD is in flight */
};

struct nova__redis_conn;

struct nova__redis_conn_opts {
    const struct nova__redis_target *target; /* copied */
    const char *client_name;                 /* CLIENT SETNAME value or NULL; copied */
    const char *what;                        /* label for log lines, e.g. "commands"; copied */
    int64_t connect_timeout_ms;              /* connect + handshake; 0 = 5000 */
    /* Called on the loop when the connection becomes usable (up=true)
     * and when it is lost (up=false). May be NULL. */
    void (*on_state)(void *arg, bool up);
    void *arg;
};

/* Allocates the connection and starts connecting. Returns 0 or -errno. */
int nova__redis_conn_new(uv_loop_t *loop, const struct nova__redis_conn_opts *opts,
                         struct nova__redis_conn **out);

/* True once the handshake succeeded and until the connection is lost. */
bool nova__redis_conn_up(const struct nova__redis_conn *c);

/* Sends one command. argv/argvlen are copied before the call returns.
 * Returns 0, or -ENOTCONN when the connection is not up (cb not called). */
int nova__redis_conn_command(struct nova__redis_conn *c, nova__redis_cb cb, void *arg, int argc,
                             const char *const *argv, const size_t *argvlen);

/* EVALSHA script nkeys args...; argv holds the keys then the arguments.
 * Falls back to EVAL when the server does not know the script. */
int nova__redis_conn_eval(struct nova__redis_conn *c, struct nova__redis_script *script,
                          nova__redis_cb cb, void *arg, int nkeys, int argc,
                          const char *const *argv, const size_t *argvlen);

/*
 * Building a command in place, for hot paths: the arguments are written
 * straight into the request's RESP buffer (no argv arrays, no copies, no
 * formatting by hiredis). nova__redis_cmd_new() starts one on c (NULL when
 * out of memory; size_hint: bytes of arguments expected, 0 if unknown);
 * append the arguments in order (any bytes; an append that runs out of
 * memory is remembered and the send then fails with -ENOMEM), then hand
 * it to nova__redis_conn_send() or nova__redis_conn_send_eval(), which
 * take it over whatever they return, or give it back with
 * nova__redis_cmd_drop(). Use it at once: build and send within one call,
 * on the loop thread.
 */
struct nova__redis_cmd;
struct nova__redis_cmd *nova__redis_cmd_new(struct nova__redis_conn *c, size_t size_hint);
void nova__redis_cmd_arg(struct nova__redis_cmd *m, const void *s, size_t len);
void nova__redis_cmd_str(struct nova__redis_cmd *m, const char *s);
void nova__redis_cmd_i64(struct nova__redis_cmd *m, int64_t v);
void nova__redis_cmd_drop(struct nova__redis_cmd *m);

/* Writing arguments directly (with resp.h's nova__resp_put_arg): room
 * returns where `bytes` more bytes may be written, or NULL when out of
 * memory (the send then fails with -ENOMEM); wrote then says where the
 * writing ended and how many arguments it holds. Nothing else may be
 * appended in between. */
char *nova__redis_cmd_room(struct nova__redis_cmd *m, size_t bytes);
void nova__redis_cmd_wrote(struct nova__redis_cmd *m, char *end, size_t nargs);

/* Sends m as a command (its arguments are the whole command). Returns 0,
 * -ENOTCONN (connection not up) or -ENOMEM; cb as for the calls above. */
int nova__redis_conn_send(struct nova__redis_cmd *m, nova__redis_cb cb, void *arg);

/* Sends EVALSHA script nkeys <m's arguments> (keys first), with the same
 * NOSCRIPT recovery as nova__redis_conn_eval. */
int nova__redis_conn_send_eval(struct nova__redis_cmd *m, struct nova__redis_script *script,
                               int nkeys, nova__redis_cb cb, void *arg);

/* Drops the current connection (pending callbacks get -ECONNRESET) and
 * reconnects at once. Used by the blocking-call watchdog. */
void nova__redis_conn_reset(struct nova__redis_conn *c);

/* The target's mode, and the last connection error in words (for the
 * CLI: "TLS handshake failed: certificate verify failed ..."; "" if none). */
enum nova__redis_mode nova__redis_conn_mode(const struct nova__redis_conn *c);
const char *nova__redis_conn_error(const struct nova__redis_conn *c);

/* Cluster: the masters known now (1 in the other modes), and a command sent
 * to the i-th of them whatever its keys (SCAN over every master). */
size_t nova__redis_conn_masters(const struct nova__redis_conn *c);
int nova__redis_conn_command_at(struct nova__redis_conn *c, size_t master, nova__redis_cb cb,
                                void *arg, int argc, const char *const *argv,
                                const size_t *argvlen);

/* Redirections followed so far (for tests and metrics). */
struct nova__redis_conn_stats {
    uint64_t moved, ask, tryagain, readonly;
};
void nova__redis_conn_stats(const struct nova__redis_conn *c, struct nova__redis_conn_stats *out);

/* The server's version (major*10000 + minor*100 + patch) seen by the
 * last handshake, 0 when unknown. */
int nova__redis_conn_version(const struct nova__redis_conn *c);

/* The timeout argument of a blocking command as this server version
 * accepts it: whole seconds (rounded up) before 6.0, at least 0.002 from
 * 6.0 to 7.0.7 (a smaller one blocks for ever there), as is from 7.0.8;
 * whole seconds when the version is unknown. Writes into out (>= 32). */
void nova__redis_block_timeout(int version, const char *in, char *out, size_t outlen);

/* Closes for good: pending callbacks get -ECANCELED, handles are closed,
 * then done(arg) runs (from a close callback) and the memory is freed. */
void nova__redis_conn_close(struct nova__redis_conn *c, void (*done)(void *arg), void *arg);

#endif
