#include "config.h"
#include "daemon.h"
#include "conf.h"
#include "host.h"
#include "http_client.h"
#include "httpd.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "pg_pool.h"
#include "queue.h"
#include "sdnotify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

enum daemon_state { STATE_STARTING, STATE_RUNNING, STATE_DRAINING, STATE_DONE };

struct daemon {
    uv_loop_t loop;
    const char *config_path;
    struct nova__config *boot_cfg; /* the services were built from it; kept until exit */
    struct nova__config *cfg;      /* the current config (plugins, log level) */
    struct nova__services svc;
    struct nova__httpd *httpd;

    struct nova__plugin **plugins;
    size_t plugin_count;

    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog, ready_timer;
    enum daemon_state state;
    bool notified_ready;
    bool reloading;
    int exit_code;
    int services_closing; /* asynchronous closes still running */
    int plugins_draining; /* plugins whose jobs are finishing before unload */
    bool finish_pending;  /* finish() waits for plugins_draining to reach 0 */
};

static nova_metric *metric_up;

/* ---- services ----------------------------------------------------------- */

static int services_open(struct daemon *d, char *err, size_t errlen)
{
    const struct nova__config *cfg = d->boot_cfg;
    d->svc.loop = &d->loop;
    d->svc.config = cfg;
    int rc = nova__http_client_new(&d->loop, &cfg->http, &d->svc.http);
    if (rc != 0) {
        snprintf(err, errlen, "[http] cannot create the HTTP client: %s", strerror(-rc));
        return rc;
    }
    if (cfg->redis.url != NULL && cfg->redis.url[0] != '\0') {
        rc = nova__queue_engine_new(&d->loop, &cfg->redis, cfg->worker.name, &d->svc.queues);
        if (rc != 0) {
            snprintf(err, errlen, "[redis] cannot start the queue engine: %s", strerror(-rc));
            return rc;
        }
    }
    if (cfg->postgres.dsn != NULL && cfg->postgres.dsn[0] != '\0') {
        rc = nova__pg_pool_new(&d->loop, &cfg->postgres, &d->svc.pg);
        if (rc != 0) {
            snprintf(err, errlen, "[postgres] cannot create the pool: %s", strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static bool services_ready(const struct daemon *d, const char **why)
{
    *why = NULL;
    if (d->svc.queues != NULL && !nova__queue_engine_connected(d->svc.queues))
        *why = "redis unreachable";
    return *why == NULL;
}

static void close_own_handles(struct daemon *d);

static void service_closed(void *arg)
{
    struct daemon *d = arg;
    if (--d->services_closing == 0)
        close_own_handles(d);
}

/* Closes every shared client; the daemon's own handles close after the
 * last one reports back, so the loop ends only when all are gone. */
static void services_close(struct daemon *d)
{
    d->services_closing = 1;
    if (d->svc.queues != NULL) {
        nova__queue_engine_free(d->svc.queues);
        d->svc.queues = NULL;
    }
    if (d->svc.http != NULL) {
        d->services_closing++;
        nova__http_client_close(d->svc.http, service_closed, d);
        d->svc.http = NULL;
    }
    if (d->svc.pg != NULL) {
        d->services_closing++;
        nova__pg_pool_close(d->svc.pg, service_closed, d);
        d->svc.pg = NULL;
    }
    service_closed(d);
}

/* ---- plugins ------------------------------------------------------------ */

static void plugin_info_metric(const struct nova__plugin *p, double value)
{
    static const char *const labels[] = {"plugin", "version", "abi", NULL};
    nova_metric *m = nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_plugin_info",
                                      "Loaded plugins (1 = running)", labels, NULL, 0);
    char abi[32];
    snprintf(abi, sizeof abi, "%u.%u", p->desc.abi_major, p->desc.abi_minor);
    const char *values[] = {p->name, p->desc.version ? p->desc.version : "", abi};
    nova__metric_set(m, values, value);
}

static struct nova__plugin *find_plugin(struct daemon *d, const char *name)
{
    for (size_t i = 0; i < d->plugin_count; i++) {
        if (strcmp(d->plugins[i]->name, name) == 0)
            return d->plugins[i];
    }
    return NULL;
}

static void forget_plugin(struct daemon *d, struct nova__plugin *p)
{
    for (size_t i = 0; i < d->plugin_count; i++) {
        if (d->plugins[i] == p) {
            memmove(&d->plugins[i], &d->plugins[i + 1],
                    (d->plugin_count - i - 1) * sizeof d->plugins[0]);
            d->plugin_count--;
            return;
        }
    }
}

/* Opens, configures and initialises one plugin. Errors are logged. */
static int start_plugin(struct daemon *d, const struct nova__config *cfg,
                        const struct nova__plugin_section *section)
{
    char err[NOVA_CONFIG_ERRMAX];
    struct nova__plugin *p = NULL;
    int rc = nova__plugin_open(cfg->worker.plugin_dir, section->name, &p, err, sizeof err);
    if (rc == 0)
        rc = nova__plugin_configure(p, cfg, section, err, sizeof err);
    if (rc == 0)
        rc = nova__plugin_check_requires(p, &d->svc, err, sizeof err);
    if (rc == 0) {
        struct nova__plugin **grown =
            realloc(d->plugins, (d->plugin_count + 1) * sizeof d->plugins[0]);
        if (grown == NULL) {
            rc = -ENOMEM;
            snprintf(err, sizeof err, "plugin %s: out of memory", section->name);
        } else {
            d->plugins = grown;
        }
    }
    if (rc == 0)
        rc = nova__plugin_init(p, &d->svc, err, sizeof err);
    if (rc != 0) {
        struct nova__log_ctx lc = {.plugin = section->name};
        nova__log(NOVA_LOG_ERROR, &lc, "%s", err);
        nova__plugin_close(p);
        return rc;
    }
    d->plugins[d->plugin_count++] = p;
    plugin_info_metric(p, 1);
    struct nova__log_ctx lc = {.plugin = p->name};
    nova__log(NOVA_LOG_INFO, &lc, "plugin %s %s started", p->name,
              p->desc.version ? p->desc.version : "");
    return 0;
}

struct plugin_drain {
    struct daemon *d;
    struct nova__plugin *p;
    char *restart; /* plugin name to start again from the current config, or NULL */
};

static void finish(struct daemon *d);

static void plugin_drained(void *arg)
{
    struct plugin_drain *pd = arg;
    struct daemon *d = pd->d;
    struct nova__log_ctx lc = {.plugin = pd->p->name};
    nova__log(NOVA_LOG_INFO, &lc, "plugin unloaded");
    nova__plugin_close(pd->p);
    d->plugins_draining--;
    if (pd->restart != NULL && d->state == STATE_RUNNING) {
        const struct nova__plugin_section *s = nova__config_plugin(d->cfg, pd->restart);
        if (s != NULL && s->enabled && find_plugin(d, pd->restart) == NULL)
            start_plugin(d, d->cfg, s);
    }
    free(pd->restart);
    free(pd);
    if (d->finish_pending && d->plugins_draining == 0)
        finish(d);
}

/* Stops one plugin: stop(), its subscriptions drain, then shutdown and
 * unload; with restart, it is started again from the current config. */
static void stop_plugin(struct daemon *d, struct nova__plugin *p, bool restart)
{
    struct nova__log_ctx lc = {.plugin = p->name};
    if (p->desc.stop != NULL && p->initialized)
        p->desc.stop(p->state);
    plugin_info_metric(p, 0);
    forget_plugin(d, p);
    nova__log(NOVA_LOG_INFO, &lc, "plugin stopping");
    struct plugin_drain *pd = calloc(1, sizeof *pd);
    if (pd == NULL) {
        nova__plugin_close(p);
        return;
    }
    pd->d = d;
    pd->p = p;
    pd->restart = restart ? strdup(p->name) : NULL;
    d->plugins_draining++;
    if (d->svc.queues != NULL && p->initialized &&
        nova__queue_unsubscribe_owner(d->svc.queues, &p->host.host, plugin_drained, pd) == 0)
        return;
    plugin_drained(pd);
}

/* ---- readiness, watchdog ------------------------------------------------ */

static void update_readiness(struct daemon *d)
{
    const char *why = NULL;
    bool ready = d->state == STATE_RUNNING && services_ready(d, &why);
    if (d->state == STATE_DRAINING)
        why = "draining";
    else if (d->state != STATE_RUNNING)
        why = "starting";
    nova__httpd_set_ready(d->httpd, ready, why);
    nova__metric_set(metric_up, NULL, ready ? 1 : 0);
    if (ready && !d->notified_ready) {
        d->notified_ready = true;
        char status[128];
        snprintf(status, sizeof status, "READY=1\nSTATUS=serving with %zu plugin(s)",
                 d->plugin_count);
        nova__sd_notify(status);
        nova__log_info("ready: %zu plugin(s) running", d->plugin_count);
    }
}

static void on_ready_timer(uv_timer_t *t)
{
    update_readiness(t->data);
}

static void on_watchdog(uv_timer_t *t)
{
    nova__sd_notify("WATCHDOG=1");
}

/* ---- shutdown ---------------------------------------------------------- */

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish(struct daemon *d)
{
    if (d->state == STATE_DONE)
        return;
    /* Plugins still draining keep their jobs; wait for them. */
    while (d->plugin_count > 0)
        stop_plugin(d, d->plugins[d->plugin_count - 1], false);
    if (d->plugins_draining > 0) {
        d->finish_pending = true;
        return;
    }
    d->state = STATE_DONE;
    nova__httpd_set_ready(d->httpd, false, "stopped");
    services_close(d);
}

static void close_own_handles(struct daemon *d)
{
    uv_handle_t *own[] = {(uv_handle_t *)&d->sig_term, (uv_handle_t *)&d->sig_int,
                          (uv_handle_t *)&d->sig_hup, (uv_handle_t *)&d->watchdog,
                          (uv_handle_t *)&d->ready_timer};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        if (own[i]->loop != NULL && !uv_is_closing(own[i]))
            uv_close(own[i], NULL);
    }
}

static void engine_drained(void *arg)
{
    struct daemon *d = arg;
    nova__log_info("in-flight jobs drained");
    finish(d);
}

static void begin_shutdown(struct daemon *d, int signum)
{
    if (d->state == STATE_DRAINING) {
        /* Unfinished jobs keep their Redis locks; when those expire the
         * stall sweep of any worker puts the jobs back, so nothing is lost. */
        nova__log_warn("second %s: exiting without waiting for in-flight jobs", strsignal(signum));
        _exit(1);
    }
    if (d->state == STATE_DONE)
        return;
    d->state = STATE_DRAINING;
    nova__sd_notify("STOPPING=1\nSTATUS=draining");
    nova__log_info("%s: draining (at most %lld ms)", strsignal(signum),
                   (long long)d->cfg->worker.shutdown_timeout_ms);
    update_readiness(d);
    for (size_t i = 0; i < d->plugin_count; i++) {
        struct nova__plugin *p = d->plugins[i];
        if (p->desc.stop != NULL && p->initialized)
            p->desc.stop(p->state);
    }
    if (d->svc.queues != NULL)
        nova__queue_engine_drain(d->svc.queues, d->cfg->worker.shutdown_timeout_ms, engine_drained,
                                 d);
    else
        finish(d);
}

/* ---- reload -------------------------------------------------------------- */

static bool same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void warn_core_changes(const struct nova__config *old, const struct nova__config *new)
{
    struct {
        const char *what;
        bool changed;
    } checks[] = {
        {"[redis] url", !same_string(old->redis.url, new->redis.url)},
        {"[redis] prefix", !same_string(old->redis.prefix, new->redis.prefix)},
        {"[postgres] dsn", !same_string(old->postgres.dsn, new->postgres.dsn)},
        {"[http] listen", !same_string(old->http.listen, new->http.listen)},
        {"[stellar] network", !same_string(old->stellar.network, new->stellar.network)},
        {"[stellar] horizon_url", !same_string(old->stellar.horizon_url, new->stellar.horizon_url)},
        {"[stellar] distribution_secret",
         !same_string(old->stellar.distribution_secret, new->stellar.distribution_secret)},
        {"[worker] plugin_dir", !same_string(old->worker.plugin_dir, new->worker.plugin_dir)},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (checks[i].changed)
            nova__log_warn("reload: %s changed; it takes effect after a restart", checks[i].what);
    }
}

/* True when the plugin's section differs between the two configs. */
static bool section_changed(const struct nova__config *a, const struct nova__config *b,
                            const char *name)
{
    char section[256];
    snprintf(section, sizeof section, "plugin %s", name);
    size_t ia = 0, ib = 0;
    for (;;) {
        while (ia < a->entry_count && strcmp(a->entries[ia].section, section) != 0)
            ia++;
        while (ib < b->entry_count && strcmp(b->entries[ib].section, section) != 0)
            ib++;
        if (ia == a->entry_count || ib == b->entry_count)
            return (ia == a->entry_count) != (ib == b->entry_count);
        if (strcmp(a->entries[ia].key, b->entries[ib].key) != 0 ||
            strcmp(a->entries[ia].value, b->entries[ib].value) != 0)
            return true;
        ia++;
        ib++;
    }
}

static void reload_plugin(struct daemon *d, struct nova__plugin *p, const struct nova__config *new,
                          const struct nova__plugin_section *section)
{
    struct nova__log_ctx lc = {.plugin = p->name};
    char err[NOVA_CONFIG_ERRMAX];
    void *config = NULL;
    int rc = nova__config_fill(p->desc.config, p->desc.config_size, new, section, &config, err,
                               sizeof err);
    if (rc != 0) {
        nova__log(NOVA_LOG_ERROR, &lc, "reload: %s; keeping the running configuration", err);
        return;
    }
    if (p->desc.reload != NULL) {
        rc = p->desc.reload(p->state, config);
        if (rc != 0) {
            nova__log(NOVA_LOG_ERROR, &lc, "reload: plugin refused the new configuration: %s",
                      strerror(-rc));
            nova__config_struct_free(p->desc.config, config);
            return;
        }
        nova__config_struct_free(p->desc.config, p->config);
        p->config = config;
        nova__log(NOVA_LOG_INFO, &lc, "reload: configuration applied");
        return;
    }
    nova__config_struct_free(p->desc.config, config);
    nova__log(NOVA_LOG_INFO, &lc, "reload: plugin has no reload(); restarting it");
    stop_plugin(d, p, true);
}

static void reload(struct daemon *d)
{
    char buf[64];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    nova__sd_notify(buf);

    char err[NOVA_CONFIG_ERRMAX] = "";
    struct nova__config *new = NULL;
    int rc = nova__config_load(d->config_path, &new, err, sizeof err);
    if (rc != 0) {
        nova__log_error("reload: %s; keeping the running configuration", err);
        nova__sd_notify("READY=1\nSTATUS=reload failed; running on the previous configuration");
        return;
    }
    nova__log_set_level(new->worker.log_level);
    warn_core_changes(d->boot_cfg, new);

    /* Plugins disabled or removed. */
    for (size_t i = d->plugin_count; i-- > 0;) {
        struct nova__plugin *p = d->plugins[i];
        const struct nova__plugin_section *s = nova__config_plugin(new, p->name);
        if (s == NULL || !s->enabled)
            stop_plugin(d, p, false);
    }
    /* Plugins kept (maybe reconfigured) or newly enabled. */
    for (size_t i = 0; i < new->plugin_count; i++) {
        const struct nova__plugin_section *s = &new->plugins[i];
        if (!s->enabled)
            continue;
        struct nova__plugin *p = find_plugin(d, s->name);
        if (p == NULL)
            start_plugin(d, new, s);
        else if (section_changed(d->cfg, new, s->name))
            reload_plugin(d, p, new, s);
    }
    if (d->cfg != d->boot_cfg)
        nova__config_free(d->cfg);
    d->cfg = new;
    nova__log_info("reload: done, %zu plugin(s) running", d->plugin_count);
    char status[128];
    snprintf(status, sizeof status, "READY=1\nSTATUS=serving with %zu plugin(s)", d->plugin_count);
    nova__sd_notify(status);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (signum == SIGHUP) {
        if (d->state == STATE_RUNNING)
            reload(d);
        return;
    }
    begin_shutdown(d, signum);
}

/* ---- run ----------------------------------------------------------------- */

static void set_build_info(void)
{
    static const char *const labels[] = {"version", NULL};
    nova_metric *info = nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_build_info",
                                         "nova-worker build (always 1)", labels, NULL, 0);
    const char *values[] = {PACKAGE_VERSION};
    nova__metric_set(info, values, 1);
    metric_up =
        nova__metric_new(NOVA_METRIC_GAUGE, "nova_worker_ready",
                         "1 when Redis, PostgreSQL and the plugins are ready", NULL, NULL, 0);
}

int nova__daemon_run(const char *config_path)
{
    struct daemon d;
    memset(&d, 0, sizeof d);
    d.config_path = config_path;
    char err[NOVA_CONFIG_ERRMAX] = "";

    if (nova__config_load(config_path, &d.boot_cfg, err, sizeof err) != 0) {
        nova__log_error("%s", err);
        return 1;
    }
    d.cfg = d.boot_cfg;
    nova__log_set_level(d.cfg->worker.log_level);
    set_build_info();

    uv_loop_init(&d.loop);
    if (services_open(&d, err, sizeof err) != 0) {
        nova__log_error("%s", err);
        d.exit_code = 1;
        goto out;
    }
    if (nova__httpd_start(d.cfg->http.listen, &d.httpd, err, sizeof err) != 0) {
        nova__log_error("[http] %s", err);
        d.exit_code = 1;
        services_close(&d);
        goto out;
    }

    uv_signal_init(&d.loop, &d.sig_term);
    uv_signal_init(&d.loop, &d.sig_int);
    uv_signal_init(&d.loop, &d.sig_hup);
    d.sig_term.data = d.sig_int.data = d.sig_hup.data = &d;
    uv_signal_start(&d.sig_term, on_signal, SIGTERM);
    uv_signal_start(&d.sig_int, on_signal, SIGINT);
    uv_signal_start(&d.sig_hup, on_signal, SIGHUP);

    uv_timer_init(&d.loop, &d.watchdog);
    uv_timer_init(&d.loop, &d.ready_timer);
    d.watchdog.data = d.ready_timer.data = &d;
    uint64_t wd = nova__sd_watchdog_interval_ms();
    if (wd > 0)
        uv_timer_start(&d.watchdog, on_watchdog, 0, wd);

    size_t failed = 0;
    for (size_t i = 0; i < d.cfg->plugin_count; i++) {
        if (d.cfg->plugins[i].enabled && start_plugin(&d, d.cfg, &d.cfg->plugins[i]) != 0)
            failed++;
    }
    if (failed > 0)
        nova__log_warn("%zu plugin(s) failed to start; the others keep running", failed);
    nova__log_info("nova-worker %s started (config %s, %zu plugin(s))", PACKAGE_VERSION,
                   config_path, d.plugin_count);
    d.state = STATE_RUNNING;
    if (d.svc.queues != NULL)
        nova__queue_engine_start(d.svc.queues);
    uv_timer_start(&d.ready_timer, on_ready_timer, 0, 200);

    uv_run(&d.loop, UV_RUN_DEFAULT);
    nova__log_info("stopped");
out:
    uv_walk(&d.loop, close_walk, NULL);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    nova__httpd_stop(d.httpd);
    free(d.plugins);
    if (d.cfg != d.boot_cfg)
        nova__config_free(d.cfg);
    nova__config_free(d.boot_cfg);
    nova__metrics_reset();
    nova__log_clear_secrets();
    return d.exit_code;
}

/* ---- check --------------------------------------------------------------- */

int nova__daemon_check(const char *config_path, FILE *out, FILE *errout)
{
    char err[NOVA_CONFIG_ERRMAX] = "";
    struct nova__config *cfg = NULL;
    if (nova__config_load(config_path, &cfg, err, sizeof err) != 0) {
        fprintf(errout, "%s\n", err);
        return 1;
    }
    /* Which services `run` would have, judged from the configuration. */
    static char present;
    struct nova__services svc = {
        .config = cfg,
        .queues = (struct nova__queue_engine *)&present,
        .pg = cfg->postgres.dsn && cfg->postgres.dsn[0] ? (struct nova__pg_pool *)&present : NULL,
        .http = (struct nova__http_client *)&present,
        .stellar = cfg->stellar.horizon_url && cfg->stellar.horizon_url[0]
                       ? (struct nova__stellar_client *)&present
                       : NULL,
    };
    int failures = 0;
    size_t enabled = 0;
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const struct nova__plugin_section *s = &cfg->plugins[i];
        if (!s->enabled)
            continue;
        enabled++;
        struct nova__plugin *p = NULL;
        bool located = false; /* config errors already name their file and line */
        int rc = nova__plugin_open(cfg->worker.plugin_dir, s->name, &p, err, sizeof err);
        if (rc == 0) {
            rc = nova__plugin_configure(p, cfg, s, err, sizeof err);
            located = rc != 0;
        }
        if (rc == 0)
            rc = nova__plugin_check_requires(p, &svc, err, sizeof err);
        if (rc != 0) {
            if (located)
                fprintf(errout, "%s\n", err);
            else
                fprintf(errout, "%s:%d: %s\n", s->file, s->line, err);
            failures++;
        } else {
            fprintf(out, "plugin %s %s: ok\n", p->name, p->desc.version ? p->desc.version : "");
        }
        nova__plugin_close(p);
    }
    if (failures == 0)
        fprintf(out, "%s: configuration ok (%zu plugin(s) enabled)\n", config_path, enabled);
    nova__config_free(cfg);
    nova__log_clear_secrets();
    return failures == 0 ? 0 : 1;
}
