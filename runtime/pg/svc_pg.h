/*
 * svc_pg - the table of nova-pg.so (common/svc.h): the pool, the
 * migration runner and the calls behind the plugins' host->pg.
 *
 * The calls take the pool and the plugin's host pointer as an opaque
 * owner tag; finding the pool behind a plugin's host pointer is the
 * core's business (core/host.c builds host->pg from this table).
 */
#ifndef NOVA_RUNTIME_SVC_PG_H
#define NOVA_RUNTIME_SVC_PG_H

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>
#include "nova/pg.h"
#include "common/conf.h"
#include "common/svc.h"
#include "pg/migrate.h"

struct nova__pg_pool;

struct nova__svc_pg {
    /* The result accessors of struct nova_pg_api (ntuples ... error_message);
     * its host-facing members are NULL. */
    const struct nova_pg_api *result_api;
    /* nova_pg_api's host-facing calls, on an explicit pool. */
    int (*query)(struct nova__pg_pool *p, const struct nova_host *owner, const char *sql,
                 int nparams, const char *const *params, nova_pg_cb cb, void *arg);
    int (*begin)(struct nova__pg_pool *p, const struct nova_host *owner, nova_pg_lease_cb cb,
                 void *arg);
    int (*lease_query)(struct nova__pg_pool *p, const struct nova_host *owner, nova_pg_lease *lease,
                       const char *sql, int nparams, const char *const *params, nova_pg_cb cb,
                       void *arg);
    int (*lease_end)(struct nova__pg_pool *p, const struct nova_host *owner, nova_pg_lease *lease,
                     bool commit, nova_pg_cb cb, void *arg);

    int (*pool_new)(uv_loop_t *loop, const struct nova__postgres_config *cfg,
                    struct nova__pg_pool **out);
    void (*pool_close)(struct nova__pg_pool *p, void (*done)(void *arg), void *arg);
    bool (*pool_ready)(const struct nova__pg_pool *p);
    unsigned (*pool_release_owner)(struct nova__pg_pool *p, const struct nova_host *owner,
                                   bool cancel);
    int (*check_columns)(struct nova__pg_pool *p, const char *const *columns,
                         void (*cb)(void *arg, int status, const char *missing), void *arg);
    int (*migrate)(const char *dsn, const char *dir, enum nova__migrate_mode mode, FILE *out,
                   char *err, size_t errlen);
};

/* Linked into nova-pg.so, and into libnova_full.la for the tests. */
extern const struct nova__svc_pg nova__svc_pg_table;

/* Loads nova-pg.so on first use (nova__svc_load()). */
static inline const struct nova__svc_pg *nova__svc_pg(const char *needed_by, char *err,
                                                      size_t errlen)
{
    return nova__svc_load(NOVA__SVC_PG, sizeof(struct nova__svc_pg), needed_by, err, errlen);
}

/* The table when nova-pg.so is loaded, else NULL. */
static inline const struct nova__svc_pg *nova__svc_pg_loaded(void)
{
    return nova__svc_loaded(NOVA__SVC_PG);
}

#endif
