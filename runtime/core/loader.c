#include "config.h"
#include "core/loader.h"
#include "core/schedules.h"
#include "common/conf.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Descriptor sizes per ABI minor, so a plugin's struct_size can be checked
 * against what its minor promises. */
/* 1.1 added nova_stellar_status.latest_ledger; 1.2 the schedules callback
 * in a reserved slot; 1.3 the host's process and file tables (reserved
 * host slots) and the commands table (a reserved slot). The descriptor's
 * size never changed. */
static const size_t descriptor_size_by_minor[] = {
    [0] = sizeof(struct nova_plugin),
    [1] = sizeof(struct nova_plugin),
    [2] = sizeof(struct nova_plugin),
    [3] = sizeof(struct nova_plugin),
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) NOVA_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int valid_plugin_name(const char *name)
{
    if (name[0] == '\0' || strlen(name) > 64)
        return 0;
    for (const char *c = name; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return 0;
    }
    return 1;
}

static int check_descriptor(const char *name, const char *path, const struct nova_plugin *d,
                            char *err, size_t errlen)
{
    if (d->abi_major != NOVA_ABI_MAJOR) {
        set_err(err, errlen,
                "plugin %s (%s): abi_major is %u but this nova-worker supports %u; rebuild the "
                "plugin against nova-worker %s headers",
                name, path, d->abi_major, NOVA_ABI_MAJOR, PACKAGE_VERSION);
        return -EPROTO;
    }
    if (d->abi_minor > NOVA_ABI_MINOR) {
        set_err(err, errlen,
                "plugin %s (%s): abi_minor is %u, newer than this nova-worker's %u; upgrade "
                "nova-worker or rebuild the plugin against older headers",
                name, path, d->abi_minor, NOVA_ABI_MINOR);
        return -EPROTO;
    }
    size_t expected = descriptor_size_by_minor[d->abi_minor];
    if (d->struct_size < expected) {
        set_err(err, errlen,
                "plugin %s (%s): struct_size is %u but ABI %u.%u needs at least %zu; was it "
                "built with NOVA_PLUGIN_ABI?",
                name, path, d->struct_size, d->abi_major, d->abi_minor, expected);
        return -EPROTO;
    }
    if (d->name == NULL || strcmp(d->name, name) != 0) {
        set_err(err, errlen, "plugin %s (%s): name is '%s', expected '%s' (the file name)", name,
                path, d->name ? d->name : "(null)", name);
        return -EINVAL;
    }
    if ((d->requires & ~NOVA_REQUIRES_KNOWN) != 0) {
        set_err(err, errlen, "plugin %s (%s): requires unknown services 0x%x", name, path,
                d->requires & ~NOVA_REQUIRES_KNOWN);
        return -ENOTSUP;
    }
    if (d->init == NULL || d->shutdown == NULL) {
        set_err(err, errlen, "plugin %s (%s): %s is NULL", name, path,
                d->init == NULL ? "init" : "shutdown");
        return -EINVAL;
    }
    if (d->config != NULL && d->config_size == 0) {
        set_err(err, errlen, "plugin %s (%s): has a config table but config_size is 0", name, path);
        return -EINVAL;
    }
    for (size_t i = 0; d->config != NULL && d->config[i].key != NULL; i++) {
        if (d->config[i].offset + sizeof(int64_t) > d->config_size &&
            d->config[i].type != NOVA_CONFIG_BOOL) {
            set_err(err, errlen,
                    "plugin %s (%s): config key '%s' has offset %zu outside "
                    "config_size %zu",
                    name, path, d->config[i].key, d->config[i].offset, d->config_size);
            return -EINVAL;
        }
    }
    for (size_t i = 0; d->commands != NULL && d->commands[i].name != NULL; i++) {
        const struct nova_command *c = &d->commands[i];
        if (!valid_plugin_name(c->name) || strchr(c->name, '_') != NULL || c->run == NULL) {
            set_err(err, errlen, "plugin %s (%s): command '%s' %s", name, path, c->name,
                    c->run == NULL ? "has no run()" : "is not a valid name (a-z, 0-9, -)");
            return -EINVAL;
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int nova__plugin_names(const char *dirs, char ***out)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    for (const char *d = dirs; d != NULL && *d != '\0';) {
        const char *end = strchr(d, ':');
        size_t len = end != NULL ? (size_t)(end - d) : strlen(d);
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)len, d);
        d = end != NULL ? end + 1 : NULL;
        DIR *dh = len > 0 ? opendir(dir) : NULL;
        if (dh == NULL)
            continue; /* a missing local directory is normal */
        struct dirent *de;
        while ((de = readdir(dh)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l <= 3 || strcmp(de->d_name + l - 3, ".so") != 0)
                continue;
            bool seen = false;
            for (size_t i = 0; i < n && !seen; i++)
                seen = strlen(names[i]) == l - 3 && strncmp(names[i], de->d_name, l - 3) == 0;
            if (seen)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                char **grown = realloc(names, ncap * sizeof *grown);
                if (grown == NULL)
                    break;
                names = grown;
                cap = ncap;
            }
            if ((names[n] = strndup(de->d_name, l - 3)) != NULL)
                n++;
        }
        closedir(dh);
    }
    if (n > 1)
        qsort(names, n, sizeof names[0], cmp_str);
    *out = names;
    return (int)n;
}

void nova__plugin_names_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int nova__plugin_open(const char *dir, const char *name, struct nova__plugin **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    if (!valid_plugin_name(name)) {
        set_err(err, errlen, "plugin '%s': invalid name (use a-z, 0-9, _ and -)", name);
        return -EINVAL;
    }
    /* dir is a search path: the first DIR/NAME.so that exists is loaded. */
    char path[4096] = "", tried[1024] = "";
    struct stat st;
    int e = ENOENT;
    bool found = false;
    for (const char *d = dir; d != NULL && *d != '\0' && !found;) {
        const char *end = strchr(d, ':');
        size_t len = end != NULL ? (size_t)(end - d) : strlen(d);
        if (len > 0) {
            snprintf(path, sizeof path, "%.*s/%s.so", (int)len, d, name);
            if (stat(path, &st) == 0)
                found = true;
            else {
                e = errno;
                size_t used = strlen(tried);
                snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", path);
            }
        }
        d = end != NULL ? end + 1 : NULL;
    }
    if (!found) {
        set_err(err, errlen, "plugin %s: %s: %s", name, tried[0] ? tried : "(no plugin_dir)",
                strerror(e));
        return -e;
    }
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *why = dlerror();
        set_err(err, errlen, "plugin %s: cannot load: %s", name, why ? why : path);
        return -ENOEXEC;
    }
    nova_plugin_entry_fn entry;
    *(void **)&entry = dlsym(handle, NOVA_PLUGIN_ENTRY_SYMBOL);
    if (entry == NULL) {
        set_err(err, errlen, "plugin %s: %s does not export %s() (not a nova-worker plugin?)", name,
                path, NOVA_PLUGIN_ENTRY_SYMBOL);
        dlclose(handle);
        return -ENOEXEC;
    }
    const struct nova_plugin *d = entry();
    if (d == NULL) {
        set_err(err, errlen, "plugin %s: %s: %s() returned NULL", name, path,
                NOVA_PLUGIN_ENTRY_SYMBOL);
        dlclose(handle);
        return -ENOEXEC;
    }
    struct nova__plugin *p = calloc(1, sizeof *p);
    if (p == NULL) {
        dlclose(handle);
        return -ENOMEM;
    }
    /* Read the fixed header first; the rest only as far as struct_size says. */
    size_t copy = d->struct_size < sizeof p->desc ? d->struct_size : sizeof p->desc;
    if (d->abi_major == NOVA_ABI_MAJOR && d->abi_minor <= NOVA_ABI_MINOR)
        memcpy(&p->desc, d, copy);
    else
        memcpy(&p->desc, d, offsetof(struct nova_plugin, name));
    /* Before 1.2 the slot was reserved: never call what it holds. */
    if (p->desc.abi_minor < 2)
        p->desc.schedules = NULL;
    if (p->desc.abi_minor < 3)
        p->desc.commands = NULL;
    int rc = check_descriptor(name, path, &p->desc, err, errlen);
    p->handle = handle;
    p->name = strdup(name);
    p->path = strdup(path);
    if (rc == 0 && (p->name == NULL || p->path == NULL))
        rc = -ENOMEM;
    if (rc != 0) {
        nova__plugin_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

int nova__plugin_configure(struct nova__plugin *p, const struct nova__config *cfg,
                           const struct nova__plugin_section *section, char *err, size_t errlen)
{
    void *config = NULL;
    int rc =
        nova__config_fill(p->desc.config, p->desc.config_size, cfg, section, &config, err, errlen);
    if (rc != 0)
        return rc;
    nova__config_struct_free(p->desc.config, p->config);
    p->config = config;
    return 0;
}

int nova__plugin_configure_all(struct nova__plugin *p, const struct nova__config *cfg,
                               const struct nova__plugin_section *section,
                               struct nova__config_diag *diag, struct nova__config_origin *origins)
{
    void *config = NULL;
    int rc = nova__config_fill_all(p->desc.config, p->desc.config_size, cfg, section, &config, diag,
                                   origins);
    if (rc != 0)
        return rc;
    nova__config_struct_free(p->desc.config, p->config);
    p->config = config;
    return 0;
}

int nova__plugin_check_requires(const struct nova__plugin *p, const struct nova__services *svc,
                                char *err, size_t errlen)
{
    static const struct {
        uint32_t bit;
        const char *what;
    } services[] = {
        {NOVA_REQUIRES_REDIS, "Redis ([redis] url)"},
        {NOVA_REQUIRES_PG, "PostgreSQL ([postgres] dsn or DATABASE_URL)"},
        {NOVA_REQUIRES_HTTP, "the HTTP client"},
        {NOVA_REQUIRES_STELLAR, "Stellar ([stellar] section)"},
    };
    const void *present[] = {svc->queues, svc->pg, svc->http, svc->stellar};
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        if ((p->desc.requires & services[i].bit) && present[i] == NULL) {
            snprintf(err, errlen, "plugin %s: requires %s, which is not configured", p->name,
                     services[i].what);
            return -ENOTSUP;
        }
    }
    return 0;
}

int nova__plugin_init(struct nova__plugin *p, struct nova__services *svc, char *err, size_t errlen)
{
    nova__host_init(&p->host, svc, p->name, p);
    void *state = NULL;
    int rc = p->desc.init(&p->host.host, p->config, &state);
    if (rc != 0) {
        nova__host_release(&p->host);
        nova__host_after_shutdown(&p->host);
        snprintf(err, errlen, "plugin %s: init failed: %s", p->name, strerror(rc < 0 ? -rc : rc));
        return rc < 0 ? rc : -EINVAL;
    }
    p->state = state;
    p->initialized = true;
    return 0;
}

void nova__plugin_shutdown(struct nova__plugin *p)
{
    if (p == NULL || !p->initialized)
        return;
    nova__host_release(&p->host);
    p->desc.shutdown(p->state);
    nova__host_after_shutdown(&p->host);
    p->state = NULL;
    p->initialized = false;
}

void nova__plugin_close(struct nova__plugin *p)
{
    if (p == NULL)
        return;
    nova__plugin_shutdown(p);
    if (p->schedules != NULL) {
        nova__schedules_free(p->schedules);
        free(p->schedules);
    }
    nova__config_struct_free(p->desc.config, p->config);
    /* Keep the object mapped under the sanitizers so leak reports from
     * plugins still resolve their symbols. */
#if !defined(__SANITIZE_ADDRESS__)
    if (p->handle != NULL)
        dlclose(p->handle);
#endif
    free(p->name);
    free(p->path);
    free(p);
}
