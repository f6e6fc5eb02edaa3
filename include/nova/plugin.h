/*
 * nova/plugin.h - the nova-worker plugin ABI.
 *
 * A plugin is one shared object that exports exactly one function,
 * nova_plugin_entry(), returning a pointer to a static, plugin-owned
 * struct nova_plugin. The loader checks the descriptor's ABI numbers and
 * size before it reads anything else, validates the plugin's [plugin NAME]
 * config section against the plugin's declarative config table, and then
 * calls init() with a host services table.
 *
 * Compatibility rules
 *   - abi_major must equal the host's NOVA_ABI_MAJOR.
 *   - abi_minor must be <= the host's NOVA_ABI_MINOR: a plugin built
 *     against newer headers may rely on host services this host lacks.
 *   - Fields are only ever appended; a minor bump adds fields at the end.
 *     The host reads a descriptor field only when it lies inside
 *     struct_size, and plugins probe host services with NOVA_HOST_HAS().
 *
 * Ownership rules
 *   1. The descriptor and the config table are static and owned by the
 *      plugin; the host never writes or frees them.
 *   2. The config struct passed to init()/reload() is allocated, filled and
 *      freed by the host. It stays valid until reload() returns 0 with a
 *      new one (then the old one is freed) or until shutdown() returns.
 *   3. Plugin state is allocated by init() and freed by shutdown(), which
 *      the host calls exactly once for every successful init().
 *   4. Strings and JSON handed to a callback (job data, names, ids) are
 *      borrowed: valid only until the callback returns or, for jobs, until
 *      the job is finished with nova_host.job_done/retry/fail. Copy to keep.
 *   5. Strings a plugin passes to the host are copied by the host before
 *      the call returns; the plugin may free them afterwards.
 *   6. Asynchronous host calls follow libuv's rule: when the call returns
 *      an error (a negative errno) the callback is never called; otherwise
 *      it is called exactly once, including on shutdown (with -ECANCELED).
 *   7. Plugins never see the event loop or any libuv handle. All callbacks
 *      run on the runtime's single loop thread; host functions must be
 *      called from that thread only.
 *
 * Error convention: functions return 0 on success or a negative errno.
 * Job outcomes are a separate thing, reported with job_done/retry/fail.
 */
#ifndef NOVA_PLUGIN_H
#define NOVA_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NOVA_ABI_MAJOR 1
#define NOVA_ABI_MINOR 3

#if defined(__GNUC__)
#define NOVA_EXPORT       __attribute__((visibility("default")))
#define NOVA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NOVA_EXPORT
#define NOVA_PRINTF(f, a)
#endif

struct cJSON;
struct nova_host;

/* ---- declarative configuration ----------------------------------------- */

enum nova_config_type {
    NOVA_CONFIG_STRING = 1, /* char * (host-owned), NULL when unset without default */
    NOVA_CONFIG_INT,        /* int64_t, bounded by min/max when min < max */
    NOVA_CONFIG_BOOL,       /* bool; yes/no, true/false, on/off, 1/0 */
    NOVA_CONFIG_DURATION,   /* int64_t milliseconds; "250ms", "5s", "2m", "1h", bare = ms */
    NOVA_CONFIG_SECRET,     /* char *; from KEY_file, $CREDENTIALS_DIRECTORY/<credential>
                               or env; never logged */
};

/*
 * One row of a plugin's config table; the table ends with a row whose key
 * is NULL. The host rejects keys that are not in the table (besides the
 * implicit `enabled`), values of the wrong type and out-of-range numbers,
 * naming file and line, before init() is called.
 */
struct nova_config_entry {
    const char *key;
    enum nova_config_type type;
    const char *default_value; /* textual default; NULL = no default */
    size_t offset;             /* offsetof(struct your_config, field) */
    const char *help;          /* one line, shown by `nova-worker plugins --help NAME` */
    int64_t min, max;          /* NOVA_CONFIG_INT/DURATION bounds, used when min < max */
    const char *env;           /* environment fallback when the file leaves it unset */
    bool required;             /* error when unset and without default */
};

/* ---- the plugin descriptor ---------------------------------------------- */

/* Host services a plugin needs; the loader refuses the plugin when one is
 * not configured (for example NOVA_REQUIRES_PG without a [postgres] dsn).
 * The HTTP and Stellar clients live in a module the daemon loads only for
 * plugins that declare NOVA_REQUIRES_HTTP or NOVA_REQUIRES_STELLAR: declare
 * what you use, or host->http is NULL and Stellar network calls return
 * -ENOTSUP. */
#define NOVA_REQUIRES_REDIS   (1u << 0)
#define NOVA_REQUIRES_PG      (1u << 1)
#define NOVA_REQUIRES_HTTP    (1u << 2)
#define NOVA_REQUIRES_STELLAR (1u << 3)
#define NOVA_REQUIRES_KNOWN   0x0fu

/*
 * A periodic job (since ABI 1.2). The runtime keeps it as a BullMQ 5.81 job
 * scheduler on `queue` (the layout Queue.upsertJobScheduler writes, so
 * Node's getJobSchedulers() and Bull Board list it): each slot is one job,
 * id "repeat:<id>:<slot ms>", made once however many workers run, and run
 * by one of them. Redis decides who runs, not a timer per process. After
 * downtime the one overdue job runs once and the schedule goes on from the
 * next slot after now: missed slots are not replayed (docs/plugin-guide.md,
 * "Schedules").
 */
struct nova_schedule {
    const char *id;        /* scheduler id, unique on its queue: letters, digits, '-', '_', '.' */
    const char *queue;     /* each run is a job on this queue; subscribe to it in init() */
    const char *job_name;  /* the name of each run's job */
    const char *spec;      /* "every <duration>" ("every 5m", "every 2s"), or a cron line:
                              5 fields (minute hour day month weekday) or 6 (seconds first) */
    const char *timezone;  /* IANA name the cron line is read in ("Europe/Paris"); NULL or
                              "" = UTC. Ignored by "every". */
    const char *data_json; /* each run's job data (a JSON object); NULL = {} */
};

/* The most schedules one plugin may declare. */
#define NOVA_SCHEDULES_MAX 16

/*
 * A command-line tool of the plugin (since ABI 1.3): `nova-worker NAME
 * ARGS...` (for example `nova-worker backup now`). The runtime finds the
 * installed plugin that declares NAME, fills its config from its [plugin
 * ...] section of the file given with -c (before or after NAME; enabled
 * or not; defaults and environment when the section is absent), opens
 * the services the plugin declares in .requires, and calls run() on a
 * loop, without init(): no job of the plugin runs. The command uses the
 * host table as a job would (host->pg, host->http, host->process,
 * host->file, timers) and prints its output to stdout, errors to stderr.
 * It calls done(host, exit_code) exactly once, from run() or any later
 * callback; the runtime then cancels what is still outstanding, closes
 * the services and exits with exit_code (0 success, 1 failure, 2 usage).
 */
typedef void (*nova_command_done_fn)(const struct nova_host *host, int exit_code);

struct nova_command {
    const char *name;    /* the word after nova-worker: a-z, 0-9, '-'; not a core command */
    const char *summary; /* one line, for `nova-worker plugins --help PLUGIN` */
    const char *usage;   /* the whole help text, printed for `nova-worker NAME --help` */
    /* argv[0] is name; argv[argc] is NULL; -c FILE is already removed.
     * config is the plugin's filled config struct, valid until exit. */
    void (*run)(const struct nova_host *host, const void *config, int argc, char **argv,
                nova_command_done_fn done);
};

struct nova_plugin {
    uint32_t abi_major;   /* NOVA_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;   /* NOVA_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(struct nova_plugin) at build time */
    uint32_t requires;    /* NOVA_REQUIRES_* bits */

    const char *name;        /* matches the [plugin NAME] section and file NAME.so */
    const char *version;     /* the plugin's own version string */
    const char *description; /* one line */

    const struct nova_config_entry *config; /* NULL or a NULL-key-terminated table */
    size_t config_size;                     /* sizeof the struct the table fills */

    /* Columns the plugin reads or writes, "table.column", NULL-terminated;
     * checked against PostgreSQL before init() when NOVA_REQUIRES_PG. */
    const char *const *required_columns;

    /* Called once after config validation. Store your state in *state.
     * Subscribe to queues and start timers here. Return 0 or -errno; on
     * error the plugin is not started and shutdown() is not called. */
    int (*init)(const struct nova_host *host, const void *config, void **state);

    /* Optional. Apply a new config on SIGHUP. Return 0 to accept it (the
     * old config is freed afterwards) or -errno to keep running on the old
     * one. When NULL, a changed section restarts the plugin after a drain. */
    int (*reload)(void *state, const void *config);

    /* Optional. The runtime is draining: stop creating new work (timers,
     * enqueues). In-flight jobs still finish normally afterwards. */
    void (*stop)(void *state);

    /* Release everything init() allocated. No job of this plugin is in
     * flight when it is called; all its timers are already stopped. */
    void (*shutdown)(void *state);

    /* Optional, since ABI 1.2. The schedules of the plugin for a validated
     * config (the struct init() receives): fills out[0..max) and returns
     * how many (0 = none), or a negative errno with a one-line reason in
     * err. Pure: no host calls, no I/O, no state; the runtime calls it at
     * start, on reload and for `nova-worker schedules`/`check`. Strings
     * placed in out must stay valid as long as config does (point into it,
     * or at static storage). A schedule that is no longer returned is
     * removed from Redis. */
    int (*schedules)(const void *config, struct nova_schedule *out, size_t max, char *err,
                     size_t errlen);

    /* Optional, since ABI 1.3: the plugin's command-line tools, a table
     * ending with a row whose name is NULL (see struct nova_command). */
    const struct nova_command *commands;

    void *reserved[6]; /* zero; room for minor additions */
};

#define NOVA_PLUGIN_ABI                                                                            \
    .abi_major = NOVA_ABI_MAJOR, .abi_minor = NOVA_ABI_MINOR,                                      \
    .struct_size = (uint32_t)sizeof(struct nova_plugin)

/* The one symbol a plugin exports. */
typedef const struct nova_plugin *(*nova_plugin_entry_fn)(void);
#define NOVA_PLUGIN_ENTRY_SYMBOL "nova_plugin_entry"
#define NOVA_PLUGIN_DEFINE(descriptor)                                                             \
    NOVA_EXPORT const struct nova_plugin *nova_plugin_entry(void);                                 \
    NOVA_EXPORT const struct nova_plugin *nova_plugin_entry(void)                                  \
    {                                                                                              \
        return &(descriptor);                                                                      \
    }

/* ---- jobs --------------------------------------------------------------- */

/* A fetched job. Owned by the host; valid from the moment handle() is
 * called until the plugin reports its outcome with exactly one of
 * job_done(), job_retry() or job_fail(). */
typedef struct nova_job nova_job;

enum nova_job_outcome {
    NOVA_JOB_DONE = 0, /* completed, with a JSON result */
    NOVA_JOB_RETRY,    /* transient failure: retried per the job's attempts/backoff */
    NOVA_JOB_FAIL,     /* permanent failure: no further attempts */
};

struct nova_subscription {
    uint32_t struct_size;         /* sizeof(struct nova_subscription) */
    const char *queue;            /* BullMQ queue name, e.g. "reward-issuance" */
    const char *const *job_names; /* NULL-terminated names handled; NULL = every name */
    unsigned concurrency;         /* jobs in flight at once, >= 1 */
    int64_t lock_duration_ms;     /* 0 = 30000 */
    int64_t limiter_max;          /* rate limit: at most max jobs ... */
    int64_t limiter_duration_ms;  /* ... per duration; 0 = unlimited */
    void (*handle)(void *arg, nova_job *job);
    void *arg;
};

/* Options for enqueue(); zero means "BullMQ's default" for every field. */
struct nova_job_options {
    uint32_t struct_size;     /* sizeof(struct nova_job_options) */
    const char *job_id;       /* custom id (not all digits, no ':'); NULL = auto */
    int64_t delay_ms;         /* > 0: added to delayed */
    int attempts;             /* total tries; 0 = 1 */
    const char *backoff_type; /* "fixed" or "exponential"; NULL = none */
    int64_t backoff_delay_ms;
    double backoff_jitter;      /* 0..1 */
    int priority;               /* 0 = none; 1 is the highest */
    int64_t remove_on_complete; /* -1 keep all (default), 0 remove, N keep newest N */
    int64_t remove_on_fail;     /* same encoding */
    bool lifo;
};

/* status: 0 (job_id is the new or existing id), -ECANCELED when the plugin
 * is stopping, -ETIMEDOUT when Redis stopped answering (the job may have been
 * added: retry with the same job_id), or another -errno. */
typedef void (*nova_enqueue_cb)(void *arg, int status, const char *job_id);

/* ---- metrics ------------------------------------------------------------ */

typedef struct nova_metric nova_metric;
enum nova_metric_type { NOVA_METRIC_COUNTER = 1, NOVA_METRIC_GAUGE, NOVA_METRIC_HISTOGRAM };

/* ---- timers ------------------------------------------------------------- */

/* A one-shot timer (repeat_ms == 0) is valid until its callback has run or
 * it was stopped, whichever comes first; a repeating timer until stopped.
 * The host stops whatever a plugin left running before shutdown(). */
typedef struct nova_timer nova_timer;
typedef void (*nova_timer_cb)(void *arg);

enum nova_log_level { NOVA_LOG_ERROR = 0, NOVA_LOG_WARN, NOVA_LOG_INFO, NOVA_LOG_DEBUG };

/* Service tables declared by their own headers: <nova/pg.h>, <nova/http.h>,
 * <nova/redis.h>, <nova/stellar.h>. */
struct nova_pg_api;
struct nova_http_api;
struct nova_redis_api;
struct nova_stellar_api;
struct nova_process_api;
struct nova_file_api;

/* ---- the host services table -------------------------------------------- */

/*
 * One table per plugin instance, valid from init() until shutdown()
 * returns. Every function takes the table itself first so the host knows
 * which plugin is calling (logs and metrics are labelled with it).
 */
struct nova_host {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size;
    const char *plugin_name;

    /* Logging: one JSON line with ts, level, msg, plugin and, when job is
     * not NULL, queue and job. Secrets are redacted by the host. */
    void (*log)(const struct nova_host *host, enum nova_log_level level, const nova_job *job,
                const char *fmt, ...) NOVA_PRINTF(4, 5);

    /* Wall-clock milliseconds since the epoch (BullMQ's timestamps are wall-clock). */
    int64_t (*now_ms)(const struct nova_host *host);

    /* Timers on the host's loop. NULL on allocation failure. */
    nova_timer *(*timer_start)(const struct nova_host *host, uint64_t after_ms, uint64_t repeat_ms,
                               nova_timer_cb cb, void *arg);
    void (*timer_stop)(const struct nova_host *host, nova_timer *timer);

    /* Metrics, exposed on /metrics. Registering an existing name with the
     * same type and labels returns the existing metric. label_names is
     * NULL-terminated (or NULL); buckets only for histograms (NULL = the
     * default latency buckets). Metrics live until the process exits. */
    nova_metric *(*metric_new)(const struct nova_host *host, enum nova_metric_type type,
                               const char *name, const char *help, const char *const *label_names,
                               const double *buckets, size_t bucket_count);
    void (*metric_add)(nova_metric *metric, const char *const *label_values, double value);
    void (*metric_set)(nova_metric *metric, const char *const *label_values, double value);
    void (*metric_observe)(nova_metric *metric, const char *const *label_values, double value);

    /* Queues. subscribe() only from init(); fetching starts once every
     * plugin is initialised. */
    int (*subscribe)(const struct nova_host *host, const struct nova_subscription *sub);
    int (*set_concurrency)(const struct nova_host *host, const char *queue, unsigned concurrency);
    int (*enqueue)(const struct nova_host *host, const char *queue, const char *name,
                   const char *data_json, const struct nova_job_options *opts, nova_enqueue_cb cb,
                   void *arg);

    /* Job accessors: borrowed values, valid while the job is. */
    const char *(*job_id)(const nova_job *job);
    const char *(*job_name)(const nova_job *job);
    const char *(*job_queue)(const nova_job *job);
    const char *(*job_data_json)(const nova_job *job);
    const struct cJSON *(*job_data)(const nova_job *job); /* parsed data, never NULL */
    int (*job_attempts_made)(const nova_job *job);        /* finished attempts before this one */
    int (*job_attempts_max)(const nova_job *job);         /* opts.attempts, at least 1 */
    int64_t (*job_timestamp_ms)(const nova_job *job);
    /* True when cancelled by a lost lock or shutdown timeout: finish soon. */
    bool (*job_cancelled)(const nova_job *job);
    int (*job_progress)(nova_job *job, const char *json);

    /* Outcomes: call exactly one, exactly once; the job is invalid after.
     * result_json may be NULL (stored as null); reason is a plain message;
     * delay_ms < 0 means "use the job's backoff". */
    void (*job_done)(nova_job *job, const char *result_json);
    void (*job_retry)(nova_job *job, const char *reason, int64_t delay_ms);
    void (*job_fail)(nova_job *job, const char *reason);

    /* Shared clients; NULL when the service is not configured or, for http,
     * when no enabled plugin declares NOVA_REQUIRES_HTTP/STELLAR. */
    const struct nova_redis_api *redis;
    const struct nova_pg_api *pg;
    const struct nova_http_api *http;
    const struct nova_stellar_api *stellar;

    /* Child processes and files off the loop (include/nova/sys.h; ABI 1.3):
     * always present on a 1.3 host. */
    const struct nova_process_api *process;
    const struct nova_file_api *file;

    void *reserved[6];
};

/* True when this host provides `member` (a function pointer or table). */
#define NOVA_HOST_HAS(host, member)                                                                \
    (offsetof(struct nova_host, member) + sizeof((host)->member) <= (host)->struct_size &&         \
     (host)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif /* NOVA_PLUGIN_H */
