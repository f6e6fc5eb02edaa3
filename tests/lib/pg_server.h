/*
 * pg_server - a throwaway PostgreSQL 15 for tests.
 *
 * initdb into a fresh temp dir (chowned to the `postgres` user when run
 * as root, since PostgreSQL refuses root; commands then go through
 * `runuser -u postgres --`), then pg_ctl start on 127.0.0.1 and a random
 * free port. TCP connections need the superuser password (scram), local
 * socket ones are trusted. pg_ctl manages the server through its pid
 * file, so any process (a forked Check test included) can stop and start
 * it again on the same port and data.
 *
 * Binaries come from $NOVA_PG_BINDIR or /usr/lib/postgresql/15/bin.
 * Failures print one line to stderr and return -1: a test must fail, not
 * skip, when PostgreSQL is missing.
 */
#ifndef NOVA_TESTS_PG_SERVER_H
#define NOVA_TESTS_PG_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct pg_server {
    char dir[128]; /* temp root: data/, server.log, socket */
    char datadir[160];
    int port;
    char password[40]; /* superuser "postgres" over TCP */
    bool running;
};

/* initdb + start. Returns 0 or -1. */
int pg_server_start(struct pg_server *s);
/* pg_ctl stop -m fast (active sessions get 57P01). Returns 0 or -1. */
int pg_server_stop(struct pg_server *s);
/* Starts a stopped server again, same port and data. Returns 0 or -1. */
int pg_server_resume(struct pg_server *s);
/* Stops (if running) and deletes the temp dir. */
void pg_server_destroy(struct pg_server *s);

/* Writes a URI DSN for database db (NULL = "postgres") into buf. extra is
 * appended as URI query parameters ("application_name=x") or NULL. */
void pg_server_dsn(const struct pg_server *s, const char *db, const char *extra, char *buf,
                   size_t len);

/* Runs sql (may be several statements) on db with blocking libpq.
 * Returns 0, or -1 after printing the error. */
int pg_server_exec(const struct pg_server *s, const char *db, const char *sql);

/* Runs a query returning one value and copies it into buf ("" for NULL).
 * Returns 0 or -1. */
int pg_server_query_value(const struct pg_server *s, const char *db, const char *sql, char *buf,
                          size_t len);

/* CREATE DATABASE name (dropping an old one). Returns 0 or -1. */
int pg_server_create_db(const struct pg_server *s, const char *name);

/*
 * PgBouncer (Debian package pgbouncer) in front of a running pg_server, in
 * the given pool mode ("transaction"), with at most server_pool server
 * connections. Clients connect as any user without a password; the
 * `options` startup parameter is ignored, as a deployment behind
 * PgBouncer must configure it. Runs as postgres (it refuses root).
 */
struct pg_bouncer {
    char dir[128];
    int port;
};
int pg_bouncer_start(struct pg_bouncer *b, const struct pg_server *s, const char *pool_mode,
                     int server_pool);
void pg_bouncer_stop(struct pg_bouncer *b);

#endif
