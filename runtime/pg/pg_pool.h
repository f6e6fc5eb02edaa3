/*
 * pg_pool - a pool of non-blocking libpq connections on the libuv loop.
 *
 * Connections are opened with PQconnectStartParams/PQconnectPoll and
 * driven by a uv_poll_t on their socket; statements go out with
 * PQsendQueryParams (unnamed, extended protocol). statement_timeout is a
 * startup option of each connection (`options=-c statement_timeout=N`),
 * never a SET, so no lease leaves session state behind and PgBouncer
 * transaction mode works (tested). PgBouncer 1.18 refuses unknown startup
 * parameters: configure ignore_startup_parameters = options there, and
 * put the timeout on the role instead (ALTER ROLE ... SET
 * statement_timeout); the client-side guard below still bounds waits.
 *
 * Behaviour
 *   - pool_min connections are opened at start and kept; more are opened
 *     on demand up to pool_max and closed again after 30 s idle.
 *     Requests beyond that wait in FIFO order.
 *   - A connection that breaks (server restart, network) is dropped; its
 *     running statement fails with -ECONNRESET, and replacements are
 *     opened with exponential backoff (100 ms doubling to 5 s).
 *   - When a connection attempt fails while no connection is open, every
 *     waiting request fails with -ECONNREFUSED and the attempt's one-line
 *     error (never the password), so nothing waits forever on a dead
 *     database. A statement without an answer after statement_timeout_ms
 *     plus connect_timeout_ms drops its connection with -ETIMEDOUT.
 *   - Statements slower than slow_query_ms are logged with their duration
 *     and SQL text, never their parameters.
 *
 * Metrics: nova_worker_pg_pool_size, nova_worker_pg_pool_in_use,
 * nova_worker_pg_pool_waiting (gauges) and
 * nova_worker_pg_query_duration_seconds (histogram).
 *
 * Everything here runs on the loop thread.
 */
#ifndef NOVA_RUNTIME_PG_POOL_H
#define NOVA_RUNTIME_PG_POOL_H

#include <stdbool.h>
#include <uv.h>
#include "nova/pg.h"
#include "common/conf.h"

struct nova__pg_pool;

/* The result accessors of struct nova_pg_api (ntuples ... error_message);
 * the host-facing members are NULL: the core pairs this table with the
 * calls below to make a plugin's host->pg (core/host.c). */
extern const struct nova_pg_api nova__pg_result_api;

/*
 * The calls behind nova_pg_api's query, begin, lease_query and
 * commit/rollback, with the same contracts, on pool p (NULL: -ENOTSUP).
 * owner is the plugin's host pointer, kept only as a tag: leases and
 * requests are released by it (nova__pg_pool_release_owner()).
 */
int nova__pg_query(struct nova__pg_pool *p, const struct nova_host *owner, const char *sql,
                   int nparams, const char *const *params, nova_pg_cb cb, void *arg);
int nova__pg_begin(struct nova__pg_pool *p, const struct nova_host *owner, nova_pg_lease_cb cb,
                   void *arg);
int nova__pg_lease_query(struct nova__pg_pool *p, const struct nova_host *owner,
                         nova_pg_lease *lease, const char *sql, int nparams,
                         const char *const *params, nova_pg_cb cb, void *arg);
int nova__pg_lease_end(struct nova__pg_pool *p, const struct nova_host *owner, nova_pg_lease *lease,
                       bool commit, nova_pg_cb cb, void *arg);

/*
 * Creates a pool on loop and starts opening pool_min connections. cfg is
 * copied (the DSN included). Returns 0, -EINVAL for a DSN libpq cannot
 * parse or bounds that make no sense (the reason is logged as one line,
 * without the password), or -ENOMEM. *out is set only on success.
 */
int nova__pg_pool_new(uv_loop_t *loop, const struct nova__postgres_config *cfg,
                      struct nova__pg_pool **out);

/*
 * Shuts the pool down: waiting requests fail with -ECANCELED, running
 * statements are abandoned (their connections closed, so the server rolls
 * back) and fail with -ECANCELED, leases still held are logged as leaked.
 * done(arg) runs once every handle is closed; p is freed just before.
 * Call once; nothing may use p after this call.
 */
void nova__pg_pool_close(struct nova__pg_pool *p, void (*done)(void *arg), void *arg);

/* True while at least one connection is open (for /readyz). */
bool nova__pg_pool_ready(const struct nova__pg_pool *p);

/* Counters for tests and /readyz. */
struct nova__pg_pool_stats {
    unsigned open;       /* connected, idle or busy */
    unsigned connecting; /* attempts under way */
    unsigned in_use;     /* running a statement or leased */
    unsigned waiting;    /* requests queued for a connection */
    unsigned max_open;   /* highest `open + connecting` ever seen */
};
void nova__pg_pool_stats(const struct nova__pg_pool *p, struct nova__pg_pool_stats *out);

/* Connections above pool_min close after this long idle (default 30 s;
 * tests shorten it). */
void nova__pg_pool_set_idle_timeout(struct nova__pg_pool *p, uint64_t ms);

/* The last connection error, one line without the password; "" if none.
 * Valid until the next loop iteration. */
const char *nova__pg_pool_last_error(const struct nova__pg_pool *p);

/* Copies a libpq error about dsn into dst as one line with the DSN's
 * password masked; when the DSN does not even parse, quoted fragments
 * that are not option names are masked too (libpq quotes what it choked
 * on). Used for every connection error the runtime prints. */
void nova__pg_clean_error(char *dst, size_t len, const char *msg, const char *dsn);

/* Copies src into dst as one line: control characters become spaces, runs
 * of spaces collapse, and password (when not NULL) is masked. */
void nova__pg_one_line(char *dst, size_t len, const char *src, const char *password);

/*
 * Called by the loader for a plugin being stopped (owner is its host
 * table). Before shutdown(): cancel=true fails the plugin's queued requests
 * with -ECANCELED (their callbacks run). After shutdown(): cancel=false
 * rolls back and logs every lease the plugin still holds and detaches its
 * running statements, whose callbacks are then never called (the plugin
 * is gone). Returns the number of leaked leases.
 */
unsigned nova__pg_pool_release_owner(struct nova__pg_pool *p, const struct nova_host *owner,
                                     bool cancel);

/*
 * Checks that every "table.column" (lowercase, as PostgreSQL folds
 * unquoted names) in the NULL-terminated columns exists
 * in a schema on the search_path (information_schema.columns). cb gets
 * status 0 and missing NULL when all exist, -ENOENT and the missing
 * entries comma-separated ("users.password_hash,..."), or another
 * negative errno and the error message when the check itself failed.
 * missing is borrowed for the callback. Returns -EINVAL for an entry
 * that is not table.column (identifier characters only), -ENOMEM, or 0.
 */
int nova__pg_check_columns(struct nova__pg_pool *p, const char *const *columns,
                           void (*cb)(void *arg, int status, const char *missing), void *arg);

#endif
