/*
 * svc_pg - the PostgreSQL service table (nova-pg.so; see pg/svc_pg.h).
 */
#include "config.h"
#include "pg/svc_pg.h"
#include "pg/migrate.h"
#include "pg/pg_pool.h"

const struct nova__svc_pg nova__svc_pg_table = {
    .result_api = &nova__pg_result_api,
    .query = nova__pg_query,
    .begin = nova__pg_begin,
    .lease_query = nova__pg_lease_query,
    .lease_end = nova__pg_lease_end,
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
