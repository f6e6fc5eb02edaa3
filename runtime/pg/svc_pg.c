/*
 * svc_pg - the PostgreSQL service table (nova-pg.so; see svc.h).
 */
#include "config.h"
#include "common/svc.h"
#include "pg/migrate.h"
#include "pg/pg_pool.h"

const struct nova__svc_pg nova__svc_pg_table = {
    .api = &nova__pg_api,
    .pool_new = nova__pg_pool_new,
    .pool_close = nova__pg_pool_close,
    .pool_ready = nova__pg_pool_ready,
    .pool_release_owner = nova__pg_pool_release_owner,
    .check_columns = nova__pg_check_columns,
    .migrate = nova__migrate,
};

#ifdef NOVA_SVC_MODULE
NOVA__SVC_EXPORT("pg", nova__svc_pg_table);
#endif
