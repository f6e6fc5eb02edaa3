/*
 * bk_dsn - splits a PostgreSQL connection string into what may be shown
 * and what may not.
 *
 * pg_dump, pg_restore and psql must never get the password on their
 * command line, where `ps` and /proc/PID/cmdline show it to every user:
 * the password goes to the child's environment (PGPASSWORD) and the rest,
 * rewritten as a keyword/value string, to --dbname. Both libpq forms are
 * read: URIs (postgresql://user:pw@host:port/db?k=v, several hosts,
 * [IPv6], percent-encoding) and keyword/value strings (host=... password='...').
 *
 * Pure code, unit-tested in tests/backups/test_backups.c.
 */
#ifndef NOVA_BK_DSN_H
#define NOVA_BK_DSN_H

#include <stddef.h>

struct bk_dsn {
    char *conninfo; /* keyword/value string without the password; never NULL after parse */
    char *password; /* NULL when the DSN has none */
    char *dbname;   /* dbname, else user, else NULL (libpq's default) */
    char *host;     /* for messages; NULL = libpq's default */
};

/* Returns 0, -EINVAL (err says why, without quoting the password) or
 * -ENOMEM. Free with bk_dsn_free even after an error. */
int bk_dsn_parse(const char *dsn, struct bk_dsn *out, char *err, size_t errlen);
void bk_dsn_free(struct bk_dsn *d);

/* "--dbname=<conninfo>" for a client's command line (the password is not
 * in it); malloc'd, NULL when out of memory. */
char *bk_dsn_dbname_arg(const struct bk_dsn *d);

#endif /* NOVA_BK_DSN_H */
