/*
 * migrate - see migrate.h.
 */
#include "config.h"
#include "pg/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <uv.h>

#include "common/log.h"
#include "pg/pg_pool.h"

#define MIGRATION_MAX_BYTES (16u * 1024 * 1024)

struct migration {
    long version;
    char *name; /* file name, e.g. 001_nova_schema.sql */
    char *sql;
    char sum[crypto_hash_sha256_BYTES * 2 + 1];
    bool applied;
    bool rerun; /* applied in another version; runs again (idempotent) */
    char applied_at[64];
    char applied_sum[crypto_hash_sha256_BYTES * 2 + 1];
};

struct plan {
    struct migration *m;
    size_t n;
};

NOVA_PRINTF(3, 4)
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* one line, always */
    for (char *s = err; *s != '\0'; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
    size_t len = strlen(err);
    while (len > 0 && err[len - 1] == ' ')
        err[--len] = '\0';
}

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->m[i].name);
        free(p->m[i].sql);
    }
    free(p->m);
    p->m = NULL;
    p->n = 0;
}

/* NNN_name.sql: at least three digits, '_', then [a-z0-9_]+. Returns the
 * version or -1. */
static long parse_name(const char *name)
{
    size_t len = strlen(name), i = 0;
    long v = 0;
    if (len < 9 || strcmp(name + len - 4, ".sql") != 0)
        return -1;
    while (name[i] >= '0' && name[i] <= '9') {
        if (v > 1000000)
            return -1;
        v = v * 10 + (name[i] - '0');
        i++;
    }
    if (i < 3 || name[i] != '_' || i + 1 >= len - 4)
        return -1;
    for (i++; i < len - 4; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return -1;
    }
    return v;
}

static int cmp_migration(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return x->version < y->version ? -1 : x->version > y->version;
}

static int read_file(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        fail(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MIGRATION_MAX_BYTES) {
        fclose(f);
        fail(err, errlen, "%s: not a regular file under 16 MiB", path);
        return -EINVAL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        fail(err, errlen, "%s: contains a NUL byte", path);
        return -EINVAL;
    }
    *out = buf;
    return 0;
}

static int scan(const char *dir, struct plan *p, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        int e = errno;
        fail(err, errlen, "migrations directory %s: %s", dir, strerror(e));
        return -e;
    }
    struct dirent *de;
    size_t cap = 0;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 4, ".sql") != 0)
            continue;
        long v = parse_name(de->d_name);
        if (v < 0) {
            fail(err, errlen, "%s/%s: bad migration file name (expected NNN_name.sql)", dir,
                 de->d_name);
            rc = -EINVAL;
            break;
        }
        if (p->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct migration *m = realloc(p->m, cap * sizeof *m);
            if (m == NULL) {
                rc = -ENOMEM;
                break;
            }
            p->m = m;
        }
        struct migration *m = &p->m[p->n];
        memset(m, 0, sizeof *m);
        m->version = v;
        m->name = strdup(de->d_name);
        if (m->name == NULL) {
            rc = -ENOMEM;
            break;
        }
        p->n++;
    }
    closedir(d);
    if (rc != 0)
        return rc;
    qsort(p->m, p->n, sizeof *p->m, cmp_migration);
    for (size_t i = 0; i < p->n; i++) {
        if (i > 0 && p->m[i].version == p->m[i - 1].version) {
            fail(err, errlen, "%s/%s and %s share version %03ld", dir, p->m[i - 1].name,
                 p->m[i].name, p->m[i].version);
            return -EINVAL;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, p->m[i].name);
        rc = read_file(path, &p->m[i].sql, err, errlen);
        if (rc != 0)
            return rc;
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, (const unsigned char *)p->m[i].sql, strlen(p->m[i].sql));
        sodium_bin2hex(p->m[i].sum, sizeof p->m[i].sum, h, sizeof h);
    }
    return 0;
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" is expected */
}

/* Runs sql; on error describes it as "[file:line: ]SQLSTATE: message". */
/* True when the file has the line "-- migrate: idempotent": it works on
 * any state of the database, so a changed version may run again. */
static bool idempotent(const char *sql)
{
    static const char tag[] = "-- migrate: idempotent";
    for (const char *l = sql; l != NULL && *l != '\0';) {
        if (strncmp(l, tag, sizeof tag - 1) == 0 &&
            (l[sizeof tag - 1] == '\n' || l[sizeof tag - 1] == '\r' || l[sizeof tag - 1] == '\0'))
            return true;
        l = strchr(l, '\n');
        if (l != NULL)
            l++;
    }
    return false;
}

static int exec(PGconn *c, const char *sql, const char *file, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
    char line[400];
    nova__pg_one_line(line, sizeof line, msg != NULL ? msg : PQerrorMessage(c), NULL);
    if (file != NULL && pos != NULL) {
        long at = strtol(pos, NULL, 10), ln = 1;
        for (long i = 0; i < at - 1 && sql[i] != '\0'; i++)
            ln += sql[i] == '\n';
        fail(err, errlen, "%s:%ld: %s: %s", file, ln, state != NULL ? state : "XX000", line);
    } else if (file != NULL) {
        fail(err, errlen, "%s: %s: %s", file, state != NULL ? state : "XX000", line);
    } else {
        fail(err, errlen, "%s: %s", state != NULL ? state : "XX000", line);
    }
    PQclear(r);
    return PQstatus(c) == CONNECTION_OK ? -EIO : -ECONNRESET;
}

static int load_applied(PGconn *c, struct plan *p, char *err, size_t errlen, FILE *out)
{
    PGresult *r =
        PQexec(c, "SELECT version, name, checksum, "
                  "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                  "FROM nova_worker_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char line[400];
        nova__pg_one_line(line, sizeof line, PQresultErrorMessage(r), NULL);
        fail(err, errlen, "reading nova_worker_migrations: %s", line);
        PQclear(r);
        return -EIO;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        long v = strtol(PQgetvalue(r, i, 0), NULL, 10);
        bool found = false;
        for (size_t k = 0; k < p->n; k++) {
            if (p->m[k].version != v)
                continue;
            found = true;
            p->m[k].applied = true;
            snprintf(p->m[k].applied_at, sizeof p->m[k].applied_at, "%s", PQgetvalue(r, i, 3));
            snprintf(p->m[k].applied_sum, sizeof p->m[k].applied_sum, "%s", PQgetvalue(r, i, 2));
        }
        if (!found && out != NULL)
            fprintf(out, "%-40s applied %s (file missing)\n", PQgetvalue(r, i, 1),
                    PQgetvalue(r, i, 3));
    }
    PQclear(r);
    return 0;
}

static int status(PGconn *c, struct plan *p, FILE *out, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('nova_worker_migrations') IS NOT NULL");
    bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                  strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (exists) {
        int rc = load_applied(c, p, err, errlen, out);
        if (rc != 0)
            return rc;
    }
    size_t pending = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct migration *m = &p->m[i];
        if (!m->applied) {
            pending++;
            fprintf(out, "%-40s pending\n", m->name);
        } else {
            fprintf(out, "%-40s applied %s%s\n", m->name, m->applied_at,
                    strcmp(m->sum, m->applied_sum) != 0 ? " (file changed since)" : "");
        }
    }
    fprintf(out, "%zu applied, %zu pending\n", p->n - pending, pending);
    return 0;
}

static int apply(PGconn *c, struct plan *p, FILE *out, char *err, size_t errlen)
{
    int rc = exec(c,
                  "CREATE TABLE IF NOT EXISTS nova_worker_migrations ("
                  " version INT PRIMARY KEY,"
                  " name TEXT NOT NULL,"
                  " checksum CHAR(64) NOT NULL,"
                  " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                  NULL, err, errlen);
    if (rc == 0)
        rc = load_applied(c, p, err, errlen, NULL);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < p->n; i++) {
        struct migration *m = &p->m[i];
        if (!m->applied || strcmp(m->sum, m->applied_sum) == 0)
            continue;
        if (!idempotent(m->sql)) {
            fail(err, errlen,
                 "%s was changed after it was applied (checksum %.12s..., recorded %.12s...): "
                 "add a new migration instead",
                 m->name, m->sum, m->applied_sum);
            return -EINVAL;
        }
        /* A file that works on any state of the database runs again when
         * it changed; its record is updated with it. */
        m->applied = false;
        m->rerun = true;
    }
    size_t done = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct migration *m = &p->m[i];
        if (m->applied)
            continue;
        uint64_t t0 = uv_hrtime();
        char version[24];
        snprintf(version, sizeof version, "%ld", m->version);
        const char *params[3] = {version, m->name, m->sum};
        rc = exec(c, "BEGIN", NULL, err, errlen);
        if (rc == 0)
            rc = exec(c, m->sql, m->name, err, errlen);
        if (rc == 0) {
            PGresult *r = PQexecParams(c,
                                       m->rerun ? "UPDATE nova_worker_migrations SET name = $2, "
                                                  "checksum = $3, applied_at = now() WHERE "
                                                  "version = $1"
                                                : "INSERT INTO nova_worker_migrations (version, "
                                                  "name, checksum) VALUES ($1, $2, $3)",
                                       3, NULL, params, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                char line[400];
                nova__pg_one_line(line, sizeof line, PQresultErrorMessage(r), NULL);
                fail(err, errlen, "%s: recording it: %s", m->name, line);
                rc = -EIO;
            }
            PQclear(r);
        }
        if (rc == 0)
            rc = exec(c, "COMMIT", m->name, err, errlen);
        if (rc != 0) {
            PQclear(PQexec(c, "ROLLBACK"));
            return rc;
        }
        fprintf(out, "%s %s (%llu ms)\n", m->rerun ? "applied again (changed)" : "applied", m->name,
                (unsigned long long)((uv_hrtime() - t0) / 1000000));
        done++;
    }
    if (done == 0)
        fprintf(out, "nothing to apply: %zu migrations already applied\n", p->n);
    return 0;
}

int nova__migrate(const char *dsn, const char *dir, enum nova__migrate_mode mode, FILE *out,
                  char *err, size_t errlen)
{
    struct plan plan = {0};
    int rc;

    err[0] = '\0';
    if (dsn == NULL || dsn[0] == '\0') {
        fail(err, errlen, "no PostgreSQL dsn: set [postgres] dsn or DATABASE_URL");
        return -EINVAL;
    }
    if (sodium_init() < 0)
        return -ENOMEM;
    rc = scan(dir, &plan, err, errlen);
    if (rc != 0) {
        plan_free(&plan);
        return rc;
    }

    const char *keys[] = {"fallback_application_name", "connect_timeout", "dbname", NULL};
    const char *vals[] = {"nova-worker-migrate", "10", dsn, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        char line[400];
        nova__pg_clean_error(line, sizeof line, c != NULL ? PQerrorMessage(c) : "out of memory",
                             dsn);
        fail(err, errlen, "cannot connect to PostgreSQL: %s", line);
        PQfinish(c);
        plan_free(&plan);
        return -ECONNREFUSED;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);

    if (mode == NOVA_MIGRATE_STATUS) {
        rc = status(c, &plan, out, err, errlen);
    } else {
        char lock[96];
        snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%lld)",
                 (long long)NOVA_MIGRATE_LOCK_KEY);
        rc = exec(c, lock, NULL, err, errlen);
        if (rc == 0) {
            rc = apply(c, &plan, out, err, errlen);
            /* The lock also ends with the session; unlocking is a courtesy. */
            snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%lld)",
                     (long long)NOVA_MIGRATE_LOCK_KEY);
            PQclear(PQexec(c, lock));
        }
    }
    PQfinish(c);
    plan_free(&plan);
    return rc;
}
