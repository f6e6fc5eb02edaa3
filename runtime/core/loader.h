/*
 * loader - opens plugin shared objects and checks their descriptor.
 *
 * A plugin NAME lives in DIR/NAME.so. The loader dlopens it with
 * RTLD_NOW | RTLD_LOCAL (so an unresolved dependency fails here, not in the
 * middle of a job), calls nova_plugin_entry() and checks the descriptor
 * the way PostgreSQL checks its magic block: every mismatch is one line
 * naming the plugin, the path, the field and both values.
 *
 * struct nova__plugin is allocated by nova__plugin_open() and freed by
 * nova__plugin_close(), which also calls shutdown() if init() succeeded.
 * The descriptor copy inside it is valid for the plugin's lifetime.
 */
#ifndef NOVA_RUNTIME_LOADER_H
#define NOVA_RUNTIME_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include "nova/plugin.h"
#include "core/host.h"

struct nova__config;
struct nova__config_diag;
struct nova__config_origin;
struct nova__plugin_section;
struct nova__plugin_schedules;

struct nova__plugin {
    char *name;
    char *path;
    void *handle;            /* dlopen handle */
    struct nova_plugin desc; /* the plugin's descriptor, zero-extended to our size */
    void *config;            /* filled from its [plugin NAME] section */
    void *state;             /* what init() returned */
    bool initialized;
    struct nova__host_ctx host;
    struct nova__plugin_schedules *schedules; /* what it declared for config (core/schedules.h) */
};

/* Opens DIR/NAME.so and validates its descriptor; dir may be a search path
 * "DIR[:DIR...]" ([worker] plugin_dir), the first DIR holding NAME.so wins.
 * Returns 0 or -errno with a one-line message in err. */
int nova__plugin_open(const char *dir, const char *name, struct nova__plugin **out, char *err,
                      size_t errlen);

/* The plugin names (NAME of NAME.so) found along the search path dirs,
 * sorted and without repeats (the first directory's plugin is the one
 * nova__plugin_open() loads). Returns how many, with a malloc'd array of
 * malloc'd names in *out (free with nova__plugin_names_free()), or -errno. */
int nova__plugin_names(const char *dirs, char ***out);
void nova__plugin_names_free(char **names, int n);

/* Fills p->config from the plugin's section (NULL: defaults only); on
 * success any previous config is freed. Errors name file and line. */
int nova__plugin_configure(struct nova__plugin *p, const struct nova__config *cfg,
                           const struct nova__plugin_section *section, char *err, size_t errlen);

/* The same, reporting every problem of the section into diag; origins,
 * when not NULL, has one element per row of the plugin's table. */
int nova__plugin_configure_all(struct nova__plugin *p, const struct nova__config *cfg,
                               const struct nova__plugin_section *section,
                               struct nova__config_diag *diag, struct nova__config_origin *origins);

/* Checks that the services the plugin requires are configured. */
int nova__plugin_check_requires(const struct nova__plugin *p, const struct nova__services *svc,
                                char *err, size_t errlen);

/* Calls init() with a fresh host table. Returns init's result. */
int nova__plugin_init(struct nova__plugin *p, struct nova__services *svc, char *err, size_t errlen);

/* Calls shutdown() when initialised (after stopping its timers). */
void nova__plugin_shutdown(struct nova__plugin *p);

/* Shuts down if needed, frees config, dlcloses and frees p. NULL is fine. */
void nova__plugin_close(struct nova__plugin *p);

#endif
