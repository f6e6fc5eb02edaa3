/*
 * nova/pg.h - pooled, non-blocking PostgreSQL for plugins.
 *
 * The host owns a pool of connections on its event loop; a plugin reaches
 * it through host->pg (NULL unless the plugin declares NOVA_REQUIRES_PG).
 * Every asynchronous function takes the plugin's host table first, so
 * logs and leak reports name the plugin.
 *
 * Rules
 *   - Queries are always parameterised: $1..$n in sql, params as text,
 *     a NULL pointer is SQL NULL. One statement per call. Nothing is
 *     prepared or SET per session, so the pool also works behind
 *     PgBouncer in transaction mode.
 *   - libuv's rule: a call that returns a negative errno never calls its
 *     callback; a call that returns 0 calls it exactly once, from the
 *     loop, never from inside the call itself. When the host shuts the
 *     pool down, pending callbacks fire with -ECANCELED.
 *   - The result passed to a callback is never NULL (on error it carries
 *     the SQLSTATE and message) and is borrowed: valid only until the
 *     callback returns. Strings read from it share that lifetime.
 *   - A transaction is a lease on one connection: begin() hands it over,
 *     lease_query() runs statements on it one at a time, and exactly one
 *     of commit() or rollback() gives it back. The lease pointer is
 *     invalid once commit()/rollback() returned 0. A lease that is still
 *     held when the plugin shuts down is rolled back and logged as leaked,
 *     so return leases on every path, error paths included.
 *
 * Status values passed to callbacks
 *   0             success
 *   -EINVAL       the server rejected the statement (syntax, constraint,
 *                 unique violation 23505, ...): see sqlstate()
 *   -EAGAIN       serialization failure, deadlock or server resources:
 *                 the same work may succeed when run again
 *   -ETIMEDOUT    statement_timeout (SQLSTATE 57014) or no answer in time
 *   -ECONNRESET   the connection was lost while the statement ran: it may
 *                 or may not have been applied (for COMMIT: unknown outcome)
 *   -ECONNREFUSED no connection could be opened (database down, bad password)
 *   -ECANCELED    the pool is shutting down
 * nova_pg_error_retryable() tells which ones are worth a job retry.
 */
#ifndef NOVA_PG_H
#define NOVA_PG_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct nova_host;

typedef struct nova_pg_result nova_pg_result; /* borrowed, callback duration only */
typedef struct nova_pg_lease nova_pg_lease;   /* a transaction on one connection */

/* res is never NULL; on error it holds sqlstate() and error_message(). */
typedef void (*nova_pg_cb)(void *arg, int status, const nova_pg_result *res);

/* On success lease is yours until commit()/rollback(); on error it is NULL
 * and res explains why. */
typedef void (*nova_pg_lease_cb)(void *arg, int status, nova_pg_lease *lease,
                                 const nova_pg_result *res);

/* True for the statuses where running the same work again later can
 * succeed: connection loss, refused connections, timeouts, serialization
 * failures and deadlocks. */
static inline bool nova_pg_error_retryable(int status)
{
    return status == -EAGAIN || status == -ETIMEDOUT || status == -ECONNRESET ||
           status == -ECONNREFUSED;
}

/* Upper bound on params per statement (the wire protocol's limit). */
#define NOVA_PG_MAX_PARAMS 65535

struct nova_pg_api {
    uint32_t struct_size; /* sizeof(struct nova_pg_api) of the host */

    /* One statement on any free connection, in autocommit mode. sql and
     * params are copied before the call returns. Returns 0, -EINVAL (sql
     * NULL, nparams out of range, params NULL with nparams > 0), -ENOMEM,
     * -ECANCELED (pool closing) or -ENOTSUP (no database configured). */
    int (*query)(const struct nova_host *host, const char *sql, int nparams,
                 const char *const *params, nova_pg_cb cb, void *arg);

    /* Takes a connection and runs BEGIN on it. Same errors as query(). */
    int (*begin)(const struct nova_host *host, nova_pg_lease_cb cb, void *arg);

    /* One statement inside the lease's transaction. Returns -EBUSY while
     * a previous statement of this lease is still running, -ECONNRESET
     * when the lease's connection is already gone (roll back then). After
     * an error the transaction is aborted: only rollback() makes sense. */
    int (*lease_query)(const struct nova_host *host, nova_pg_lease *lease, const char *sql,
                       int nparams, const char *const *params, nova_pg_cb cb, void *arg);

    /* COMMIT and give the connection back. status is -EINVAL when the
     * transaction had failed (the server rolled it back instead) and
     * -ECONNRESET when the outcome is unknown. The lease is consumed when
     * the call returns 0; -EBUSY leaves it to you (a statement is running). */
    int (*commit)(const struct nova_host *host, nova_pg_lease *lease, nova_pg_cb cb, void *arg);

    /* ROLLBACK and give the connection back. A lost connection counts as
     * rolled back (status 0). Same return rules as commit(). */
    int (*rollback)(const struct nova_host *host, nova_pg_lease *lease, nova_pg_cb cb, void *arg);

    /* ---- result accessors (res from a callback; rows/cols from 0) ---- */

    int (*ntuples)(const nova_pg_result *res);
    int (*nfields)(const nova_pg_result *res);
    /* The row count of the command tag: rows inserted, updated or deleted
     * (RETURNING or not), rows returned by SELECT; 0 for other commands.
     * The way to tell whether `UPDATE ... WHERE status = 'pending'` won. */
    int64_t (*affected_rows)(const nova_pg_result *res);
    /* Column index by exact name, or -ENOENT. */
    int (*field_index)(const nova_pg_result *res, const char *name);
    /* True for SQL NULL and for a row/col outside the result. */
    bool (*is_null)(const nova_pg_result *res, int row, int col);
    /* Text form of a value; NULL for SQL NULL or out of range. */
    const char *(*get_text)(const nova_pg_result *res, int row, int col);

    /*
     * Typed getters return 0, -ENODATA (SQL NULL), -ERANGE (row/col outside
     * the result) or a type error; *out is untouched on error.
     *   get_int64: exact integer from an integer or numeric column; -EINVAL
     *     for a non-integer value (numeric "1.5", text "abc"; "2.000" is 2),
     *     -EOVERFLOW outside int64.
     *   get_numeric: the decimal text of an integer or numeric column,
     *     borrowed like get_text; -EINVAL for float columns (cast to numeric
     *     in SQL: money is never a double) and for anything not a finite
     *     decimal.
     *   get_bool: -EINVAL unless the column is boolean.
     */
    int (*get_int64)(const nova_pg_result *res, int row, int col, int64_t *out);
    int (*get_numeric)(const nova_pg_result *res, int row, int col, const char **out);
    int (*get_bool)(const nova_pg_result *res, int row, int col, bool *out);

    /* Five-character SQLSTATE of a failed call ("23505"), "" on success.
     * Connection problems use class 08 codes, client timeouts 57014. */
    const char *(*sqlstate)(const nova_pg_result *res);
    /* One line, "SQLSTATE: message", "" on success. Never holds a
     * password; a server message may quote the value it rejected. */
    const char *(*error_message)(const nova_pg_result *res);
};

#ifdef __cplusplus
}
#endif
#endif /* NOVA_PG_H */
