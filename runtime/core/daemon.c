#include "config.h"
#include "core/daemon.h"
#include "common/conf.h"
#include "core/config_check.h"
#include "core/host.h"
#include "core/loader.h"
#include "core/schedules.h"
#include "common/log.h"
#include "common/metrics.h"
#include "nova/pg.h"
#include "queue/queue.h"
#include "queue/redis_conn.h"
#include "core/sdnotify.h"
#include "core/services.h"
#include "common/svc.h"
#include "http/svc_http.h"
#include "httpd/httpd.h"
#include "pg/svc_pg.h"

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
    struct nova__service_set set;  /* the shared clients (core/services.h) */
    struct nova__httpd *httpd;

    struct nova__plugin **plugins;
    size_t plugin_count;

    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog, ready_timer;
    uv_timer_t sched_timer; /* re-syncs the plugins' schedules every minute */
    enum daemon_state state;
    bool notified_ready;
    int exit_code;
    int plugins_draining;        /* plugins whose jobs are finishing before unload */
    bool finish_pending;         /* finish() waits for plugins_draining to reach 0 */
    struct column_check *checks; /* plugins waiting for their PostgreSQL column check */
    bool stellar_probing;        /* a running plugin needs Horizon: it is part of /readyz */
};

/* A plugin whose required columns are being checked before its init(). */
struct column_check {
    struct column_check *next;
    struct daemon *d;
    struct nova__plugin *p;
    uv_timer_t retry; /* re-checks while PostgreSQL is unreachable */
    int attempts;
};

static nova_metric *metric_up;

/* ---- services ----------------------------------------------------------- */

/* PostgreSQL and Redis, as configured. The HTTP and Stellar clients wait
 * for a plugin that needs them (plugin_services). */
static int services_open(struct daemon *d, char *err, size_t errlen)
{
    return nova__service_set_open(&d->set, &d->loop, d->boot_cfg, true, true, err, errlen);
}

/* Opens the shared clients a plugin declares (NOVA_REQUIRES_HTTP, or
 * NOVA_REQUIRES_STELLAR: the Stellar client runs on the HTTP client).
 * Returns 0, or -errno with the reason in err. */
static int plugin_services(struct daemon *d, const struct nova__plugin *p, char *err, size_t errlen)
{
    return nova__service_set_for_plugin(&d->set, p->name, p->desc.requires, err, errlen);
}

static bool services_ready(const struct daemon *d, const char **why)
{
    *why = NULL;
    if (d->set.svc.queues != NULL && !nova__queue_engine_connected(d->set.svc.queues))
        *why = "redis unreachable";
    else if (d->set.svc.pg != NULL && !d->set.pg->pool_ready(d->set.svc.pg))
        *why = "postgres unreachable";
    else if (d->stellar_probing && !d->set.http->stellar_ready(d->set.svc.stellar))
        *why = "stellar: Horizon unreachable or on another network";
    return *why == NULL;
}

static void close_own_handles(struct daemon *d);

static void services_closed(void *arg)
{
    close_own_handles(arg);
}

/* Closes every shared client; the daemon's own handles close after the
 * last one reports back, so the loop ends only when all are gone. */
static void services_close(struct daemon *d)
{
    nova__service_set_close(&d->set, services_closed, d);
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
static void finish(struct daemon *d);
static void sync_schedules(struct daemon *d, struct nova__plugin *p);

static void plugin_failed(struct nova__plugin *p, const char *name, const char *err)
{
    struct nova__log_ctx lc = {.plugin = name};
    nova__log(NOVA_LOG_ERROR, &lc, "%s", err);
    nova__plugin_close(p);
}

/* init() and registration; the plugin is fully configured and checked. */
static int init_plugin(struct daemon *d, struct nova__plugin *p)
{
    char err[NOVA_CONFIG_ERRMAX];
    struct nova__plugin **grown = realloc(d->plugins, (d->plugin_count + 1) * sizeof d->plugins[0]);
    if (grown == NULL) {
        plugin_failed(p, p->name, "out of memory");
        return -ENOMEM;
    }
    d->plugins = grown;
    int rc = nova__plugin_init(p, &d->set.svc, err, sizeof err);
    if (rc != 0) {
        plugin_failed(p, p->name, err);
        return rc;
    }
    d->plugins[d->plugin_count++] = p;
    plugin_info_metric(p, 1);
    if ((p->desc.requires & NOVA_REQUIRES_STELLAR) && d->set.svc.stellar != NULL &&
        !d->stellar_probing)
        d->stellar_probing = d->set.http->stellar_probe(d->set.svc.stellar, 0) == 0;
    struct nova__log_ctx lc = {.plugin = p->name};
    nova__log(NOVA_LOG_INFO, &lc, "plugin %s %s started", p->name,
              p->desc.version ? p->desc.version : "");
    sync_schedules(d, p);
    return 0;
}

static void column_check_closed(uv_handle_t *h)
{
    free(h->data);
}

static void column_check_end(struct column_check *cc)
{
    struct daemon *d = cc->d;
    for (struct column_check **pp = &d->checks; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == cc) {
            *pp = cc->next;
            break;
        }
    }
    d->plugins_draining--;
    uv_close((uv_handle_t *)&cc->retry, column_check_closed);
    if (d->finish_pending && d->plugins_draining == 0)
        finish(d);
}

static void column_check_start(struct column_check *cc);

static void column_check_retry(uv_timer_t *t)
{
    column_check_start(t->data);
}

static void column_check_done(void *arg, int status, const char *missing)
{
    struct column_check *cc = arg;
    struct nova__plugin *p = cc->p;
    char err[NOVA_CONFIG_ERRMAX];
    const struct nova__plugin_section *still = nova__config_plugin(cc->d->cfg, p->name);
    if (cc->d->state != STATE_RUNNING || status == -ECANCELED || still == NULL || !still->enabled) {
        nova__plugin_close(p); /* stopping, or disabled by a reload meanwhile */
    } else if (status == 0) {
        init_plugin(cc->d, p);
    } else if (status == -ENOENT) {
        snprintf(err, sizeof err, "plugin %s: missing column(s) %s; run `nova-worker migrate`",
                 p->name, missing ? missing : "?");
        plugin_failed(p, p->name, err);
    } else if (nova_pg_error_retryable(status)) {
        /* PostgreSQL is not reachable yet: try again rather than refuse. */
        struct nova__log_ctx lc = {.plugin = p->name};
        if (cc->attempts++ == 0)
            nova__log(NOVA_LOG_WARN, &lc,
                      "cannot check the plugin's columns yet (%s); retrying until PostgreSQL "
                      "answers",
                      missing ? missing : strerror(-status));
        uv_timer_start(&cc->retry, column_check_retry, 2000, 0);
        return;
    } else {
        snprintf(err, sizeof err, "plugin %s: column check failed: %s", p->name,
                 missing ? missing : strerror(-status));
        plugin_failed(p, p->name, err);
    }
    column_check_end(cc);
}

static void column_check_start(struct column_check *cc)
{
    int rc = cc->d->set.pg->check_columns(cc->d->set.svc.pg, cc->p->desc.required_columns,
                                          column_check_done, cc);
    if (rc != 0) {
        char err[NOVA_CONFIG_ERRMAX];
        snprintf(err, sizeof err, "plugin %s: bad required_columns entry (%s)", cc->p->name,
                 strerror(-rc));
        plugin_failed(cc->p, cc->p->name, err);
        column_check_end(cc);
    }
}

static bool column_check_pending(const struct daemon *d, const char *name)
{
    for (const struct column_check *cc = d->checks; cc != NULL; cc = cc->next) {
        if (strcmp(cc->p->name, name) == 0)
            return true;
    }
    return false;
}

/* Opens and configures one plugin, opens the shared clients it needs and
 * checks it has them. Errors are logged; *service_failed is set when a
 * shared client could not be opened (a missing module, a bad [stellar]
 * section), which stops the daemon at start-up. */
/* ---- schedules (core/schedules.h) -------------------------------------- */

/* p's schedules for config, replacing what it had; on error p keeps its
 * current ones. Needs nothing but the plugin and the config. */
static int collect_schedules(struct nova__plugin *p, const void *config, char *err, size_t errlen)
{
    struct nova__plugin_schedules *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    int rc = nova__schedules_collect(p, config, s, err, errlen);
    if (rc != 0) {
        free(s);
        return rc;
    }
    if (p->schedules != NULL) {
        nova__schedules_free(p->schedules);
        free(p->schedules);
    }
    p->schedules = s;
    return 0;
}

struct sched_sync {
    struct daemon *d;
    char *plugin;
};

static void on_sched_timer(uv_timer_t *t);

static void on_schedules_synced(void *arg, int failures)
{
    struct sched_sync *ss = arg;
    struct daemon *d = ss->d;
    /* A failed sync (Redis down, not connected yet) is tried again soon,
     * not in a minute. */
    if (failures > 0 && d->state == STATE_RUNNING && uv_is_active((uv_handle_t *)&d->sched_timer) &&
        uv_timer_get_due_in(&d->sched_timer) > 5000)
        uv_timer_start(&d->sched_timer, on_sched_timer, 5000, 60000);
    free(ss->plugin);
    free(ss);
}

/* Puts p's schedules in Redis (and takes out the ones it dropped). */
static void sync_schedules(struct daemon *d, struct nova__plugin *p)
{
    /* Not connected yet (start-up, an outage): the timer's next round does it. */
    if (d->set.svc.queues == NULL || p->schedules == NULL || !p->initialized ||
        !nova__queue_engine_connected(d->set.svc.queues))
        return;
    const char *queues[32];
    size_t nq = nova__queue_owner_queues(d->set.svc.queues, &p->host.host, queues, 32);
    struct sched_sync *ss = calloc(1, sizeof *ss);
    if (ss == NULL || (ss->plugin = strdup(p->name)) == NULL) {
        free(ss);
        return;
    }
    ss->d = d;
    if (nova__schedules_sync(d->set.svc.queues, p->name, p->schedules, queues, nq,
                             on_schedules_synced, ss) != 0) {
        free(ss->plugin);
        free(ss);
    }
}

static void on_sched_timer(uv_timer_t *t)
{
    struct daemon *d = t->data;
    for (size_t i = 0; i < d->plugin_count; i++)
        sync_schedules(d, d->plugins[i]);
}

static int prepare_plugin(struct daemon *d, const struct nova__config *cfg,
                          const struct nova__plugin_section *section, struct nova__plugin **out,
                          bool *service_failed)
{
    char err[NOVA_CONFIG_ERRMAX];
    struct nova__plugin *p = NULL;
    int rc = nova__plugin_open(cfg->worker.plugin_dir, section->name, &p, err, sizeof err);
    if (rc == 0)
        rc = nova__plugin_configure(p, cfg, section, err, sizeof err);
    if (rc == 0) {
        rc = plugin_services(d, p, err, sizeof err);
        *service_failed = rc != 0;
    }
    if (rc == 0)
        rc = nova__plugin_check_requires(p, &d->set.svc, err, sizeof err);
    if (rc == 0)
        rc = collect_schedules(p, p->config, err, sizeof err);
    if (rc != 0) {
        plugin_failed(p, section->name, err);
        return rc;
    }
    *out = p;
    return 0;
}

/* Initialises a prepared plugin, after the PostgreSQL column check when it
 * declares columns. Errors are logged. */
static int launch_plugin(struct daemon *d, struct nova__plugin *p)
{
    if (p->desc.required_columns == NULL || d->set.svc.pg == NULL)
        return init_plugin(d, p);
    struct column_check *cc = calloc(1, sizeof *cc);
    if (cc == NULL) {
        plugin_failed(p, p->name, "out of memory");
        return -ENOMEM;
    }
    cc->d = d;
    cc->p = p;
    uv_timer_init(&d->loop, &cc->retry);
    cc->retry.data = cc;
    cc->next = d->checks;
    d->checks = cc;
    d->plugins_draining++;
    column_check_start(cc);
    return 0;
}

static int start_plugin(struct daemon *d, const struct nova__config *cfg,
                        const struct nova__plugin_section *section)
{
    struct nova__plugin *p = NULL;
    bool service_failed = false;
    int rc = prepare_plugin(d, cfg, section, &p, &service_failed);
    return rc != 0 ? rc : launch_plugin(d, p);
}

struct plugin_drain {
    struct daemon *d;
    struct nova__plugin *p;
    char *restart; /* plugin name to start again from the current config, or NULL */
};

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
    if (d->set.svc.queues != NULL && p->initialized &&
        nova__queue_unsubscribe_owner(d->set.svc.queues, &p->host.host, plugin_drained, pd) == 0)
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

/* Readiness is polled quickly until the first READY=1 (start-up latency is
 * what systemd and ops wait on), then twice a second. */
static void on_ready_timer(uv_timer_t *t)
{
    struct daemon *d = t->data;
    update_readiness(d);
    if (d->notified_ready && uv_timer_get_repeat(t) != 500)
        uv_timer_set_repeat(t, 500);
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
    /* Column checks waiting to retry end now; running ones end with the pool. */
    for (struct column_check *cc = d->checks; cc != NULL;) {
        struct column_check *next = cc->next;
        if (uv_is_active((uv_handle_t *)&cc->retry)) {
            uv_timer_stop(&cc->retry);
            nova__plugin_close(cc->p);
            column_check_end(cc);
        }
        cc = next;
    }
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
    uv_handle_t *own[] = {(uv_handle_t *)&d->sig_term,    (uv_handle_t *)&d->sig_int,
                          (uv_handle_t *)&d->sig_hup,     (uv_handle_t *)&d->watchdog,
                          (uv_handle_t *)&d->ready_timer, (uv_handle_t *)&d->sched_timer};
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
    uv_timer_stop(&d->sched_timer);
    nova__sd_notify("STOPPING=1\nSTATUS=draining");
    nova__log_info("%s: draining (at most %lld ms)", strsignal(signum),
                   (long long)d->cfg->worker.shutdown_timeout_ms);
    update_readiness(d);
    for (size_t i = 0; i < d->plugin_count; i++) {
        struct nova__plugin *p = d->plugins[i];
        if (p->desc.stop != NULL && p->initialized)
            p->desc.stop(p->state);
    }
    if (d->set.svc.queues != NULL)
        nova__queue_engine_drain(d->set.svc.queues, d->cfg->worker.shutdown_timeout_ms,
                                 engine_drained, d);
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
    struct nova__plugin_schedules *kept = p->schedules;
    p->schedules = NULL;
    rc = collect_schedules(p, config, err, sizeof err);
    if (rc != 0) {
        p->schedules = kept;
        nova__log(NOVA_LOG_ERROR, &lc, "reload: %s; keeping the running configuration", err);
        nova__config_struct_free(p->desc.config, config);
        return;
    }
    struct nova__plugin_schedules *fresh = p->schedules;
    p->schedules = kept;
    if (p->desc.reload != NULL) {
        rc = p->desc.reload(p->state, config);
        if (rc != 0) {
            nova__log(NOVA_LOG_ERROR, &lc, "reload: plugin refused the new configuration: %s",
                      strerror(-rc));
            nova__schedules_free(fresh);
            free(fresh);
            nova__config_struct_free(p->desc.config, config);
            return;
        }
        nova__config_struct_free(p->desc.config, p->config);
        p->config = config;
        if (p->schedules != NULL) {
            nova__schedules_free(p->schedules);
            free(p->schedules);
        }
        p->schedules = fresh;
        sync_schedules(d, p);
        nova__log(NOVA_LOG_INFO, &lc, "reload: configuration applied");
        return;
    }
    nova__schedules_free(fresh);
    free(fresh);
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
        if (p == NULL && !column_check_pending(d, s->name))
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
    /* The values `check` validates up front (Redis target, listen address,
     * Stellar keys) refuse the start here too, each with its FILE:LINE,
     * instead of later from the service that trips on it. */
    struct nova__config_diag diag = {0};
    if (nova__config_check_values(d.boot_cfg, &diag) > 0) {
        for (size_t i = 0; i < diag.count; i++)
            nova__log_error("%s", diag.msg[i]);
        nova__log_error("the configuration has %zu problem(s); `nova-worker check -c %s` lists "
                        "every one",
                        diag.count, config_path);
        nova__config_diag_free(&diag);
        nova__config_free(d.boot_cfg);
        return 1;
    }
    nova__config_diag_free(&diag);
    set_build_info();

    uv_loop_init(&d.loop);
    if (services_open(&d, err, sizeof err) != 0) {
        nova__log_error("%s", err);
        d.exit_code = 1;
        services_close(&d);
        goto out;
    }
    if (nova__httpd_start(&d.loop, d.cfg->http.listen, NULL, &d.httpd, err, sizeof err) != 0) {
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
    uv_timer_init(&d.loop, &d.sched_timer);
    d.watchdog.data = d.ready_timer.data = d.sched_timer.data = &d;
    uint64_t wd = nova__sd_watchdog_interval_ms();
    if (wd > 0)
        uv_timer_start(&d.watchdog, on_watchdog, 0, wd);

    /* Every plugin is opened first, so a shared client that cannot be
     * opened stops the start before any plugin has begun work. */
    size_t failed = 0, prepared = 0;
    bool service_failed = false;
    struct nova__plugin **ready = calloc(d.cfg->plugin_count + 1, sizeof *ready);
    if (ready == NULL) {
        nova__log_error("out of memory");
        d.exit_code = 1;
        finish(&d);
        uv_run(&d.loop, UV_RUN_DEFAULT);
        goto out;
    }
    for (size_t i = 0; i < d.cfg->plugin_count && !service_failed; i++) {
        if (!d.cfg->plugins[i].enabled)
            continue;
        if (prepare_plugin(&d, d.cfg, &d.cfg->plugins[i], &ready[prepared], &service_failed) == 0)
            prepared++;
        else
            failed++;
    }
    if (service_failed) {
        nova__log_error("a shared service a plugin needs cannot be opened; exiting");
        for (size_t i = 0; i < prepared; i++)
            nova__plugin_close(ready[i]);
        free(ready);
        d.exit_code = 1;
        finish(&d);
        uv_run(&d.loop, UV_RUN_DEFAULT);
        goto out;
    }
    for (size_t i = 0; i < prepared; i++) {
        if (launch_plugin(&d, ready[i]) != 0)
            failed++;
    }
    free(ready);
    if (failed > 0)
        nova__log_warn("%zu plugin(s) failed to start; the others keep running", failed);
    nova__log_info("nova-worker %s started (config %s, %zu plugin(s))", PACKAGE_VERSION,
                   config_path, d.plugin_count);
    d.state = STATE_RUNNING;
    if (d.set.svc.queues != NULL) {
        nova__queue_engine_start(d.set.svc.queues);
        /* The first sync as soon as Redis answers (a failed one is tried
         * again in 5 s), then every minute. */
        uv_timer_start(&d.sched_timer, on_sched_timer, 200, 60000);
    }
    uv_timer_start(&d.ready_timer, on_ready_timer, 0, 10);

    uv_run(&d.loop, UV_RUN_DEFAULT);
    nova__log_info("stopped");
out:
    /* The endpoint answers until the loop has nothing else left to run. */
    nova__httpd_stop(d.httpd);
    uv_walk(&d.loop, close_walk, NULL);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    nova__svc_unload_all();
    free(d.plugins);
    if (d.cfg != d.boot_cfg)
        nova__config_free(d.cfg);
    nova__config_free(d.boot_cfg);
    nova__metrics_reset();
    nova__log_clear_secrets();
    return d.exit_code;
}

/* ---- check --------------------------------------------------------------- */

/* Checks one enabled plugin as `run` would prepare it; with print, writes
 * its section's effective values. Problems go to diag. Returns 0 when ok. */
static int check_plugin(const struct nova__config *cfg, const struct nova__plugin_section *s,
                        const struct nova__services *svc, bool print, FILE *out,
                        struct nova__config_diag *diag)
{
    char err[NOVA_CONFIG_ERRMAX] = "";
    struct nova__plugin *p = NULL;
    struct nova__config_origin *origins = NULL;
    int rc = nova__plugin_open(cfg->worker.plugin_dir, s->name, &p, err, sizeof err);
    if (rc == 0) {
        origins = calloc(nova__config_table_len(p->desc.config) + 1, sizeof *origins);
        rc = origins != NULL ? nova__plugin_configure_all(p, cfg, s, diag, origins) : -ENOMEM;
        if (rc == 0)
            rc = nova__plugin_check_requires(p, svc, err, sizeof err);
        if (rc == 0)
            rc = collect_schedules(p, p->config, err, sizeof err);
        if (rc == 0 && (p->desc.requires & (NOVA_REQUIRES_HTTP | NOVA_REQUIRES_STELLAR))) {
            char why[256];
            snprintf(why, sizeof why, "plugin %s requires %s", p->name,
                     (p->desc.requires & NOVA_REQUIRES_STELLAR) ? "Stellar" : "the HTTP client");
            if (nova__svc_http(why, err, sizeof err) == NULL)
                rc = -ENOENT;
        }
    }
    /* Configuration errors already name their file and line. */
    if (rc != 0 && err[0] != '\0')
        nova__config_diag_add(diag, "%s:%d: %s", s->file, s->line, err);
    else if (rc == -ENOMEM)
        diag->oom = true;
    if (print) {
        fprintf(out, "[plugin %s] enabled = yes   # %s:%d\n", s->name, s->enabled_file,
                s->enabled_line);
        char section[256];
        snprintf(section, sizeof section, "plugin %s", s->name);
        if (p != NULL && p->config != NULL)
            nova__config_print_values(p->desc.config, p->config, section, origins, out);
    } else if (rc == 0) {
        fprintf(out, "plugin %s %s: ok", p->name, p->desc.version ? p->desc.version : "");
        for (size_t k = 0; p->schedules != NULL && k < p->schedules->n; k++)
            fprintf(out, "%s%s %s", k ? ", " : " (schedule ", p->schedules->decl[k].id,
                    p->schedules->decl[k].spec);
        fprintf(out, "%s\n", p->schedules != NULL && p->schedules->n > 0 ? ")" : "");
    }
    free(origins);
    nova__plugin_close(p);
    return rc;
}

int nova__daemon_check(const char *config_path, bool print, FILE *out, FILE *errout)
{
    char err[NOVA_CONFIG_ERRMAX] = "";
    struct nova__config_diag diag = {0};
    struct nova__config *cfg = NULL;
    /* Every problem is collected, then printed: the loader's, the values
     * validated as the services validate them, and each enabled plugin's. */
    nova__config_load_all(config_path, &cfg, &diag);
    size_t enabled = 0;
    if (cfg != NULL) {
        /* Which services `run` would have, judged from the configuration. */
        static char present;
        struct nova__services svc = {
            .config = cfg,
            .queues = (struct nova__queue_engine *)&present,
            .pg =
                cfg->postgres.dsn && cfg->postgres.dsn[0] ? (struct nova__pg_pool *)&present : NULL,
            .http = (struct nova__http_client *)&present,
            .stellar = cfg->stellar.horizon_url && cfg->stellar.horizon_url[0]
                           ? (struct nova__stellar_client *)&present
                           : NULL,
        };
        nova__config_check_values(cfg, &diag);
        /* The modules `run` would load for the core sections. */
        if (svc.pg != NULL && nova__svc_pg("[postgres] dsn is set", err, sizeof err) == NULL)
            nova__config_diag_add(&diag, "%s", err);
        if (print)
            nova__config_print_core(cfg, out);
        for (size_t i = 0; i < cfg->plugin_count; i++) {
            const struct nova__plugin_section *s = &cfg->plugins[i];
            if (s->enabled) {
                enabled++;
                check_plugin(cfg, s, &svc, print, out, &diag);
            } else if (print && s->enabled_file != NULL) {
                fprintf(out, "[plugin %s] enabled = no   # %s:%d\n", s->name, s->enabled_file,
                        s->enabled_line);
            } else if (print) {
                fprintf(out, "[plugin %s] enabled = no   # default\n", s->name);
            }
        }
    }
    /* No message holds a secret; masking them again costs nothing. */
    for (size_t i = 0; i < diag.count; i++) {
        nova__log_redact(diag.msg[i]);
        fprintf(errout, "%s\n", diag.msg[i]);
    }
    if (diag.oom)
        fprintf(errout, "%s: out of memory (more problems may be unreported)\n", config_path);
    bool ok = diag.count == 0 && !diag.oom && cfg != NULL;
    if (ok && !print)
        fprintf(out, "%s: configuration ok (%zu plugin(s) enabled)\n", config_path, enabled);
    nova__config_diag_free(&diag);
    nova__config_free(cfg);
    nova__svc_unload_all();
    nova__log_clear_secrets();
    return ok ? 0 : 1;
}
