/*
 * conf - the daemon's INI configuration.
 *
 * The file is parsed with libinih into entries that remember their file
 * and line; `include = conf.d/<glob>.conf` pulls in drop-ins (sorted, relative to
 * the including file). Each core section is described by a declarative
 * table (struct nova_config_entry, the same type plugins use) and filled
 * into struct nova__config; [plugin NAME] sections are kept as entries and
 * validated against the plugin's own table when it is loaded.
 *
 * Values left unset fall back to Nova's environment variables (each
 * table row names its variable), then to the row's default. Secrets come
 * from KEY_file, from $CREDENTIALS_DIRECTORY/<credential>, or from the
 * environment; every secret is registered with the log redactor.
 *
 * Problems are reported as "FILE:LINE: message" (a value that came from
 * the environment or a credential names that source instead). The loader
 * does not stop at the first one: nova__config_load_all() collects every
 * problem of every file into a struct nova__config_diag (what `check`
 * prints), nova__config_load() returns the first in a caller buffer (what
 * `run` and the admin commands print). Every key remembers where its
 * effective value came from (struct nova__config_origin, `check --print`).
 * No message ever contains the value of a secret.
 */
#ifndef NOVA_RUNTIME_CONF_H
#define NOVA_RUNTIME_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "nova/plugin.h"

#define NOVA_CONFIG_ERRMAX 512

struct nova__worker_config {
    enum nova_log_level log_level;
    char *log_level_name;
    char *name;                  /* worker name: CLIENT SETNAME suffix, `pb` field */
    int64_t shutdown_timeout_ms; /* drain deadline on SIGTERM */
    char *plugin_dir;
};

struct nova__redis_config {
    char *url; /* secret: redis[s]://[[user]:password@]host:port[/db] or unix:///path */
    char *prefix;
    int64_t connect_timeout_ms;
    int64_t lock_duration_ms;
    int64_t stalled_interval_ms;
    int64_t max_stalled_count;
    int64_t drain_delay_ms;
    /* How to reach Redis (runtime/queue/redis_target.c reads these). */
    char *username; /* ACL user when the URL names none */
    char *password; /* secret: password or auth token when the URL has none */
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;
    char *tls_server_name;
    bool tls_skip_verify;
    char *sentinels; /* host:port,... */
    char *sentinel_master;
    char *sentinel_username;
    char *sentinel_password; /* secret */
    char *cluster_nodes;     /* host:port,... */
    int64_t reply_timeout_ms;
    int64_t tcp_keepalive_ms; /* 0 = off */
};

struct nova__postgres_config {
    char *dsn; /* secret: libpq URI or key=value string */
    int64_t pool_min;
    int64_t pool_max;
    int64_t connect_timeout_ms;
    int64_t statement_timeout_ms;
    int64_t slow_query_ms;
};

struct nova__http_config {
    char *listen; /* metrics/health endpoint, host:port */
    char *ca_file;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    int64_t max_response_bytes;
    int64_t max_connections;
    char *user_agent;
};

struct nova__stellar_config {
    char *network;            /* testnet | public | a passphrase */
    char *network_passphrase; /* derived from network */
    char *horizon_url;
    char *soroban_rpc_url;
    char *soroban_rpc_url_fallback; /* tried when soroban_rpc_url fails */
    char *asset_code;
    char *asset_issuer;
    char *distribution_secret; /* secret seed S... */
    int64_t base_fee;
    int64_t tx_timeout_ms;
};

/* Problems found in a configuration, one line each, in the order found. */
struct nova__config_diag {
    char **msg;
    size_t count;
    bool oom; /* a message was lost for want of memory */
};

void nova__config_diag_add(struct nova__config_diag *d, const char *fmt, ...) NOVA_PRINTF(2, 3);
void nova__config_diag_free(struct nova__config_diag *d);

/* Where a key's effective value came from. */
enum nova__config_source {
    NOVA__CONFIG_UNSET = 0,   /* no value (the struct field is NULL/0) */
    NOVA__CONFIG_FILE,        /* key = value at file:line */
    NOVA__CONFIG_KEY_FILE,    /* secret: key_file = path at file:line */
    NOVA__CONFIG_CREDENTIAL,  /* secret: $CREDENTIALS_DIRECTORY/name */
    NOVA__CONFIG_ENVIRONMENT, /* the row's environment variable, name */
    NOVA__CONFIG_DEFAULT,     /* the row's default (or a derived one) */
};

struct nova__config_origin {
    enum nova__config_source source;
    const char *file; /* FILE, KEY_FILE: the file setting the key (owned by the config) */
    int line;
    const char *path; /* KEY_FILE: the file the secret was read from */
    char name[128];   /* ENVIRONMENT: the variable; CREDENTIAL: the credential */
    bool invalid;     /* the value was rejected; a message says why */
};

/* One parsed key = value, kept for plugin sections and for error reports. */
struct nova__config_entry {
    char *file;
    int line;
    int section_line; /* line of the [section] header it belongs to */
    char *section;
    char *key;
    char *value;
    bool used;
};

struct nova__plugin_section {
    char *name;
    char *file;
    int line;
    bool enabled;
    const char *enabled_file; /* where `enabled` is set (NULL: not set, so no) */
    int enabled_line;
    size_t first, count; /* slice of entries[] */
};

struct nova__config {
    char *path;
    struct nova__worker_config worker;
    struct nova__redis_config redis;
    struct nova__postgres_config postgres;
    struct nova__http_config http;
    struct nova__stellar_config stellar;

    struct nova__config_entry *entries;
    size_t entry_count;
    struct nova__plugin_section *plugins;
    size_t plugin_count;
    struct nova__config_origin *origins; /* one per row of nova__core_sections' tables */
};

/* Parses path (and its includes) and fills every core section. Returns 0,
 * or -errno with "FILE:LINE: message" in err: the first problem, followed
 * by how many more there are. On error *out is NULL. */
int nova__config_load(const char *path, struct nova__config **out, char *err, size_t errlen);

/* The same, collecting every problem into diag (which the caller frees
 * with nova__config_diag_free()). Returns 0 or the -errno of the first
 * problem. Unless the file cannot be read at all (or memory runs out),
 * *out is set even on error: the best the files allow, a rejected value
 * replaced by its default, for callers that go on checking. */
int nova__config_load_all(const char *path, struct nova__config **out,
                          struct nova__config_diag *diag);
void nova__config_free(struct nova__config *cfg);

/* Where the effective value of a core key came from; NULL for an unknown
 * section or key. */
const struct nova__config_origin *nova__config_origin(const struct nova__config *cfg,
                                                      const char *section, const char *key);

/* Where a value came from, for messages: "FILE:LINE", "environment variable
 * NAME", "credential NAME" or "default". Returns buf. */
const char *nova__config_origin_text(const struct nova__config_origin *o, char *buf, size_t len);

/* Appends "WHERE: [section] key MESSAGE" to diag, WHERE being the value's
 * file and line; a value from elsewhere reads "[section] key (from
 * environment variable NAME) MESSAGE". For validators outside this file. */
void nova__config_diag_key(struct nova__config_diag *d, const struct nova__config_origin *o,
                           const char *section, const char *key, const char *fmt, ...)
    NOVA_PRINTF(5, 6);

/* Finds a plugin section by name, NULL when absent. */
const struct nova__plugin_section *nova__config_plugin(const struct nova__config *cfg,
                                                       const char *name);

/*
 * Fills a plugin's config struct (allocated here, config_size bytes) from
 * its section, its table's defaults and environment fallbacks. Keys not in
 * the table are errors naming file and line. section may be NULL (all
 * defaults). Free the result with nova__config_struct_free(). Returns 0 or
 * -errno with the first problem in err, followed by how many more there are.
 */
int nova__config_fill(const struct nova_config_entry *table, size_t config_size,
                      const struct nova__config *cfg, const struct nova__plugin_section *section,
                      void **out, char *err, size_t errlen);

/* The same, collecting every problem into diag; origins, when not NULL,
 * has one element per row of table and receives where each value came
 * from. On error *out is NULL. */
int nova__config_fill_all(const struct nova_config_entry *table, size_t config_size,
                          const struct nova__config *cfg,
                          const struct nova__plugin_section *section, void **out,
                          struct nova__config_diag *diag, struct nova__config_origin *origins);
void nova__config_struct_free(const struct nova_config_entry *table, void *config);

/* Rows of a table (before its NULL-key row). */
size_t nova__config_table_len(const struct nova_config_entry *table);

/* Parses one value of the given type into dst (a field of that type).
 * Returns 0 or -EINVAL with a short reason in err. Exposed for tests. */
int nova__config_parse_value(enum nova_config_type type, const char *text, int64_t min, int64_t max,
                             void *dst, char *err, size_t errlen);

/* Writes a table as help text (used by `plugins --help` and `--help`). */
void nova__config_print_table(const struct nova_config_entry *table, FILE *out);

/*
 * `check --print`: one line per row of table, in table order,
 *   [SECTION] KEY = VALUE   # ORIGIN
 * VALUE as it is in effect (durations in their largest whole unit, booleans
 * yes/no); a secret is "***", or for a URL the URL with its password (and
 * any password-like query value) as "***". ORIGIN is FILE:LINE, "KEY_file
 * PATH (FILE:LINE)", "credential NAME", "env NAME", "default" or "unset",
 * followed by ", invalid" when the value was rejected. config is the
 * struct the table fills; origins has one element per row.
 */
void nova__config_print_values(const struct nova_config_entry *table, const void *config,
                               const char *section, const struct nova__config_origin *origins,
                               FILE *out);
/* The same for every core section of cfg. */
void nova__config_print_core(const struct nova__config *cfg, FILE *out);
/* One value with a secret masked as above, into buf. Exposed for tests. */
const char *nova__config_mask_secret(const char *value, char *buf, size_t len);

/* The core sections' tables, for documentation output. */
struct nova__section_info {
    const char *name;
    const struct nova_config_entry *table;
};
extern const struct nova__section_info nova__core_sections[];

/* [worker] plugin_dir's default: the packaged plugins, then the machine's
 * own (/usr/local), as a search path. */
#define NOVA_PLUGIN_PATH NOVA_PLUGIN_DIR ":" NOVA_LOCAL_PLUGIN_DIR

#endif
