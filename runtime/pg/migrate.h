/*
 * migrate - applies migrations/NNN_name.sql files to PostgreSQL.
 *
 * Files are applied in version order, each in its own transaction
 * together with its row in nova_worker_migrations (version, name, sha256
 * checksum, applied_at), so a file is either fully applied and recorded
 * or not at all. The whole run holds a session advisory lock, so
 * concurrent runs (several hosts deploying at once) apply each file once:
 * the later run waits, then finds nothing left to do. A recorded file
 * whose checksum changed stops the run, naming the file.
 *
 * Plain blocking libpq: this is for the CLI, never the event loop.
 */
#ifndef NOVA_RUNTIME_MIGRATE_H
#define NOVA_RUNTIME_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* pg_advisory_lock key held while migrating ("novamigr"). */
#define NOVA_MIGRATE_LOCK_KEY 0x6e6f76616d696772LL

enum nova__migrate_mode {
    NOVA_MIGRATE_APPLY,  /* apply every pending file */
    NOVA_MIGRATE_STATUS, /* only list applied and pending files */
};

/*
 * Runs against dsn with the files in dir. Progress lines go to out
 * ("applied 001_nova_schema.sql (35 ms)", or one line per file for
 * STATUS). Returns 0, or a negative errno with a one-line reason in err
 * (file names and SQLSTATEs included, the password never):
 * -ENOENT/-EACCES for the directory, -EINVAL for a misnamed or duplicate
 * file or a changed checksum, -ECONNREFUSED when the database cannot be
 * reached, -EIO when a statement failed.
 */
int nova__migrate(const char *dsn, const char *dir, enum nova__migrate_mode mode, FILE *out,
                  char *err, size_t errlen);

#endif
