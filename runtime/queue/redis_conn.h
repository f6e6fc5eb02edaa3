/*
 * redis_conn - one asynchronous Redis connection on the libuv loop
 * (hiredis 0.14 async API and its libuv adapter), with URL parsing,
 * connect timeout, handshake (AUTH, SELECT, CLIENT SETNAME), automatic
 * reconnect with backoff, and EVALSHA with transparent NOSCRIPT recovery.
 *
 * Callback rule (libuv's): when a call returns an error the callback never
 * runs; otherwise it runs exactly once, with status 0 and the reply (which
 * may be an error reply), or with a negative errno and a NULL reply when
 * the connection went away or was closed. Replies are borrowed: valid only
 * during the callback (they live in an arena reused for the next reply,
 * see resp.h; never pass them to freeReplyObject).
 */
#ifndef NOVA_RUNTIME_REDIS_CONN_H
#define NOVA_RUNTIME_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <uv.h>

/* A parsed redis:// or unix:// URL. Strings are owned by the struct. */
struct nova__redis_target {
    char *host;      /* NULL for unix sockets */
    int port;        /* default 6379 */
    char *unix_path; /* NULL for TCP */
    char *username;  /* ACL user, NULL = default */
    char *password;  /* NULL = no AUTH */
    int db;          /* SELECT index, 0 = default */
};

/* Accepts redis://[[user]:password@]host[:port][/db] and
 * unix:///path[?db=N]; percent-escapes in user and password are decoded.
 * Returns 0 or -EINVAL with a message in err (the password is never
 * quoted). Free with nova__redis_target_free(). */
int nova__redis_url_parse(const char *url, struct nova__redis_target *out, char *err,
                          size_t errlen);
void nova__redis_target_free(struct nova__redis_target *t);

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

/* Closes for good: pending callbacks get -ECANCELED, handles are closed,
 * then done(arg) runs (from a close callback) and the memory is freed. */
void nova__redis_conn_close(struct nova__redis_conn *c, void (*done)(void *arg), void *arg);

#endif
