/*
 * svc_builtin - the svc.h functions for libnova_full.la, the runtime the
 * test programs link: the services are linked in, so every table is
 * "loaded" from the start and nothing is opened.
 */
#include "config.h"
#include "common/svc.h"
#include "http/svc_http.h"
#include "pg/svc_pg.h"

#include <stdio.h>

static const void *const tables[NOVA__SVC_COUNT] = {
    [NOVA__SVC_PG] = &nova__svc_pg_table,
    [NOVA__SVC_HTTP] = &nova__svc_http_table,
};

void nova__svc_set_core(const struct nova__svc_core *core)
{
    (void)core; /* the services are linked in: they call the core directly */
}

const void *nova__svc_load(enum nova__svc_id id, size_t table_size, const char *needed_by,
                           char *err, size_t errlen)
{
    (void)table_size; /* the same build, by construction */
    if ((unsigned)id < NOVA__SVC_COUNT)
        return tables[id];
    snprintf(err, errlen, "%s, but service %d does not exist", needed_by, (int)id);
    return NULL;
}

const void *nova__svc_loaded(enum nova__svc_id id)
{
    return (unsigned)id < NOVA__SVC_COUNT ? tables[id] : NULL;
}

void nova__svc_unload_all(void)
{
}

const char *nova__svc_module_dir(void)
{
    return "(linked in)";
}
