/*
 * svc - the library-heavy services as modules loaded only when needed.
 *
 * PostgreSQL (libpq), the outbound HTTP and Stellar clients (libcurl) and
 * the /metrics endpoint (libmicrohttpd) pull in some 30 shared libraries
 * (OpenSSL, GnuTLS, Kerberos, LDAP...). A worker that only runs queue jobs
 * uses none of them, so the nova-worker binary does not link them: each
 * service is a module in the module directory, loaded on first need:
 *
 *   nova-pg.so     runtime/pg_pool.c, runtime/migrate.c     [postgres] dsn, `migrate`
 *   nova-http.so   runtime/http_client.c, http_guard.c,     a plugin requiring HTTP or
 *                  runtime/stellar_client.c                 Stellar, `stellar check`
 *   nova-httpd.so  runtime/httpd.c                          [http] listen
 *
 * The directory is NOVA_MODULE_DIR from the environment when set (the
 * build tree: runtime/.libs), else the compiled-in $(pkglibdir)/modules.
 *
 * A module is opened once (RTLD_NOW | RTLD_LOCAL) and exports one symbol,
 * nova_service_module (struct nova__svc_module). The loader checks its
 * interface version, its struct sizes and its name, then hands it the
 * core's table (struct nova__svc_core: the logger, the metrics registry
 * and the offline Stellar library, which must stay one per process), and
 * from then on the core calls the service through the module's const
 * table. Modules come from the same build as the binary; any mismatch
 * means a broken install and is reported naming the file and both values.
 *
 * The test programs link the services directly (libnova_full.la): there
 * the same functions return the linked-in tables and never dlopen
 * (runtime/svc_builtin.c); the daemon binary uses runtime/svc.c.
 *
 * Everything here runs on the loop (main) thread.
 */
#ifndef NOVA_RUNTIME_SVC_H
#define NOVA_RUNTIME_SVC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>
#include "nova/stellar.h"
#include "common/conf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "pg/migrate.h"

struct cJSON;
struct nova_host;
struct nova_pg_api;
struct nova_http_api;
struct nova__pg_pool;
struct nova__http_client;
struct nova__stellar_client;
struct nova__httpd;

/* Bump on any change to the structs below. */
#define NOVA__SVC_VERSION 1

/* The exported symbol of every module. */
#define NOVA__SVC_SYMBOL "nova_service_module"

/* What the core lends a module. The module's copies of these functions
 * (runtime/svc_import.c) forward here, so its log lines are redacted like
 * the core's and its metrics appear on /metrics. */
struct nova__svc_core {
    uint32_t version;     /* NOVA__SVC_VERSION */
    uint32_t struct_size; /* sizeof(struct nova__svc_core) */

    void (*logv)(enum nova_log_level level, const struct nova__log_ctx *ctx, const char *fmt,
                 va_list ap);
    void (*log_add_secret)(const char *secret);

    nova_metric *(*metric_new)(enum nova_metric_type type, const char *name, const char *help,
                               const char *const *label_names, const double *buckets,
                               size_t bucket_count);
    void (*metric_add)(nova_metric *metric, const char *const *label_values, double value);
    void (*metric_set)(nova_metric *metric, const char *const *label_values, double value);
    void (*metric_observe)(nova_metric *metric, const char *const *label_values, double value);
    int (*metrics_render)(char **out, size_t *len);

    /* The offline Stellar library, used by the Stellar client. */
    int (*amount_parse)(const char *text, unsigned flags, int64_t *out, char *err, size_t errlen);
    int (*hex_decode)(const char *text, void *out, size_t len);
    int (*scval_decode_b64)(const char *b64, struct cJSON **out, char *err, size_t errlen);
    int (*build_payment)(const struct nova_stellar_payment_tx *tx,
                         struct nova_stellar_signed_tx *out, char *err, size_t errlen);
    int (*seed_to_account)(const char *seed, char *out, char *err, size_t errlen);
    int (*result_decode_b64)(const char *b64, struct nova_stellar_tx_result *out, char *err,
                             size_t errlen);
    char *(*horizon_form_body)(const char *envelope_b64);
    int (*strkey_decode)(const char *text, enum nova_strkey_type expect,
                         enum nova_strkey_type *type_out, uint8_t *payload, size_t cap,
                         size_t *len_out, char *err, size_t errlen);
    int (*strkey_decode32)(const char *text, enum nova_strkey_type expect, uint8_t key[32],
                           char *err, size_t errlen);
};

/* nova-pg.so: runtime/pg_pool.h and runtime/migrate.h. */
struct nova__svc_pg {
    const struct nova_pg_api *api; /* host->pg for plugins */
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

/* nova-http.so: runtime/http_client.h and runtime/stellar_client.h. */
struct nova__svc_http {
    const struct nova_http_api *api; /* host->http for plugins */
    int (*client_new)(uv_loop_t *loop, const struct nova__http_config *cfg,
                      struct nova__http_client **out);
    void (*client_close)(struct nova__http_client *c, void (*done)(void *arg), void *arg);
    void (*cancel_tag)(struct nova__http_client *c, const void *tag);

    int (*stellar_new)(uv_loop_t *loop, struct nova__http_client *http,
                       const struct nova__stellar_config *cfg, struct nova__stellar_client **out);
    void (*stellar_close)(struct nova__stellar_client *c, void (*done)(void *arg), void *arg);
    bool (*stellar_ready)(const struct nova__stellar_client *c);
    int (*stellar_probe)(struct nova__stellar_client *c, uint64_t interval_ms);
    const struct nova_stellar_network *(*stellar_network)(const struct nova__stellar_client *c);
    int (*stellar_build_payment)(const struct nova__stellar_client *c,
                                 const struct nova_stellar_payment_tx *tx,
                                 struct nova_stellar_signed_tx *out, char *err, size_t errlen);
    int (*load_account)(struct nova__stellar_client *c, const void *tag, const char *account_id,
                        nova_stellar_account_cb cb, void *arg, char *err, size_t errlen);
    int (*submit)(struct nova__stellar_client *c, const void *tag, const char *envelope_b64,
                  nova_stellar_tx_cb cb, void *arg, char *err, size_t errlen);
    int (*tx_lookup)(struct nova__stellar_client *c, const void *tag, const char *hash_hex,
                     nova_stellar_tx_cb cb, void *arg, char *err, size_t errlen);
    int (*latest_ledger)(struct nova__stellar_client *c, const void *tag, nova_stellar_ledger_cb cb,
                         void *arg, char *err, size_t errlen);
    int (*rpc_health)(struct nova__stellar_client *c, const void *tag,
                      nova_stellar_rpc_health_cb cb, void *arg, char *err, size_t errlen);
    int (*rpc_latest_ledger)(struct nova__stellar_client *c, const void *tag,
                             nova_stellar_rpc_ledger_cb cb, void *arg, char *err, size_t errlen);
    int (*get_events)(struct nova__stellar_client *c, const void *tag,
                      const struct nova_stellar_events_query *query, nova_stellar_events_cb cb,
                      void *arg, char *err, size_t errlen);
};

/* nova-httpd.so: runtime/httpd.h. */
struct nova__svc_httpd {
    int (*start)(const char *listen, struct nova__httpd **out, char *err, size_t errlen);
    void (*set_ready)(struct nova__httpd *h, bool ready, const char *reason);
    void (*stop)(struct nova__httpd *h);
};

/* What a module exports as nova_service_module. */
struct nova__svc_module {
    uint32_t version;     /* NOVA__SVC_VERSION the module was built with */
    uint32_t struct_size; /* sizeof(struct nova__svc_module) */
    uint32_t core_size;   /* sizeof(struct nova__svc_core) it expects */
    uint32_t table_size;  /* sizeof its service table */
    const char *name;     /* "pg", "http" or "httpd" */
    /* Called once, before the table is used; core outlives the module. */
    void (*bind)(const struct nova__svc_core *core);
    const void *table; /* struct nova__svc_pg / _http / _httpd */
};

enum nova__svc_id { NOVA__SVC_PG, NOVA__SVC_HTTP, NOVA__SVC_HTTPD, NOVA__SVC_COUNT };

/*
 * Returns the service's table, loading its module on first use; later
 * calls return the same table. needed_by says why, for the error
 * ("[postgres] dsn is set"): on failure NULL is returned and err holds
 * "<needed_by>, but the PostgreSQL module <path> cannot be loaded: <why>".
 * A failed load is retried on the next call.
 */
const void *nova__svc_load(enum nova__svc_id id, const char *needed_by, char *err, size_t errlen);

/* The table when the module is already loaded, else NULL; never loads. */
const void *nova__svc_loaded(enum nova__svc_id id);

/* Closes every loaded module. Only once nothing of theirs runs any more
 * (clients closed, the endpoint stopped); later loads start afresh. */
void nova__svc_unload_all(void);

/* The directory modules are read from (NOVA_MODULE_DIR or built in). */
const char *nova__svc_module_dir(void);

static inline const struct nova__svc_pg *nova__svc_pg(const char *needed_by, char *err,
                                                      size_t errlen)
{
    return nova__svc_load(NOVA__SVC_PG, needed_by, err, errlen);
}

static inline const struct nova__svc_http *nova__svc_http(const char *needed_by, char *err,
                                                          size_t errlen)
{
    return nova__svc_load(NOVA__SVC_HTTP, needed_by, err, errlen);
}

static inline const struct nova__svc_httpd *nova__svc_httpd(const char *needed_by, char *err,
                                                            size_t errlen)
{
    return nova__svc_load(NOVA__SVC_HTTPD, needed_by, err, errlen);
}

/* The service tables, defined in runtime/svc_pg.c, svc_http.c, svc_httpd.c
 * (linked into the modules, and into libnova_full.la for tests). */
extern const struct nova__svc_pg nova__svc_pg_table;
extern const struct nova__svc_http nova__svc_http_table;
extern const struct nova__svc_httpd nova__svc_httpd_table;

/* In a module: exports nova_service_module for its table (one per module). */
#define NOVA__SVC_EXPORT(svc_name, svc_table)                                                      \
    void nova__svc_bind(const struct nova__svc_core *core);                                        \
    __attribute__((visibility("default"))) const struct nova__svc_module nova_service_module = {   \
        .version = NOVA__SVC_VERSION,                                                              \
        .struct_size = sizeof(struct nova__svc_module),                                            \
        .core_size = sizeof(struct nova__svc_core),                                                \
        .table_size = sizeof(svc_table),                                                           \
        .name = svc_name,                                                                          \
        .bind = nova__svc_bind,                                                                    \
        .table = &svc_table,                                                                       \
    }

#endif
