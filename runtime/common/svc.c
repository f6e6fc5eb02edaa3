/*
 * svc - loads the service modules for the nova-worker binary (see svc.h).
 * The test library uses core/svc_builtin.c instead.
 */
#include "config.h"
#include "common/svc.h"
#include "common/log.h"
#include "common/metrics.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef NOVA_MODULE_DIR
#define NOVA_MODULE_DIR "/usr/lib/nova-worker/modules"
#endif

/* What the core lends each module (nova__svc_set_core). */
static const struct nova__svc_core *core;

void nova__svc_set_core(const struct nova__svc_core *c)
{
    core = c;
}

static const struct {
    const char *name; /* the module's own name, and its file nova-<name>.so */
    const char *what; /* for messages */
} services[NOVA__SVC_COUNT] = {
    [NOVA__SVC_PG] = {"pg", "PostgreSQL"},
    [NOVA__SVC_HTTP] = {"http", "HTTP client"},
};

static struct {
    void *handle;
    const void *table;
} loaded[NOVA__SVC_COUNT];

const char *nova__svc_module_dir(void)
{
    const char *env = getenv("NOVA_MODULE_DIR");
    return env != NULL && env[0] != '\0' ? env : NOVA_MODULE_DIR;
}

/* Why the module at path is unusable, or NULL when it passes. */
static const char *check_module(enum nova__svc_id id, size_t table_size,
                                const struct nova__svc_module *m, char *buf, size_t len)
{
    if (m->version != NOVA__SVC_VERSION) {
        snprintf(buf, len,
                 "it implements module interface %u but this nova-worker needs %u; the module "
                 "and the binary come from different builds (reinstall nova-worker)",
                 m->version, NOVA__SVC_VERSION);
        return buf;
    }
    if (m->name == NULL || strcmp(m->name, services[id].name) != 0) {
        snprintf(buf, len, "it is the '%s' module, not '%s'", m->name ? m->name : "(null)",
                 services[id].name);
        return buf;
    }
    if (m->struct_size != sizeof *m || m->core_size != sizeof *core ||
        m->table_size != table_size) {
        snprintf(buf, len,
                 "its tables have sizes %u/%u/%u but this nova-worker's are %zu/%zu/%zu; the "
                 "module and the binary come from different builds (reinstall nova-worker)",
                 m->struct_size, m->core_size, m->table_size, sizeof *m, sizeof *core, table_size);
        return buf;
    }
    if (m->bind == NULL || m->table == NULL) {
        snprintf(buf, len, "its %s is NULL", m->bind == NULL ? "bind" : "table");
        return buf;
    }
    return NULL;
}

const void *nova__svc_load(enum nova__svc_id id, size_t table_size, const char *needed_by,
                           char *err, size_t errlen)
{
    if ((unsigned)id >= NOVA__SVC_COUNT) {
        snprintf(err, errlen, "unknown service %d", (int)id);
        return NULL;
    }
    if (core == NULL) {
        snprintf(err, errlen, "%s, but the core lent the modules nothing (nova__svc_set_core)",
                 needed_by);
        return NULL;
    }
    if (loaded[id].table != NULL)
        return loaded[id].table;

    char path[4096], why[512];
    const char *reason = NULL;
    void *handle = NULL;
    const struct nova__svc_module *m = NULL;
    struct stat st;
    snprintf(path, sizeof path, "%s/nova-%s.so", nova__svc_module_dir(), services[id].name);
    if (stat(path, &st) != 0) {
        /* dlerror() would repeat the path; say only what is wrong. */
        snprintf(why, sizeof why, "%s (set NOVA_MODULE_DIR, or reinstall nova-worker)",
                 strerror(errno));
        reason = why;
    } else {
        dlerror();
        handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) {
            const char *e = dlerror();
            snprintf(why, sizeof why, "%s", e != NULL ? e : "dlopen failed");
            reason = why;
        } else if ((m = dlsym(handle, NOVA__SVC_SYMBOL)) == NULL) {
            snprintf(why, sizeof why, "it does not export %s (not a nova-worker module?)",
                     NOVA__SVC_SYMBOL);
            reason = why;
        } else {
            reason = check_module(id, table_size, m, why, sizeof why);
        }
    }
    if (reason != NULL) {
        snprintf(err, errlen, "%s, but the %s module %s cannot be loaded: %s", needed_by,
                 services[id].what, path, reason);
        if (handle != NULL)
            dlclose(handle);
        return NULL;
    }
    m->bind(core);
    loaded[id].handle = handle;
    loaded[id].table = m->table;
    nova__log_debug("loaded the %s module %s", services[id].what, path);
    return m->table;
}

const void *nova__svc_loaded(enum nova__svc_id id)
{
    return (unsigned)id < NOVA__SVC_COUNT ? loaded[id].table : NULL;
}

void nova__svc_unload_all(void)
{
    for (int i = 0; i < NOVA__SVC_COUNT; i++) {
        /* Under the sanitizers the modules stay mapped, so leak reports
         * from them still resolve their symbols (as runtime/loader.c). */
#if !defined(__SANITIZE_ADDRESS__)
        if (loaded[i].handle != NULL)
            dlclose(loaded[i].handle);
#endif
        loaded[i].handle = NULL;
        loaded[i].table = NULL;
    }
}
