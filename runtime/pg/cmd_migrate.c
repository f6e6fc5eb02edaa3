/*
 * cmd_migrate - `nova-worker migrate`: see cmd_migrate.h and migrate.h.
 */
#include "config.h"
#include "pg/cmd_migrate.h"

#include <stdio.h>
#include <string.h>

#include "pg/migrate.h"
#include "pg/svc_pg.h"

#ifndef NOVA_MIGRATIONS_DIR
#define NOVA_MIGRATIONS_DIR "/usr/share/nova-worker/migrations"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: nova-worker migrate [--status] [--dir DIR]\n"
               "\n"
               "Applies the pending SQL migrations to the [postgres] dsn database, each in\n"
               "its own transaction, recorded in nova_worker_migrations. Concurrent runs\n"
               "are safe (an advisory lock serialises them).\n"
               "\n"
               "  --status    list applied and pending migrations, change nothing\n"
               "  --dir DIR   read migrations from DIR (default " NOVA_MIGRATIONS_DIR ")\n"
               "  -h, --help  show this help\n");
}

int nova__cmd_migrate(const struct nova__config *cfg, int argc, char **argv)
{
    const char *dir = NOVA_MIGRATIONS_DIR;
    enum nova__migrate_mode mode = NOVA_MIGRATE_APPLY;
    char err[1024];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--status") == 0) {
            mode = NOVA_MIGRATE_STATUS;
        } else if (strcmp(a, "--dir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "nova-worker migrate: --dir needs a directory\n");
                return 2;
            }
            dir = argv[++i];
        } else if (strncmp(a, "--dir=", 6) == 0) {
            dir = a + 6;
        } else {
            fprintf(stderr, "nova-worker migrate: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    const char *dsn = cfg != NULL ? cfg->postgres.dsn : NULL;
    const struct nova__svc_pg *pg =
        nova__svc_pg("`nova-worker migrate` needs PostgreSQL", err, sizeof err);
    if (pg == NULL) {
        fprintf(stderr, "nova-worker migrate: %s\n", err);
        return 1;
    }
    int rc = pg->migrate(dsn, dir, mode, stdout, err, sizeof err);
    nova__svc_unload_all();
    fflush(stdout);
    if (rc != 0) {
        fprintf(stderr, "nova-worker migrate: %s\n", err[0] != '\0' ? err : "failed");
        return 1;
    }
    return 0;
}
