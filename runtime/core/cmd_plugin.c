/* cmd_plugin - plugins' command-line tools; see cmd_plugin.h. */
#include "config.h"
#include "core/cmd_plugin.h"
#include "common/conf.h"
#include "common/log.h"
#include "common/svc.h"
#include "core/host.h"
#include "core/loader.h"
#include "core/services.h"
#include "queue/queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct command_run {
    uv_loop_t loop;
    struct nova__service_set set;
    struct nova__plugin *plugin;
    int exit_code;
    bool done;
};

/* One command per process: done() finds its run here. */
static struct command_run *current;

static const char *plugin_dir_of(const struct nova__config *cfg)
{
    if (cfg != NULL)
        return cfg->worker.plugin_dir;
    return getenv("NOVA_PLUGIN_DIR") ? getenv("NOVA_PLUGIN_DIR") : NOVA_PLUGIN_PATH;
}

static const struct nova_command *find_in(const struct nova__plugin *p, const char *name)
{
    for (size_t i = 0; p->desc.commands != NULL && p->desc.commands[i].name != NULL; i++)
        if (strcmp(p->desc.commands[i].name, name) == 0)
            return &p->desc.commands[i];
    return NULL;
}

/* Calls fn for every plugin in dir that loads (sorted by name, for a
 * stable order); stops when fn returns true and hands that plugin back
 * open. */
static struct nova__plugin *each_plugin(const char *dir,
                                        bool (*fn)(struct nova__plugin *p, void *arg), void *arg)
{
    char **names = NULL;
    int n = nova__plugin_names(dir, &names);
    struct nova__plugin *found = NULL;
    for (int i = 0; i < n && found == NULL; i++) {
        char err[NOVA_CONFIG_ERRMAX];
        struct nova__plugin *p = NULL;
        if (nova__plugin_open(dir, names[i], &p, err, sizeof err) == 0) {
            if (fn(p, arg))
                found = p;
            else
                nova__plugin_close(p);
        }
    }
    if (n > 0)
        nova__plugin_names_free(names, n);
    return found;
}

static bool declares(struct nova__plugin *p, void *arg)
{
    return find_in(p, arg) != NULL;
}

static bool print_commands(struct nova__plugin *p, void *arg)
{
    for (size_t i = 0; p->desc.commands != NULL && p->desc.commands[i].name != NULL; i++)
        fprintf(arg, "  %-22s %s (plugin %s)\n", p->desc.commands[i].name,
                p->desc.commands[i].summary ? p->desc.commands[i].summary : "", p->name);
    return false;
}

void nova__cmd_plugin_list(const char *dir, FILE *out)
{
    each_plugin(dir, print_commands, out);
}

static void services_closed(void *arg)
{
    struct command_run *r = arg;
    uv_stop(&r->loop);
}

static void command_done(const struct nova_host *host, int exit_code)
{
    struct command_run *r = current;
    if (r == NULL || &r->plugin->host.host != host || r->done) {
        nova__log_warn("command: done() called twice or with another host (ignored)");
        return;
    }
    r->done = true;
    r->exit_code = exit_code;
    /* What the command left running ends now, as for a stopping plugin. */
    nova__host_release(&r->plugin->host);
    nova__host_after_shutdown(&r->plugin->host);
    nova__service_set_close(&r->set, services_closed, r);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run_command(struct command_run *r, const struct nova__config *cfg,
                       const struct nova_command *cmd, int argc, char **argv)
{
    struct nova__plugin *p = r->plugin;
    char err[NOVA_CONFIG_ERRMAX];
    int rc = nova__plugin_configure(p, cfg, nova__config_plugin(cfg, p->name), err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "nova-worker %s: %s\n", cmd->name, err);
        return 1;
    }
    uv_loop_init(&r->loop);
    uint32_t req = p->desc.requires;
    rc = nova__service_set_open(&r->set, &r->loop, cfg, (req & NOVA_REQUIRES_PG) != 0,
                                (req & NOVA_REQUIRES_REDIS) != 0, err, sizeof err);
    if (rc == 0)
        rc = nova__service_set_for_plugin(&r->set, p->name, req, err, sizeof err);
    if (rc == 0)
        rc = nova__plugin_check_requires(p, &r->set.svc, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "nova-worker %s: %s\n", cmd->name, err);
        r->done = true;
        r->exit_code = 1;
        nova__service_set_close(&r->set, services_closed, r);
    } else {
        if (r->set.svc.queues != NULL)
            nova__queue_engine_start(r->set.svc.queues);
        nova__host_init(&p->host, &r->set.svc, p->name, p);
        cmd->run(&p->host.host, p->config, argc, argv, command_done);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (!r->done) {
        /* The loop ran dry without done(): a plugin bug, not a success. */
        fprintf(stderr, "nova-worker %s: the command ended without reporting its result\n",
                cmd->name);
        command_done(&p->host.host, 1);
        uv_run(&r->loop, UV_RUN_DEFAULT);
    }
    uv_walk(&r->loop, close_walk, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    return r->exit_code;
}

int nova__cmd_plugin(const struct nova__config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return -1;
    struct nova__plugin *p = NULL;
    /* A plugin named in the config first (the one ops configured), then
     * every installed one. */
    const char *dir = plugin_dir_of(cfg);
    for (size_t i = 0; cfg != NULL && i < cfg->plugin_count && p == NULL; i++) {
        char err[NOVA_CONFIG_ERRMAX];
        if (nova__plugin_open(dir, cfg->plugins[i].name, &p, err, sizeof err) == 0 &&
            find_in(p, argv[0]) == NULL) {
            nova__plugin_close(p);
            p = NULL;
        }
    }
    if (p == NULL)
        p = each_plugin(dir, declares, argv[0]);
    if (p == NULL)
        return -1;
    const struct nova_command *cmd = find_in(p, argv[0]);
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(cmd->usage != NULL ? cmd->usage : "", stdout);
        nova__plugin_close(p);
        return 0;
    }
    /* Without a config file the plugin runs on its defaults and the
     * environment, like a section that is absent. */
    struct nova__config *empty = NULL;
    if (cfg == NULL) {
        char err[NOVA_CONFIG_ERRMAX];
        if (nova__config_load("/dev/null", &empty, err, sizeof err) != 0) {
            fprintf(stderr, "nova-worker %s: %s\n", argv[0], err);
            nova__plugin_close(p);
            return 1;
        }
        cfg = empty;
    }
    struct command_run *r = calloc(1, sizeof *r);
    int code = 1;
    if (r != NULL) {
        r->plugin = p;
        current = r;
        code = run_command(r, cfg, cmd, argc, argv);
        current = NULL;
        free(r);
    }
    nova__plugin_close(p);
    nova__config_free(empty);
    nova__svc_unload_all();
    return code;
}
