/*
 * cmd_migrate - `nova-worker migrate [--status] [--dir DIR]`.
 */
#ifndef NOVA_RUNTIME_CMD_MIGRATE_H
#define NOVA_RUNTIME_CMD_MIGRATE_H

#include "common/conf.h"

/* argv[0] is "migrate". Uses cfg->postgres.dsn. Returns the process exit
 * code: 0 success, 1 failure, 2 bad usage. */
int nova__cmd_migrate(const struct nova__config *cfg, int argc, char **argv);

#endif
